/** Where a run is in its life (dryrun → awaiting funding → funded → completed) and every job transition. */
import type { JobDetailFragment, RunStatus } from '../../gql/graphql'
import { formatTime, humanize } from '../../lib/format'

const STEPS: { label: string; reached: RunStatus[] }[] = [
  { label: 'Dryrun', reached: ['DRYRUN', 'DRYRUN_FAILED', 'AWAITING_FUNDING', 'FUNDED', 'FUNDED_FAILED', 'COMPLETED'] },
  { label: 'Awaiting funding', reached: ['AWAITING_FUNDING', 'FUNDED', 'FUNDED_FAILED', 'COMPLETED'] },
  { label: 'Funded job', reached: ['FUNDED', 'FUNDED_FAILED', 'COMPLETED'] },
  { label: 'Completed', reached: ['COMPLETED'] },
]

const FAILED_AT: Partial<Record<RunStatus, number>> = { DRYRUN_FAILED: 0, FUNDED_FAILED: 2 }

interface Props {
  status: RunStatus
  jobs: { label: string; job: JobDetailFragment | null | undefined }[]
}

export function RunTimeline({ status, jobs }: Props) {
  const current = STEPS.reduce((at, step, index) => (step.reached.includes(status) ? index : at), -1)
  const failedAt = FAILED_AT[status]
  return (
    <div>
      <ol className="steps" aria-label="Run progress">
        {STEPS.map((step, index) => {
          const state =
            failedAt === index ? 'failed' : index < current || status === 'COMPLETED' ? 'done' : index === current ? 'current' : 'todo'
          return (
            <li key={step.label} className={`step step-${state}`} aria-current={index === current ? 'step' : undefined}>
              <span className="step-label">{step.label}</span>
              <span className="sr-only"> ({state === 'todo' ? 'not reached' : state})</span>
            </li>
          )
        })}
      </ol>
      {status === 'CANCELLED' && <p className="muted">This run was cancelled.</p>}
      <ul className="transitions">
        {jobs.flatMap(({ label, job }) =>
          (job?.timeline ?? []).map((t) => (
            <li key={`${label}-${t.seq}`}>
              <time dateTime={t.at}>{formatTime(t.at)}</time> {label}: <strong>{humanize(t.status)}</strong>
              {t.pendingInfo && <span className="muted"> — {t.pendingInfo}</span>}
            </li>
          )),
        )}
      </ul>
    </div>
  )
}
