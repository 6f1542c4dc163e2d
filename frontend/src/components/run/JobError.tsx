/** Why a job failed, root cause first, in words. */
import type { JobDetailFragment } from '../../gql/graphql'
import { Alert } from '../feedback'

export function JobError({ job }: { job: Pick<JobDetailFragment, 'error'> }) {
  const error = job.error
  if (!error) return null
  const terminated = error.containerTerminated
  const condition = error.k8sJobCondition
  return (
    <Alert tone="error">
      {error.platform && <p>{error.platform}</p>}
      {terminated && (
        <p>
          The container stopped: {terminated.reason === 'OOMKilled' ? 'out of memory (OOMKilled)' : terminated.reason}
          {terminated.exitCode != null && ` (exit code ${terminated.exitCode})`}
          {terminated.reason === 'Error' && ' — see the log below.'}
        </p>
      )}
      {condition && !error.platform && !terminated && (
        <p>
          {condition.reason}: {condition.message}
        </p>
      )}
    </Alert>
  )
}
