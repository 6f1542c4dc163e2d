/** The browser tab's title: "Page · mlpatron", so tabs and history entries say where they lead. */
import { useEffect } from 'react'

const SITE = 'mlpatron'

export function useTitle(title: string | null | undefined) {
  useEffect(() => {
    document.title = title ? `${title} · ${SITE}` : SITE
  }, [title])
}
