import { useConnectionStatus } from '../graphql/client'

/** Shown while the realtime connection is lost; live views resume where they stopped. */
export function ConnectionBanner() {
  const status = useConnectionStatus()
  if (status !== 'reconnecting') return null
  return (
    <div className="banner" role="status" aria-live="polite">
      Live connection lost — reconnecting… Updates will resume where they stopped.
    </div>
  )
}
