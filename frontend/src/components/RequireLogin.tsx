import type { ReactNode } from 'react'
import { Link, useLocation } from 'react-router'
import { useSession } from '../session'
import { Loading } from './feedback'

/** Pages for signed-in people: others get a way to log in and come back. */
export function RequireLogin({ children, what = 'this page' }: { children: ReactNode; what?: string }) {
  const { viewer, ready } = useSession()
  const location = useLocation()
  if (!ready) return <Loading />
  if (viewer) return <>{children}</>
  const next = encodeURIComponent(location.pathname + location.search)
  return (
    <div className="empty">
      <p className="empty-title">Log in to see {what}.</p>
      <p>
        <Link className="button primary" to={`/login?next=${next}`}>
          Log in
        </Link>{' '}
        or <Link to={`/signup?next=${next}`}>create an account</Link>
      </p>
    </div>
  )
}
