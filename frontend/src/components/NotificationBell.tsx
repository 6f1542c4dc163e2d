import { useEffect } from 'react'
import { Link } from 'react-router'
import { useQuery } from 'urql'
import { graphql } from '../gql'

const UnreadCountDocument = graphql(`
  query UnreadCount {
    unreadNotificationCount
  }
`)

const POLL_MS = 15_000

/** The bell in the header: unread count, refreshed while the page is open. */
export function NotificationBell() {
  const [{ data }, refetch] = useQuery({ query: UnreadCountDocument })
  useEffect(() => {
    const timer = setInterval(() => refetch({ requestPolicy: 'network-only' }), POLL_MS)
    return () => clearInterval(timer)
  }, [refetch])
  const count = data?.unreadNotificationCount ?? 0
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
