/**
 * One discussion with its threaded comments; replies nest under their parent. Authors edit and
 * delete their own posts here; project discussions follow `projectActivity`, so new, edited and
 * deleted comments show for every reader without a reload. An edited post shows its versions
 * (the notes' history view); its author restores one as a new edit.
 */
import { lazy, Suspense, useEffect, useRef, useState, type CSSProperties, type ReactNode, type RefObject } from 'react'
import { Link, useNavigate, useParams } from 'react-router'
import { useMutation, useQuery, type OperationContext } from 'urql'
import { BodyEditForm, type BodyDraft } from '../components/BodyEditForm'
import { EmptyState, ErrorMessage, Loading, QueryState } from '../components/feedback'
import { Form, SubmitButton, TextAreaField, TextField } from '../components/forms'
import { HtmlContent } from '../components/HtmlContent'
import { LoadMore, Pages } from '../components/Pages'
import { UserLink } from '../components/UserLink'
import { graphql } from '../gql'
import type { DiscussionCommentsQuery, DiscussionQuery, RevisionItemFragment } from '../gql/graphql'
import { ProjectActivityDocument } from '../graphql/live'
import { formatDate } from '../lib/format'
import { useRefetchOnEvent } from '../lib/useLive'
import { useMutationForm } from '../lib/useMutationForm'
import { useTitle } from '../lib/useTitle'
import { useSession } from '../session'

const DiscussionDocument = graphql(`
  query Discussion($id: ID!) {
    discussion(id: $id) {
      id
      title
      body
      bodyVersion
      bodyHtml
      isDeleted
      isPinned
      createdAt
      commentCount
      author {
        id
        handle
        displayName
      }
      project {
        id
        title
        owner {
          id
        }
      }
    }
  }
`)

const PinDiscussionDocument = graphql(`
  mutation PinDiscussion($input: DiscussionIdInput!) {
    pinDiscussion(input: $input) {
      __typename
      ... on DiscussionSuccess {
        discussion {
          id
          isPinned
        }
      }
      ...WriteError
    }
  }
`)

const UnpinDiscussionDocument = graphql(`
  mutation UnpinDiscussion($input: DiscussionIdInput!) {
    unpinDiscussion(input: $input) {
      __typename
      ... on DiscussionSuccess {
        discussion {
          id
          isPinned
        }
      }
      ...WriteError
    }
  }
`)

const DiscussionCommentsDocument = graphql(`
  query DiscussionComments($id: ID!, $after: String) {
    discussion(id: $id) {
      id
      comments(first: 50, after: $after) {
        nodes {
          id
          depth
          body
          bodyVersion
          bodyHtml
          isDeleted
          createdAt
          author {
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
    }
  }
`)

const CreateCommentDocument = graphql(`
  mutation CreateComment($input: CreateCommentInput!) {
    createComment(input: $input) {
      __typename
      ... on CommentSuccess {
        comment {
          id
          discussion {
            id
            commentCount
          }
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

const UpdateDiscussionDocument = graphql(`
  mutation UpdateDiscussion($input: UpdateDiscussionInput!) {
    updateDiscussion(input: $input) {
      __typename
      ... on DiscussionSuccess {
        discussion {
          id
          title
          body
          bodyVersion
          bodyHtml
        }
      }
      ...NotesConflict
      ...WriteError
      ...WriteFieldErrors
    }
  }
`)

const DeleteDiscussionDocument = graphql(`
  mutation DeleteDiscussion($input: DiscussionIdInput!) {
    deleteDiscussion(input: $input) {
      discussion {
        id
        isDeleted
      }
    }
  }
`)

const UpdateCommentDocument = graphql(`
  mutation UpdateComment($input: UpdateCommentInput!) {
    updateComment(input: $input) {
      __typename
      ... on CommentSuccess {
        comment {
          id
          body
          bodyVersion
          bodyHtml
        }
      }
      ...NotesConflict
      ...WriteError
      ...WriteFieldErrors
    }
  }
`)

const DeleteCommentDocument = graphql(`
  mutation DeleteComment($input: CommentIdInput!) {
    deleteComment(input: $input) {
      comment {
        id
        isDeleted
        body
        bodyHtml
      }
    }
  }
`)

// The versions of a body (revisions, diff) load on first use, in the notes history's chunk.
const RevisionHistory = lazy(() => import('../components/RevisionHistory'))

// A new comment must refresh the thread even while it is empty.
const COMMENT_CONTEXT = { additionalTypenames: ['Comment'] }

type Discussion = DiscussionQuery['discussion']
type Comment = DiscussionCommentsQuery['discussion']['comments']['nodes'][number]

/** Re-read on the project's activity (comments, edits, deletions); platform discussions have none. */
function useProjectLive(projectId: string | undefined, refetch: (context?: Partial<OperationContext>) => void) {
  useRefetchOnEvent(ProjectActivityDocument, { projectId: projectId ?? '', afterSeq: null }, refetch, !projectId)
}

/** Focus `target` when `active` turns false (an editor closed), so the keyboard stays where it was. */
function useFocusOnClose(active: boolean) {
  const target = useRef<HTMLButtonElement>(null)
  const was = useRef(active)
  useEffect(() => {
    if (was.current && !active) target.current?.focus()
    was.current = active
  }, [active])
  return target
}

/** Restoring a version is an edit that starts from its text (saved like any other edit). */
const restoring = (revision: RevisionItemFragment): BodyDraft => ({
  body: revision.body,
  summary: `Restored version ${revision.version}`,
})

function HistoryToggle({ open, onToggle }: { open: boolean; onToggle: () => void }) {
  return (
    <button type="button" className="button link small" aria-expanded={open} onClick={onToggle}>
      {open ? 'Hide history' : 'History'}
    </button>
  )
}

/** The versions of a post's body; `onRestore` for its author only. */
function BodyVersions({ id, label, version, onRestore }: {
  id: string
  label: string
  version: number
  onRestore?: (revision: RevisionItemFragment) => void
}) {
  return (
    <Suspense fallback={<Loading />}>
      <RevisionHistory key={version} id={id} label={label} currentVersion={version} onRestore={onRestore} />
    </Suspense>
  )
}

/** "Edit" and "Delete" for the author's own post, and a quiet "Saved." after an edit. */
function OwnPostActions({ what, onEdit, onDelete, editRef, saved, deleting, children }: {
  what: string
  onEdit: () => void
  onDelete: () => void
  editRef: RefObject<HTMLButtonElement | null>
  saved: boolean
  deleting: boolean
  children?: ReactNode
}) {
  return (
    <p className="actions small">
      {children}
      <button ref={editRef} type="button" className="button link small" onClick={onEdit}>
        Edit {what}
      </button>
      <button type="button" className="button link small danger-link" disabled={deleting} onClick={onDelete}>
        Delete {what}
      </button>
      <span className="muted" role="status">
        {saved ? 'Saved.' : ''}
      </span>
    </p>
  )
}

function EditCommentForm({ comment, start, onDone }: {
  comment: Comment
  start: BodyDraft
  onDone: (saved: boolean) => void
}) {
  const { form, submit } = useMutationForm(UpdateCommentDocument)
  const save = async (body: string, bodyBaseVersion: number, editSummary: string) =>
    (await submit(
      { input: { id: comment.id, body, bodyBaseVersion, editSummary } },
      { body: !body.trim() && 'A comment cannot be empty; delete it instead.' },
    ))?.updateComment ?? null
  return (
    <BodyEditForm name="Edit comment" what="comment" bodyLabel="Your comment (Markdown)" rows={4}
      current={{ version: comment.bodyVersion, body: comment.body }} start={start} form={form} save={save}
      onDone={onDone} />
  )
}

function CommentForm({ discussionId, parentId, onDone }: {
  discussionId: string
  parentId?: string
  onDone?: () => void
}) {
  const [body, setBody] = useState('')
  const { form, submit } = useMutationForm(CreateCommentDocument)
  const onSubmit = async () => {
    const data = await submit(
      { input: { discussionId, parentId: parentId ?? null, body } },
      { body: !body.trim() && 'Write a comment first.' },
    )
    if (data?.createComment.__typename === 'CommentSuccess') {
      setBody('')
      onDone?.()
    }
  }
  return (
    <Form form={form} onSubmit={onSubmit} aria-label={parentId ? 'Reply' : 'Comment'}>
      <TextAreaField name="body" label={parentId ? 'Your reply' : 'Add a comment (Markdown)'} rows={parentId ? 3 : 4}
        value={body} onChange={(e) => setBody(e.target.value)} />
      <SubmitButton fetching={form.fetching}>{parentId ? 'Reply' : 'Comment'}</SubmitButton>
    </Form>
  )
}

function CommentItem({ comment, discussionId, closed }: { comment: Comment; discussionId: string; closed: boolean }) {
  const { viewer } = useSession()
  const [replying, setReplying] = useState(false)
  const [editing, setEditing] = useState<BodyDraft | null>(null)
  const [history, setHistory] = useState(false)
  const [saved, setSaved] = useState(false)
  const editRef = useFocusOnClose(editing !== null)
  const [deleting, remove] = useMutation(DeleteCommentDocument)
  const own = viewer != null && viewer.id === comment.author?.id && !comment.isDeleted
  const edited = comment.bodyVersion > 1 && !comment.isDeleted
  const edit = (draft: BodyDraft) => {
    setSaved(false)
    setEditing(draft)
  }
  const onDelete = () => {
    if (window.confirm('Delete this comment? Replies to it stay.')) void remove({ input: { id: comment.id } })
  }
  return (
    <li className="comment" style={{ '--depth': Math.min(comment.depth, 6) } as CSSProperties}>
      <p className="muted small">
        <UserLink user={comment.author} /> · {formatDate(comment.createdAt)}
        {comment.bodyVersion > 1 && !comment.isDeleted && ' · edited'}
      </p>
      {editing ? (
        <EditCommentForm comment={comment} start={editing} onDone={(ok) => {
          setSaved(ok)
          setEditing(null)
        }} />
      ) : comment.isDeleted ? (
        <p className="muted">[deleted]</p>
      ) : (
        <HtmlContent html={comment.bodyHtml} />
      )}
      {deleting.error && <ErrorMessage error={deleting.error} />}
      {(viewer || edited) && !comment.isDeleted && !editing && (
        <div className="actions">
          {viewer && !closed && (
            <button type="button" className="button link small" aria-expanded={replying}
              onClick={() => setReplying(!replying)}>
              {replying ? 'Cancel reply' : 'Reply'}
            </button>
          )}
          {edited && <HistoryToggle open={history} onToggle={() => setHistory(!history)} />}
          {own && (
            <OwnPostActions what="comment" editRef={editRef} saved={saved} deleting={deleting.fetching}
              onEdit={() => edit({ body: comment.body, summary: '' })} onDelete={onDelete} />
          )}
        </div>
      )}
      {history && edited && !editing && (
        <BodyVersions id={comment.id} label="Comment history" version={comment.bodyVersion}
          onRestore={own ? (r) => edit(restoring(r)) : undefined} />
      )}
      {replying && <CommentForm discussionId={discussionId} parentId={comment.id} onDone={() => setReplying(false)} />}
    </li>
  )
}

function CommentsPage({ id, projectId, closed, after, onMore }: {
  id: string
  projectId: string | undefined
  /** The discussion was deleted: no new replies. */
  closed: boolean
  after: string | null
  onMore: ((c: string) => void) | null
}) {
  const [result, refetch] = useQuery({ query: DiscussionCommentsDocument, variables: { id, after }, context: COMMENT_CONTEXT })
  useProjectLive(projectId, refetch)
  return (
    <QueryState result={result}>
      {(data) => (
        <>
          {after === null && data.discussion.comments.nodes.length === 0 && <EmptyState title="No comments yet." />}
          <ol className="thread">
            {data.discussion.comments.nodes.map((c) => (
              <CommentItem key={c.id} comment={c} discussionId={id} closed={closed} />
            ))}
          </ol>
          <LoadMore pageInfo={data.discussion.comments.pageInfo} fetching={result.fetching} onMore={onMore} />
        </>
      )}
    </QueryState>
  )
}

/** Pin or unpin: the project's owner (an admin for platform discussions). Pinned ones list first. */
function PinButton({ discussion }: { discussion: Discussion }) {
  const [pinning, pin] = useMutation(PinDiscussionDocument)
  const [unpinning, unpin] = useMutation(UnpinDiscussionDocument)
  const [message, setMessage] = useState('')
  const toggle = async () => {
    const input = { input: { id: discussion.id } }
    const result = discussion.isPinned ? (await unpin(input)).data?.unpinDiscussion : (await pin(input)).data?.pinDiscussion
    if (result?.__typename === 'DiscussionSuccess') {
      setMessage(result.discussion.isPinned ? 'Pinned: it now lists first.' : 'Unpinned.')
    } else if (result && 'message' in result) setMessage(result.message)
  }
  const error = pinning.error ?? unpinning.error
  return (
    <>
      <button type="button" className="button small" aria-pressed={discussion.isPinned}
        disabled={pinning.fetching || unpinning.fetching} onClick={toggle}>
        {discussion.isPinned ? 'Unpin' : 'Pin to top'}
      </button>
      <span className="muted small" role="status">
        {message}
      </span>
      {error && <ErrorMessage error={error} />}
    </>
  )
}

function EditDiscussionForm({ discussion, start, onDone }: {
  discussion: Discussion
  start: BodyDraft
  onDone: (saved: boolean) => void
}) {
  const [title, setTitle] = useState(discussion.title)
  const { form, submit } = useMutationForm(UpdateDiscussionDocument)
  const save = async (body: string, bodyBaseVersion: number, editSummary: string) =>
    (await submit(
      { input: { id: discussion.id, title: title.trim(), body, bodyBaseVersion, editSummary } },
      { title: !title.trim() && 'Give the discussion a title.', body: !body.trim() && 'Write what you want to discuss.' },
    ))?.updateDiscussion ?? null
  return (
    <BodyEditForm name="Edit discussion" what="discussion" bodyLabel="Message (Markdown)" rows={6}
      current={{ version: discussion.bodyVersion, body: discussion.body }} start={start} form={form} save={save}
      onDone={onDone}>
      <TextField name="title" label="Title" value={title} maxLength={200} autoFocus
        onChange={(e) => setTitle(e.target.value)} />
    </BodyEditForm>
  )
}

function DiscussionView({ discussion }: { discussion: Discussion }) {
  const { viewer } = useSession()
  const navigate = useNavigate()
  const [editing, setEditing] = useState<BodyDraft | null>(null)
  const [history, setHistory] = useState(false)
  const [saved, setSaved] = useState(false)
  const editRef = useFocusOnClose(editing !== null)
  const [deleting, remove] = useMutation(DeleteDiscussionDocument)
  const own = viewer != null && viewer.id === discussion.author?.id && !discussion.isDeleted
  const edited = discussion.bodyVersion > 1 && !discussion.isDeleted
  const edit = (draft: BodyDraft) => {
    setSaved(false)
    setEditing(draft)
  }
  const historyToggle = edited && <HistoryToggle open={history} onToggle={() => setHistory(!history)} />
  const canPin = viewer != null && !discussion.isDeleted &&
    (viewer.isAdmin || (discussion.project != null && viewer.id === discussion.project.owner.id))
  const id = discussion.id
  useTitle(discussion.title)
  const onDelete = async () => {
    if (!window.confirm('Delete this discussion? Its comments stay readable by link.')) return
    const result = await remove({ input: { id } })
    if (!result.error) navigate(discussion.project ? `/projects/${discussion.project.id}` : '/')
  }
  return (
    <article className="narrow-wide">
      {discussion.project && (
        <p className="small">
          <Link to={`/projects/${discussion.project.id}`}>← {discussion.project.title}</Link>
        </p>
      )}
      {editing ? (
        <EditDiscussionForm discussion={discussion} start={editing} onDone={(ok) => {
          setSaved(ok)
          setEditing(null)
        }} />
      ) : (
        <>
          <h1>
            {discussion.title} {discussion.isPinned && <span className="badge badge-muted">Pinned</span>}
          </h1>
          <p className="muted small">
            <UserLink user={discussion.author} /> · {formatDate(discussion.createdAt)}
            {discussion.bodyVersion > 1 && !discussion.isDeleted && ' · edited'}
          </p>
          {canPin && (
            <p className="actions">
              <PinButton discussion={discussion} />
            </p>
          )}
          {discussion.isDeleted ? (
            <p className="alert alert-warning" role="status">
              This discussion was deleted. Its comments stay readable here; it takes no new ones.
            </p>
          ) : (
            <HtmlContent html={discussion.bodyHtml} />
          )}
          {deleting.error && <ErrorMessage error={deleting.error} />}
          {own ? (
            <OwnPostActions what="discussion" editRef={editRef} saved={saved} deleting={deleting.fetching}
              onEdit={() => edit({ body: discussion.body, summary: '' })} onDelete={onDelete}>
              {historyToggle}
            </OwnPostActions>
          ) : (
            historyToggle && <p className="actions small">{historyToggle}</p>
          )}
          {history && edited && (
            <BodyVersions id={id} label="Discussion history" version={discussion.bodyVersion}
              onRestore={own ? (r) => edit(restoring(r)) : undefined} />
          )}
        </>
      )}
      <section aria-labelledby="comments-heading">
        <h2 id="comments-heading">Comments ({discussion.commentCount})</h2>
        <Pages>
          {(after, onMore) => (
            <CommentsPage id={id} projectId={discussion.project?.id} closed={discussion.isDeleted} after={after}
              onMore={onMore} />
          )}
        </Pages>
        {discussion.isDeleted ? null : viewer ? (
          <CommentForm discussionId={id} />
        ) : (
          <p>
            <Link to={`/login?next=/discussions/${id}`}>Log in</Link> to comment.
          </p>
        )}
      </section>
    </article>
  )
}

export function DiscussionPage() {
  const { id = '' } = useParams()
  const [result, refetch] = useQuery({ query: DiscussionDocument, variables: { id } })
  useProjectLive(result.data?.discussion.project?.id, refetch)
  return (
    <QueryState result={result} retry={() => refetch({ requestPolicy: 'network-only' })}
      notFound={{ what: 'Discussion' }}>
      {({ discussion }) => <DiscussionView discussion={discussion} />}
    </QueryState>
  )
}
