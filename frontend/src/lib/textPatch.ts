/**
 * Search/replace edits (the API's PatchTextInput) computed from an edit in the browser: the
 * changed span between the text the editor started from and the draft, widened with context
 * until it occurs exactly once. The same edit can be carried over to someone else's newer
 * text when its context is still there exactly once (a non-overlapping concurrent edit).
 */
export interface TextEdit {
  oldText: string
  newText: string
}

function occurrences(text: string, part: string): number {
  let count = 0
  for (let at = text.indexOf(part); at !== -1 && count < 2; at = text.indexOf(part, at + 1)) count += 1
  return count
}

/** The one edit turning `base` into `draft`; null when nothing changed or `base` is empty. */
export function diffEdit(base: string, draft: string): TextEdit | null {
  if (base === draft || base === '') return null
  let start = 0
  while (start < base.length && start < draft.length && base[start] === draft[start]) start += 1
  let end = 0
  while (
    end < base.length - start &&
    end < draft.length - start &&
    base[base.length - 1 - end] === draft[draft.length - 1 - end]
  ) {
    end += 1
  }
  // Widen the changed span with context (both sides, growing steps) until it is unique in `base`.
  for (let grow = 8; ; grow *= 2) {
    const oldText = base.slice(start, base.length - end)
    if (oldText !== '' && occurrences(base, oldText) === 1) {
      return { oldText, newText: draft.slice(start, draft.length - end) }
    }
    start = Math.max(0, start - grow)
    end = Math.max(0, end - grow)
  }
}

/** `edit` applied to `text`, or null when its old text is not there exactly once. */
export function applyEdit(text: string, edit: TextEdit): string | null {
  return occurrences(text, edit.oldText) === 1 ? text.replace(edit.oldText, () => edit.newText) : null
}
