/** A page's search box: the `q` search parameter follows what is typed, once typing pauses. */
import { useEffect, useState } from 'react'
import { useLocation, useSearchParams } from 'react-router'

const PAUSE_MS = 300

/** The current search (`q`); the box sets it trimmed and keeps the page's other search parameters. */
export function useSearch(): string {
  const [params] = useSearchParams()
  return params.get('q') ?? ''
}

export function SearchBox({ id, label, placeholder }: { id: string; label: string; placeholder: string }) {
  const [params, setParams] = useSearchParams()
  const search = params.get('q') ?? ''
  const [text, setText] = useState(search)
  const { pathname } = useLocation()

  useEffect(() => {
    const timer = setTimeout(() => {
      // A link followed just after typing: the next page may still be loading while this one
      // shows, and writing `q` now would navigate back here.
      if (text.trim() === search || window.location.pathname !== pathname) return
      const next = new URLSearchParams(window.location.search)
      if (text.trim()) next.set('q', text.trim())
      else next.delete('q')
      setParams(next, { replace: true })
    }, PAUSE_MS)
    return () => clearTimeout(timer)
  })

  return (
    <form role="search" onSubmit={(e) => e.preventDefault()} className="search">
      <label htmlFor={id} className="sr-only">
        {label}
      </label>
      <input id={id} type="search" placeholder={placeholder} value={text} onChange={(e) => setText(e.target.value)} />
    </form>
  )
}
