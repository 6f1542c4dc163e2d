import { Suspense } from 'react'
import { NavLink, Outlet, useLocation } from 'react-router'
import { Loading } from '../../components/feedback'
import { RequireLogin } from '../../components/RequireLogin'
import { useTitle } from '../../lib/useTitle'

const SECTIONS = [
  ['profile', 'Profile'],
  ['wallet', 'Wallet'],
  ['api-keys', 'API keys'],
  ['notifications', 'Notifications'],
] as const

export function SettingsLayout() {
  const section = useLocation().pathname.split('/')[2]
  useTitle(`${SECTIONS.find(([path]) => path === section)?.[1] ?? 'Settings'} · Settings`)
  return (
    <section>
      <h1>Settings</h1>
      <RequireLogin what="your settings">
        <div className="settings">
          <nav aria-label="Settings" className="side-nav">
            {SECTIONS.map(([path, label]) => (
              <NavLink key={path} to={`/settings/${path}`}>
                {label}
              </NavLink>
            ))}
          </nav>
          <div className="settings-body">
            <Suspense fallback={<Loading />}>
              <Outlet />
            </Suspense>
          </div>
        </div>
      </RequireLogin>
    </section>
  )
}
