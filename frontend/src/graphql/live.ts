/** Subscription documents shared by several views (urql runs one subscription per document and variables). */
import { graphql } from '../gql'

/** The viewer's notification stream: an unread-count snapshot, then each new notification or read-marking. */
export const ViewerNotificationsDocument = graphql(`
  subscription ViewerNotifications($afterSeq: Int) {
    viewerNotifications(afterSeq: $afterSeq) {
      seq
      kind
      unreadCount
    }
  }
`)

/** A project's activity: runs created or changing state, discussions and comments. */
export const ProjectActivityDocument = graphql(`
  subscription ProjectActivity($projectId: ID!, $afterSeq: Int) {
    projectActivity(projectId: $projectId, afterSeq: $afterSeq) {
      seq
      kind
    }
  }
`)
