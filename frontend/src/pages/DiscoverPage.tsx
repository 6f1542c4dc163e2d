/**
 * Discover: runs awaiting funding across projects (`Query.runs`), in the chosen order, each with
 * its funding gap and a "Fund" button opening the run page's dialog. `runsChanged` wakes the
 * list whenever any run gets money or changes state, so a run funded elsewhere updates (or
 * leaves the list) without a reload.
 */
import { useRef, useState } from 'react'
import { Link, useSearchParams } from 'react-router'
import { useQuery } from 'urql'
import { EmptyState, QueryState } from '../components/feedback'
import { FundingProgress } from '../components/FundingProgress'
import { LoadMore, Pages } from '../components/Pages'
import { FundDialog } from '../components/run/FundDialog'
import { SearchBox, useSearch } from '../components/SearchBox'
import { UserLink } from '../components/UserLink'
import { graphql } from '../gql'
import type { DiscoverRunsQuery, RunDiscoveryOrder } from '../gql/graphql'
import { formatCents, formatDate } from '../lib/format'
import { useRefetchOnEvent } from '../lib/useLive'
import { useTitle } from '../lib/useTitle'
import { useSession } from '../session'

const DiscoverRunsDocument = graphql(`
  query DiscoverRuns($search: String, $after: String, $orderBy: RunDiscoveryOrder!) {
    runs(first: 24, after: $after, search: $search, orderBy: $orderBy) {
      nodes {
        ...RunSummary
        project {
          id
          title
          balanceCents
          owner {
            id
            handle
            displayName
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`)

const RunsChangedDocument = graphql(`
  subscription RunsChanged {
    runsChanged {
      at
    }
  }
`)

/** The orders, as the `sort` URL parameter names them (the first is the default). */
const SORTS: ReadonlyArray<[string, RunDiscoveryOrder, string]> = [
  ['closest', 'SMALLEST_GAP', 'Closest to fully funded'],
  ['newest', 'NEWEST', 'Newest first'],
  ['most-funded', 'LARGEST_FUNDED_SHARE', 'Most funded share first'],
]

type FundableRun = DiscoverRunsQuery['runs']['nodes'][number]

function FundableCard({ run, onFund }: { run: FundableRun; onFund: (run: FundableRun, button: HTMLButtonElement) => void }) {
  const { viewer } = useSession()
  return (
    <li className="card">
      <h2 className="card-title">
        <Link to={`/runs/${run.id}`}>{run.title}</Link>
      </h2>
      <p className="muted small">
        <Link to={`/projects/${run.project.id}`}>{run.project.title}</Link> · by <UserLink user={run.project.owner} /> ·{' '}
        {formatDate(run.createdAt)}
      </p>
      <FundingProgress {...run} />
      <p className="card-actions">
        <span className="gap" data-testid="funding-gap">
          Gap: <strong>{formatCents(run.fundingGapCents)}</strong>
        </span>
        {run.fundingGapCents > 0 &&
          (viewer ? (
            <button type="button" className="button primary small" aria-label={`Fund “${run.title}”`}
              onClick={(e) => onFund(run, e.currentTarget)}>
              Fund
            </button>
          ) : (
            <Link className="button small" to={`/login?next=/runs/${run.id}`} aria-label={`Log in to fund “${run.title}”`}>
              Log in to fund
            </Link>
          ))}
      </p>
    </li>
  )
}

interface PageProps {
  search: string
  orderBy: RunDiscoveryOrder
  after: string | null
  onMore: ((cursor: string) => void) | null
  onFund: (run: FundableRun, button: HTMLButtonElement) => void
}

/** One page of runs; every page re-reads when any run changes (one shared subscription). */
function RunsPage({ search, orderBy, after, onMore, onFund }: PageProps) {
  const [result, refetch] = useQuery({ query: DiscoverRunsDocument, variables: { search: search || null, after, orderBy } })
  useRefetchOnEvent(RunsChangedDocument, {}, refetch)
  return (
    <QueryState result={result} retry={() => refetch({ requestPolicy: 'network-only' })}>
      {(data) => (
        <>
          {after === null && data.runs.nodes.length === 0 && (
            <EmptyState title={search ? `No run matching “${search}” needs funding.` : 'No run needs funding right now.'}>
              <Link to="/">See every project</Link>
            </EmptyState>
          )}
          <ul className="cards">
            {data.runs.nodes.map((run) => (
              <FundableCard key={run.id} run={run} onFund={onFund} />
            ))}
          </ul>
          <LoadMore pageInfo={data.runs.pageInfo} fetching={result.fetching} onMore={onMore} />
        </>
      )}
    </QueryState>
  )
}

export function DiscoverPage() {
  const { viewer } = useSession()
  const [params, setParams] = useSearchParams()
  const search = useSearch()
  const [sort, orderBy] = SORTS.find(([name]) => name === params.get('sort')) ?? SORTS[0]
  const [funding, setFunding] = useState<FundableRun | null>(null)
  const opener = useRef<HTMLButtonElement | null>(null)
  useTitle('Runs that need funding')

  const update = (key: string, value: string | null) => {
    const next = new URLSearchParams(window.location.search)
    if (value) next.set(key, value)
    else next.delete(key)
    setParams(next, { replace: true })
  }

  const onFund = (run: FundableRun, button: HTMLButtonElement) => {
    opener.current = button
    setFunding(run)
  }
  const closeFunding = () => {
    setFunding(null)
    // Back to the card's button; if the run left the list (fully funded), to the page itself.
    requestAnimationFrame(() => {
      const back = opener.current
      if (back?.isConnected) back.focus()
      else document.getElementById('main')?.focus()
    })
  }
  const isOwner = funding !== null && viewer?.id === funding.project.owner.id

  return (
    <section>
      <div className="page-head">
        <h1>Runs that need funding</h1>
        <SearchBox id="run-search" label="Search runs, projects and researchers"
          placeholder="Search runs, projects, researchers…" />
      </div>
      <p className="muted">
        Every run here passed its dryrun and has a cost estimate. When its gap reaches zero, the job starts.
      </p>
      <div className="toolbar">
        <label className="inline-field">
          Sort{' '}
          <select value={sort} onChange={(e) => update('sort', e.target.value === SORTS[0][0] ? null : e.target.value)}>
            {SORTS.map(([name, , label]) => (
              <option key={name} value={name}>
                {label}
              </option>
            ))}
          </select>
        </label>
      </div>
      <Pages key={`${search}:${sort}`}>
        {(after, onMore) => <RunsPage search={search} orderBy={orderBy} after={after} onMore={onMore} onFund={onFund} />}
      </Pages>
      {funding && (
        <FundDialog runId={funding.id} gapCents={funding.fundingGapCents} open onClose={closeFunding} isOwner={isOwner}
          projectBalanceCents={isOwner ? funding.project.balanceCents : 0} />
      )}
    </section>
  )
}
