/**
 * A page that throws while rendering shows a message inside the normal layout, with a way on,
 * instead of a blank screen. Navigating elsewhere (a new `resetKey`) tries again.
 */
import { Component, type ErrorInfo, type ReactNode } from 'react'
import { Link } from 'react-router'

interface Props {
  resetKey: string
  children: ReactNode
}

interface State {
  error: Error | null
  key: string
}

export class ErrorBoundary extends Component<Props, State> {
  state: State = { error: null, key: this.props.resetKey }

  static getDerivedStateFromError(error: Error): Partial<State> {
    return { error }
  }

  static getDerivedStateFromProps(props: Props, state: State): Partial<State> | null {
    return props.resetKey !== state.key ? { error: null, key: props.resetKey } : null
  }

  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error('page failed to render', error, info.componentStack)
  }

  render() {
    if (!this.state.error) return this.props.children
    return (
      <section className="empty" role="alert">
        <h1>Something went wrong on this page</h1>
        <p>It is not something you did. Reloading usually helps; if it keeps happening, tell us.</p>
        <p className="actions center">
          <button type="button" className="button primary" onClick={() => window.location.reload()}>
            Reload the page
          </button>
          <Link className="button" to="/">
            Go to Explore
          </Link>
        </p>
      </section>
    )
  }
}
