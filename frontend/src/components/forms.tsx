/** Shared form pieces: labelled fields that show their API error, and an error summary. */
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useId,
  useState,
  type FormEvent,
  type InputHTMLAttributes,
  type ReactNode,
  type SelectHTMLAttributes,
  type TextareaHTMLAttributes,
} from 'react'
import type { MutationForm } from '../lib/useMutationForm'
import { Alert } from './feedback'

interface FormContextValue {
  errors: Record<string, string>
  register: (name: string) => () => void
  clearField: (name: string) => void
}

const FormContext = createContext<FormContextValue>({ errors: {}, register: () => () => {}, clearField: () => {} })

interface FormProps {
  form: MutationForm
  onSubmit: () => void
  children: ReactNode
  className?: string
  'aria-label'?: string
}

/** A form whose fields pick up `form.errors`; errors for fields it does not show are listed on top. */
export function Form({ form, onSubmit, children, className, ...rest }: FormProps) {
  // Fields report themselves, so errors for fields this form does not show are listed on top.
  const [shown, setShown] = useState<ReadonlySet<string>>(() => new Set())
  const register = useCallback((name: string) => {
    setShown((names) => new Set(names).add(name))
    return () =>
      setShown((names) => {
        const next = new Set(names)
        next.delete(name)
        return next
      })
  }, [])
  const unshown = Object.entries(form.errors).filter(([name]) => !shown.has(name))
  const handle = (event: FormEvent) => {
    event.preventDefault()
    onSubmit()
  }
  return (
    <FormContext.Provider value={{ errors: form.errors, register, clearField: form.clearField }}>
      <form noValidate onSubmit={handle} className={className ?? 'form'} aria-label={rest['aria-label']}>
        {(form.formError || unshown.length > 0) && (
          <Alert tone="error">
            {form.formError}
            {unshown.length > 0 && (
              <ul className="plain">
                {unshown.map(([name, message]) => (
                  <li key={name}>{message}</li>
                ))}
              </ul>
            )}
          </Alert>
        )}
        {Object.keys(form.errors).length > 0 && unshown.length === 0 && !form.formError && (
          <p className="sr-only" role="alert">
            Please correct the highlighted fields.
          </p>
        )}
        {children}
      </form>
    </FormContext.Provider>
  )
}

interface ShellProps {
  name: string
  label: ReactNode
  hint?: ReactNode
  children: (control: { id: string; 'aria-invalid': boolean; 'aria-describedby'?: string }, edited: () => void) => ReactNode
}

/** Label, control, hint and the field's error, wired together for screen readers. */
function FieldShell({ name, label, hint, children }: ShellProps) {
  const id = useId()
  const { errors, register, clearField } = useContext(FormContext)
  useEffect(() => register(name), [name, register])
  const error = errors[name]
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined
  return (
    <div className={`field${error ? ' field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({ id, 'aria-invalid': Boolean(error), 'aria-describedby': described }, () => clearField(name))}
      {hint && (
        <p className="hint" id={`${id}-hint`}>
          {hint}
        </p>
      )}
      {error && (
        <p className="field-error" id={`${id}-error`}>
          {error}
        </p>
      )}
    </div>
  )
}

type Named = { name: string; label: ReactNode; hint?: ReactNode }

export function TextField({ name, label, hint, onChange, ...input }: Named & InputHTMLAttributes<HTMLInputElement>) {
  return (
    <FieldShell name={name} label={label} hint={hint}>
      {(control, edited) => (
        <input name={name} {...input} {...control} onChange={(e) => {
          edited()
          onChange?.(e)
        }} />
      )}
    </FieldShell>
  )
}

export function TextAreaField({
  name,
  label,
  hint,
  onChange,
  ...input
}: Named & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  return (
    <FieldShell name={name} label={label} hint={hint}>
      {(control, edited) => (
        <textarea name={name} {...input} {...control} onChange={(e) => {
          edited()
          onChange?.(e)
        }} />
      )}
    </FieldShell>
  )
}

export function SelectField({
  name,
  label,
  hint,
  children,
  onChange,
  ...input
}: Named & SelectHTMLAttributes<HTMLSelectElement>) {
  return (
    <FieldShell name={name} label={label} hint={hint}>
      {(control, edited) => (
        <select name={name} {...input} {...control} onChange={(e) => {
          edited()
          onChange?.(e)
        }}>
          {children}
        </select>
      )}
    </FieldShell>
  )
}

/** A set of radio buttons with a legend (one choice of a few). */
export function RadioGroup<T extends string>({ name, legend, options, value, onChange }: {
  name: string
  legend: ReactNode
  options: ReadonlyArray<{ value: T; label: ReactNode; hint?: ReactNode }>
  value: T
  onChange: (value: T) => void
}) {
  const { errors, register } = useContext(FormContext)
  useEffect(() => register(name), [name, register])
  return (
    <fieldset className="field radios">
      <legend>{legend}</legend>
      {options.map((option) => (
        <label key={option.value} className="radio">
          <input type="radio" name={name} value={option.value} checked={value === option.value}
            onChange={() => onChange(option.value)} />
          <span>
            {option.label}
            {option.hint && <span className="hint block">{option.hint}</span>}
          </span>
        </label>
      ))}
      {errors[name] && <p className="field-error">{errors[name]}</p>}
    </fieldset>
  )
}

export function SubmitButton({ fetching, children }: { fetching: boolean; children: ReactNode }) {
  return (
    <button type="submit" className="button primary" disabled={fetching} aria-busy={fetching}>
      {fetching ? 'Working…' : children}
    </button>
  )
}
