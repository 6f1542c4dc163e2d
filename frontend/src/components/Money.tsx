/** Money movements shared by the wallet and the run page: signed amounts, ledger entries, fundings. */
import type { ReactNode } from 'react'
import { graphql } from '../gql'
import type { FundingItemFragment, LedgerEntryItemFragment } from '../gql/graphql'
import { formatCents, formatDate, humanize } from '../lib/format'

graphql(`
  fragment LedgerEntryItem on LedgerEntry {
    id
    kind
    memo
    amountCents
    createdAt
  }
`)

graphql(`
  fragment FundingItem on Funding {
    id
    amountCents
    creditCents
    cashCents
    surplusPolicy
    refundedCents
    toProjectCents
    createdAt
  }
`)

/** "+$5.00" in green, "-$3.20" in red. */
export function SignedAmount({ cents }: { cents: number }) {
  return (
    <span className={cents < 0 ? 'amount out' : 'amount in'}>
      {cents > 0 ? '+' : ''}
      {formatCents(cents)}
    </span>
  )
}

function When({ iso }: { iso: string }) {
  return (
    <time className="muted small" dateTime={iso}>
      {formatDate(iso)}
    </time>
  )
}

/** Ledger entries as a list: amount, kind and memo, date. */
export function LedgerList({ entries }: { entries: LedgerEntryItemFragment[] }) {
  return (
    <ul className="ledger">
      {entries.map((entry) => (
        <li key={entry.id}>
          <SignedAmount cents={entry.amountCents} />
          <span>
            {humanize(entry.kind)}
            {entry.memo && <span className="muted"> — {entry.memo}</span>}
          </span>
          <When iso={entry.createdAt} />
        </li>
      ))}
    </ul>
  )
}

/** Ledger entries as a compact table. */
export function LedgerTable({ entries, caption }: { entries: LedgerEntryItemFragment[]; caption: string }) {
  return (
    <div className="table-wrap">
      <table className="compact stack">
        <caption className="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Date</th>
            <th scope="col">Kind</th>
            <th scope="col">Memo</th>
            <th scope="col" className="num">Amount</th>
          </tr>
        </thead>
        <tbody>
          {entries.map((entry) => (
            <tr key={entry.id}>
              <td data-label="Date">
                <When iso={entry.createdAt} />
              </td>
              <td data-label="Kind">{humanize(entry.kind)}</td>
              <td data-label="Memo" className="muted">{entry.memo || '—'}</td>
              <td data-label="Amount" className="num">
                <SignedAmount cents={entry.amountCents} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

/** Fundings as a list: amount, who or what (`title`) with the credit/cash split and surplus outcome, date. */
export function FundingList<F extends FundingItemFragment>({ fundings, title }: {
  fundings: F[]
  title: (funding: F) => ReactNode
}) {
  return (
    <ul className="ledger">
      {fundings.map((f) => (
        <li key={f.id}>
          <span className="amount">{formatCents(f.amountCents)}</span>
          <span>
            {title(f)}{' '}
            <span className="muted small">
              {formatCents(f.creditCents)} credit + {formatCents(f.cashCents)} cash · surplus{' '}
              {f.surplusPolicy === 'REFUND' ? 'refunded' : 'to project'}
              {f.refundedCents > 0 && ` · ${formatCents(f.refundedCents)} refunded`}
              {f.toProjectCents > 0 && ` · ${formatCents(f.toProjectCents)} kept by the project`}
            </span>
          </span>
          <When iso={f.createdAt} />
        </li>
      ))}
    </ul>
  )
}
