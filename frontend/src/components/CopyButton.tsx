/** Copies `text` to the clipboard; says "Copied" on the button and to screen readers, or why it could not. */
import { useEffect, useState } from 'react'

type State = 'idle' | 'copied' | 'failed'

export function CopyButton({ text, what }: { text: string; what: string }) {
  const [state, setState] = useState<State>('idle')
  useEffect(() => {
    if (state !== 'copied') return
    const timer = setTimeout(() => setState('idle'), 4000)
    return () => clearTimeout(timer)
  }, [state])
  const copy = async () => {
    try {
      // The clipboard exists only in secure contexts (https, localhost) and may be refused.
      if (!navigator.clipboard) throw new Error('no clipboard')
      await navigator.clipboard.writeText(text)
      setState('copied')
    } catch {
      setState('failed')
    }
  }
  return (
    <>
      <button type="button" className="button small" onClick={copy} aria-label={`${state === 'copied' ? 'Copied' : 'Copy'} ${what}`}>
        {state === 'copied' ? 'Copied ✓' : 'Copy'}
      </button>
      <span role="status" className={state === 'failed' ? 'field-error' : 'sr-only'}>
        {state === 'copied' ? `${what} copied to the clipboard` : state === 'failed' ? 'Could not copy: select the text and copy it.' : ''}
      </span>
    </>
  )
}
