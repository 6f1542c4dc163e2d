/**
 * A researcher submits a run: read the MLproject at a version, pick the entry point and its
 * parameters, the dryrun scale-down, and the GPU resources; the dryrun starts at once.
 */
import { useEffect, useState } from 'react'
import { Link, useNavigate, useParams, useSearchParams } from 'react-router'
import { useClient, useMutation, useQuery } from 'urql'
import { Alert, QueryState } from '../components/feedback'
import { Form, SelectField, SubmitButton, TextAreaField, TextField } from '../components/forms'
import { RequireLogin } from '../components/RequireLogin'
import { ResourcePicker } from '../components/run/ResourcePicker'
import { graphql } from '../gql'
import type { ParsedMlprojectFieldsFragment, RunToCopyQuery } from '../gql/graphql'
import type { FieldErrors } from '../lib/errors'
import { defaultResources, resourcesFor, type Catalog, type Resources } from '../lib/resources'
import { useTypedForm } from '../lib/useMutationForm'
import { useTitle } from '../lib/useTitle'
import { useSession } from '../session'

const NewRunContextDocument = graphql(`
  query NewRunContext($id: ID!) {
    project(id: $id) {
      id
      title
      gitUrl
      owner {
        id
      }
    }
    gpuCatalog {
      gpuType
      displayName
      machineTypes {
        machineType
        vcpu
        memoryGib
        gpuCount
        pricePerHour {
          onDemandCents
          spotCents
        }
      }
    }
  }
`)

graphql(`
  fragment ParsedMlprojectFields on ParsedMLproject {
    uri
    version
    commitSha
    name
    image
    entryPoints {
      name
      command
      parameters {
        name
        type
        default
        required
      }
      dryrunSuggestion {
        param
        value
      }
    }
  }
`)

const ParseMlprojectDocument = graphql(`
  query ParseMlproject($uri: String!, $version: String!) {
    parseMlproject(uri: $uri, version: $version) {
      __typename
      ...ParsedMlprojectFields
      ... on Error {
        message
        code
      }
      ... on GitError {
        reason
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

/** The run a new one starts from ("Edit and run again" on a failed dryrun). */
const RunToCopyDocument = graphql(`
  query RunToCopy($id: ID!) {
    run(id: $id) {
      id
      title
      uri
      version
      entryPoint
      parameters
      dryrunOverrideParam
      dryrunOverrideValue
      resources {
        gpuType
        gpuCount
        machineType
        spot
      }
      project {
        id
      }
    }
  }
`)

const CreateRunDocument = graphql(`
  mutation CreateRun($input: CreateRunInput!) {
    createRun(input: $input) {
      __typename
      ... on RunSuccess {
        run {
          id
        }
      }
      ...WriteError
      ...WriteFieldErrors
    }
  }
`)

const CopyRunDocument = graphql(`
  mutation CopyRun($input: CopyRunInput!) {
    copyRun(input: $input) {
      __typename
      ... on RunSuccess {
        run {
          id
        }
      }
      ...WriteError
      ...WriteFieldErrors
    }
  }
`)

type Parsed = ParsedMlprojectFieldsFragment
type EntryPoint = Parsed['entryPoints'][number]
const NUMERIC = new Set(['int', 'float'])

/** What the form starts with when a run is submitted again: its settings, to edit. */
interface Prefill {
  /** The run this one is copied from (`copyRun` records it), and the repository it ran. */
  source: { id: string; uri: string }
  title: string
  entryPoint: string
  parameters: Record<string, string>
  dryrunParam: string
  dryrunValue: string
  resources: Resources
}

/** Step 1: which code (repository and version) to read; the version starts as the repository's default branch. */
function SourceStep({ defaultUri, defaultVersion = '', onParsed }: {
  defaultUri: string
  defaultVersion?: string
  onParsed: (parsed: Parsed) => void
}) {
  const [uri, setUri] = useState(defaultUri)
  const [version, setVersion] = useState(defaultVersion)
  const client = useClient()
  const { form, run } = useTypedForm()

  const read = async () => {
    const variables = { uri: uri.trim(), version: version.trim() }
    const data = await run(
      () => client.query(ParseMlprojectDocument, variables, { requestPolicy: 'network-only' }).toPromise(),
      { uri: !variables.uri && 'Enter the repository.' },
    )
    const payload = data?.parseMlproject
    if (payload?.__typename === 'ParsedMLproject') onParsed(payload)
    if (payload?.__typename === 'GitError' || payload?.__typename === 'MLprojectError') {
      // Point at the field to fix: an unknown ref is the version, anything else the repository.
      form.setFormError(null)
      form.setErrors({ [payload.__typename === 'GitError' && payload.reason === 'UNKNOWN_REF' ? 'version' : 'uri']: payload.message })
    }
  }
  return (
    <Form form={form} onSubmit={read} aria-label="Read MLproject">
      <TextField name="uri" label="Repository" value={uri} onChange={(e) => setUri(e.target.value)} />
      <TextField name="version" label="Version (branch, tag or commit)" value={version} placeholder="default branch"
        hint="Leave empty for the repository’s default branch." onChange={(e) => setVersion(e.target.value)} />
      <SubmitButton fetching={form.fetching}>Read MLproject</SubmitButton>
    </Form>
  )
}

function initialParams(entry: EntryPoint, from?: Record<string, string>): Record<string, string> {
  return Object.fromEntries(entry.parameters.map((p) => [p.name, from?.[p.name] ?? p.default ?? '']))
}

/**
 * Typed values: ints and floats as numbers, the rest as text (the API checks them again).
 * A blank field is never quietly replaced by the default: the person is asked for a value.
 */
function typedParams(entry: EntryPoint, values: Record<string, string>, errors: FieldErrors) {
  const out: Record<string, string | number> = {}
  for (const p of entry.parameters) {
    const raw = (values[p.name] ?? '').trim()
    const key = `parameters.${p.name}`
    if (!raw) {
      errors[key] = p.default != null ? `Enter a value (the default is ${p.default}).` : 'Enter a value: it is required.'
      continue
    }
    if (p.type === 'int' && !/^-?\d+$/.test(raw)) errors[key] = 'Enter a whole number.'
    else if (p.type === 'float' && !Number.isFinite(Number(raw))) errors[key] = 'Enter a number.'
    else if (NUMERIC.has(p.type) && Math.abs(Number(raw)) > MAX_MAGNITUDE) errors[key] = TOO_LARGE
    out[p.name] = NUMERIC.has(p.type) ? Number(raw) : raw
  }
  return out
}

/** The API's bound on a numeric parameter (app/core/limits.py PARAM_MAGNITUDE). */
const MAX_MAGNITUDE = 1e15
const TOO_LARGE = 'That number is too large: use at most 1,000,000,000,000,000.'

/** The dryrun must be a scaled-down run: its value positive and not above the full run's. */
function dryrunProblem(param: string, value: string, params: Record<string, string>): string | null {
  const dry = Number(value)
  if (!Number.isFinite(dry)) return 'Enter a number.'
  if (dry <= 0) return 'Enter a value above 0.'
  if (dry > MAX_MAGNITUDE) return TOO_LARGE
  const full = Number((params[param] ?? '').trim())
  if ((params[param] ?? '').trim() && Number.isFinite(full) && dry > full) {
    return `The dryrun is a shorter version of the run: use at most ${param} = ${full} (the run’s value).`
  }
  return null
}

/** Step 2: entry point, parameters, dryrun, resources, title and notes. */
function RunForm({ projectId, parsed, catalog, prefill }: {
  projectId: string
  parsed: Parsed
  catalog: Catalog
  prefill?: Prefill
}) {
  const first =
    parsed.entryPoints.find((e) => e.name === (prefill?.entryPoint ?? 'main')) ?? parsed.entryPoints[0]
  const [entryName, setEntryName] = useState(first?.name ?? '')
  const entry = parsed.entryPoints.find((e) => e.name === entryName) ?? first
  const [params, setParams] = useState(() => (first ? initialParams(first, prefill?.parameters) : {}))
  const [dryrunParam, setDryrunParam] = useState(prefill?.dryrunParam ?? first?.dryrunSuggestion?.param ?? '')
  const [dryrunValue, setDryrunValue] = useState(prefill?.dryrunValue ?? first?.dryrunSuggestion?.value ?? '')
  const [resources, setResources] = useState<Resources>(() => prefill?.resources ?? defaultResources(catalog))
  const [title, setTitle] = useState(prefill?.title ?? '')
  const [notes, setNotes] = useState('')
  const [idempotencyKey] = useState(() => crypto.randomUUID())
  const [, createRun] = useMutation(CreateRunDocument)
  const [, copyRun] = useMutation(CopyRunDocument)
  const { form, run } = useTypedForm()
  const navigate = useNavigate()

  if (!entry) return <Alert tone="error">This MLproject has no entry points.</Alert>

  const chooseEntry = (name: string) => {
    const next = parsed.entryPoints.find((e) => e.name === name)
    if (!next) return
    setEntryName(name)
    setParams(initialParams(next))
    setDryrunParam(next.dryrunSuggestion?.param ?? '')
    setDryrunValue(next.dryrunSuggestion?.value ?? '')
  }

  const onSubmit = async () => {
    const errors: FieldErrors = {}
    const parameters = typedParams(entry, params, errors)
    if (!title.trim()) errors.title = 'Give the run a title.'
    if (!dryrunParam) errors.dryrunOverrideParam = 'Choose the parameter that makes the dryrun short.'
    if (!dryrunValue.trim()) errors.dryrunOverrideValue = 'Enter the small value for the dryrun.'
    else if (dryrunParam) {
      const problem = dryrunProblem(dryrunParam, dryrunValue.trim(), params)
      if (problem) errors.dryrunOverrideValue = problem
    }
    const numericValue = Number(dryrunValue)
    const settings = {
      title: title.trim(),
      version: parsed.version,
      entryPoint: entry.name,
      parameters,
      resources,
      dryrunOverrideParam: dryrunParam,
      dryrunOverrideValue: dryrunValue.trim() && Number.isFinite(numericValue) ? numericValue : dryrunValue,
      notes,
      idempotencyKey,
    }
    // Run again from the same repository: a copy, so the new run links back to the failed one.
    const source = prefill?.source.uri === parsed.uri ? prefill.source : null
    const created = source
      ? (await run(() => copyRun({ input: { runId: source.id, ...settings } }), errors))?.copyRun
      : (await run(() => createRun({ input: { projectId, uri: parsed.uri, ...settings } }), errors))?.createRun
    if (created?.__typename === 'RunSuccess') navigate(`/runs/${created.run.id}`)
  }

  const numericParams = entry.parameters.filter((p) => NUMERIC.has(p.type))
  return (
    <Form form={form} onSubmit={onSubmit} aria-label="New run">
      <p className="muted small">
        {parsed.name ?? 'MLproject'} at <code>{parsed.commitSha.slice(0, 10)}</code>
        {parsed.image && (
          <>
            {' '}
            · image <code className="break">{parsed.image}</code>
          </>
        )}
      </p>
      <SelectField name="entryPoint" label="Entry point" value={entry.name} onChange={(e) => chooseEntry(e.target.value)}>
        {parsed.entryPoints.map((e) => (
          <option key={e.name} value={e.name}>
            {e.name}
          </option>
        ))}
      </SelectField>
      <p className="small">
        Command: <code className="break">{entry.command}</code>
      </p>
      {entry.parameters.length > 0 && (
        <fieldset className="fieldset">
          <legend>Parameters</legend>
          <div className="row wrap">
            {entry.parameters.map((p) => (
              <TextField key={p.name} name={`parameters.${p.name}`} label={`${p.name}${p.required ? ' *' : ''}`}
                hint={`${p.type}${p.default != null ? `, default ${p.default}` : ''}`}
                inputMode={NUMERIC.has(p.type) ? 'decimal' : undefined} value={params[p.name] ?? ''}
                onChange={(e) => setParams({ ...params, [p.name]: e.target.value })} />
            ))}
          </div>
        </fieldset>
      )}
      <fieldset className="fieldset">
        <legend>Dryrun</legend>
        <p className="hint">
          The dryrun runs the code with one parameter scaled down; its time sets the cost estimate.
          {entry.dryrunSuggestion && (
            <>
              {' '}
              Suggested: <strong>{entry.dryrunSuggestion.param} = {entry.dryrunSuggestion.value}</strong>.
            </>
          )}
        </p>
        <div className="row">
          <SelectField name="dryrunOverrideParam" label="Scale down" value={dryrunParam}
            onChange={(e) => setDryrunParam(e.target.value)}>
            <option value="">Choose…</option>
            {numericParams.map((p) => (
              <option key={p.name} value={p.name}>
                {p.name}
              </option>
            ))}
          </SelectField>
          <TextField name="dryrunOverrideValue" label="Dryrun value" inputMode="decimal" value={dryrunValue}
            onChange={(e) => setDryrunValue(e.target.value)} />
        </div>
      </fieldset>
      <ResourcePicker catalog={catalog} value={resources} onChange={setResources} />
      <TextField name="title" label="Run title" value={title} maxLength={200} onChange={(e) => setTitle(e.target.value)} />
      <TextAreaField name="notes" label="Run notes (Markdown)" rows={6} value={notes}
        hint="What this run tests and how it relates to earlier runs." onChange={(e) => setNotes(e.target.value)} />
      <SubmitButton fetching={form.fetching}>Create run and start the dryrun</SubmitButton>
    </Form>
  )
}

type RunToCopy = NonNullable<RunToCopyQuery['run']>

function prefillOf(run: RunToCopy, catalog: Catalog): Prefill {
  const parameters = run.parameters && typeof run.parameters === 'object' ? (run.parameters as Record<string, unknown>) : {}
  const known = resourcesFor(catalog, run.resources.gpuType, run.resources.gpuCount, run.resources.spot)
  return {
    source: { id: run.id, uri: run.uri },
    title: run.title,
    entryPoint: run.entryPoint,
    parameters: Object.fromEntries(Object.entries(parameters).map(([k, v]) => [k, String(v)])),
    dryrunParam: run.dryrunOverrideParam,
    dryrunValue: run.dryrunOverrideValue,
    resources: { ...known, machineType: run.resources.machineType || known.machineType },
  }
}

/** "Edit and run again": read the copied run's code at its version at once, then the form with its settings. */
function CopyOfRun({ run, catalog, projectId }: { run: RunToCopy; catalog: Catalog; projectId: string }) {
  const [result] = useQuery({
    query: ParseMlprojectDocument,
    variables: { uri: run.uri, version: run.version },
    requestPolicy: 'network-only',
  })
  const [source, setSource] = useState(false)
  const [parsed, setParsed] = useState<Parsed | null>(null)
  const answer = result.data?.parseMlproject
  useEffect(() => {
    if (answer?.__typename === 'ParsedMLproject') setParsed(answer)
    else if (answer) setSource(true) // the version is gone: let the person pick another
  }, [answer])
  if (source && !parsed) return <SourceStep defaultUri={run.uri} defaultVersion={run.version} onParsed={setParsed} />
  return (
    <QueryState result={{ ...result, data: parsed ?? undefined }}>
      {(code) => (
        <>
          <Alert tone="info">
            Starting from <Link to={`/runs/${run.id}`}>{run.title}</Link>: its settings are filled in below. Change what
            made the dryrun fail, then submit; the failed run stays as it was.
          </Alert>
          <RunForm projectId={projectId} parsed={code} catalog={catalog} prefill={prefillOf(run, catalog)} />
        </>
      )}
    </QueryState>
  )
}

function RunCopySource({ fromId, projectId, catalog }: { fromId: string; projectId: string; catalog: Catalog }) {
  const [result] = useQuery({ query: RunToCopyDocument, variables: { id: fromId } })
  return (
    <QueryState result={result} notFound={{ what: 'Run to copy', back: { to: `/projects/${projectId}`, label: 'Back to the project' } }}>
      {(data) => <CopyOfRun run={data.run} catalog={catalog} projectId={projectId} />}
    </QueryState>
  )
}

function NewRun({ projectId }: { projectId: string }) {
  const { viewer } = useSession()
  const [result, refetch] = useQuery({ query: NewRunContextDocument, variables: { id: projectId } })
  const [parsed, setParsed] = useState<Parsed | null>(null)
  const fromId = useSearchParams()[0].get('from')
  useTitle(result.error ? undefined : 'New run')
  return (
    <QueryState result={result} retry={() => refetch({ requestPolicy: 'network-only' })}
      notFound={{ what: 'Project' }}>
      {({ project, gpuCatalog }) =>
        viewer?.id !== project.owner.id ? (
          <>
            <h1>New run</h1>
            <Alert tone="warning">Only the project’s owner can submit runs.</Alert>
          </>
        ) : (
          <>
            <h1>New run</h1>
            <p>
              <Link to={`/projects/${project.id}`}>← {project.title}</Link>
            </p>
            {fromId ? (
              <RunCopySource key={fromId} fromId={fromId} projectId={project.id} catalog={gpuCatalog} />
            ) : parsed ? (
              <>
                <p className="small">
                  <code className="break">{parsed.uri}</code> @ {parsed.version}{' '}
                  <button type="button" className="button link small" onClick={() => setParsed(null)}>
                    Change
                  </button>
                </p>
                <RunForm projectId={project.id} parsed={parsed} catalog={gpuCatalog} />
              </>
            ) : (
              <SourceStep defaultUri={project.gitUrl} onParsed={setParsed} />
            )}
          </>
        )
      }
    </QueryState>
  )
}

export function NewRunPage() {
  const { id = '' } = useParams()
  const { viewer } = useSession()
  // The heading comes with the project: a bad link shows only "Project not found".
  return (
    <section className="narrow-wide">
      {!viewer && <h1>New run</h1>}
      <RequireLogin what="how to submit a run">
        <NewRun projectId={id} />
      </RequireLogin>
    </section>
  )
}
