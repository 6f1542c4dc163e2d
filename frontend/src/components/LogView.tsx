/**
 * A job's log, live: the `jobLogs` subscription sends the tail, then each new line. The
 * client resumes after a reconnect from the last `seq` it received, so lines are neither
 * lost nor repeated. The view follows the end until the reader scrolls up. MLflow's own
 * "View run … at: http://…/#/experiments/…" lines point at the platform's internal tracking
 * server, which readers cannot open: they are left out (the metrics are shown on the page).
 */
import { useLayoutEffect, useRef, useState } from 'react'
import { useSubscription } from 'urql'
import { graphql } from '../gql'
import type { JobLogsSubscription } from '../gql/graphql'
import { ErrorMessage } from './feedback'

const JobLogsDocument = graphql(`
  subscription JobLogs($jobId: ID!, $afterSeq: Int, $tail: Int!) {
    jobLogs(jobId: $jobId, afterSeq: $afterSeq, tail: $tail) {
      seq
      stream
      line
    }
  }
`)

type Line = JobLogsSubscription['jobLogs']

const TAIL = 1000
const KEEP = 5000

const INTERNAL_LINK = /\bView (run|experiment)\b.*\bat: https?:\/\/\S*#\/experiments\//

function append(lines: Line[] = [], event: JobLogsSubscription): Line[] {
  const line = event.jobLogs
  if (INTERNAL_LINK.test(line.line)) return lines
  if (lines.length > 0 && lines[lines.length - 1].seq >= line.seq) return lines
  const next = [...lines, line]
  return next.length > KEEP ? next.slice(next.length - KEEP) : next
}

/** `live`: the job is pending or running (the stream ends with the job). */
export function LogView({ jobId, label, live }: { jobId: string; label: string; live: boolean }) {
  const [{ data: lines = [], error }] = useSubscription(
    { query: JobLogsDocument, variables: { jobId, afterSeq: null, tail: TAIL } },
    append,
  )
  const box = useRef<HTMLPreElement>(null)
  const [following, setFollowing] = useState(true)

  const jumpToEnd = () => {
    const el = box.current
    if (el) el.scrollTop = el.scrollHeight
    setFollowing(true)
  }
  useLayoutEffect(() => {
    const el = box.current
    if (following && el) el.scrollTop = el.scrollHeight
  }, [lines, following])

  const onScroll = () => {
    const el = box.current
    if (el) setFollowing(el.scrollHeight - el.scrollTop - el.clientHeight < 24)
  }

  return (
    <div className="log">
      <div className="log-head">
        <span className={`live-dot${live ? ' on' : ''}`} aria-hidden="true" />
        <span className="small">{live ? 'Live' : 'Job ended'}</span>
        {!following && (
          <button type="button" className="button small" onClick={jumpToEnd}>
            Jump to end ↓
          </button>
        )}
      </div>
      {error && <ErrorMessage error={error} />}
      <pre ref={box} className="log-lines" role="log" aria-live="off" aria-label={label} tabIndex={0}
        onScroll={onScroll} data-testid="log-lines">
        {lines.length === 0 ? (
          <span className="muted">No output yet.</span>
        ) : (
          lines.map((l) => (
            <span key={l.seq} className={`log-line log-${l.stream}`}>
              {l.line}
              {'\n'}
            </span>
          ))
        )}
      </pre>
    </div>
  )
}
