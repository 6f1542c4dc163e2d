/**
 * Explore: every project with its latest run and every run of it that needs money. Runs that
 * need funding across projects have their own page (Discover, `/discover`); the old
 * `?view=funding` address leads there. Search matches titles, notebooks and researchers.
 */
import { Link, Navigate, useSearchParams } from 'react-router'
import { useQuery } from 'urql'
import { EmptyState, QueryState } from '../components/feedback'
import { FundingProgress } from '../components/FundingProgress'
import { LoadMore, Pages } from '../components/Pages'
import { SearchBox, useSearch } from '../components/SearchBox'
import { StatusBadge } from '../components/StatusBadge'
import { UserLink } from '../components/UserLink'
import { graphql } from '../gql'
import type { ExploreProjectsQuery } from '../gql/graphql'
import { formatCents, formatDate } from '../lib/format'
import { useTitle } from '../lib/useTitle'
import { useSession } from '../session'

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
            ...RunSummary
          }
        }
        fundable: runs(status: AWAITING_FUNDING, first: 10) {
          nodes {
            ...RunSummary
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
        by <UserLink user={project.owner} /> · updated {formatDate(project.updatedAt)}
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
          {after === null && data.projects.nodes.length === 0 && <NothingFound search={search} />}
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

function NothingFound({ search }: { search: string }) {
  const { viewer } = useSession()
  if (search) return <EmptyState title={`No projects match “${search}”.`}>Try fewer or other words.</EmptyState>
  return (
    <EmptyState title="No projects yet.">
      {viewer ? <Link to="/projects/new">Start the first one</Link> : 'Researchers will publish them here.'}
    </EmptyState>
  )
}

export function ExplorePage() {
  const [params] = useSearchParams()
  const search = useSearch()
  useTitle('Explore experiments')

  if (params.get('view') === 'funding') return <Navigate to={`/discover${search ? `?q=${encodeURIComponent(search)}` : ''}`} replace />
  return (
    <section>
      <div className="page-head">
        <h1>Explore experiments</h1>
        <SearchBox id="project-search" label="Search projects, notebooks and researchers"
          placeholder="Search projects, notebooks, researchers…" />
      </div>
      <div className="toolbar">
        <Link className="button" to={`/discover${search ? `?q=${encodeURIComponent(search)}` : ''}`}>
          Runs that need funding
        </Link>
      </div>
      <Pages key={search}>{(after, onMore) => <ProjectsPage search={search} after={after} onMore={onMore} />}</Pages>
    </section>
  )
}
