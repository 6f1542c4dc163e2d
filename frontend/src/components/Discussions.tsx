/** A project's discussions, or the platform's (no project): the list and a form to start one. */
import { useState } from 'react'
import { Link, useNavigate } from 'react-router'
import { useQuery } from 'urql'
import { graphql } from '../gql'
import { ProjectActivityDocument } from '../graphql/live'
import { useRefetchOnEvent } from '../lib/useLive'
import { formatDate } from '../lib/format'
import { useMutationForm } from '../lib/useMutationForm'
import { useSession } from '../session'
import { EmptyState, QueryState } from './feedback'
import { Form, SubmitButton, TextAreaField, TextField } from './forms'
import { UserLink } from './UserLink'

const ProjectDiscussionsDocument = graphql(`
  query ProjectDiscussions($projectId: ID) {
    discussions(projectId: $projectId, first: 50) {
      nodes {
        id
        title
        isPinned
        isDeleted
        commentCount
        lastActivityAt
        author {
          id
          handle
          displayName
        }
      }
    }
  }
`)

const CreatePlatformDiscussionDocument = graphql(`
  mutation CreatePlatformDiscussion($input: CreateDiscussionInput!) {
    createDiscussion(input: $input) {
      __typename
      ... on DiscussionSuccess {
        discussion {
          id
        }
      }
      ...WriteError
      ...WriteFieldErrors
    }
  }
`)

const CreateProjectDiscussionDocument = graphql(`
  mutation CreateProjectDiscussion($input: CreateProjectDiscussionInput!) {
    createProjectDiscussion(input: $input) {
      __typename
      ... on DiscussionSuccess {
        discussion {
          id
        }
      }
      ... on Error {
        message
        code
      }
      ... on ValidationFailed {
        fields {
          field
          message
        }
      }
    }
  }
`)

function NewDiscussionForm({ projectId }: { projectId: string | undefined }) {
  const [title, setTitle] = useState('')
  const [body, setBody] = useState('')
  const project = useMutationForm(CreateProjectDiscussionDocument)
  const platform = useMutationForm(CreatePlatformDiscussionDocument)
  const { form } = projectId ? project : platform
  const navigate = useNavigate()
  const onSubmit = async () => {
    const checks = { title: !title.trim() && 'Give the discussion a title.', body: !body.trim() && 'Write what you want to discuss.' }
    const input = { title: title.trim(), body }
    const created = projectId
      ? (await project.submit({ input: { ...input, projectId } }, checks))?.createProjectDiscussion
      : (await platform.submit({ input }, checks))?.createDiscussion
    if (created?.__typename === 'DiscussionSuccess') navigate(`/discussions/${created.discussion.id}`)
  }
  return (
    <Form form={form} onSubmit={onSubmit} aria-label="Start a discussion">
      <TextField name="title" label="Title" value={title} maxLength={200} onChange={(e) => setTitle(e.target.value)} />
      <TextAreaField name="body" label="Message (Markdown)" rows={5} value={body}
        onChange={(e) => setBody(e.target.value)} />
      <SubmitButton fetching={form.fetching}>Start discussion</SubmitButton>
    </Form>
  )
}

export function Discussions({ projectId, heading = 'Discussions' }: { projectId?: string; heading?: string }) {
  const { viewer } = useSession()
  const [open, setOpen] = useState(false)
  const [result, refetch] = useQuery({ query: ProjectDiscussionsDocument, variables: { projectId: projectId ?? null } })
  // Project discussions follow the project's activity; platform ones have no stream.
  useRefetchOnEvent(ProjectActivityDocument, { projectId: projectId ?? '', afterSeq: null }, refetch, !projectId)
  return (
    <section aria-labelledby="discussions-heading">
      <div className="section-head">
        <h2 id="discussions-heading">{heading}</h2>
        {viewer && (
          <button type="button" className="button" aria-expanded={open} onClick={() => setOpen(!open)}>
            {open ? 'Cancel' : 'Start a discussion'}
          </button>
        )}
      </div>
      {open && <NewDiscussionForm projectId={projectId} />}
      <QueryState result={result} retry={() => refetch({ requestPolicy: 'network-only' })}>
        {(data) =>
          data.discussions.nodes.length === 0 ? (
            <EmptyState title="No discussions yet." />
          ) : (
            <ul className="list">
              {data.discussions.nodes.map((d) => (
                <li key={d.id}>
                  <Link to={`/discussions/${d.id}`}>{d.title}</Link>
                  {d.isPinned && <span className="badge badge-muted">Pinned</span>}
                  <span className="muted small">
                    {' '}
                    · <UserLink user={d.author} /> · {d.commentCount} comment{d.commentCount === 1 ? '' : 's'} · last
                    activity {formatDate(d.lastActivityAt)}
                  </span>
                </li>
              ))}
            </ul>
          )
        }
      </QueryState>
    </section>
  )
}
