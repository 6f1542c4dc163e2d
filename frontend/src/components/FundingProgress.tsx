import { formatCents } from '../lib/format'

interface Props {
  fundedCents: number
  fundingGapCents: number
  estimatedCostCents: number | null | undefined
}

/** How much of a run's estimate is funded, as an accessible progress bar. */
export function FundingProgress({ fundedCents, fundingGapCents, estimatedCostCents }: Props) {
  if (estimatedCostCents == null) return <p className="muted small">Cost estimate after the dryrun</p>
  const target = Math.max(fundedCents + fundingGapCents, 1)
  const percent = Math.min(100, Math.round((fundedCents / target) * 100))
  const label = `${formatCents(fundedCents)} of ${formatCents(target)} funded`
  return (
    <div className="progress-wrap">
      <div
        className="progress"
        role="progressbar"
        aria-label="Funding"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={percent}
        aria-valuetext={label}
      >
        <div className="progress-bar" style={{ width: `${percent}%` }} />
      </div>
      <p className="small">
        {label}
        {fundingGapCents > 0 && <span className="muted"> · {formatCents(fundingGapCents)} to go</span>}
      </p>
    </div>
  )
}
