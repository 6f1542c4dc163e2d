import { lazy, type ComponentType } from 'react'
import { BrowserRouter, Navigate, Route, Routes } from 'react-router'
import { Layout } from './components/Layout'
import { SessionProvider } from './components/SessionProvider'
import { ExplorePage } from './pages/ExplorePage'

/** A route's page in its own chunk, loaded on first visit (Explore, the front door, is in the main one). */
function page<K extends string>(load: () => Promise<Record<K, ComponentType>>, name: K) {
  return lazy(async () => ({ default: (await load())[name] }))
}

const LoginPage = page(() => import('./pages/AuthPages'), 'LoginPage')
const SignUpPage = page(() => import('./pages/AuthPages'), 'SignUpPage')
const DiscoverPage = page(() => import('./pages/DiscoverPage'), 'DiscoverPage')
const DiscussionsPage = page(() => import('./pages/DiscussionsPage'), 'DiscussionsPage')
const FeedbackPage = page(() => import('./pages/FeedbackPage'), 'FeedbackPage')
const UserPage = page(() => import('./pages/UserPage'), 'UserPage')
const DiscussionPage = page(() => import('./pages/DiscussionPage'), 'DiscussionPage')
const JobLogsPage = page(() => import('./pages/JobLogsPage'), 'JobLogsPage')
const JobsPage = page(() => import('./pages/JobsPage'), 'JobsPage')
const NewProjectPage = page(() => import('./pages/NewProjectPage'), 'NewProjectPage')
const NewRunPage = page(() => import('./pages/NewRunPage'), 'NewRunPage')
const NotFoundPage = page(() => import('./pages/NotFoundPage'), 'default')
const NotificationsPage = page(() => import('./pages/NotificationsPage'), 'NotificationsPage')
const ProjectPage = page(() => import('./pages/ProjectPage'), 'ProjectPage')
const RunPage = page(() => import('./pages/RunPage'), 'RunPage')
const SettingsLayout = page(() => import('./pages/settings/SettingsLayout'), 'SettingsLayout')
const ProfileSettings = page(() => import('./pages/settings/ProfileSettings'), 'ProfileSettings')
const WalletSettings = page(() => import('./pages/settings/WalletSettings'), 'WalletSettings')
const ApiKeysSettings = page(() => import('./pages/settings/ApiKeysSettings'), 'ApiKeysSettings')
const NotificationSettings = page(() => import('./pages/settings/NotificationSettings'), 'NotificationSettings')

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
            <Route path="discover" element={<DiscoverPage />} />
            <Route path="discussions" element={<DiscussionsPage />} />
            <Route path="discussions/:id" element={<DiscussionPage />} />
            <Route path="feedback" element={<FeedbackPage />} />
            <Route path="users/:id" element={<UserPage />} />
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
