/** Loading, error, empty and notice states shared by every page. */
import type { ReactNode } from 'react'
import type { CombinedError } from 'urql'
import { describeError } from '../lib/errors'

export function Alert({ tone = 'info', children }: { tone?: 'info' | 'error' | 'success' | 'warning'; children: ReactNode }) {
  return (
    <div className={`alert alert-${tone}`} role={tone === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  )
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      {label}
    </p>
  )
}

export function ErrorMessage({ error, retry }: { error: CombinedError; retry?: () => void }) {
  return (
    <Alert tone="error">
      {describeError(error)}{' '}
      {retry && (
        <button type="button" className="button link" onClick={retry}>
          Try again
        </button>
      )}
    </Alert>
  )
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children}
    </div>
  )
}

/** A query's first load or failure; renders children once there is data. */
export function QueryState<T>({
  result,
  retry,
  children,
}: {
  result: { data?: T; fetching: boolean; error?: CombinedError }
  retry?: () => void
  children: (data: T) => ReactNode
}) {
  if (result.data !== undefined) return <>{children(result.data)}</>
  if (result.error) return <ErrorMessage error={result.error} retry={retry} />
  return <Loading />
}
