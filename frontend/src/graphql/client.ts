/**
 * The one GraphQL client: urql over HTTP (same-origin session cookie) and graphql-ws for
 * subscriptions (the websocket handshake carries the same cookie).
 *
 * Resumable streams: a subscription whose variables include `afterSeq` has that variable
 * advanced to the last received `seq`, so when graphql-ws reconnects and re-subscribes it
 * asks for exactly what it missed (no gap, no duplicates).
 */
import { useSyncExternalStore } from 'react'
import { Client, cacheExchange, fetchExchange, subscriptionExchange, type ExecutionResult } from 'urql'
import { createClient as createWsClient, type SubscribePayload } from 'graphql-ws'

export type ConnectionStatus = 'idle' | 'connecting' | 'connected' | 'reconnecting'

let status: ConnectionStatus = 'idle'
const listeners = new Set<() => void>()

function setStatus(next: ConnectionStatus) {
  if (next === status) return
  status = next
  listeners.forEach((listener) => listener())
}

/** The realtime connection's state, for the "reconnecting" banner. */
export function useConnectionStatus(): ConnectionStatus {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    () => status,
  )
}

function websocketUrl(): string {
  const { protocol, host } = window.location
  return `${protocol === 'https:' ? 'wss:' : 'ws:'}//${host}/graphql`
}

/** The `seq` of a subscription event: `{ jobLogs: { seq } }` → seq. */
function eventSeq(data: unknown): number | undefined {
  if (!data || typeof data !== 'object') return undefined
  const [root] = Object.values(data as Record<string, unknown>)
  const seq = root && typeof root === 'object' ? (root as { seq?: unknown }).seq : undefined
  return typeof seq === 'number' ? seq : undefined
}

export interface GraphQLClient {
  client: Client
  dispose: () => void
}

export function createGraphQLClient(): GraphQLClient {
  let active = 0
  let disposed = false
  // A replaced client (after login/logout) no longer speaks for the connection.
  const report = (next: ConnectionStatus) => {
    if (!disposed) setStatus(next)
  }
  const ws = createWsClient({
    url: websocketUrl(),
    lazy: true,
    keepAlive: 10_000,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    retryWait: async (retries) => {
      const ms = Math.min(1000 * 2 ** retries, 8000) * (0.75 + Math.random() / 2)
      await new Promise((resolve) => setTimeout(resolve, ms))
    },
    on: {
      connecting: (isRetry) => report(isRetry ? 'reconnecting' : 'connecting'),
      connected: () => report('connected'),
      // Lazy: the socket closes when the last subscription ends; with subscribers left it retries.
      closed: () => report(active > 0 ? 'reconnecting' : 'idle'),
    },
  })

  const client = new Client({
    url: '/graphql',
    fetchOptions: { credentials: 'include' },
    requestPolicy: 'cache-and-network',
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          // Our own copy: graphql-ws re-sends this very object when it re-subscribes.
          const variables: Record<string, unknown> = { ...request.variables }
          const payload: SubscribePayload = { query: request.query ?? '', variables, operationName: request.operationName }
          const resumable = 'afterSeq' in variables
          return {
            subscribe(sink) {
              active += 1
              let ended = false
              const end = () => {
                if (!ended) active -= 1
                ended = true
              }
              const unsubscribe = ws.subscribe(payload, {
                next(result) {
                  const seq = resumable ? eventSeq(result.data) : undefined
                  if (seq !== undefined) variables.afterSeq = seq
                  sink.next(result as ExecutionResult)
                },
                error(error) {
                  end()
                  sink.error(error)
                },
                complete() {
                  end()
                  sink.complete()
                },
              })
              return {
                unsubscribe() {
                  end()
                  unsubscribe()
                },
              }
            },
          }
        },
      }),
    ],
  })

  return {
    client,
    dispose: () => {
      disposed = true
      setStatus('idle')
      void ws.dispose()
    },
  }
}
