/**
 * The choice after a write was refused because someone saved a newer version of the same text
 * (VersionConflict): keep mine (saved over theirs) or take theirs into the editor.
 */
import type { ReactNode } from 'react'
import { Alert } from './feedback'

/** A text at a version: what an edit starts from, or what someone else saved meanwhile. */
export interface TextVersion {
  version: number
  body: string
}

export function EditConflict({ theirs, onMine, onTheirs, children }: {
  theirs: TextVersion
  onMine: () => void
  onTheirs: () => void
  /** What happened, in the text's own words ("Someone changed the same part of these notes…"). */
  children: ReactNode
}) {
  return (
    <Alert tone="warning">
      <p>
        {children} (now version {theirs.version}). Your text is still in the editor.
      </p>
      <details>
        <summary>Their version</summary>
        <pre className="conflict-body">{theirs.body || '(empty)'}</pre>
      </details>
      <div className="actions">
        <button type="button" className="button" onClick={onMine}>
          Save mine over theirs
        </button>
        <button type="button" className="button" onClick={onTheirs}>
          Discard mine, edit theirs
        </button>
      </div>
    </Alert>
  )
}
