/**
 * Live pages: a subscription is the wake-up, the query stays the truth. Each event, and the
 * end of the stream (a run or job that reached its final state), makes the page re-read its
 * query from the server, so the last change is never missed.
 */
import { useEffect, useRef } from 'react'
import { useClient, type AnyVariables, type OperationContext, type TypedDocumentNode } from 'urql'
import { onEnd, pipe, subscribe } from 'wonka'

export function useRefetchOnEvent<Data, Variables extends AnyVariables>(
  subscription: TypedDocumentNode<Data, Variables>,
  variables: Variables,
  refetch: (context?: Partial<OperationContext>) => void,
  pause = false,
) {
  const client = useClient()
  const latest = useRef(refetch)
  useEffect(() => {
    latest.current = refetch
  })
  const key = JSON.stringify(variables)
  useEffect(() => {
    if (pause) return
    let mounted = true
    const again = () => mounted && latest.current({ requestPolicy: 'network-only' })
    const { unsubscribe } = pipe(
      client.subscription(subscription, JSON.parse(key) as Variables),
      onEnd(again),
      subscribe(again),
    )
    return () => {
      mounted = false
      unsubscribe()
    }
  }, [client, subscription, key, pause])
}
