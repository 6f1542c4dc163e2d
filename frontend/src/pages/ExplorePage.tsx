/**
 * Explore: every project with its latest run and every run of it that needs money, and a
 * "Needs funding" view listing those runs across projects (`Query.runs`), closest to starting
 * first, newest first or most funded first. Search matches titles, notebooks and researchers.
 */
import { useEffect, useState } from 'react'
import { Link, useSearchParams } from 'react-router'
import { useQuery } from 'urql'
import { EmptyState, QueryState } from '../components/feedback'
import { FundingProgress } from '../components/FundingProgress'
import { LoadMore, Pages } from '../components/Pages'
import { StatusBadge } from '../components/StatusBadge'
import { graphql } from '../gql'
import type { ExploreProjectsQuery, NeedsFundingQuery, RunDiscoveryOrder } from '../gql/graphql'
import { formatCents, formatDate } from '../lib/format'
import { useTitle } from '../lib/useTitle'
import { useSession } from '../session'

graphql(`
  fragment ExploreRun on Run {
    id
    title
    status
    createdAt
    fundedCents
    fundingGapCents
    estimatedCostCents
  }
`)

const ExploreProjectsDocument = graphql(`
  query ExploreProjects($search: String, $after: String, $first: Int!) {
    projects(first: $first, after: $after, search: $search, orderBy: RECENTLY_UPDATED) {
      nodes {
        id
        title
        updatedAt
        owner {
          id
          handle
          displayName
        }
        latest: runs(first: 1) {
          nodes {
            ...ExploreRun
          }
        }
        fundable: runs(status: AWAITING_FUNDING, first: 10) {
          nodes {
            ...ExploreRun
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

const NeedsFundingDocument = graphql(`
  query NeedsFunding($search: String, $after: String, $orderBy: RunDiscoveryOrder!) {
    runs(first: 24, after: $after, search: $search, orderBy: $orderBy) {
      nodes {
        ...ExploreRun
        project {
          id
          title
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

type ProjectCardData = ExploreProjectsQuery['projects']['nodes'][number]
type View = 'projects' | 'funding'

/** The funding view's orders, as the `sort` URL parameter names them (the first is the default). */
const SORTS: ReadonlyArray<[string, RunDiscoveryOrder, string]> = [
  ['closest', 'SMALLEST_GAP', 'Closest to fully funded'],
  ['newest', 'NEWEST', 'Newest first'],
  ['most-funded', 'LARGEST_FUNDED_SHARE', 'Most funded share first'],
]

function ProjectCard({ project }: { project: ProjectCardData }) {
  const [latest] = project.latest.nodes
  // Runs awaiting money are never hidden behind a newer run (a failed one, say).
  const fundable = project.fundable.nodes.filter((run) => run.id !== latest?.id)
  return (
    <li className="card">
      <h2 className="card-title">
        <Link to={`/projects/${project.id}`}>{project.title}</Link>
      </h2>
      <p className="muted small">
        by {project.owner.displayName || project.owner.handle} · updated {formatDate(project.updatedAt)}
      </p>
      {latest ? (
        <div className="card-run">
          <p className="small">
            Latest run: <Link to={`/runs/${latest.id}`}>{latest.title}</Link> <StatusBadge status={latest.status} />
          </p>
          <FundingProgress {...latest} />
        </div>
      ) : (
        <p className="muted small">No runs yet</p>
      )}
      {fundable.length > 0 && (
        <div className="card-run">
          <p className="small">Also needs funding:</p>
          <ul className="plain small">
            {fundable.map((run) => (
              <li key={run.id}>
                <Link to={`/runs/${run.id}`}>{run.title}</Link>{' '}
                <span className="muted">· {formatCents(run.fundingGapCents)} to go</span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </li>
  )
}

type FundableRun = NeedsFundingQuery['runs']['nodes'][number]

function FundableCard({ run }: { run: FundableRun }) {
  return (
    <li className="card">
      <h2 className="card-title">
        <Link to={`/runs/${run.id}`}>{run.title}</Link>
      </h2>
      <p className="muted small">
        <Link to={`/projects/${run.project.id}`}>{run.project.title}</Link> · by{' '}
        {run.project.owner.displayName || run.project.owner.handle}
      </p>
      <FundingProgress {...run} />
    </li>
  )
}

type PageProps = { search: string; after: string | null; onMore: ((cursor: string) => void) | null }

/** One page of projects; the last page offers the next one. */
function ProjectsPage({ search, after, onMore }: PageProps) {
  const [result, refetch] = useQuery({
    query: ExploreProjectsDocument,
    variables: { search: search || null, after, first: 12 },
  })
  return (
    <QueryState result={result} retry={() => refetch({ requestPolicy: 'network-only' })}>
      {(data) => (
        <>
          {after === null && data.projects.nodes.length === 0 && <NothingFound search={search} view="projects" />}
          <ul className="cards">
            {data.projects.nodes.map((project) => (
              <ProjectCard key={project.id} project={project} />
            ))}
          </ul>
          <LoadMore pageInfo={data.projects.pageInfo} fetching={result.fetching} onMore={onMore} />
        </>
      )}
    </QueryState>
  )
}

/** One page of runs awaiting funding, across projects, in the chosen order. */
function FundingPage({ search, orderBy, after, onMore }: PageProps & { orderBy: RunDiscoveryOrder }) {
  const [result, refetch] = useQuery({
    query: NeedsFundingDocument,
    variables: { search: search || null, after, orderBy },
  })
  return (
    <QueryState result={result} retry={() => refetch({ requestPolicy: 'network-only' })}>
      {(data) => (
        <>
          {after === null && data.runs.nodes.length === 0 && <NothingFound search={search} view="funding" />}
          <ul className="cards">
            {data.runs.nodes.map((run) => (
              <FundableCard key={run.id} run={run} />
            ))}
          </ul>
          <LoadMore pageInfo={data.runs.pageInfo} fetching={result.fetching} onMore={onMore} />
        </>
      )}
    </QueryState>
  )
}

function NothingFound({ search, view }: { search: string; view: View }) {
  const { viewer } = useSession()
  if (view === 'funding') {
    return (
      <EmptyState title={search ? `No run matching “${search}” needs funding.` : 'No run needs funding right now.'}>
        <Link to="/">See every project</Link>
      </EmptyState>
    )
  }
  if (search) return <EmptyState title={`No projects match “${search}”.`}>Try fewer or other words.</EmptyState>
  return (
    <EmptyState title="No projects yet.">
      {viewer ? <Link to="/projects/new">Start the first one</Link> : 'Researchers will publish them here.'}
    </EmptyState>
  )
}

export function ExplorePage() {
  const [params, setParams] = useSearchParams()
  const search = params.get('q') ?? ''
  const view: View = params.get('view') === 'funding' ? 'funding' : 'projects'
  const [sort, orderBy] = SORTS.find(([name]) => name === params.get('sort')) ?? SORTS[0]
  const [text, setText] = useState(search)
  useTitle(view === 'funding' ? 'Runs that need funding' : 'Explore experiments')

  // From the address bar, not this render's parameters: the search debounce may fire just after
  // a view switch that has not re-rendered yet, and must not undo it.
  const update = (changes: Record<string, string | null>) => {
    const next = new URLSearchParams(window.location.search)
    for (const [key, value] of Object.entries(changes)) {
      if (value) next.set(key, value)
      else next.delete(key)
    }
    setParams(next, { replace: true })
  }

  // Search as you type, once typing pauses.
  useEffect(() => {
    const timer = setTimeout(() => {
      if (text.trim() !== search) update({ q: text.trim() || null })
    }, 300)
    return () => clearTimeout(timer)
  })

  return (
    <section>
      <div className="page-head">
        <h1>Explore experiments</h1>
        <form role="search" onSubmit={(e) => e.preventDefault()} className="search">
          <label htmlFor="project-search" className="sr-only">
            Search projects, notebooks and researchers
          </label>
          <input id="project-search" type="search" placeholder="Search projects, notebooks, researchers…" value={text}
            onChange={(e) => setText(e.target.value)} />
        </form>
      </div>
      <div className="toolbar">
        <div className="segmented" role="group" aria-label="Show">
          <button type="button" aria-pressed={view === 'projects'} onClick={() => update({ view: null })}>
            All projects
          </button>
          <button type="button" aria-pressed={view === 'funding'} onClick={() => update({ view: 'funding' })}>
            Needs funding
          </button>
        </div>
        {view === 'funding' && (
          <label className="inline-field">
            Sort{' '}
            <select value={sort} onChange={(e) => update({ sort: e.target.value === SORTS[0][0] ? null : e.target.value })}>
              {SORTS.map(([name, , label]) => (
                <option key={name} value={name}>
                  {label}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      <Pages key={`${search}:${view}:${sort}`}>
        {(after, onMore) =>
          view === 'funding' ? (
            <FundingPage search={search} orderBy={orderBy} after={after} onMore={onMore} />
          ) : (
            <ProjectsPage search={search} after={after} onMore={onMore} />
          )
        }
      </Pages>
    </section>
  )
}
