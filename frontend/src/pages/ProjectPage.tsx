/** A project: lab notebook, runs (and two compared), stats, discussions, follow. */
import { lazy, Suspense, useState } from 'react'
import { Link, useParams } from 'react-router'
import { useMutation, useQuery } from 'urql'
import { Discussions } from '../components/Discussions'
import { EmptyState, Loading, QueryState } from '../components/feedback'
import { FundingProgress } from '../components/FundingProgress'
import { NotesEditor } from '../components/NotesEditor'
import { StatusBadge } from '../components/StatusBadge'
import { graphql } from '../gql'
import type { ProjectPageQuery } from '../gql/graphql'
import { describeError } from '../lib/errors'
import { formatCents, formatDate, humanize } from '../lib/format'
import { ProjectActivityDocument } from '../graphql/live'
import { useRefetchOnEvent } from '../lib/useLive'
import { useNotesSaver } from '../lib/useNotesSaver'
import { useSession } from '../session'
import { useTitle } from '../lib/useTitle'

const CompareRuns = lazy(() => import('../components/run/CompareRuns'))

const ProjectPageDocument = graphql(`
  query ProjectPage($id: ID!) {
    project(id: $id) {
      id
      title
      gitUrl
      notes
      notesVersion
      notesHtml
      balanceCents
      createdAt
      viewerIsFollowing
      stats {
        runsByStatus {
          status
          count
        }
        totalRuns
        totalFundedCents
        totalSpentCents
        followers
      }
      owner {
        id
        handle
        displayName
      }
      runs(first: 100) {
        nodes {
          id
          title
          status
          createdAt
          fundedCents
          fundingGapCents
          estimatedCostCents
          resources {
            gpuType
            gpuCount
          }
        }
      }
    }
  }
`)

graphql(`
  fragment ProjectNotes on Project {
    id
    notes
    notesVersion
    notesHtml
  }
`)

const PatchProjectNotesDocument = graphql(`
  mutation PatchProjectNotes($input: PatchTextInput!) {
    patchProjectNotes(input: $input) {
      __typename
      ... on ProjectSuccess {
        project {
          ...ProjectNotes
        }
      }
      ...NotesConflict
      ...WriteError
      ...WriteFieldErrors
    }
  }
`)

const ReplaceProjectNotesDocument = graphql(`
  mutation ReplaceProjectNotes($input: UpdateProjectInput!) {
    updateProject(input: $input) {
      __typename
      ... on ProjectSuccess {
        project {
          ...ProjectNotes
        }
      }
      ...NotesConflict
      ...WriteError
      ...WriteFieldErrors
    }
  }
`)

const FollowDocument = graphql(`
  mutation FollowProject($input: FollowProjectInput!) {
    followProject(input: $input) {
      following
      project {
        id
        viewerIsFollowing
      }
    }
  }
`)

const UnfollowDocument = graphql(`
  mutation UnfollowProject($input: FollowProjectInput!) {
    unfollowProject(input: $input) {
      following
      project {
        id
        viewerIsFollowing
      }
    }
  }
`)

type Project = ProjectPageQuery['project']
type RunRow = Project['runs']['nodes'][number]

function FollowButton({ projectId, viewerIsFollowing }: { projectId: string; viewerIsFollowing: boolean }) {
  // The latest answer to a click wins over the page's (possibly not yet re-read) value.
  const [toggled, setFollowing] = useState<boolean | null>(null)
  const following = toggled ?? viewerIsFollowing
  const [follow, doFollow] = useMutation(FollowDocument)
  const [unfollow, doUnfollow] = useMutation(UnfollowDocument)
  const error = follow.error ?? unfollow.error
  const toggle = async () => {
    const input = { input: { projectId } }
    const result = following ? await doUnfollow(input) : await doFollow(input)
    const data = result.data
    if (data) setFollowing('followProject' in data ? data.followProject.following : data.unfollowProject.following)
  }
  return (
    <span>
      <button type="button" className="button" aria-pressed={following} onClick={toggle}
        disabled={follow.fetching || unfollow.fetching}>
        {following ? 'Following ✓' : 'Follow'}
      </button>
      {error && <span className="field-error"> {describeError(error)}</span>}
    </span>
  )
}

function ProjectStats({ stats, balanceCents }: { stats: Project['stats']; balanceCents: number }) {
  return (
    <dl className="stats">
      <div>
        <dt>Runs</dt>
        <dd>{stats.totalRuns}</dd>
      </div>
      <div>
        <dt>Total funded</dt>
        <dd>{formatCents(stats.totalFundedCents)}</dd>
      </div>
      <div>
        <dt>Total spent</dt>
        <dd>{formatCents(stats.totalSpentCents)}</dd>
      </div>
      <div>
        <dt>Project balance</dt>
        <dd>{formatCents(balanceCents)}</dd>
      </div>
      <div>
        <dt>Followers</dt>
        <dd>{stats.followers}</dd>
      </div>
      {stats.runsByStatus.map(({ status, count }) => (
        <div key={status}>
          <dt>{humanize(status)}</dt>
          <dd>{count}</dd>
        </div>
      ))}
    </dl>
  )
}

function RunsTable({ runs }: { runs: RunRow[] }) {
  if (runs.length === 0) return <EmptyState title="No runs yet." />
  return (
    <div className="table-wrap">
      <table className="stack">
        <thead>
          <tr>
            <th scope="col">Run</th>
            <th scope="col">Status</th>
            <th scope="col">GPU</th>
            <th scope="col">Funding</th>
            <th scope="col">Created</th>
          </tr>
        </thead>
        <tbody>
          {runs.map((run) => (
            <tr key={run.id}>
              <td data-label="Run">
                <Link to={`/runs/${run.id}`}>{run.title}</Link>
              </td>
              <td data-label="Status">
                <StatusBadge status={run.status} />
              </td>
              <td data-label="GPU">
                {run.resources.gpuCount} × {run.resources.gpuType}
              </td>
              <td data-label="Funding" className="cell-progress">
                <FundingProgress {...run} />
              </td>
              <td data-label="Created">{formatDate(run.createdAt)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

function ProjectView({ project }: { project: Project }) {
  const { viewer } = useSession()
  const isOwner = viewer?.id === project.owner.id
  const notes = useNotesSaver(project.id, PatchProjectNotesDocument, ReplaceProjectNotesDocument)
  useTitle(project.title)

  return (
    <article>
      <div className="page-head">
        <div>
          <h1>{project.title}</h1>
          <p className="muted">
            by {project.owner.displayName || project.owner.handle} · <code className="break">{project.gitUrl}</code>
          </p>
        </div>
        <div className="actions">
          {viewer && <FollowButton projectId={project.id} viewerIsFollowing={project.viewerIsFollowing} />}
          {isOwner && (
            <Link className="button primary" to={`/projects/${project.id}/runs/new`}>
              New run
            </Link>
          )}
        </div>
      </div>
      <ProjectStats stats={project.stats} balanceCents={project.balanceCents} />
      <section aria-labelledby="notes-heading">
        <h2 id="notes-heading">Lab notebook</h2>
        <NotesEditor id={project.id} html={project.notesHtml} body={project.notes} version={project.notesVersion} canEdit={isOwner}
          {...notes} />
      </section>
      <section aria-labelledby="runs-heading">
        <h2 id="runs-heading">Runs</h2>
        <RunsTable runs={project.runs.nodes} />
      </section>
      {project.runs.nodes.length >= 2 && (
        <section aria-labelledby="compare-heading">
          <h2 id="compare-heading">Compare runs</h2>
          <Suspense fallback={<Loading />}>
            <CompareRuns runs={project.runs.nodes} />
          </Suspense>
        </section>
      )}
      <Discussions projectId={project.id} />
    </article>
  )
}

export function ProjectPage() {
  const { id = '' } = useParams()
  const [result, refetch] = useQuery({ query: ProjectPageDocument, variables: { id } })
  // New runs, run status changes and discussions show up without a reload.
  useRefetchOnEvent(ProjectActivityDocument, { projectId: id, afterSeq: null }, refetch, !result.data?.project)
  return (
    <QueryState result={result} retry={() => refetch({ requestPolicy: 'network-only' })}
      notFound={{ what: 'Project' }}>
      {(data) => <ProjectView project={data.project} />}
    </QueryState>
  )
}
