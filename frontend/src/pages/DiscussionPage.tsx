/** One discussion with its threaded comments; replies nest under their parent. */
import { useState, type CSSProperties } from 'react'
import { Link, useParams } from 'react-router'
import { useQuery } from 'urql'
import { EmptyState, QueryState } from '../components/feedback'
import { Form, SubmitButton, TextAreaField } from '../components/forms'
import { HtmlContent } from '../components/HtmlContent'
import { LoadMore, Pages } from '../components/Pages'
import { graphql } from '../gql'
import type { DiscussionCommentsQuery } from '../gql/graphql'
import { formatDate } from '../lib/format'
import { useMutationForm } from '../lib/useMutationForm'
import { useSession } from '../session'

const DiscussionDocument = graphql(`
  query Discussion($id: ID!) {
    discussion(id: $id) {
      id
      title
      bodyHtml
      isDeleted
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
      }
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
          bodyHtml
          isDeleted
          createdAt
          author {
            id
            handle
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

// A new comment must refresh the thread even while it is empty.
const COMMENT_CONTEXT = { additionalTypenames: ['Comment'] }

type Comment = DiscussionCommentsQuery['discussion']['comments']['nodes'][number]

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

function CommentItem({ comment, discussionId }: { comment: Comment; discussionId: string }) {
  const { viewer } = useSession()
  const [replying, setReplying] = useState(false)
  return (
    <li className="comment" style={{ '--depth': Math.min(comment.depth, 6) } as CSSProperties}>
      <p className="muted small">
        {comment.author?.handle ?? '[deleted]'} · {formatDate(comment.createdAt)}
      </p>
      {comment.isDeleted ? <p className="muted">[deleted]</p> : <HtmlContent html={comment.bodyHtml} />}
      {viewer && !comment.isDeleted && (
        <button type="button" className="button link small" aria-expanded={replying}
          onClick={() => setReplying(!replying)}>
          {replying ? 'Cancel reply' : 'Reply'}
        </button>
      )}
      {replying && <CommentForm discussionId={discussionId} parentId={comment.id} onDone={() => setReplying(false)} />}
    </li>
  )
}

function CommentsPage({ id, after, onMore }: { id: string; after: string | null; onMore: ((c: string) => void) | null }) {
  const [result] = useQuery({ query: DiscussionCommentsDocument, variables: { id, after }, context: COMMENT_CONTEXT })
  return (
    <QueryState result={result}>
      {(data) => (
        <>
          {after === null && data.discussion.comments.nodes.length === 0 && <EmptyState title="No comments yet." />}
          <ol className="thread">
            {data.discussion.comments.nodes.map((c) => (
              <CommentItem key={c.id} comment={c} discussionId={id} />
            ))}
          </ol>
          <LoadMore pageInfo={data.discussion.comments.pageInfo} fetching={result.fetching} onMore={onMore} />
        </>
      )}
    </QueryState>
  )
}

export function DiscussionPage() {
  const { id = '' } = useParams()
  const { viewer } = useSession()
  const [result, refetch] = useQuery({ query: DiscussionDocument, variables: { id } })
  return (
    <QueryState result={result} retry={() => refetch({ requestPolicy: 'network-only' })}>
      {({ discussion }) => (
        <article className="narrow-wide">
          {discussion.project && (
            <p className="small">
              <Link to={`/projects/${discussion.project.id}`}>← {discussion.project.title}</Link>
            </p>
          )}
          <h1>{discussion.title}</h1>
          <p className="muted small">
            {discussion.author ? discussion.author.displayName || discussion.author.handle : '[deleted]'} ·{' '}
            {formatDate(discussion.createdAt)}
          </p>
          <HtmlContent html={discussion.bodyHtml} />
          <section aria-labelledby="comments-heading">
            <h2 id="comments-heading">Comments ({discussion.commentCount})</h2>
            <Pages>{(after, onMore) => <CommentsPage id={id} after={after} onMore={onMore} />}</Pages>
            {viewer ? (
              <CommentForm discussionId={id} />
            ) : (
              <p>
                <Link to={`/login?next=/discussions/${id}`}>Log in</Link> to comment.
              </p>
            )}
          </section>
        </article>
      )}
    </QueryState>
  )
}
