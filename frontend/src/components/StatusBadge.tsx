import { humanize } from '../lib/format'

const TONES: Record<string, string> = {
  DRYRUN: 'active',
  AWAITING_FUNDING: 'attention',
  FUNDED: 'active',
  COMPLETED: 'good',
  DRYRUN_FAILED: 'bad',
  FUNDED_FAILED: 'bad',
  CANCELLED: 'muted',
  PENDING: 'attention',
  RUNNING: 'active',
  SUCCEEDED: 'good',
  FAILED: 'bad',
}

/** A run or job status as a coloured label (the text carries the meaning, not the colour). */
export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${TONES[status] ?? 'muted'}`}>{humanize(status)}</span>
}
