/**
 * Live pages: a subscription is the wake-up, the query stays the truth. Each event makes
 * the page re-read its query from the server.
 */
import { useEffect, useRef } from 'react'
import { useSubscription, type AnyVariables, type OperationContext, type TypedDocumentNode } from 'urql'

export function useRefetchOnEvent<Data, Variables extends AnyVariables>(
  subscription: TypedDocumentNode<Data, Variables>,
  variables: Variables,
  refetch: (context?: Partial<OperationContext>) => void,
  pause = false,
) {
  const [{ data }] = useSubscription({ query: subscription, variables, pause })
  const latest = useRef(refetch)
  useEffect(() => {
    latest.current = refetch
  })
  useEffect(() => {
    if (data) latest.current({ requestPolicy: 'network-only' })
  }, [data])
}
