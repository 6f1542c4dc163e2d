import { NavLink, Outlet } from 'react-router'
import { RequireLogin } from '../../components/RequireLogin'

const SECTIONS = [
  ['profile', 'Profile'],
  ['wallet', 'Wallet'],
  ['api-keys', 'API keys'],
  ['notifications', 'Notifications'],
] as const

export function SettingsLayout() {
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
            <Outlet />
          </div>
        </div>
      </RequireLogin>
    </section>
  )
}
