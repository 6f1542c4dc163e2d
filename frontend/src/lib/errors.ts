/** Turning API failures into words for people (never raw JSON). */
import type { CombinedError } from 'urql'

const BY_CODE: Record<string, string> = {
  UNAUTHENTICATED: 'Please log in to do this.',
  FORBIDDEN: 'You are not allowed to do this.',
  NOT_FOUND: 'This page does not exist (or was removed).',
}

/**
 * GraphQL's own input errors ("Variable '$input' has invalid value at .amountCents: Int cannot
 * represent non 32-bit signed integer value") name a field and a type problem; say it in words.
 */
function inputProblem(message: string): string | null {
  if (!message.startsWith('Variable ')) return null
  if (/cannot represent non 32-bit|non-integer|too (large|big)/i.test(message)) return 'That number is too large.'
  if (/cannot represent/i.test(message)) return 'A value is not in the expected form (a number where a number belongs).'
  return 'Some of what was sent is not in the expected form. Check the fields and try again.'
}

/** A short sentence for a failed query or mutation. */
export function describeError(error: CombinedError): string {
  if (error.networkError) return 'Cannot reach the server. Check your connection and try again.'
  const [first] = error.graphQLErrors
  if (!first) return 'Something went wrong. Please try again.'
  const problem = inputProblem(first.message)
  if (problem) return problem
  const code = first.extensions?.code
  if (code === 'RATE_LIMITED') {
    const wait = first.extensions?.retryAfter
    return typeof wait === 'number' ? `Too many requests; try again in ${wait} s.` : first.message
  }
  if (typeof code === 'string' && BY_CODE[code]) return BY_CODE[code]
  return first.message || 'Something went wrong. Please try again.'
}

export function errorCode(error: CombinedError | undefined): string | undefined {
  const code = error?.graphQLErrors[0]?.extensions?.code
  return typeof code === 'string' ? code : undefined
}

export type FieldErrors = Record<string, string>

/** A typed error result: `ValidationFailed.fields` become per-field messages. */
interface TypedError {
  __typename?: string
  message?: string
  fields?: ReadonlyArray<{ field: string; message: string }>
}

export function fieldErrorsOf(result: TypedError | null | undefined): FieldErrors {
  return Object.fromEntries((result?.fields ?? []).map((f) => [f.field, f.message]))
}
