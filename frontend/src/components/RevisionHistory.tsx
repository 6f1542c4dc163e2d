/**
 * The revisions of a text: a run's or project's notes (`notesHistory`), a discussion's or a
 * comment's body (`bodyHistory`): who changed it, why and when; a line diff of any two loaded
 * versions; and, for editors, "Restore" — which opens the caller's editor with that version's
 * text, saved as a new edit through the usual write (conflicts included).
 */
import { useState } from 'react'
import { useQuery } from 'urql'
import { graphql } from '../gql'
import type { RevisionItemFragment } from '../gql/graphql'
import { formatDate } from '../lib/format'
import { lineDiff } from '../lib/lineDiff'
import { QueryState } from './feedback'
import { UserLink } from './UserLink'

graphql(`
  fragment RevisionItem on Revision {
    version
    body
    editSummary
    createdAt
    editor {
      id
      handle
      displayName
    }
  }
  fragment RevisionPage on RevisionConnection {
    nodes {
      ...RevisionItem
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
`)

// One query for every text with revisions: the node's type says which history it has.
const RevisionHistoryDocument = graphql(`
  query RevisionHistory($id: ID!, $first: Int!) {
    node(id: $id) {
      id
      ... on Run {
        notesHistory(first: $first) {
          ...RevisionPage
        }
      }
      ... on Project {
        notesHistory(first: $first) {
          ...RevisionPage
        }
      }
      ... on Discussion {
        bodyHistory(first: $first) {
          ...RevisionPage
        }
      }
      ... on Comment {
        bodyHistory(first: $first) {
          ...RevisionPage
        }
      }
    }
  }
`)

/** The API's largest page: older versions than these are rare enough to leave to the API. */
const NEWEST = 100

interface Props {
  /** A run or project (its notes), a discussion or a comment (its body). */
  id: string
  /** The region's name: "Notes history", "Discussion history", … */
  label: string
  /** The version the text is at now (nothing to restore there). */
  currentVersion: number
  /** Editors only: start an edit from this revision's text. */
  onRestore?: (revision: RevisionItemFragment) => void
}

function Diff({ from, to }: { from: RevisionItemFragment; to: RevisionItemFragment }) {
  const lines = lineDiff(from.body, to.body)
  const added = lines.filter((l) => l.kind === 'added').length
  const removed = lines.filter((l) => l.kind === 'removed').length
  return (
    <figure className="diff-wrap">
      <figcaption className="small">
        From version {from.version} to version {to.version}: {added} line{added === 1 ? '' : 's'} added, {removed}{' '}
        removed.
      </figcaption>
      <ol className="diff" aria-label={`Changes from version ${from.version} to version ${to.version}`}>
        {lines.map((line, i) => (
          <li key={i} className={`diff-${line.kind}`}>
            {line.kind !== 'same' && <span className="sr-only">{line.kind === 'added' ? 'Added: ' : 'Removed: '}</span>}
            <span aria-hidden="true" className="diff-mark">
              {line.kind === 'added' ? '+' : line.kind === 'removed' ? '−' : ' '}
            </span>
            {line.text || ' '}
          </li>
        ))}
      </ol>
    </figure>
  )
}

export default function RevisionHistory({ id, label, currentVersion, onRestore }: Props) {
  // Always from the server: the caller remounts this view (keyed by version) after each save.
  const [result] = useQuery({ query: RevisionHistoryDocument, variables: { id, first: NEWEST }, requestPolicy: 'network-only' })
  const [pick, setPick] = useState<{ from: number | null; to: number | null }>({ from: null, to: null })
  return (
    <section aria-label={label} className="history">
      <QueryState result={result}>
        {({ node }) => {
          const page = !node ? null : 'notesHistory' in node ? node.notesHistory : 'bodyHistory' in node ? node.bodyHistory : null
          if (!page) return null
          const versions = page.nodes
          // By default: the latest change (the version before the newest, against the newest).
          const to = versions.find((r) => r.version === pick.to) ?? versions[0]
          const from = versions.find((r) => r.version === pick.from) ?? versions.find((r) => to && r.version < to.version)
          const choose = (which: 'from' | 'to', label: string, value: number) => (
            <label className="inline-field">
              {label}{' '}
              <select value={value} onChange={(e) => setPick({ ...pick, [which]: Number(e.target.value) })}>
                {versions.map((r) => (
                  <option key={r.version} value={r.version}>
                    {r.version}
                  </option>
                ))}
              </select>
            </label>
          )
          return (
            <>
              <div className="table-wrap">
                <table className="compact stack">
                  <caption className="sr-only">Versions, newest first</caption>
                  <thead>
                    <tr>
                      <th scope="col">Version</th>
                      <th scope="col">By</th>
                      <th scope="col">Summary</th>
                      <th scope="col">When</th>
                      {onRestore && (
                        <th scope="col">
                          <span className="sr-only">Restore</span>
                        </th>
                      )}
                    </tr>
                  </thead>
                  <tbody>
                    {versions.map((r) => (
                      <tr key={r.version}>
                        <td data-label="Version">
                          {r.version} {r.version === currentVersion && <span className="badge badge-muted">current</span>}
                        </td>
                        <td data-label="By">
                          <UserLink user={r.editor} />
                        </td>
                        <td data-label="Summary">{r.editSummary || '—'}</td>
                        <td data-label="When">{formatDate(r.createdAt)}</td>
                        {onRestore && (
                          <td data-label="Restore">
                            {r.version !== currentVersion && (
                              <button type="button" className="button small" onClick={() => onRestore(r)}>
                                Restore version {r.version}
                              </button>
                            )}
                          </td>
                        )}
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              {page.pageInfo.hasNextPage && <p className="muted small">The {NEWEST} newest versions.</p>}
              {from && to ? (
                <>
                  <div className="row wrap">
                    {choose('from', 'Compare version', from.version)}
                    {choose('to', 'with version', to.version)}
                  </div>
                  <Diff from={from} to={to} />
                </>
              ) : (
                <p className="muted small">Only one version so far: nothing to compare.</p>
              )}
            </>
          )
        }}
      </QueryState>
    </section>
  )
}
