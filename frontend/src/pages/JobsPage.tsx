/** The jobs dashboard: pending (with queue position and why) and running jobs, live. */
import { Link } from 'react-router'
import { useSubscription } from 'urql'
import { EmptyState, ErrorMessage, Loading } from '../components/feedback'
import { StatusBadge } from '../components/StatusBadge'
import { graphql } from '../gql'
import type { JobsBoardSubscription } from '../gql/graphql'
import { formatDate, formatTime, humanize } from '../lib/format'
import { useTitle } from '../lib/useTitle'

const JobsBoardDocument = graphql(`
  subscription JobsBoard {
    jobsBoard {
      at
      jobs {
        id
        kind
        status
        pendingInfo
        queuePosition
        createdAt
        startedAt
        run {
          id
          title
          resources {
            gpuType
            gpuCount
            machineType
          }
          project {
            id
            title
          }
        }
      }
    }
  }
`)

type BoardJob = JobsBoardSubscription['jobsBoard']['jobs'][number]

function JobsTable({ jobs, pending }: { jobs: BoardJob[]; pending: boolean }) {
  if (jobs.length === 0) return <EmptyState title={pending ? 'Nothing is waiting for a GPU.' : 'Nothing is running.'} />
  return (
    <div className="table-wrap">
      <table className="stack">
        <thead>
          <tr>
            {pending && <th scope="col">#</th>}
            <th scope="col">Run</th>
            <th scope="col">Job</th>
            <th scope="col">GPU</th>
            <th scope="col">{pending ? 'Why pending' : 'Started'}</th>
          </tr>
        </thead>
        <tbody>
          {jobs.map((job) => (
            <tr key={job.id}>
              {pending && <td data-label="#">{job.queuePosition ?? '—'}</td>}
              <td data-label="Run">
                <Link to={`/runs/${job.run.id}`}>{job.run.title}</Link>
                <span className="muted small block">{job.run.project.title}</span>
              </td>
              <td data-label="Job">
                {humanize(job.kind)} <StatusBadge status={job.status} />
              </td>
              <td data-label="GPU">
                {job.run.resources.gpuCount} × {job.run.resources.gpuType}
                <span className="muted small block">{job.run.resources.machineType}</span>
              </td>
              <td data-label={pending ? 'Why pending' : 'Started'}>{pending ? job.pendingInfo ?? 'Waiting to be scheduled' : formatDate(job.startedAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

export function JobsPage() {
  useTitle('Jobs')
  const [{ data, error }] = useSubscription({ query: JobsBoardDocument })
  const jobs = data?.jobsBoard.jobs ?? []
  const pending = jobs.filter((j) => j.status === 'PENDING').sort((a, b) => (a.queuePosition ?? 0) - (b.queuePosition ?? 0))
  const running = jobs.filter((j) => j.status === 'RUNNING')
  return (
    <section>
      <div className="page-head">
        <h1>Jobs</h1>
        {data && <p className="muted small">Live · updated {formatTime(data.jobsBoard.at)}</p>}
      </div>
      {error && <ErrorMessage error={error} />}
      {!data && !error ? (
        <Loading />
      ) : (
        <>
          <h2>Pending ({pending.length})</h2>
          <JobsTable jobs={pending} pending />
          <h2>Running ({running.length})</h2>
          <JobsTable jobs={running} pending={false} />
        </>
      )}
    </section>
  )
}
