/** One job's full log (the `logsUrl` of a job error points here). */
import { Link, useParams } from 'react-router'
import { useQuery } from 'urql'
import { QueryState } from '../components/feedback'
import { LogView } from '../components/LogView'
import { StatusBadge } from '../components/StatusBadge'
import { graphql } from '../gql'
import { humanize } from '../lib/format'
import { useRefetchOnEvent } from '../lib/useLive'
import { useTitle } from '../lib/useTitle'

const JobSummaryDocument = graphql(`
  query JobSummary($id: ID!) {
    job(id: $id) {
      id
      kind
      status
      run {
        id
        title
      }
    }
  }
`)

const JobStatusDocument = graphql(`
  subscription JobStatusLive($jobId: ID!, $afterSeq: Int) {
    jobStatus(jobId: $jobId, afterSeq: $afterSeq) {
      seq
    }
  }
`)

export function JobLogsPage() {
  const { id = '' } = useParams()
  const [result, refetch] = useQuery({ query: JobSummaryDocument, variables: { id } })
  useRefetchOnEvent(JobStatusDocument, { jobId: id, afterSeq: null }, refetch, !result.data?.job)
  const job = result.data?.job
  useTitle(job ? `${humanize(job.kind)} log · ${job.run.title}` : undefined)
  return (
    <QueryState result={result} notFound={{ what: 'Job' }}>
      {({ job }) => (
        <section>
          <p className="small">
            <Link to={`/runs/${job.run.id}`}>← {job.run.title}</Link>
          </p>
          <h1>
            {humanize(job.kind)} log <StatusBadge status={job.status} />
          </h1>
          <LogView jobId={job.id} label={`${humanize(job.kind)} log`} live={job.status === 'PENDING' || job.status === 'RUNNING'} />
        </section>
      )}
    </QueryState>
  )
}
