/**
 * Cursor pagination with urql's document cache: each page is its own query, and the last
 * page's "Show more" appends the next one.
 */
import { Fragment, useState, type ReactNode } from 'react'

type More = ((cursor: string) => void) | null

export function Pages({ children }: { children: (after: string | null, onMore: More) => ReactNode }) {
  const [cursors, setCursors] = useState<(string | null)[]>([null])
  return cursors.map((after, index) => (
    <Fragment key={after ?? ''}>
      {children(after, index === cursors.length - 1 ? (cursor) => setCursors([...cursors, cursor]) : null)}
    </Fragment>
  ))
}

export function LoadMore({ pageInfo, fetching, onMore }: {
  pageInfo: { hasNextPage: boolean; endCursor?: string | null }
  fetching: boolean
  onMore: More
}) {
  if (!onMore || !pageInfo.hasNextPage || !pageInfo.endCursor) return null
  const cursor = pageInfo.endCursor
  return (
    <button type="button" className="button" disabled={fetching} onClick={() => onMore(cursor)}>
      {fetching ? 'Loading…' : 'Show more'}
    </button>
  )
}
