/** The two writes behind a notes editor (patch, and replace for empty notes), sharing one form state. */
import { useMemo } from 'react'
import { useMutation, type TypedDocumentNode } from 'urql'
import type { SaveOutcome, NotesSaver } from '../components/NotesEditor'
import { graphql } from '../gql'
import type { PatchTextInput } from '../gql/graphql'
import { useTypedForm } from './useMutationForm'

/** What every notes write answers besides the success: spread these in each notes mutation. */
graphql(`
  fragment NotesConflict on VersionConflict {
    currentVersion
    currentBody
  }
  fragment WriteError on Error {
    message
    code
  }
  fragment WriteFieldErrors on ValidationFailed {
    fields {
      field
      message
    }
  }
`)

interface ReplaceVariables {
  input: { id: string; notes: string; notesBaseVersion: number; editSummary: string }
}

const outcomeOf = (data: object | null): SaveOutcome | null => (data ? (Object.values(data)[0] as SaveOutcome) : null)

export function useNotesSaver<P extends object, R extends object>(
  id: string,
  patchDocument: TypedDocumentNode<P, { input: PatchTextInput }>,
  replaceDocument: TypedDocumentNode<R, ReplaceVariables>,
) {
  const [, patch] = useMutation(patchDocument)
  const [, replace] = useMutation(replaceDocument)
  const { form, run } = useTypedForm()
  const saver: NotesSaver = useMemo(
    () => ({
      patch: async (edits, baseVersion, editSummary) =>
        outcomeOf(await run(() => patch({ input: { id, baseVersion, edits, editSummary } }))),
      replace: async (notes, notesBaseVersion, editSummary) =>
        outcomeOf(await run(() => replace({ input: { id, notes, notesBaseVersion, editSummary } }))),
    }),
    [id, patch, replace, run],
  )
  return { form, saver }
}
