import { useCallback, useMemo, useRef, useState, type ReactNode } from 'react'
import { Provider, useQuery } from 'urql'
import { createGraphQLClient } from '../graphql/client'
import { graphql } from '../gql'
import { SessionContext } from '../session'

const ViewerDocument = graphql(`
  query Viewer {
    viewer {
      id
      handle
      displayName
      isAdmin
    }
  }
`)

function ViewerSession({ sessionChanged, children }: { sessionChanged: () => void; children: ReactNode }) {
  const [{ data, error }] = useQuery({ query: ViewerDocument })
  const session = useMemo(
    () => ({ viewer: data?.viewer ?? null, ready: data !== undefined || error !== undefined, sessionChanged }),
    [data, error, sessionChanged],
  )
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>
}

/** The GraphQL client and the viewer; a new session gets a new client. */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [graphqlClient, setGraphqlClient] = useState(createGraphQLClient)
  const current = useRef(graphqlClient)
  const sessionChanged = useCallback(() => {
    current.current.dispose()
    current.current = createGraphQLClient()
    setGraphqlClient(current.current)
  }, [])
  return (
    <Provider value={graphqlClient.client}>
      <ViewerSession sessionChanged={sessionChanged}>{children}</ViewerSession>
    </Provider>
  )
}
