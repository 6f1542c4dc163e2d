import { Suspense, useEffect, useRef } from 'react'
import { NavLink, Outlet, useLocation, useNavigate } from 'react-router'
import { useMutation } from 'urql'
import { graphql } from '../gql'
import { useSession } from '../session'
import { ConnectionBanner } from './ConnectionBanner'
import { ErrorBoundary } from './ErrorBoundary'
import { Loading } from './feedback'
import { NotificationBell } from './NotificationBell'

const LogoutDocument = graphql(`
  mutation Logout {
    logout {
      ok
    }
  }
`)

function UserLinks() {
  const { viewer, sessionChanged } = useSession()
  const [, logout] = useMutation(LogoutDocument)
  const navigate = useNavigate()
  if (!viewer) {
    return (
      <>
        <NavLink to="/login">Log in</NavLink>
        <NavLink to="/signup" className="button primary small">
          Sign up
        </NavLink>
      </>
    )
  }
  const onLogout = async () => {
    await logout({})
    sessionChanged()
    navigate('/')
  }
  return (
    <>
      <NotificationBell />
      <NavLink to="/settings/profile" title="Settings">
        {viewer.displayName || viewer.handle}
      </NavLink>
      <button type="button" className="button link" onClick={onLogout}>
        Log out
      </button>
    </>
  )
}

/**
 * After a move to another page, keyboard focus goes to the page's content (not the body, where
 * the link that was clicked used to be), so Tab continues from the top of the new page.
 */
function useFocusOnNavigation(pathname: string) {
  const main = useRef<HTMLElement>(null)
  const first = useRef(true)
  useEffect(() => {
    if (first.current) {
      first.current = false
      return
    }
    const active = document.activeElement
    if (!active || active === document.body || !document.contains(active)) main.current?.focus({ preventScroll: true })
  }, [pathname])
  return main
}

export function Layout() {
  const { viewer } = useSession()
  const { pathname } = useLocation()
  const main = useFocusOnNavigation(pathname)
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <NavLink to="/" className="brand">
          mlpatron
        </NavLink>
        <nav aria-label="Main" className="main-nav">
          <NavLink to="/" end>
            Explore
          </NavLink>
          <NavLink to="/discover">Needs funding</NavLink>
          <NavLink to="/discussions" end>
            Discussions
          </NavLink>
          <NavLink to="/jobs">Jobs</NavLink>
          {viewer && <NavLink to="/projects/new">New project</NavLink>}
        </nav>
        <div className="user-links">
          <UserLinks />
        </div>
      </header>
      <ConnectionBanner />
      <main id="main" className="page" ref={main} tabIndex={-1}>
        <ErrorBoundary resetKey={pathname}>
          <Suspense fallback={<Loading />}>
            <Outlet />
          </Suspense>
        </ErrorBoundary>
      </main>
      <footer className="site-footer">
        <NavLink to="/feedback">Send feedback</NavLink>
        <NavLink to="/discussions">Platform discussions</NavLink>
      </footer>
    </>
  )
}
