/** The one-click unsubscribe link from notification emails (no login needed). */
import { useEffect } from 'react'
import { Link, useSearchParams } from 'react-router'
import { useMutation } from 'urql'
import { Alert, ErrorMessage, Loading } from '../components/feedback'
import { graphql } from '../gql'
import { humanize } from '../lib/format'

const UnsubscribeDocument = graphql(`
  mutation Unsubscribe($input: UnsubscribeInput!) {
    unsubscribe(input: $input) {
      __typename
      ... on UnsubscribeSuccess {
        kind
      }
      ... on Error {
        message
      }
    }
  }
`)

export function UnsubscribePage() {
  const [params] = useSearchParams()
  const token = params.get('token') ?? ''
  const [result, unsubscribe] = useMutation(UnsubscribeDocument)
  useEffect(() => {
    if (token) void unsubscribe({ input: { token } })
  }, [token, unsubscribe])
  const payload = result.data?.unsubscribe
  return (
    <section className="narrow">
      <h1>Email notifications</h1>
      {!token && <Alert tone="error">This unsubscribe link is incomplete.</Alert>}
      {result.fetching && <Loading />}
      {result.error && <ErrorMessage error={result.error} />}
      {payload?.__typename === 'UnsubscribeSuccess' && (
        <Alert tone="success">
          You will no longer get emails {payload.kind ? `about “${humanize(payload.kind)}”` : 'from mlpatron'}.
        </Alert>
      )}
      {payload && payload.__typename !== 'UnsubscribeSuccess' && <Alert tone="error">{payload.message}</Alert>}
      <p>
        <Link to="/settings/notifications">Manage all notification settings</Link>
      </p>
    </section>
  )
}
