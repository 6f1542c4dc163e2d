/** Display helpers: money is integer cents everywhere in the API. */

const usd = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' })

export function formatCents(cents: number | null | undefined): string {
  return cents == null ? '—' : usd.format(cents / 100)
}

/** "12.50" or "$12.50" → 1250; null when it is not a positive amount with at most 2 decimals. */
export function parseDollars(text: string): number | null {
  const cents = centsOf(text)
  return cents !== null && cents > 0 ? cents : null
}

/** "1,250.5" → 125050; null when it is not an amount with at most 2 decimals. */
function centsOf(text: string): number | null {
  const match = /^\s*\$?\s*(\d+)(?:\.(\d{1,2}))?\s*$/.exec(text.replace(/,/g, ''))
  if (!match) return null
  return Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'))
}

/**
 * What is wrong with a typed dollar amount, in words, or null when it is fine:
 * `{ min: 100, max: 1_000_000 }` are cents, the message says dollars.
 */
export function checkDollars(text: string, { min, max }: { min: number; max: number }): string | null {
  if (!text.trim()) return 'Enter an amount in dollars.'
  const cents = centsOf(text)
  if (cents === null) return 'Enter an amount in dollars, like 12.50 (at most two decimals).'
  if (cents < min || cents > max) return `Enter an amount between ${formatCents(min)} and ${formatCents(max)}.`
  return null
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—'
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null) return '—'
  if (seconds < 10 && !Number.isInteger(seconds)) return `${seconds.toFixed(2)} s`
  const s = Math.round(seconds)
  if (s < 60) return `${s} s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m} min ${s % 60} s`
  return `${Math.floor(m / 60)} h ${m % 60} min`
}

/** "AWAITING_FUNDING" → "Awaiting funding". */
export function humanize(value: string): string {
  const words = value.toLowerCase().replace(/_/g, ' ')
  return words.charAt(0).toUpperCase() + words.slice(1)
}

/** 2048 → "2.0 KB" (binary units, as file managers show them). */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  if (unit === 0) return value === 1 ? '1 byte' : `${value} bytes`
  return `${value.toFixed(1)} ${units[unit]}`
}
