/** Which notifications arrive in the app and by email, per kind; each change saves at once and says so. */
import { useState } from 'react'
import { useMutation, useQuery } from 'urql'
import { ErrorMessage, QueryState } from '../../components/feedback'
import { graphql } from '../../gql'
import type { NotificationKind } from '../../gql/graphql'
import { humanize } from '../../lib/format'

const PreferencesDocument = graphql(`
  query NotificationPreferences {
    notificationPreferences {
      kind
      inApp
      email
    }
  }
`)

const UpdatePreferencesDocument = graphql(`
  mutation UpdateNotificationPreferences($input: UpdateNotificationPreferencesInput!) {
    updateNotificationPreferences(input: $input) {
      __typename
      ... on NotificationPreferencesSuccess {
        preferences {
          kind
          inApp
          email
        }
      }
      ... on Error {
        message
      }
    }
  }
`)

export function NotificationSettings() {
  const [result] = useQuery({ query: PreferencesDocument })
  const [update, save] = useMutation(UpdatePreferencesDocument)
  // The saved answer is the newest truth; the query result until the first save.
  const saved = update.data?.updateNotificationPreferences
  const preferences =
    saved?.__typename === 'NotificationPreferencesSuccess' ? saved.preferences : result.data?.notificationPreferences
  const [confirmation, setConfirmation] = useState('')
  const change = async (kind: NotificationKind, field: 'inApp' | 'email', value: boolean) => {
    setConfirmation('')
    const done = await save({ input: { preferences: [{ kind, [field]: value }] } })
    if (done.data?.updateNotificationPreferences.__typename === 'NotificationPreferencesSuccess') {
      const where = field === 'inApp' ? 'in the app' : 'by email'
      setConfirmation(`Saved: “${humanize(kind)}” notifications ${value ? 'will' : 'will no longer'} arrive ${where}.`)
    }
  }

  return (
    <>
      <h2>Notifications</h2>
      <p className="muted small">Changes are saved as you tick.</p>
      <p className={confirmation ? 'alert alert-success' : 'sr-only'} role="status">
        {confirmation}
      </p>
      {update.error && <ErrorMessage error={update.error} />}
      {saved && saved.__typename !== 'NotificationPreferencesSuccess' && <p className="field-error">{saved.message}</p>}
      <QueryState result={result}>
        {() => (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">In the app</th>
                  <th scope="col">By email</th>
                </tr>
              </thead>
              <tbody>
                {(preferences ?? []).map((p) => (
                  <tr key={p.kind}>
                    <th scope="row">{humanize(p.kind)}</th>
                    {(['inApp', 'email'] as const).map((field) => (
                      <td key={field}>
                        <input type="checkbox" checked={p[field]} disabled={update.fetching}
                          aria-label={`${humanize(p.kind)}: ${field === 'inApp' ? 'in the app' : 'by email'}`}
                          onChange={(e) => change(p.kind, field, e.target.checked)} />
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </QueryState>
    </>
  )
}
