/** Metric charts from MLflow (`metrics`, `metricHistory`), re-read while the job runs. */
import { useEffect } from 'react'
import { useQuery, type OperationContext } from 'urql'
import { graphql } from '../gql'
import { EmptyState, QueryState } from './feedback'

const JobMetricsDocument = graphql(`
  query JobMetrics($id: ID!) {
    job(id: $id) {
      id
      metrics {
        key
        value
        special
        step
      }
    }
  }
`)

const MetricHistoryDocument = graphql(`
  query MetricHistory($id: ID!, $key: String!) {
    job(id: $id) {
      id
      metricHistory(key: $key) {
        step
        value
        special
      }
    }
  }
`)

const POLL_MS = 3000

/** Re-read a query every few seconds while `live`, and once more when it stops being live. */
function usePoll(refetch: (context?: Partial<OperationContext>) => void, live: boolean) {
  useEffect(() => {
    if (!live) return
    const again = () => refetch({ requestPolicy: 'network-only' })
    const timer = setInterval(again, POLL_MS)
    return () => {
      clearInterval(timer)
      again()
    }
  }, [refetch, live])
}

const W = 320
const H = 160
const PAD = { left: 48, right: 12, top: 12, bottom: 28 }

/** A logged value; `value` is null when it was NaN or ±infinity, and `special` says which. */
type Point = { step: number; value: number | null; special?: string | null }
type FinitePoint = { step: number; value: number }
const SPECIAL: Record<string, string> = { NAN: 'NaN', INF: '+∞', NEG_INF: '−∞' }

function formatValue(v: number): string {
  return Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(2) : v.toFixed(3)
}

export function formatPoint(p: Point): string {
  return p.value === null ? (SPECIAL[p.special ?? ''] ?? 'n/a') : formatValue(p.value)
}

/** One curve of a chart; `label` names it when several are overlaid. */
export type Series = { label: string; points: ReadonlyArray<Point> }

/**
 * The finite points are drawn; the last point (finite or not) is named in the caption. With
 * `overlay`, those curves share the axes (the second dashed), each with its last value.
 */
export function LineChart({ name, points: first, overlay }: {
  name: string
  points?: ReadonlyArray<Point>
  overlay?: ReadonlyArray<Series>
}) {
  const series = overlay ?? [{ label: name, points: first ?? [] }]
  const drawn = series.map((s) => s.points.filter((p): p is FinitePoint => p.value !== null))
  const finite = drawn.flat()
  if (!overlay && finite.length === 0) return <SingleValue name={name} point={series[0].points[series[0].points.length - 1]} />
  const steps = finite.map((p) => p.step)
  const values = finite.map((p) => p.value)
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)]
  const [y0, y1] = [Math.min(...values), Math.max(...values)]
  // A single step or a flat line sits in the middle of its axis.
  const x = (s: number) => PAD.left + (x1 > x0 ? (s - x0) / (x1 - x0) : 0.5) * (W - PAD.left - PAD.right)
  const y = (v: number) => H - PAD.bottom - (y1 > y0 ? (v - y0) / (y1 - y0) : 0.5) * (H - PAD.top - PAD.bottom)
  const lastOf = (s: Series) => {
    const last = s.points[s.points.length - 1]
    return last ? `last ${formatPoint(last)} (step ${last.step})` : 'not logged'
  }
  const range = finite.length ? `; range ${formatValue(y0)} to ${formatValue(y1)}` : ''
  const summary = `${name}: ${series.map((s) => `${overlay ? `${s.label}, ` : ''}${s.points.length} points, ${lastOf(s)}`).join('; ')}${range}`
  return (
    <figure className="chart">
      <figcaption>
        <strong>{name}</strong>{' '}
        {overlay ? (
          <span className="legend small">
            {series.map((s, i) => (
              <span key={i} className={`series-${i}`}>
                {s.label}: {lastOf(s)}
              </span>
            ))}
          </span>
        ) : (
          <span className="muted small">{lastOf(series[0])}</span>
        )}
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={summary} data-testid={`chart-${name}`}>
        <line className="axis" x1={PAD.left} y1={H - PAD.bottom} x2={W - PAD.right} y2={H - PAD.bottom} />
        <line className="axis" x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={H - PAD.bottom} />
        {finite.length > 0 && (
          <>
            <text className="tick" x={PAD.left - 4} y={PAD.top + 4} textAnchor="end">{formatValue(y1)}</text>
            <text className="tick" x={PAD.left - 4} y={H - PAD.bottom} textAnchor="end">{formatValue(y0)}</text>
            <text className="tick" x={PAD.left} y={H - 8} textAnchor="middle">{x0}</text>
            <text className="tick" x={W - PAD.right} y={H - 8} textAnchor="end">step {x1}</text>
          </>
        )}
        {drawn.map((points, i) => (
          <g key={i} className={`series-${i}`}>
            <polyline className="line" points={points.map((p) => `${x(p.step)},${y(p.value)}`).join(' ')} />
            {points.length <= 60 && points.map((p) => <circle key={p.step} className="dot" cx={x(p.step)} cy={y(p.value)} r={2.5} />)}
          </g>
        ))}
      </svg>
    </figure>
  )
}

/** A metric logged once is a number, not a one-point chart. */
function SingleValue({ name, point }: { name: string; point: Point }) {
  return (
    <figure className="chart single" data-testid={`metric-${name}`}>
      <figcaption>
        <strong>{name}</strong>
      </figcaption>
      <p className="metric-value">{formatPoint(point)}</p>
      <p className="muted small">logged once, at step {point.step}</p>
    </figure>
  )
}

function MetricChart({ jobId, metric, live }: { jobId: string; metric: string; live: boolean }) {
  const [result, refetch] = useQuery({ query: MetricHistoryDocument, variables: { id: jobId, key: metric } })
  usePoll(refetch, live)
  const points = result.data?.job.metricHistory ?? []
  if (points.length === 0) return null
  if (points.length === 1) return <SingleValue name={metric} point={points[0]} />
  return <LineChart name={metric} points={points} />
}

export function MetricCharts({ jobId, live }: { jobId: string; live: boolean }) {
  const [result, refetch] = useQuery({ query: JobMetricsDocument, variables: { id: jobId } })
  usePoll(refetch, live)
  return (
    <QueryState result={result}>
      {(data) =>
        data.job.metrics.length === 0 ? (
          <EmptyState title={live ? 'No metrics logged yet.' : 'This job logged no metrics.'} />
        ) : (
          <div className="charts">
            {data.job.metrics.map((m) => (
              <MetricChart key={m.key} jobId={jobId} metric={m.key} live={live} />
            ))}
          </div>
        )
      }
    </QueryState>
  )
}
