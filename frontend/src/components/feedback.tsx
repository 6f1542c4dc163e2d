/** Loading, error, empty and notice states shared by every page. */
import type { ReactNode } from 'react'
import type { CombinedError } from 'urql'
import { describeError, errorCode } from '../lib/errors'
import { NotFound } from '../pages/NotFoundPage'

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

/** Codes meaning "the thing in the link does not exist" (missing, or an id that is not one). */
const MISSING = new Set(['NOT_FOUND', 'BAD_USER_INPUT'])

/**
 * A query's first load or failure; renders children once there is data. A page's main query
 * passes `notFound` ("Run"), so a bad or stale link shows "Run not found" with a way back.
 */
export function QueryState<T>({
  result,
  retry,
  notFound,
  children,
}: {
  result: { data?: T | null; fetching: boolean; error?: CombinedError }
  retry?: () => void
  notFound?: { what: string; back?: { to: string; label: string } }
  children: (data: T) => ReactNode
}) {
  if (result.data != null) return <>{children(result.data)}</>
  if (result.error) {
    const code = errorCode(result.error)
    if (notFound && code && MISSING.has(code)) return <NotFound {...notFound} />
    return <ErrorMessage error={result.error} retry={retry} />
  }
  if (!result.fetching && result.data === null) return <EmptyState title="Nothing here." />
  return <Loading />
}
