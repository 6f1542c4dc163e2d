/** Explore: every project with its latest run's status and funding, searchable. */
import { useEffect, useState } from 'react'
import { Link, useSearchParams } from 'react-router'
import { useQuery } from 'urql'
import { EmptyState, QueryState } from '../components/feedback'
import { FundingProgress } from '../components/FundingProgress'
import { LoadMore, Pages } from '../components/Pages'
import { StatusBadge } from '../components/StatusBadge'
import { graphql } from '../gql'
import type { ExploreProjectsQuery } from '../gql/graphql'
import { formatDate } from '../lib/format'
import { useSession } from '../session'

const ExploreProjectsDocument = graphql(`
  query ExploreProjects($search: String, $after: String) {
    projects(first: 12, after: $after, search: $search, orderBy: RECENTLY_UPDATED) {
      nodes {
        id
        title
        updatedAt
        owner {
          id
          handle
          displayName
        }
        runs(first: 1) {
          nodes {
            id
            title
            status
            fundedCents
            fundingGapCents
            estimatedCostCents
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
  const [latest] = project.runs.nodes
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
    </li>
  )
}

/** One page of results; the last page offers the next one. */
function ResultsPage({ search, after, onMore }: {
  search: string
  after: string | null
  onMore: ((cursor: string) => void) | null
}) {
  const [result, refetch] = useQuery({ query: ExploreProjectsDocument, variables: { search: search || null, after } })
  return (
    <QueryState result={result} retry={() => refetch({ requestPolicy: 'network-only' })}>
      {(data) => (
        <>
          {after === null && data.projects.nodes.length === 0 && <NoProjects search={search} />}
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

function NoProjects({ search }: { search: string }) {
  const { viewer } = useSession()
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
  const [text, setText] = useState(search)

  // Search as you type, once typing pauses.
  useEffect(() => {
    const timer = setTimeout(() => {
      if (text.trim() !== search) setParams(text.trim() ? { q: text.trim() } : {}, { replace: true })
    }, 300)
    return () => clearTimeout(timer)
  }, [text, search, setParams])

  return (
    <section>
      <div className="page-head">
        <h1>Explore experiments</h1>
        <form role="search" onSubmit={(e) => e.preventDefault()} className="search">
          <label htmlFor="project-search" className="sr-only">
            Search projects
          </label>
          <input id="project-search" type="search" placeholder="Search projects…" value={text}
            onChange={(e) => setText(e.target.value)} />
        </form>
      </div>
      <Pages key={search}>{(after, onMore) => <ResultsPage search={search} after={after} onMore={onMore} />}</Pages>
    </section>
  )
}
