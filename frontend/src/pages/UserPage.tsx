/** Someone's public profile: who they are, their projects, and the runs they funded. */
import { Link, useParams } from 'react-router'
import { useQuery } from 'urql'
import { EmptyState, QueryState } from '../components/feedback'
import { LoadMore, Pages } from '../components/Pages'
import { StatusBadge } from '../components/StatusBadge'
import { graphql } from '../gql'
import { formatCents, formatDate } from '../lib/format'
import { useTitle } from '../lib/useTitle'
import { useSession } from '../session'

const UserProfileDocument = graphql(`
  query UserProfile($id: ID!) {
    user(id: $id) {
      id
      handle
      displayName
      bio
      createdAt
    }
  }
`)

const UserProjectsDocument = graphql(`
  query UserProjects($ownerId: ID!, $after: String) {
    projects(ownerId: $ownerId, first: 20, after: $after) {
      nodes {
        id
        title
        updatedAt
        stats {
          totalFundedCents
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`)

const UserFundingsDocument = graphql(`
  query UserFundings($id: ID!, $after: String) {
    user(id: $id) {
      id
      publicFundings(first: 20, after: $after) {
        nodes {
          id
          amountCents
          createdAt
          run {
            id
            title
            status
            project {
              id
              title
            }
          }
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`)

type More = ((cursor: string) => void) | null

function ProjectsPage({ ownerId, after, onMore }: { ownerId: string; after: string | null; onMore: More }) {
  const [result] = useQuery({ query: UserProjectsDocument, variables: { ownerId, after } })
  return (
    <QueryState result={result}>
      {(data) => (
        <>
          {after === null && data.projects.nodes.length === 0 && <EmptyState title="No projects yet." />}
          {data.projects.nodes.length > 0 && (
            <ul className="list">
              {data.projects.nodes.map((p) => (
                <li key={p.id}>
                  <Link to={`/projects/${p.id}`}>{p.title}</Link>
                  <span className="muted small">
                    {' '}
                    · {formatCents(p.stats.totalFundedCents)} raised · updated {formatDate(p.updatedAt)}
                  </span>
                </li>
              ))}
            </ul>
          )}
          <LoadMore pageInfo={data.projects.pageInfo} fetching={result.fetching} onMore={onMore} />
        </>
      )}
    </QueryState>
  )
}

function FundingsPage({ userId, after, onMore }: { userId: string; after: string | null; onMore: More }) {
  const [result] = useQuery({ query: UserFundingsDocument, variables: { id: userId, after } })
  return (
    <QueryState result={result}>
      {({ user }) => user && (
        <>
          {after === null && user.publicFundings.nodes.length === 0 && <EmptyState title="No fundings yet." />}
          {user.publicFundings.nodes.length > 0 && (
            <ul className="list">
              {user.publicFundings.nodes.map((f) => (
                <li key={f.id}>
                  <strong>{formatCents(f.amountCents)}</strong> to <Link to={`/runs/${f.run.id}`}>{f.run.title}</Link>{' '}
                  <StatusBadge status={f.run.status} />
                  <span className="muted small">
                    {' '}
                    · <Link to={`/projects/${f.run.project.id}`}>{f.run.project.title}</Link> · {formatDate(f.createdAt)}
                  </span>
                </li>
              ))}
            </ul>
          )}
          <LoadMore pageInfo={user.publicFundings.pageInfo} fetching={result.fetching} onMore={onMore} />
        </>
      )}
    </QueryState>
  )
}

export function UserPage() {
  const { id = '' } = useParams()
  const { viewer } = useSession()
  const [result, refetch] = useQuery({ query: UserProfileDocument, variables: { id } })
  const user = result.data?.user
  useTitle(user ? user.displayName || user.handle : null)
  return (
    <QueryState result={result} retry={() => refetch({ requestPolicy: 'network-only' })}
      notFound={{ what: 'User', back: { to: '/', label: 'Back to Explore' } }}>
      {({ user }) =>
        !user ? (
          <EmptyState title="User not found." />
        ) : (
          <article>
            <div className="page-head">
              <div>
                <h1>{user.displayName || user.handle}</h1>
                <p className="muted small">
                  @{user.handle} · joined {formatDate(user.createdAt)}
                </p>
              </div>
              {viewer?.id === user.id && (
                <Link className="button" to="/settings/profile">
                  Edit your profile
                </Link>
              )}
            </div>
            {user.bio && <p className="bio">{user.bio}</p>}
            <div className="grid-2">
              <section aria-labelledby="user-projects-heading" className="panel">
                <h2 id="user-projects-heading">Projects</h2>
                <Pages>{(after, onMore) => <ProjectsPage ownerId={user.id} after={after} onMore={onMore} />}</Pages>
              </section>
              <section aria-labelledby="user-fundings-heading" className="panel">
                <h2 id="user-fundings-heading">Runs funded</h2>
                <Pages>{(after, onMore) => <FundingsPage userId={user.id} after={after} onMore={onMore} />}</Pages>
              </section>
            </div>
          </article>
        )
      }
    </QueryState>
  )
}
