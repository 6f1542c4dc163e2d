/** Who is using the app, and a way to tell the app the session changed (login, logout). */
import { createContext, useContext } from 'react'
import type { ViewerQuery } from './gql/graphql'

export type Viewer = NonNullable<ViewerQuery['viewer']>

export interface Session {
  viewer: Viewer | null
  /** False until the first viewer query answered. */
  ready: boolean
  /** After login/logout: a fresh client (empty cache, websocket re-authenticated by the new cookie). */
  sessionChanged: () => void
}

export const SessionContext = createContext<Session>({ viewer: null, ready: false, sessionChanged: () => {} })

export function useSession(): Session {
  return useContext(SessionContext)
}
