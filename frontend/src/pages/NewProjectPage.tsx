/** A researcher starts a project: a git repository and a lab notebook. */
import { useState } from 'react'
import { useNavigate } from 'react-router'
import { Form, SubmitButton, TextAreaField, TextField } from '../components/forms'
import { RequireLogin } from '../components/RequireLogin'
import { graphql } from '../gql'
import { useMutationForm } from '../lib/useMutationForm'
import { useTitle } from '../lib/useTitle'

const CreateProjectDocument = graphql(`
  mutation CreateProject($input: CreateProjectInput!) {
    createProject(input: $input) {
      __typename
      ... on ProjectSuccess {
        project {
          id
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

function NewProjectForm() {
  const [values, setValues] = useState({ title: '', gitUrl: '', notes: '' })
  const { form, submit } = useMutationForm(CreateProjectDocument)
  const navigate = useNavigate()
  const onSubmit = async () => {
    const data = await submit(
      { input: { ...values, title: values.title.trim(), gitUrl: values.gitUrl.trim() } },
      {
        title: !values.title.trim() && 'Give the project a title.',
        gitUrl: !values.gitUrl.trim() && 'Enter the git repository with your MLproject.',
      },
    )
    if (data?.createProject.__typename === 'ProjectSuccess') {
      navigate(`/projects/${data.createProject.project.id}/runs/new`)
    }
  }
  return (
    <Form form={form} onSubmit={onSubmit} aria-label="New project">
      <TextField name="title" label="Title" value={values.title} maxLength={200}
        onChange={(e) => setValues({ ...values, title: e.target.value })} />
      <TextField name="gitUrl" label="Git repository" value={values.gitUrl} placeholder="https://github.com/you/repo"
        hint="A public repository with an MLproject file." onChange={(e) => setValues({ ...values, gitUrl: e.target.value })} />
      <TextAreaField name="notes" label="Lab notebook (Markdown)" rows={10} value={values.notes}
        hint="Hypotheses, plans, and later what each run showed. Patrons read this before funding."
        onChange={(e) => setValues({ ...values, notes: e.target.value })} />
      <SubmitButton fetching={form.fetching}>Create project</SubmitButton>
    </Form>
  )
}

export function NewProjectPage() {
  useTitle('New project')
  return (
    <section className="narrow-wide">
      <h1>New project</h1>
      <RequireLogin what="how to start a project">
        <NewProjectForm />
      </RequireLogin>
    </section>
  )
}
