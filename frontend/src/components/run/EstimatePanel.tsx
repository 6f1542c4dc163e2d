/** The cost estimate and every input it came from, so a patron can check the sum by hand. */
import { formatCents, formatDuration } from '../../lib/format'

const LABELS: Record<string, string> = {
  dryrun_seconds: 'Dryrun wall time',
  dryrun_value: 'Dryrun value',
  full_value: 'Full run value',
  scale: 'Scale (full ÷ dryrun)',
  scaled_seconds: 'Scaled run time',
  startup_overhead_seconds: 'Startup overhead',
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

interface Props {
  costCents: number | null | undefined
  durationSeconds: number | null | undefined
  detail: unknown
  overrideParam: string
}

export function EstimatePanel({ costCents, durationSeconds, detail, overrideParam }: Props) {
  if (costCents == null) return <p className="muted">The estimate appears when the dryrun succeeds.</p>
  const entries = detail && typeof detail === 'object' ? Object.entries(detail as Record<string, unknown>) : []
  return (
    <div>
      <p className="estimate">
        <strong>{formatCents(costCents)}</strong> for about {formatDuration(durationSeconds)}
      </p>
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
