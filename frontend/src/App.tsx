import { BrowserRouter, Navigate, Route, Routes } from 'react-router'
import { Layout } from './components/Layout'
import { SessionProvider } from './components/SessionProvider'
import { LoginPage, SignUpPage } from './pages/AuthPages'
import { DiscussionPage } from './pages/DiscussionPage'
import { ExplorePage } from './pages/ExplorePage'
import { JobLogsPage } from './pages/JobLogsPage'
import { JobsPage } from './pages/JobsPage'
import { NewProjectPage } from './pages/NewProjectPage'
import { NewRunPage } from './pages/NewRunPage'
import { NotFoundPage } from './pages/NotFoundPage'
import { NotificationsPage } from './pages/NotificationsPage'
import { ProjectPage } from './pages/ProjectPage'
import { RunPage } from './pages/RunPage'
import { ApiKeysSettings } from './pages/settings/ApiKeysSettings'
import { NotificationSettings } from './pages/settings/NotificationSettings'
import { ProfileSettings } from './pages/settings/ProfileSettings'
import { SettingsLayout } from './pages/settings/SettingsLayout'
import { WalletSettings } from './pages/settings/WalletSettings'

export default function App() {
  return (
    <SessionProvider>
      <BrowserRouter>
        <Routes>
          <Route element={<Layout />}>
            <Route index element={<ExplorePage />} />
            <Route path="login" element={<LoginPage />} />
            <Route path="signup" element={<SignUpPage />} />
            <Route path="projects/new" element={<NewProjectPage />} />
            <Route path="projects/:id" element={<ProjectPage />} />
            <Route path="projects/:id/runs/new" element={<NewRunPage />} />
            <Route path="runs/:id" element={<RunPage />} />
            <Route path="jobs" element={<JobsPage />} />
            <Route path="jobs/:id/logs" element={<JobLogsPage />} />
            <Route path="discussions/:id" element={<DiscussionPage />} />
            <Route path="notifications" element={<NotificationsPage />} />
            <Route path="settings" element={<SettingsLayout />}>
              <Route index element={<Navigate to="profile" replace />} />
              <Route path="profile" element={<ProfileSettings />} />
              <Route path="wallet" element={<WalletSettings />} />
              <Route path="api-keys" element={<ApiKeysSettings />} />
              <Route path="notifications" element={<NotificationSettings />} />
            </Route>
            <Route path="*" element={<NotFoundPage />} />
          </Route>
        </Routes>
      </BrowserRouter>
    </SessionProvider>
  )
}
