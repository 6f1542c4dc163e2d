/** The browser tab's title: "Page · mlpatron", so tabs and history entries say where they lead. */
import { useEffect } from 'react'

const SITE = 'mlpatron'

/** `undefined` leaves the title to someone else (a not-found state inside the page sets its own). */
export function useTitle(title: string | null | undefined) {
  useEffect(() => {
    if (title !== undefined) document.title = title ? `${title} · ${SITE}` : SITE
  }, [title])
}
