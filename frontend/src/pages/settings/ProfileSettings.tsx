import { useState } from 'react'
import { useQuery } from 'urql'
import { Alert, QueryState } from '../../components/feedback'
import { Form, SubmitButton, TextAreaField, TextField } from '../../components/forms'
import { graphql } from '../../gql'
import type { ProfileQuery } from '../../gql/graphql'
import { useMutationForm } from '../../lib/useMutationForm'

const ProfileDocument = graphql(`
  query Profile {
    viewer {
      id
      handle
      email
      displayName
      bio
    }
  }
`)

const UpdateViewerDocument = graphql(`
  mutation UpdateViewer($input: UpdateViewerInput!) {
    updateViewer(input: $input) {
      __typename
      ... on UpdateViewerSuccess {
        viewer {
          id
          displayName
          bio
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

function ProfileForm({ viewer }: { viewer: NonNullable<ProfileQuery['viewer']> }) {
  const [displayName, setDisplayName] = useState(viewer.displayName)
  const [bio, setBio] = useState(viewer.bio)
  const [saved, setSaved] = useState(false)
  const { form, submit } = useMutationForm(UpdateViewerDocument)
  const onSubmit = async () => {
    setSaved(false)
    const data = await submit(
      { input: { displayName: displayName.trim(), bio } },
      { displayName: !displayName.trim() && 'Enter the name others see.' },
    )
    setSaved(data?.updateViewer.__typename === 'UpdateViewerSuccess')
  }
  return (
    <Form form={form} onSubmit={onSubmit} aria-label="Profile">
      {saved && <Alert tone="success">Profile saved.</Alert>}
      <p>
        Handle <strong>{viewer.handle}</strong> · {viewer.email}
      </p>
      <TextField name="displayName" label="Display name" value={displayName} maxLength={100}
        onChange={(e) => setDisplayName(e.target.value)} />
      <TextAreaField name="bio" label="Bio" rows={4} value={bio} onChange={(e) => setBio(e.target.value)} />
      <SubmitButton fetching={form.fetching}>Save profile</SubmitButton>
    </Form>
  )
}

export function ProfileSettings() {
  const [result] = useQuery({ query: ProfileDocument })
  return (
    <>
      <h2>Profile</h2>
      <QueryState result={result}>{(data) => data.viewer && <ProfileForm viewer={data.viewer} />}</QueryState>
    </>
  )
}
