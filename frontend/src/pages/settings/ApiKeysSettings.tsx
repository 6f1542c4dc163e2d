/** API keys for agents: the secret is shown once; the list shows prefix and last use. */
import { useState } from 'react'
import { useMutation, useQuery } from 'urql'
import { CopyButton } from '../../components/CopyButton'
import { Alert, EmptyState, ErrorMessage, QueryState } from '../../components/feedback'
import { Form, SubmitButton, TextField } from '../../components/forms'
import { graphql } from '../../gql'
import { formatDate } from '../../lib/format'
import { useMutationForm } from '../../lib/useMutationForm'

const ApiKeysDocument = graphql(`
  query ApiKeys {
    viewer {
      id
      apiKeys {
        id
        name
        prefix
        createdAt
        lastUsedAt
        revokedAt
      }
    }
  }
`)

const CreateApiKeyDocument = graphql(`
  mutation CreateApiKey($input: CreateApiKeyInput!) {
    createApiKey(input: $input) {
      __typename
      ... on CreateApiKeySuccess {
        secret
        apiKey {
          id
          name
          prefix
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

const RevokeApiKeyDocument = graphql(`
  mutation RevokeApiKey($input: RevokeApiKeyInput!) {
    revokeApiKey(input: $input) {
      apiKey {
        id
        revokedAt
      }
    }
  }
`)

const API_KEY_CONTEXT = { additionalTypenames: ['ApiKey'] }

function NewSecret({ name, secret }: { name: string; secret: string }) {
  return (
    <Alert tone="success">
      <p>
        Your new key <strong>{name}</strong>. Copy it now: it will not be shown again.
      </p>
      <p className="secret">
        <code data-testid="api-key-secret">{secret}</code>{' '}
        <CopyButton text={secret} what="the key" />
      </p>
    </Alert>
  )
}

function CreateKeyForm() {
  const [name, setName] = useState('')
  const [created, setCreated] = useState<{ name: string; secret: string } | null>(null)
  const { form, submit } = useMutationForm(CreateApiKeyDocument)
  const onSubmit = async () => {
    setCreated(null)
    const data = await submit({ input: { name: name.trim() } }, { name: !name.trim() && 'Name the key, e.g. “my agent”.' })
    const result = data?.createApiKey
    if (result?.__typename === 'CreateApiKeySuccess') {
      setCreated({ name: result.apiKey.name, secret: result.secret })
      setName('')
    }
  }
  return (
    <>
      {created && <NewSecret {...created} />}
      <Form form={form} onSubmit={onSubmit} aria-label="Create API key" className="form inline">
        <TextField name="name" label="Key name" value={name} maxLength={100} onChange={(e) => setName(e.target.value)} />
        <SubmitButton fetching={form.fetching}>Create key</SubmitButton>
      </Form>
    </>
  )
}

export function ApiKeysSettings() {
  // A new key must refresh the list even while it is empty (no ApiKey typename in it yet).
  const [result] = useQuery({ query: ApiKeysDocument, context: API_KEY_CONTEXT })
  const [revoking, revoke] = useMutation(RevokeApiKeyDocument)
  const onRevoke = (id: string, name: string) => {
    if (window.confirm(`Revoke “${name}”? Agents using it stop working at once.`)) void revoke({ input: { id } })
  }
  return (
    <>
      <h2>API keys</h2>
      <p className="muted">Agents call the API with a key in the Authorization header. Only you can create keys, here.</p>
      <CreateKeyForm />
      {revoking.error && <ErrorMessage error={revoking.error} />}
      <QueryState result={result}>
        {(data) => {
          const keys = data.viewer?.apiKeys ?? []
          if (keys.length === 0) return <EmptyState title="No API keys yet." />
          return (
            <div className="table-wrap">
              <table className="stack">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Key</th>
                    <th scope="col">Created</th>
                    <th scope="col">Last used</th>
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {keys.map((key) => (
                    <tr key={key.id}>
                      <td data-label="Name">{key.name}</td>
                      <td data-label="Key">
                        <code>{key.prefix}…</code>
                      </td>
                      <td data-label="Created">{formatDate(key.createdAt)}</td>
                      <td data-label="Last used">{key.lastUsedAt ? formatDate(key.lastUsedAt) : 'Never'}</td>
                      <td data-label="">
                        {key.revokedAt ? (
                          <span className="muted">Revoked {formatDate(key.revokedAt)}</span>
                        ) : (
                          <button type="button" className="button danger small" disabled={revoking.fetching}
                            onClick={() => onRevoke(key.id, key.name)}>
                            Revoke
                          </button>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }}
      </QueryState>
    </>
  )
}
