/**
 * Editing a discussion's or a comment's body: a full replace at the version the edit started
 * from, with an edit summary (a restore fills both). When someone saved in between, the notes
 * editor's choice follows: save mine over theirs (at their version) or edit theirs.
 */
import { useState, type ReactNode } from 'react'
import type { MutationForm } from '../lib/useMutationForm'
import { EditConflict, type TextVersion } from './EditConflict'
import { Form, SubmitButton, TextAreaField, TextField } from './forms'
import type { SaveOutcome } from './NotesEditor'

/** What the editor opens with: the current body, or an older version being restored. */
export interface BodyDraft {
  body: string
  summary: string
}

interface Props {
  /** The form's name ("Edit discussion") and its text ("discussion"), for the submit button. */
  name: string
  what: string
  bodyLabel: string
  rows: number
  current: TextVersion
  start: BodyDraft
  form: MutationForm
  save: (body: string, baseVersion: number, editSummary: string) => Promise<SaveOutcome | null>
  onDone: (saved: boolean) => void
  /** Fields before the body (a discussion's title); otherwise the body takes the focus. */
  children?: ReactNode
}

export function BodyEditForm({ name, what, bodyLabel, rows, current, start, form, save, onDone, children }: Props) {
  const [body, setBody] = useState(start.body)
  const [summary, setSummary] = useState(start.summary)
  const [base, setBase] = useState(current)
  const [conflict, setConflict] = useState<TextVersion | null>(null)
  const send = async (at: TextVersion) => {
    const outcome = await save(body, at.version, summary)
    if (outcome?.__typename === 'VersionConflict' && outcome.currentVersion !== undefined) {
      form.clear()
      setConflict({ version: outcome.currentVersion, body: outcome.currentBody ?? '' })
    } else if (outcome?.__typename.endsWith('Success')) onDone(true)
  }
  return (
    <Form form={form} onSubmit={() => send(base)} aria-label={name}>
      {conflict && (
        <EditConflict theirs={conflict} onMine={() => send(conflict)} onTheirs={() => {
          setBody(conflict.body)
          setBase(conflict)
          setConflict(null)
        }}>
          Someone changed this {what} while you were editing
        </EditConflict>
      )}
      {children}
      <TextAreaField name="body" label={bodyLabel} rows={rows} value={body} autoFocus={!children}
        onChange={(e) => setBody(e.target.value)} />
      <TextField name="editSummary" label="Edit summary (optional)" value={summary}
        onChange={(e) => setSummary(e.target.value)} />
      <div className="actions">
        <SubmitButton fetching={form.fetching}>Save {what}</SubmitButton>
        <button type="button" className="button" onClick={() => onDone(false)}>
          Cancel
        </button>
      </div>
    </Form>
  )
}
