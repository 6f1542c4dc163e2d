/** The viewer's notifications: open one to mark it read, or mark all read. */
import { Link } from 'react-router'
import { useMutation, useQuery } from 'urql'
import { EmptyState, ErrorMessage, QueryState } from '../components/feedback'
import { LoadMore, Pages } from '../components/Pages'
import { RequireLogin } from '../components/RequireLogin'
import { graphql } from '../gql'
import type { NotificationsQuery } from '../gql/graphql'
import { ViewerNotificationsDocument } from '../graphql/live'
import { formatDate } from '../lib/format'
import { useRefetchOnEvent } from '../lib/useLive'
import { useTitle } from '../lib/useTitle'

const NotificationsDocument = graphql(`
  query Notifications($after: String) {
    notifications(first: 30, after: $after) {
      nodes {
        id
        kind
        message
        payload
        isRead
        createdAt
        project {
          id
          title
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`)

const MarkReadDocument = graphql(`
  mutation MarkNotificationRead($input: MarkNotificationReadInput!) {
    markNotificationRead(input: $input) {
      notification {
        id
        isRead
      }
    }
  }
`)

const MarkAllReadDocument = graphql(`
  mutation MarkAllNotificationsRead {
    markAllNotificationsRead {
      markedCount
    }
  }
`)

type Item = NotificationsQuery['notifications']['nodes'][number]

/** Where a notification leads: its run or discussion (payload ids are global ids). */
function linkOf(item: Item): string | null {
  const payload = (item.payload ?? {}) as Record<string, unknown>
  if (typeof payload.runId === 'string') return `/runs/${payload.runId}`
  if (typeof payload.discussionId === 'string') return `/discussions/${payload.discussionId}`
  return item.project ? `/projects/${item.project.id}` : null
}

function NotificationList({ after, onMore }: { after: string | null; onMore: ((c: string) => void) | null }) {
  const [result, refetch] = useQuery({ query: NotificationsDocument, variables: { after } })
  const [, markRead] = useMutation(MarkReadDocument)
  useRefetchOnEvent(ViewerNotificationsDocument, { afterSeq: null }, refetch, after !== null)
  return (
    <QueryState result={result}>
      {(data) => {
        const items = data.notifications.nodes
        if (after === null && items.length === 0) return <EmptyState title="No notifications yet." >Follow projects to hear when their runs change.</EmptyState>
        return (
          <>
            <ul className="list notifications">
              {items.map((item) => {
                const to = linkOf(item)
                const read = () => !item.isRead && markRead({ input: { id: item.id } })
                return (
                  <li key={item.id} className={item.isRead ? 'read' : 'unread'}>
                    {!item.isRead && <span className="sr-only">Unread: </span>}
                    {to ? <Link to={to} onClick={read}>{item.message}</Link> : <span>{item.message}</span>}
                    <span className="muted small block">
                      {item.project?.title && `${item.project.title} · `}
                      {formatDate(item.createdAt)}
                    </span>
                  </li>
                )
              })}
            </ul>
            <LoadMore pageInfo={data.notifications.pageInfo} fetching={result.fetching} onMore={onMore} />
          </>
        )
      }}
    </QueryState>
  )
}

function MarkAllRead() {
  const [markAll, doMarkAll] = useMutation(MarkAllReadDocument)
  return (
    <>
      <button type="button" className="button" disabled={markAll.fetching}
        onClick={() => doMarkAll({}, { additionalTypenames: ['Notification'] })}>
        Mark all read
      </button>
      {markAll.error && <ErrorMessage error={markAll.error} />}
    </>
  )
}

export function NotificationsPage() {
  useTitle('Notifications')
  return (
    <section className="narrow-wide">
      <RequireLogin what="your notifications">
        <div className="page-head">
          <h1>Notifications</h1>
          <MarkAllRead />
        </div>
        <Pages>{(after, onMore) => <NotificationList after={after} onMore={onMore} />}</Pages>
      </RequireLogin>
    </section>
  )
}
