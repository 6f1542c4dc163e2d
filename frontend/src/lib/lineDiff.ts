/**
 * A line diff of two texts (longest common subsequence over the lines that differ, after the
 * common start and end are set aside), for the revision history's "compare" view.
 */
export interface DiffLine {
  kind: 'same' | 'added' | 'removed'
  text: string
}

const same = (text: string): DiffLine => ({ kind: 'same', text })

export function lineDiff(before: string, after: string): DiffLine[] {
  const a = before.split('\n')
  const b = after.split('\n')
  let start = 0
  while (start < a.length && start < b.length && a[start] === b[start]) start += 1
  let end = 0
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end += 1
  const x = a.slice(start, a.length - end)
  const y = b.slice(start, b.length - end)
  // common[i][j]: the longest common subsequence of x[i:] and y[j:].
  const common = Array.from({ length: x.length + 1 }, () => new Uint32Array(y.length + 1))
  for (let i = x.length - 1; i >= 0; i -= 1) {
    for (let j = y.length - 1; j >= 0; j -= 1) {
      common[i][j] = x[i] === y[j] ? common[i + 1][j + 1] + 1 : Math.max(common[i + 1][j], common[i][j + 1])
    }
  }
  const out = a.slice(0, start).map(same)
  let i = 0
  let j = 0
  while (i < x.length || j < y.length) {
    if (i < x.length && j < y.length && x[i] === y[j]) {
      out.push(same(x[i]))
      i += 1
      j += 1
    } else if (j >= y.length || (i < x.length && common[i + 1][j] >= common[i][j + 1])) {
      out.push({ kind: 'removed', text: x[i] })
      i += 1
    } else {
      out.push({ kind: 'added', text: y[j] })
      j += 1
    }
  }
  return out.concat(a.slice(a.length - end).map(same))
}
