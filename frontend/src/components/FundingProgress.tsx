import type { RunStatus } from '../gql/graphql'
import { formatCents } from '../lib/format'

interface Props {
  status: RunStatus
  fundedCents: number
  fundingGapCents: number
  estimatedCostCents: number | null | undefined
}

/** What a run's money looks like where it is now: no estimate yet, the bar while raising, or how it ended. */
function noEstimate(status: RunStatus): string {
  if (status === 'DRYRUN') return 'Cost estimate after the dryrun'
  if (status === 'DRYRUN_FAILED') return 'Dryrun failed: no cost estimate'
  if (status === 'CANCELLED') return 'Cancelled before an estimate'
  return 'No cost estimate'
}

/** How much of a run's estimate is funded, as an accessible progress bar. */
export function FundingProgress({ status, fundedCents, fundingGapCents, estimatedCostCents }: Props) {
  if (estimatedCostCents == null) return <p className="muted small">{noEstimate(status)}</p>
  const target = Math.max(fundedCents + fundingGapCents, 1)
  const percent = Math.min(100, Math.round((fundedCents / target) * 100))
  const raising = status === 'AWAITING_FUNDING'
  const label =
    status === 'CANCELLED'
      ? fundedCents > 0
        ? `Cancelled · ${formatCents(fundedCents)} had been funded`
        : 'Cancelled · nothing was funded'
      : `${formatCents(fundedCents)} of ${formatCents(target)} funded`
  return (
    <div className="progress-wrap">
      <div className="progress" role="progressbar" aria-label="Funding" aria-valuemin={0} aria-valuemax={100}
        aria-valuenow={percent} aria-valuetext={label}>
        <div className={`progress-bar${status === 'CANCELLED' ? ' muted' : ''}`} style={{ width: `${percent}%` }} />
      </div>
      <p className="small">
        {label}
        {raising && fundingGapCents > 0 && <span className="muted"> · {formatCents(fundingGapCents)} to go</span>}
      </p>
    </div>
  )
}
