import { Link } from 'react-router'
import { useSubscription } from 'urql'
import { ViewerNotificationsDocument } from '../graphql/live'

/** The bell in the header: the unread count, live (`viewerNotifications`). */
export function NotificationBell() {
  const [{ data }] = useSubscription({ query: ViewerNotificationsDocument, variables: { afterSeq: null } })
  const count = data?.viewerNotifications.unreadCount ?? 0
  return (
    <Link to="/notifications" className="bell" aria-label={`Notifications, ${count} unread`}>
      <svg aria-hidden="true" viewBox="0 0 24 24" width="22" height="22">
        <path
          fill="currentColor"
          d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1Z"
        />
      </svg>
      {count > 0 && <span className="bell-count">{count > 99 ? '99+' : count}</span>}
    </Link>
  )
}
