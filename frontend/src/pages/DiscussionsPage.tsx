/** Platform-wide discussions: feature requests and general topics, not tied to a project. */
import { Link } from 'react-router'
import { Discussions } from '../components/Discussions'
import { useTitle } from '../lib/useTitle'

export function DiscussionsPage() {
  useTitle('Discussions')
  return (
    <section className="narrow-wide">
      <h1>Discussions</h1>
      <p className="muted">
        Topics about the platform itself: ideas, requests, questions for everyone. Talk about one experiment on its
        project’s page; report a problem privately with the <Link to="/feedback">feedback form</Link>.
      </p>
      <Discussions heading="Platform topics" />
    </section>
  )
}
