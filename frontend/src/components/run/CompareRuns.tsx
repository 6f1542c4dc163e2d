/** Two runs of a project (it has at least two): one metric's curves overlaid (`compareRuns`, one round trip). */
import { useState } from 'react'
import { useQuery } from 'urql'
import { graphql } from '../../gql'
import { EmptyState, QueryState } from '../feedback'
import { LineChart } from '../MetricCharts'

const CompareRunsDocument = graphql(`
  query CompareRuns($runIds: [ID!]!, $keys: [String!]!) {
    compareRuns(runIds: $runIds, keys: $keys) {
      __typename
      ... on RunComparison {
        runs {
          run {
            id
            title
          }
          histories {
            key
            points {
              step
              value
              special
            }
          }
        }
      }
      ... on ValidationFailed {
        message
      }
    }
  }
`)

type RunChoice = { id: string; title: string }

function Comparison({ runIds, metric }: { runIds: string[]; metric: string }) {
  const [result] = useQuery({ query: CompareRunsDocument, variables: { runIds, keys: [metric] } })
  return (
    <QueryState result={result}>
      {(data) => {
        const payload = data.compareRuns
        if (payload.__typename !== 'RunComparison') return <p className="field-error">{payload.message}</p>
        const overlay = payload.runs.map((r) => ({ label: r.run.title, points: r.histories[0]?.points ?? [] }))
        if (overlay.every((s) => s.points.length === 0)) return <EmptyState title={`Neither run logged “${metric}”.`} />
        return <LineChart name={metric} overlay={overlay} />
      }}
    </QueryState>
  )
}

export default function CompareRuns({ runs }: { runs: ReadonlyArray<RunChoice> }) {
  const [first, setFirst] = useState(runs[0]?.id ?? '')
  const [second, setSecond] = useState(runs[1]?.id ?? '')
  const [metric, setMetric] = useState('loss')
  const picker = (label: string, value: string, set: (id: string) => void) => (
    <label className="field">
      <span>{label}</span>
      <select value={value} onChange={(e) => set(e.target.value)}>
        {runs.map((r) => (
          <option key={r.id} value={r.id}>
            {r.title}
          </option>
        ))}
      </select>
    </label>
  )
  return (
    <>
      <div className="compare-pick">
        {picker('First run', first, setFirst)}
        {picker('Second run', second, setSecond)}
        <label className="field">
          <span>Metric</span>
          <input value={metric} onChange={(e) => setMetric(e.target.value)} maxLength={250} />
        </label>
      </div>
      {first === second ? (
        <p className="muted">Choose two different runs.</p>
      ) : metric.trim() ? (
        <div className="charts">
          <Comparison runIds={[first, second]} metric={metric.trim()} />
        </div>
      ) : (
        <p className="muted">Name a metric, e.g. loss.</p>
      )}
    </>
  )
}
