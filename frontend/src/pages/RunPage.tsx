/** A run: status timeline, estimate, funding, results, live logs, metrics, notes. Live via `runUpdates`. */
import { lazy, Suspense, useRef, useState } from 'react'
import { Link, useParams } from 'react-router'
import { useMutation, useQuery, useSubscription } from 'urql'
import { EmptyState, ErrorMessage, Loading, QueryState } from '../components/feedback'
import { FundingProgress } from '../components/FundingProgress'
import { LogView } from '../components/LogView'
import { MetricCharts } from '../components/MetricCharts'
import { FundingList, LedgerTable } from '../components/Money'
import { NotesEditor } from '../components/NotesEditor'
import { LoadMore, Pages } from '../components/Pages'
import { EstimatePanel } from '../components/run/EstimatePanel'
import { FundDialog } from '../components/run/FundDialog'
import { JobError } from '../components/run/JobError'
import { RunTimeline } from '../components/run/RunTimeline'
import { StatusBadge } from '../components/StatusBadge'
import { UserLink } from '../components/UserLink'
import { graphql } from '../gql'
import type { JobDetailFragment, RunDetailFragment, RunStatus } from '../gql/graphql'
import { formatDate } from '../lib/format'
import { useNotesSaver } from '../lib/useNotesSaver'
import { useTitle } from '../lib/useTitle'
import { useSession } from '../session'

graphql(`
  fragment JobDetail on Job {
    id
    kind
    status
    pendingInfo
    queuePosition
    createdAt
    startedAt
    finishedAt
    deadlineSeconds
    actualCostCents
    error {
      platform
      containerTerminated {
        reason
        exitCode
      }
      k8sJobCondition {
        type
        reason
        message
      }
    }
    timeline {
      seq
      status
      pendingInfo
      at
    }
  }
`)

graphql(`
  fragment RunDetail on Run {
    id
    title
    status
    uri
    version
    commitSha
    entryPoint
    parameters
    image
    dryrunOverrideParam
    dryrunOverrideValue
    notes
    notesVersion
    notesHtml
    estimatedCostCents
    estimatedDurationSeconds
    estimateDetail
    fundedCents
    fundingGapCents
    createdAt
    updatedAt
    resources {
      gpuType
      gpuCount
      machineType
      spot
    }
    project {
      id
      title
      balanceCents
      owner {
        id
      }
    }
    creator {
      id
      handle
      displayName
    }
    copiedFrom {
      id
      title
    }
    dryrunJob {
      ...JobDetail
    }
    fundedJob {
      ...JobDetail
    }
    fundings(first: 20) {
      ...RunFundingsPage
    }
    transactions(first: 20) {
      ...RunTransactionsPage
    }
  }
`)

graphql(`
  fragment RunFundingsPage on FundingConnection {
    nodes {
      ...FundingItem
      funder {
        id
        handle
        displayName
      }
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
  fragment RunTransactionsPage on LedgerEntryConnection {
    nodes {
      ...LedgerEntryItem
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
`)

const RunPageDocument = graphql(`
  query RunPage($id: ID!) {
    run(id: $id) {
      ...RunDetail
    }
  }
`)

const RunFundingsDocument = graphql(`
  query RunFundings($id: ID!, $after: String) {
    run(id: $id) {
      id
      fundings(first: 20, after: $after) {
        ...RunFundingsPage
      }
    }
  }
`)

const RunTransactionsDocument = graphql(`
  query RunTransactions($id: ID!, $after: String) {
    run(id: $id) {
      id
      transactions(first: 20, after: $after) {
        ...RunTransactionsPage
      }
    }
  }
`)

const RunUpdatesDocument = graphql(`
  subscription RunUpdates($runId: ID!, $afterSeq: Int) {
    runUpdates(runId: $runId, afterSeq: $afterSeq) {
      seq
      kind
      run {
        ...RunDetail
      }
    }
  }
`)

graphql(`
  fragment RunNotes on Run {
    id
    notes
    notesVersion
    notesHtml
  }
`)

const PatchRunNotesDocument = graphql(`
  mutation PatchRunNotes($input: PatchTextInput!) {
    patchRunNotes(input: $input) {
      __typename
      ... on RunSuccess {
        run {
          ...RunNotes
        }
      }
      ...NotesConflict
      ...WriteError
      ...WriteFieldErrors
    }
  }
`)

const ReplaceRunNotesDocument = graphql(`
  mutation ReplaceRunNotes($input: UpdateRunInput!) {
    updateRun(input: $input) {
      __typename
      ... on RunSuccess {
        run {
          ...RunNotes
        }
      }
      ...NotesConflict
      ...WriteError
      ...WriteFieldErrors
    }
  }
`)

const CancelRunDocument = graphql(`
  mutation CancelRun($input: RunIdInput!) {
    cancelRun(input: $input) {
      __typename
      ... on RunSuccess {
        run {
          id
          status
        }
      }
      ... on Error {
        message
      }
    }
  }
`)

const RunResults = lazy(() => import('../components/run/RunResults'))

const ACTIVE_JOB = new Set(['PENDING', 'RUNNING'])
const CANCELLABLE = new Set<RunStatus>(['DRYRUN', 'AWAITING_FUNDING', 'FUNDED'])

function JobPanel({ title, job }: { title: string; job: JobDetailFragment }) {
  const live = ACTIVE_JOB.has(job.status)
  return (
    <section aria-labelledby={`job-${job.id}`} className="panel">
      <div className="section-head">
        <h2 id={`job-${job.id}`}>
          {title} <StatusBadge status={job.status} />
        </h2>
        <Link className="small" to={`/jobs/${job.id}/logs`}>
          Full log
        </Link>
      </div>
      {job.status === 'PENDING' && (
        <p className="muted">
          Waiting for a GPU{job.queuePosition ? ` — position ${job.queuePosition} in the queue` : ''}
          {job.pendingInfo ? `: ${job.pendingInfo}` : '.'}
        </p>
      )}
      <JobError job={job} />
      <h3>Log</h3>
      <LogView jobId={job.id} label={`${title} log`} live={live} />
      <h3>Metrics</h3>
      <MetricCharts jobId={job.id} live={live} />
    </section>
  )
}

function CancelButton({ runId }: { runId: string }) {
  const [result, cancel] = useMutation(CancelRunDocument)
  const onClick = () => {
    if (window.confirm('Cancel this run? Patrons are refunded if the funded job has not started.')) {
      void cancel({ input: { id: runId } })
    }
  }
  const typed = result.data?.cancelRun
  return (
    <>
      <button type="button" className="button danger" onClick={onClick} disabled={result.fetching}>
        Cancel run
      </button>
      {result.error && <ErrorMessage error={result.error} />}
      {typed && typed.__typename !== 'RunSuccess' && <p className="field-error">{typed.message}</p>}
    </>
  )
}

function Parameters({ run }: { run: RunDetailFragment }) {
  const params = run.parameters && typeof run.parameters === 'object' ? Object.entries(run.parameters) : []
  return (
    <dl className="kv">
      <div>
        <dt>Code</dt>
        <dd>
          <code className="break">{run.uri}</code> @ {run.version} (<code>{run.commitSha.slice(0, 10)}</code>)
        </dd>
      </div>
      <div>
        <dt>Entry point</dt>
        <dd>{run.entryPoint}</dd>
      </div>
      {params.map(([name, value]) => (
        <div key={name}>
          <dt>{name}</dt>
          <dd>{String(value)}</dd>
        </div>
      ))}
      <div>
        <dt>Dryrun</dt>
        <dd>
          {run.dryrunOverrideParam} = {run.dryrunOverrideValue}
        </dd>
      </div>
      <div>
        <dt>Resources</dt>
        <dd>
          {run.resources.gpuCount} × {run.resources.gpuType} on {run.resources.machineType}
          {run.resources.spot ? ' (spot)' : ''}
        </dd>
      </div>
      {run.image && (
        <div>
          <dt>Image</dt>
          <dd>
            <code className="break">{run.image}</code>
          </dd>
        </div>
      )}
    </dl>
  )
}

type FundingsPage = RunDetailFragment['fundings']
type TransactionsPage = RunDetailFragment['transactions']
type PageProps = { runId: string; after: string | null; onMore: ((cursor: string) => void) | null }

/** The first page comes with the run (and its live updates); older pages are read on demand. */
function PatronsList({ page, fetching = false, first, onMore }: {
  page: FundingsPage
  fetching?: boolean
  first: boolean
  onMore: PageProps['onMore']
}) {
  if (first && page.nodes.length === 0) return <EmptyState title="No patrons yet." />
  return (
    <>
      <FundingList fundings={page.nodes} title={(f) => f.funder.displayName || f.funder.handle} />
      <LoadMore pageInfo={page.pageInfo} fetching={fetching} onMore={onMore} />
    </>
  )
}

function OlderPatrons({ runId, after, onMore }: PageProps & { after: string }) {
  const [result] = useQuery({ query: RunFundingsDocument, variables: { id: runId, after } })
  return (
    <QueryState result={result}>
      {(data) => <PatronsList page={data.run.fundings} fetching={result.fetching} first={false} onMore={onMore} />}
    </QueryState>
  )
}

function LedgerList({ page, fetching = false, first, onMore }: {
  page: TransactionsPage
  fetching?: boolean
  first: boolean
  onMore: PageProps['onMore']
}) {
  if (first && page.nodes.length === 0) return <EmptyState title="No money has moved yet." />
  return (
    <>
      <LedgerTable entries={page.nodes} caption="Run ledger" />
      <LoadMore pageInfo={page.pageInfo} fetching={fetching} onMore={onMore} />
    </>
  )
}

function OlderLedger({ runId, after, onMore }: PageProps & { after: string }) {
  const [result] = useQuery({ query: RunTransactionsDocument, variables: { id: runId, after } })
  return (
    <QueryState result={result}>
      {(data) => <LedgerList page={data.run.transactions} fetching={result.fetching} first={false} onMore={onMore} />}
    </QueryState>
  )
}

/** Why there is no estimate, in the run's own terms. */
function missingEstimate(status: RunStatus): string {
  if (status === 'DRYRUN') return 'The estimate appears when the dryrun succeeds.'
  if (status === 'DRYRUN_FAILED') return 'The dryrun failed, so there is no estimate. Its log below says why.'
  return 'This run has no estimate.'
}

function actualOf(job: JobDetailFragment | null | undefined) {
  if (job?.actualCostCents == null) return null
  const seconds = job.startedAt && job.finishedAt ? (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000 : null
  return { costCents: job.actualCostCents, seconds }
}

function RunView({ run }: { run: RunDetailFragment }) {
  const { viewer } = useSession()
  const [funding, setFunding] = useState(false)
  const fundingHeading = useRef<HTMLHeadingElement>(null)
  const fundButton = useRef<HTMLButtonElement>(null)
  const isCreator = viewer?.id === run.creator.id
  const isOwner = viewer?.id === run.project.owner.id
  const canManage = isCreator || isOwner
  const notes = useNotesSaver(run.id, PatchRunNotesDocument, ReplaceRunNotesDocument)
  const fundable = run.status === 'AWAITING_FUNDING' && run.fundingGapCents > 0
  useTitle(run.title)

  const closeFunding = () => {
    setFunding(false)
    // Back where the reader was; once fully funded the button is gone, so to the funding summary.
    requestAnimationFrame(() => (fundButton.current ?? fundingHeading.current)?.focus())
  }

  return (
    <article>
      <p className="small">
        <Link to={`/projects/${run.project.id}`}>← {run.project.title}</Link>
      </p>
      <div className="page-head">
        <div>
          <h1>
            {run.title} <StatusBadge status={run.status} />
          </h1>
          <p className="muted small">
            by <UserLink user={run.creator} /> · {formatDate(run.createdAt)}
            {run.copiedFrom && (
              <>
                {' '}
                · run again from <Link to={`/runs/${run.copiedFrom.id}`}>{run.copiedFrom.title}</Link>
              </>
            )}
          </p>
        </div>
        <div className="actions">
          {isOwner &&
            (run.status === 'DRYRUN_FAILED' ? (
              <Link className="button primary" to={`/projects/${run.project.id}/runs/new?from=${run.id}`}>
                Edit and run again
              </Link>
            ) : (
              <Link className="button" to={`/projects/${run.project.id}/runs/new?from=${run.id}`}>
                Copy and run again
              </Link>
            ))}
          {canManage && CANCELLABLE.has(run.status) && <CancelButton runId={run.id} />}
        </div>
      </div>

      {run.status === 'DRYRUN_FAILED' && (
        <p className="alert alert-warning" role="status">
          The dryrun failed, so this run cannot be funded.{' '}
          {isOwner
            ? 'Fix the cause shown in the dryrun’s log below, then use “Edit and run again”: the new run starts with these settings.'
            : 'The researcher can fix it and submit a new run.'}
        </p>
      )}

      <RunTimeline status={run.status} jobs={[
        { label: 'Dryrun', job: run.dryrunJob },
        { label: 'Funded job', job: run.fundedJob },
      ]} />

      <div className="grid-2">
        <section aria-labelledby="funding-heading" className="panel">
          <h2 id="funding-heading" ref={fundingHeading} tabIndex={-1}>
            Funding
          </h2>
          <FundingProgress {...run} />
          {fundable &&
            (viewer ? (
              <button ref={fundButton} type="button" className="button primary" onClick={() => setFunding(true)}>
                Fund this run
              </button>
            ) : (
              <Link className="button primary" to={`/login?next=/runs/${run.id}`}>
                Log in to fund
              </Link>
            ))}
          <h3>Cost</h3>
          <EstimatePanel costCents={run.estimatedCostCents} durationSeconds={run.estimatedDurationSeconds}
            detail={run.estimateDetail} overrideParam={run.dryrunOverrideParam} missing={missingEstimate(run.status)}
            actual={actualOf(run.fundedJob)} />
        </section>
        <section aria-labelledby="setup-heading" className="panel">
          <h2 id="setup-heading">Setup</h2>
          <Parameters run={run} />
        </section>
      </div>

      <div className="grid-2">
        <section aria-labelledby="patrons-heading" className="panel">
          <h2 id="patrons-heading">Patrons</h2>
          <Pages>
            {(after, onMore) =>
              after === null ? (
                <PatronsList page={run.fundings} first onMore={onMore} />
              ) : (
                <OlderPatrons runId={run.id} after={after} onMore={onMore} />
              )
            }
          </Pages>
        </section>
        <section aria-labelledby="ledger-heading" className="panel">
          <h2 id="ledger-heading">Ledger</h2>
          <Pages>
            {(after, onMore) =>
              after === null ? (
                <LedgerList page={run.transactions} first onMore={onMore} />
              ) : (
                <OlderLedger runId={run.id} after={after} onMore={onMore} />
              )
            }
          </Pages>
        </section>
      </div>

      <section aria-labelledby="results-heading" className="panel">
        <h2 id="results-heading">Results</h2>
        <Suspense fallback={<Loading />}>
          {/* Read again when a job changes state: a finished job has its final metrics and artifacts. */}
          <RunResults key={[run.status, run.dryrunJob?.status, run.fundedJob?.status].join()} runId={run.id} />
        </Suspense>
      </section>

      {run.fundedJob && <JobPanel title="Funded job" job={run.fundedJob} />}
      {run.dryrunJob && <JobPanel title="Dryrun" job={run.dryrunJob} />}

      <section aria-labelledby="run-notes-heading">
        <h2 id="run-notes-heading">Run notes</h2>
        <NotesEditor id={run.id} html={run.notesHtml} body={run.notes} version={run.notesVersion} canEdit={isCreator}
          {...notes} />
      </section>

      <FundDialog runId={run.id} gapCents={run.fundingGapCents} open={funding} onClose={closeFunding}
        isOwner={isOwner} projectBalanceCents={isOwner ? run.project.balanceCents : 0} />
    </article>
  )
}

/** The newer of two reads of the run (ties go to the live one, which arrived later). */
function newest(read: RunDetailFragment | undefined, live: RunDetailFragment | undefined) {
  if (!read || !live || live.id !== read.id) return read ?? live
  return Date.parse(read.updatedAt) > Date.parse(live.updatedAt) ? read : live
}

export function RunPage() {
  const { id = '' } = useParams()
  const [result, refetch] = useQuery({ query: RunPageDocument, variables: { id } })
  // Every update carries the whole run: the page re-renders from it without asking again.
  const [{ data: live }] = useSubscription(
    { query: RunUpdatesDocument, variables: { runId: id, afterSeq: null }, pause: !result.data?.run },
  )
  const run = newest(result.data?.run ?? undefined, live?.runUpdates.run)
  return (
    <QueryState result={{ ...result, data: run ? { run } : result.data }}
      retry={() => refetch({ requestPolicy: 'network-only' })}
      notFound={{ what: 'Run', back: { to: '/', label: 'Back to Explore' } }}>
      {(data) => <RunView run={data.run} />}
    </QueryState>
  )
}
