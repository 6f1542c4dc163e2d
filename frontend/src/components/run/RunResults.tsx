/**
 * What a run produced (issue 16): final metrics (`Run.results`, NaN and infinities named), the
 * MLflow parameters of the job they come from, its artifacts to browse and download, and the
 * `Run.reproduce` command line to copy. Loaded on demand: the run page's chunk stays small.
 */
import { useState } from 'react'
import { useQuery } from 'urql'
import { graphql } from '../../gql'
import type { RunResultsQuery } from '../../gql/graphql'
import { formatBytes } from '../../lib/format'
import { CopyButton } from '../CopyButton'
import { EmptyState, QueryState } from '../feedback'
import { formatPoint } from '../MetricCharts'
import { LoadMore, Pages } from '../Pages'

const RunResultsDocument = graphql(`
  query RunResults($id: ID!) {
    run(id: $id) {
      id
      reproduce
      results {
        job {
          id
          kind
          params {
            key
            value
          }
        }
        metrics {
          key
          value
          special
          step
        }
      }
    }
  }
`)

const JobArtifactsDocument = graphql(`
  query JobArtifacts($id: ID!, $path: String!, $after: String) {
    job(id: $id) {
      id
      artifacts(path: $path, first: 50, after: $after) {
        nodes {
          name
          path
          isDir
          size
          downloadUrl
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`)

/**
 * The download link on this page's origin: the SPA talks to the API it is served by (as for
 * /graphql), so the session cookie goes along for a private job's files even when
 * `downloadUrl` names the server by another address (its configured public URL).
 */
function onThisOrigin(url: string): string {
  const { pathname, search } = new URL(url, window.location.href)
  return pathname + search
}

type Results = NonNullable<NonNullable<RunResultsQuery['run']>['results']>

function MetricsTable({ metrics }: { metrics: Results['metrics'] }) {
  if (metrics.length === 0) return <EmptyState title="The job logged no metrics." />
  return (
    <div className="table-wrap">
      <table className="compact">
        <caption className="sr-only">Final metrics</caption>
        <thead>
          <tr>
            <th scope="col">Metric</th>
            <th scope="col" className="num">Final value</th>
            <th scope="col" className="num">Step</th>
          </tr>
        </thead>
        <tbody>
          {metrics.map((m) => (
            <tr key={m.key}>
              <th scope="row">{m.key}</th>
              <td className="num">{formatPoint(m)}</td>
              <td className="num">{m.step}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

function ParamsTable({ params }: { params: Results['job']['params'] }) {
  if (params.length === 0) return <EmptyState title="The job logged no parameters." />
  return (
    <dl className="kv">
      {params.map((p) => (
        <div key={p.key}>
          <dt>{p.key}</dt>
          <dd>
            <code className="break">{p.value}</code>
          </dd>
        </div>
      ))}
    </dl>
  )
}

/** One page of a directory; directories open in place, files are download links. */
function ArtifactPage({ jobId, path, after, onMore, open }: {
  jobId: string
  path: string
  after: string | null
  onMore: ((cursor: string) => void) | null
  open: (path: string) => void
}) {
  const [result] = useQuery({ query: JobArtifactsDocument, variables: { id: jobId, path, after } })
  return (
    <QueryState result={result}>
      {(data) => {
        const page = data.job.artifacts
        if (after === null && page.nodes.length === 0) return <EmptyState title="No artifacts here." />
        return (
          <>
            <ul className="artifacts">
              {page.nodes.map((a) => (
                <li key={a.path}>
                  {a.isDir ? (
                    <button type="button" className="button link" onClick={() => open(a.path)}>
                      📁 {a.name}/
                    </button>
                  ) : (
                    <>
                      <a href={a.downloadUrl ? onThisOrigin(a.downloadUrl) : undefined} download={a.name}>
                        {a.name}
                      </a>{' '}
                      {a.size != null && <span className="muted small">{formatBytes(a.size)}</span>}
                    </>
                  )}
                </li>
              ))}
            </ul>
            <LoadMore pageInfo={page.pageInfo} fetching={result.fetching} onMore={onMore} />
          </>
        )
      }}
    </QueryState>
  )
}

function ArtifactBrowser({ jobId }: { jobId: string }) {
  const [path, setPath] = useState('')
  const parts = path ? path.split('/') : []
  return (
    <>
      <nav aria-label="Artifact folders" className="small">
        <ol className="crumbs">
          <li>
            {parts.length ? (
              <button type="button" className="button link" onClick={() => setPath('')}>artifacts</button>
            ) : (
              <span aria-current="location">artifacts</span>
            )}
          </li>
          {parts.map((part, i) => (
            <li key={i}>
              {i < parts.length - 1 ? (
                <button type="button" className="button link" onClick={() => setPath(parts.slice(0, i + 1).join('/'))}>
                  {part}
                </button>
              ) : (
                <span aria-current="location">{part}</span>
              )}
            </li>
          ))}
        </ol>
      </nav>
      {/* A new directory starts from its first page. */}
      <Pages key={path}>
        {(after, onMore) => <ArtifactPage jobId={jobId} path={path} after={after} onMore={onMore} open={setPath} />}
      </Pages>
    </>
  )
}

export default function RunResults({ runId }: { runId: string }) {
  const [result] = useQuery({ query: RunResultsDocument, variables: { id: runId }, requestPolicy: 'cache-and-network' })
  return (
    <QueryState result={result}>
      {(data) => {
        const run = data.run
        if (!run) return null
        const results = run.results
        return (
          <>
            {results ? (
              <>
                <p className="muted small">
                  From the {results.job.kind === 'FUNDED' ? 'funded job' : 'dryrun'}.
                </p>
                <div className="grid-2">
                  <div>
                    <h3>Final metrics</h3>
                    <MetricsTable metrics={results.metrics} />
                  </div>
                  <div>
                    <h3>Parameters</h3>
                    <ParamsTable params={results.job.params} />
                  </div>
                </div>
                <h3>Artifacts</h3>
                <ArtifactBrowser jobId={results.job.id} />
              </>
            ) : (
              <EmptyState title="No results yet: they appear once a job logs to MLflow." />
            )}
            {run.reproduce && (
              <>
                <div className="section-head">
                  <h3 id="reproduce-heading">Reproduce</h3>
                  <CopyButton text={run.reproduce} what="the reproduction command" />
                </div>
                {/* Focusable: a long command scrolls sideways, by keyboard too. */}
                <pre className="snippet" tabIndex={0} data-testid="reproduce">
                  <code>{run.reproduce}</code>
                </pre>
              </>
            )}
          </>
        )
      }}
    </QueryState>
  )
}
