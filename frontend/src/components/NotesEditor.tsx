/**
 * A lab notebook (project or run notes): the API's sanitised HTML, and for its editors a
 * Markdown editor that saves a search/replace patch against the version it started from.
 * When someone else saved in between (VersionConflict), a change that does not overlap
 * theirs is re-applied on their version; otherwise the editor offers both ways out.
 */
import { lazy, Suspense, useEffect, useRef, useState } from 'react'
import type { RevisionItemFragment } from '../gql/graphql'
import { applyEdit, diffEdit, type TextEdit } from '../lib/textPatch'
import type { MutationForm } from '../lib/useMutationForm'
import { EditConflict, type TextVersion } from './EditConflict'
import { Loading } from './feedback'
import { Form, SubmitButton, TextAreaField, TextField } from './forms'
import { HtmlContent } from './HtmlContent'

export interface SaveOutcome {
  __typename: string
  currentVersion?: number
  currentBody?: string
}

type Save<T> = (change: T, baseVersion: number, editSummary: string) => Promise<SaveOutcome | null>

export interface NotesSaver {
  /** Search/replace edits at a base version (patchRunNotes, patchProjectNotes). */
  patch: Save<TextEdit[]>
  /** Full replace at a base version, for notes that were empty (nothing to search for). */
  replace: Save<string>
}

// The history (revisions, diff) loads on first use.
const RevisionHistory = lazy(() => import('./RevisionHistory'))

interface Props {
  /** The run or project whose notes these are (its `notesHistory`). */
  id: string
  html: string
  body: string
  version: number
  canEdit: boolean
  form: MutationForm
  saver: NotesSaver
}

const saved = (outcome: SaveOutcome | null) => Boolean(outcome?.__typename.endsWith('Success'))

export function NotesEditor({ id, html, body, version, canEdit, form, saver }: Props) {
  const [editing, setEditing] = useState(false)
  const [history, setHistory] = useState(false)
  const [draft, setDraft] = useState(body)
  const [summary, setSummary] = useState('')
  const [base, setBase] = useState<TextVersion>({ version, body })
  const [conflict, setConflict] = useState<TextVersion | null>(null)
  const [savedNote, setSavedNote] = useState(false)
  // Leaving the editor (saved or cancelled) puts keyboard focus back on "Edit notes", not the page body.
  const editButton = useRef<HTMLButtonElement>(null)
  const wasEditing = useRef(false)
  useEffect(() => {
    if (wasEditing.current && !editing) editButton.current?.focus()
    wasEditing.current = editing
  }, [editing])

  /** Open the editor on `text` (the current notes, or an older version to restore). */
  const start = (text = body, why = '') => {
    setDraft(text)
    setBase({ version, body })
    setSummary(why)
    setConflict(null)
    setSavedNote(false)
    form.clear()
    setEditing(true)
  }
  // Restoring is an ordinary edit whose text is the old version's: saved (and merged, or
  // refused on a conflict) exactly like typing it.
  const restore = (revision: RevisionItemFragment) => start(revision.body, `Restored version ${revision.version}`)

  /** Save the draft as a change of `from`; on a conflict, carry the change over when it still fits. */
  const save = async (from: TextVersion) => {
    if (draft === from.body) return setEditing(false)
    const edit = diffEdit(from.body, draft) // null only when the notes were empty
    const send = (at: number, e: TextEdit | null) =>
      e ? saver.patch([e], at, summary) : saver.replace(draft, at, summary)
    let outcome = await send(from.version, edit)
    if (outcome?.__typename === 'VersionConflict' && outcome.currentVersion !== undefined) {
      const theirs = { version: outcome.currentVersion, body: outcome.currentBody ?? '' }
      const merged = edit ? applyEdit(theirs.body, edit) : null
      outcome = merged === null ? null : await send(theirs.version, edit)
      if (!saved(outcome)) {
        form.clear()
        setConflict(theirs)
        return
      }
    }
    if (saved(outcome)) {
      setConflict(null)
      setSavedNote(true)
      setEditing(false)
    }
  }

  if (!editing) {
    return (
      <div className="notes">
        <HtmlContent html={html} empty="No notes yet." />
        <p className="actions">
          {canEdit && (
            <button ref={editButton} type="button" className="button" onClick={() => start()}>
              Edit notes
            </button>
          )}
          <button type="button" className="button" aria-expanded={history} onClick={() => setHistory(!history)}>
            {history ? 'Hide history' : 'History'}
          </button>
          <span className="muted small" role="status">
            {savedNote ? 'Notes saved.' : ''}
          </span>
        </p>
        {history && (
          <Suspense fallback={<Loading />}>
            <RevisionHistory key={version} id={id} label="Notes history" currentVersion={version} onRestore={canEdit ? restore : undefined} />
          </Suspense>
        )}
      </div>
    )
  }

  return (
    <Form form={form} onSubmit={() => save(base)} aria-label="Edit notes">
      {conflict && (
        <EditConflict theirs={conflict} onMine={() => save(conflict)} onTheirs={() => {
          setDraft(conflict.body)
          setBase(conflict)
          setConflict(null)
        }}>
          Someone changed the same part of these notes while you were editing
        </EditConflict>
      )}
      <TextAreaField name="notes" label="Notes (Markdown)" rows={14} value={draft} autoFocus
        onChange={(e) => setDraft(e.target.value)} />
      <TextField name="editSummary" label="Edit summary (optional)" value={summary}
        onChange={(e) => setSummary(e.target.value)} />
      <div className="actions">
        <SubmitButton fetching={form.fetching}>Save notes</SubmitButton>
        <button type="button" className="button" onClick={() => setEditing(false)}>
          Cancel
        </button>
      </div>
    </Form>
  )
}
