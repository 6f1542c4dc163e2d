/** Feedback to the platform's administrators: a bug, a feature request or a question (`submitFeedback`). */
import { useEffect, useRef, useState } from 'react'
import { Link } from 'react-router'
import { Alert } from '../components/feedback'
import { Form, RadioGroup, SubmitButton, TextAreaField, TextField } from '../components/forms'
import { RequireLogin } from '../components/RequireLogin'
import { graphql } from '../gql'
import type { FeedbackType } from '../gql/graphql'
import { useMutationForm } from '../lib/useMutationForm'
import { useTitle } from '../lib/useTitle'

const SubmitFeedbackDocument = graphql(`
  mutation SubmitFeedback($input: SubmitFeedbackInput!) {
    submitFeedback(input: $input) {
      __typename
      ... on SubmitFeedbackSuccess {
        feedback {
          id
          title
        }
      }
      ...WriteFieldErrors
    }
  }
`)

const KINDS = [
  { value: 'BUG', label: 'Something is broken', hint: 'What you did, what happened, what you expected.' },
  { value: 'FEATURE', label: 'An idea or a missing feature' },
  { value: 'QUESTION', label: 'A question' },
] as const

function FeedbackForm() {
  const [type, setType] = useState<FeedbackType>('BUG')
  const [title, setTitle] = useState('')
  const [description, setDescription] = useState('')
  const [sent, setSent] = useState<string | null>(null)
  const { form, submit } = useMutationForm(SubmitFeedbackDocument)
  const another = useRef<HTMLButtonElement>(null)
  // Once the thanks are on the page, the keyboard continues from "Send more feedback".
  useEffect(() => {
    if (sent !== null) another.current?.focus()
  }, [sent])

  const onSubmit = async () => {
    const data = await submit(
      { input: { type, title: title.trim(), description } },
      { title: !title.trim() && 'Give it a short title.', description: !description.trim() && 'Tell us a little more.' },
    )
    if (data?.submitFeedback.__typename === 'SubmitFeedbackSuccess') {
      setSent(data.submitFeedback.feedback.title)
      setTitle('')
      setDescription('')
    }
  }

  if (sent !== null) {
    return (
      <>
        <Alert tone="success">Thank you: “{sent}” reached the administrators.</Alert>
        <p className="actions">
          <button ref={another} type="button" className="button" onClick={() => setSent(null)}>
            Send more feedback
          </button>
          <Link to="/discussions">Or discuss ideas in the open</Link>
        </p>
      </>
    )
  }
  return (
    <Form form={form} onSubmit={onSubmit} aria-label="Feedback">
      <RadioGroup name="type" legend="What is it about?" options={KINDS} value={type} onChange={setType} />
      <TextField name="title" label="Title" value={title} maxLength={200} onChange={(e) => setTitle(e.target.value)} />
      <TextAreaField name="description" label="Details" rows={6} value={description}
        onChange={(e) => setDescription(e.target.value)} />
      <SubmitButton fetching={form.fetching}>Send feedback</SubmitButton>
    </Form>
  )
}

export function FeedbackPage() {
  useTitle('Feedback')
  return (
    <section className="narrow">
      <h1>Feedback</h1>
      <p className="muted">Only the platform’s administrators read what you send here.</p>
      <RequireLogin what="the feedback form">
        <FeedbackForm />
      </RequireLogin>
    </section>
  )
}
