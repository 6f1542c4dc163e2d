/** Sign up and log in: both start a browser session (HTTP-only cookie) and return to `next`. */
import { useState, type ChangeEvent } from 'react'
import { Link, useNavigate, useSearchParams } from 'react-router'
import { Form, SubmitButton, TextField } from '../components/forms'
import { graphql } from '../gql'
import { useMutationForm } from '../lib/useMutationForm'
import { useSession } from '../session'
import { useTitle } from '../lib/useTitle'

const SignUpDocument = graphql(`
  mutation SignUp($input: SignUpInput!) {
    signUp(input: $input) {
      __typename
      ... on ViewerSession {
        viewer {
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

const LoginDocument = graphql(`
  mutation Login($input: LoginInput!) {
    login(input: $input) {
      __typename
      ... on ViewerSession {
        viewer {
          id
        }
      }
      ... on Error {
        message
        code
      }
    }
  }
`)

// The API's own rules, checked before sending.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/
const HANDLE = /^[a-z0-9][a-z0-9_-]{1,38}$/

/** After a session starts: a fresh client, then back where the person came from. */
function useSignedIn() {
  const { sessionChanged } = useSession()
  const navigate = useNavigate()
  const [params] = useSearchParams()
  const next = params.get('next')
  return () => {
    sessionChanged()
    navigate(next && next.startsWith('/') ? next : '/', { replace: true })
  }
}

export function SignUpPage() {
  useTitle('Sign up')
  const [values, setValues] = useState({ handle: '', displayName: '', email: '', password: '' })
  const { form, submit } = useMutationForm(SignUpDocument)
  const signedIn = useSignedIn()
  const [params] = useSearchParams()
  const set = (name: keyof typeof values) => (e: ChangeEvent<HTMLInputElement>) =>
    setValues({ ...values, [name]: e.target.value })

  const onSubmit = async () => {
    const data = await submit(
      { input: { ...values, displayName: values.displayName.trim() || null } },
      {
        handle: !HANDLE.test(values.handle.trim().toLowerCase()) &&
          'Use 2–39 lowercase letters, digits, - or _ (starting with a letter or digit).',
        email: !EMAIL.test(values.email) && 'Enter an email address like name@example.org.',
        password: (values.password.length < 8 || values.password.length > 200) && 'Use 8 to 200 characters.',
      },
    )
    if (data?.signUp.__typename === 'ViewerSession') signedIn()
  }

  return (
    <section className="narrow">
      <h1>Create your account</h1>
      <Form form={form} onSubmit={onSubmit} aria-label="Sign up">
        <TextField name="handle" label="Handle" autoComplete="username" value={values.handle} onChange={set('handle')}
          hint="Your public name in URLs and discussions." required />
        <TextField name="displayName" label="Display name (optional)" autoComplete="name" value={values.displayName}
          onChange={set('displayName')} />
        <TextField name="email" label="Email" type="email" autoComplete="email" value={values.email}
          onChange={set('email')} required />
        <TextField name="password" label="Password" type="password" autoComplete="new-password"
          value={values.password} onChange={set('password')} hint="8 to 200 characters." required />
        <SubmitButton fetching={form.fetching}>Sign up</SubmitButton>
      </Form>
      <p>
        Already have an account? <Link to={`/login?${params}`}>Log in</Link>
      </p>
    </section>
  )
}

export function LoginPage() {
  useTitle('Log in')
  const [values, setValues] = useState({ email: '', password: '' })
  const { form, submit } = useMutationForm(LoginDocument)
  const signedIn = useSignedIn()
  const [params] = useSearchParams()

  const onSubmit = async () => {
    const data = await submit(
      { input: values },
      { email: !EMAIL.test(values.email) && 'Enter your email address.', password: !values.password && 'Enter your password.' },
    )
    if (data?.login.__typename === 'ViewerSession') signedIn()
  }

  return (
    <section className="narrow">
      <h1>Log in</h1>
      <Form form={form} onSubmit={onSubmit} aria-label="Log in">
        <TextField name="email" label="Email" type="email" autoComplete="email" value={values.email}
          onChange={(e) => setValues({ ...values, email: e.target.value })} required />
        <TextField name="password" label="Password" type="password" autoComplete="current-password"
          value={values.password} onChange={(e) => setValues({ ...values, password: e.target.value })} required />
        <SubmitButton fetching={form.fetching}>Log in</SubmitButton>
      </Form>
      <p>
        New here? <Link to={`/signup?${params}`}>Create an account</Link>
      </p>
    </section>
  )
}
