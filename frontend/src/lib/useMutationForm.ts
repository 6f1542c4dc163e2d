/**
 * One operation behind one form: local validation first, then the API's typed result.
 * `ValidationFailed.fields` land next to the matching fields; any other typed error
 * (InsufficientFunds, VersionConflict, GitError, …) or a transport error becomes the
 * form's message, which the caller may replace with something richer.
 */
import { useCallback, useState, type ReactNode } from 'react'
import { useMutation, type AnyVariables, type OperationResult, type TypedDocumentNode } from 'urql'
import { describeError, fieldErrorsOf, type FieldErrors } from './errors'

interface ErrorResult {
  __typename?: string
  message?: string
  code?: string
  fields?: ReadonlyArray<{ field: string; message: string }>
}

/** The union an operation returned (its single root field). */
function payloadOf(data: object): ErrorResult | undefined {
  const [root] = Object.values(data)
  return root && typeof root === 'object' ? (root as ErrorResult) : undefined
}

export interface MutationForm {
  errors: FieldErrors
  formError: ReactNode
  fetching: boolean
  setErrors: (errors: FieldErrors) => void
  setFormError: (message: ReactNode) => void
  /** The person edited this field: its error is out of date. */
  clearField: (name: string) => void
  clear: () => void
}

/** Local checks before sending: `{ title: !title && 'Give it a title.' }`; falsy means fine. */
export type LocalChecks = Record<string, string | false | null | undefined>

function failing(checks: LocalChecks): FieldErrors {
  return Object.fromEntries(Object.entries(checks).filter((entry): entry is [string, string] => Boolean(entry[1])))
}

function omit(errors: FieldErrors, name: string): FieldErrors {
  const { [name]: _, ...rest } = errors
  return rest
}

export function useTypedForm() {
  const [errors, setErrors] = useState<FieldErrors>({})
  const [formError, setFormError] = useState<ReactNode>(null)
  const [fetching, setFetching] = useState(false)

  /** Resolves to the data when the API answered, or null after a local or transport failure. */
  const run = useCallback(
    async <Data extends object>(
      operation: () => Promise<OperationResult<Data>>,
      checks: LocalChecks = {},
    ): Promise<Data | null> => {
      const localErrors = failing(checks)
      setErrors(localErrors)
      setFormError(null)
      if (Object.keys(localErrors).length > 0) return null
      setFetching(true)
      const result = await operation().finally(() => setFetching(false))
      if (result.error || !result.data) {
        setFormError(result.error ? describeError(result.error) : 'No answer from the server.')
        return null
      }
      const payload = payloadOf(result.data)
      if (payload?.code) {
        // A typed error: the union member implements `Error { message code }`.
        setErrors(fieldErrorsOf(payload))
        if (payload.__typename !== 'ValidationFailed') setFormError(payload.message)
      }
      return result.data
    },
    [],
  )

  const clear = useCallback(() => {
    setErrors({})
    setFormError(null)
  }, [])

  const clearField = useCallback(
    (name: string) => setErrors((current) => (name in current ? omit(current, name) : current)),
    [],
  )

  const form: MutationForm = { errors, formError, fetching, setErrors, setFormError, clearField, clear }
  return { form, run }
}

export function useMutationForm<Data extends object, Variables extends AnyVariables>(
  document: TypedDocumentNode<Data, Variables>,
) {
  const [, execute] = useMutation<Data, Variables>(document)
  const { form, run } = useTypedForm()
  const submit = useCallback(
    (variables: Variables, checks: LocalChecks = {}) => run(() => execute(variables), checks),
    [run, execute],
  )
  return { form, submit }
}
