/**
 * The cost estimate and every input it came from, so a patron can check the sum by hand,
 * with the fixed start-up overhead called out (for short runs it is most of the price), and
 * once the funded job ran, what it actually cost beside the estimate.
 */
import { formatCents, formatDuration } from '../../lib/format'

const LABELS: Record<string, string> = {
  dryrun_seconds: 'Dryrun wall time',
  dryrun_value: 'Dryrun value',
  full_value: 'Full run value',
  scale: 'Scale (full ÷ dryrun)',
  scaled_seconds: 'Scaled run time',
  startup_overhead_seconds: 'Start-up overhead',
  duration_seconds: 'Estimated duration',
  machine_type: 'Machine type',
  spot: 'Spot instance',
  hourly_cents: 'Hourly price',
  formula: 'Formula',
}

function show(key: string, value: unknown): string {
  if (typeof value === 'number' && key.endsWith('_seconds')) return formatDuration(value)
  if (typeof value === 'number' && key.endsWith('_cents')) return formatCents(value)
  if (typeof value === 'boolean') return value ? 'yes' : 'no'
  if (value === null || value === undefined) return '—'
  return typeof value === 'object' ? Object.entries(value).map(([k, v]) => `${k}: ${String(v)}`).join(', ') : String(value)
}

export interface Actual {
  costCents: number
  seconds: number | null
}

interface Props {
  costCents: number | null | undefined
  durationSeconds: number | null | undefined
  detail: unknown
  overrideParam: string
  /** Why there is no estimate (the run's state), shown instead of the numbers. */
  missing: string
  actual?: Actual | null
}

const number = (value: unknown) => (typeof value === 'number' ? value : null)

export function EstimatePanel({ costCents, durationSeconds, detail, overrideParam, missing, actual }: Props) {
  if (costCents == null) return <p className="muted">{missing}</p>
  const fields = detail && typeof detail === 'object' ? (detail as Record<string, unknown>) : {}
  const entries = Object.entries(fields)
  const overhead = number(fields.startup_overhead_seconds)
  const scaled = number(fields.scaled_seconds)
  return (
    <div>
      <p className="estimate">
        Estimated <strong>{formatCents(costCents)}</strong> for about {formatDuration(durationSeconds)}
      </p>
      {overhead !== null && scaled !== null && (
        <p className="small" data-testid="overhead">
          That is {formatDuration(scaled)} of computing (scaled up from the dryrun) plus a fixed{' '}
          {formatDuration(overhead)} start-up overhead: getting a machine and starting the image, paid on every run
          {overhead > scaled ? ', so for a short run it is most of the price' : ''}.
        </p>
      )}
      {actual && (
        <p className="estimate" data-testid="actual-cost">
          Actual <strong>{formatCents(actual.costCents)}</strong>
          {actual.seconds != null && <> for {formatDuration(actual.seconds)}</>}
          {actual.costCents < costCents && (
            <span className="muted"> · {formatCents(costCents - actual.costCents)} less than estimated</span>
          )}
        </p>
      )}
      {entries.length > 0 && (
        <details>
          <summary>How this was estimated (scaled by “{overrideParam}”)</summary>
          <dl className="kv">
            {entries.map(([key, value]) => (
              <div key={key}>
                <dt>{LABELS[key] ?? key}</dt>
                <dd>{key === 'formula' ? <code>{String(value)}</code> : show(key, value)}</dd>
              </div>
            ))}
          </dl>
        </details>
      )}
    </div>
  )
}
