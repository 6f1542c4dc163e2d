/**
 * A lab notebook (project or run notes): the API's sanitised HTML, and for its editors a
 * Markdown editor saved against the version it started from. When someone else saved in
 * between, the API answers VersionConflict and the editor offers both ways out.
 */
import { useState } from 'react'
import type { MutationForm } from '../lib/useMutationForm'
import { Alert } from './feedback'
import { Form, SubmitButton, TextAreaField, TextField } from './forms'
import { HtmlContent } from './HtmlContent'

export interface SaveOutcome {
  __typename: string
  currentVersion?: number
  currentBody?: string
}

interface Props {
  html: string
  body: string
  version: number
  canEdit: boolean
  form: MutationForm
  save: (body: string, baseVersion: number, editSummary: string) => Promise<SaveOutcome | null>
}

interface Conflict {
  version: number
  body: string
}

export function NotesEditor({ html, body, version, canEdit, form, save }: Props) {
  const [editing, setEditing] = useState(false)
  const [draft, setDraft] = useState(body)
  const [summary, setSummary] = useState('')
  const [base, setBase] = useState(version)
  const [conflict, setConflict] = useState<Conflict | null>(null)

  const start = () => {
    setDraft(body)
    setBase(version)
    setSummary('')
    setConflict(null)
    form.clear()
    setEditing(true)
  }

  const submit = async (baseVersion: number) => {
    const outcome = await save(draft, baseVersion, summary)
    if (outcome?.__typename === 'VersionConflict' && outcome.currentVersion !== undefined) {
      form.clear()
      setConflict({ version: outcome.currentVersion, body: outcome.currentBody ?? '' })
    } else if (outcome?.__typename.endsWith('Success')) {
      setConflict(null)
      setEditing(false)
    }
  }

  if (!editing) {
    return (
      <div className="notes">
        <HtmlContent html={html} empty="No notes yet." />
        {canEdit && (
          <button type="button" className="button" onClick={start}>
            Edit notes
          </button>
        )}
      </div>
    )
  }

  return (
    <Form form={form} onSubmit={() => submit(base)} aria-label="Edit notes">
      {conflict && (
        <Alert tone="warning">
          <p>
            Someone saved these notes while you were editing (now version {conflict.version}). Your text is still in the
            editor.
          </p>
          <details>
            <summary>Their version</summary>
            <pre className="conflict-body">{conflict.body || '(empty)'}</pre>
          </details>
          <div className="actions">
            <button type="button" className="button" onClick={() => submit(conflict.version)}>
              Save mine over theirs
            </button>
            <button
              type="button"
              className="button"
              onClick={() => {
                setDraft(conflict.body)
                setBase(conflict.version)
                setConflict(null)
              }}
            >
              Discard mine, edit theirs
            </button>
          </div>
        </Alert>
      )}
      <TextAreaField name="notes" label="Notes (Markdown)" rows={14} value={draft}
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
