import { Link } from 'react-router'
import { useTitle } from '../lib/useTitle'

/** "Run not found" inside the normal layout, with a way back. */
export function NotFound({ what = 'Page', back = { to: '/', label: 'Back to Explore' } }: {
  what?: string
  back?: { to: string; label: string }
}) {
  useTitle(`${what} not found`)
  return (
    <section className="empty" aria-labelledby="not-found-heading">
      <h1 id="not-found-heading">{what} not found</h1>
      <p>The link may be mistyped, or what it pointed to was removed.</p>
      <p className="actions center">
        <Link className="button primary" to={back.to}>
          {back.label}
        </Link>
        {back.to !== '/' && (
          <Link className="button" to="/">
            Explore projects
          </Link>
        )}
      </p>
    </section>
  )
}

export default function NotFoundPage() {
  return <NotFound />
}
