/**
 * Fund a run from the wallet: amount, what happens to any surplus, and how the amount splits
 * between credit (used first) and cash. Typed errors: InsufficientFunds links to the wallet.
 */
import { useEffect, useRef, useState } from 'react'
import { Link } from 'react-router'
import { useQuery } from 'urql'
import { graphql } from '../../gql'
import type { FundingSource, SurplusPolicy } from '../../gql/graphql'
import { checkDollars, formatCents, parseDollars } from '../../lib/format'
import { useMutationForm } from '../../lib/useMutationForm'
import { Dialog } from '../Dialog'
import { Alert, Loading } from '../feedback'
import { Form, RadioGroup, SubmitButton, TextField } from '../forms'

const WalletBalanceDocument = graphql(`
  query WalletBalance {
    viewer {
      id
      balance {
        cashCents
        creditCents
        totalCents
      }
    }
  }
`)

const FundRunDocument = graphql(`
  mutation FundRun($input: FundRunInput!) {
    fundRun(input: $input) {
      __typename
      ... on FundRunSuccess {
        funding {
          id
          amountCents
          creditCents
          cashCents
        }
        run {
          id
          status
          fundedCents
          fundingGapCents
        }
      }
      ... on InsufficientFunds {
        requiredCents
        availableCents
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

const SURPLUS_OPTIONS = [
  { value: 'TO_PROJECT', label: 'Keep it in the project', hint: 'Any unspent share funds the researcher’s next runs.' },
  { value: 'REFUND', label: 'Refund me', hint: 'Any unspent share returns to your wallet.' },
] as const

/** Funding limits (the API's): a cent up to $100,000 at a time. */
const FUND_LIMITS = { min: 1, max: 10_000_000 }

interface Props {
  runId: string
  gapCents: number
  /** The project's owner funds their own run: the project balance first, and surplus stays in the project. */
  isOwner: boolean
  /** The project's balance, offered only to the project's owner. */
  projectBalanceCents?: number
  open: boolean
  onClose: () => void
}

function FundForm({ runId, gapCents, isOwner, projectBalanceCents = 0, onClose }: Omit<Props, 'open'>) {
  const [{ data: wallet }] = useQuery({ query: WalletBalanceDocument, requestPolicy: 'network-only' })
  // Money already set aside for the project is the natural first choice for its owner.
  const fromBalance = projectBalanceCents > 0
  const [source, setSource] = useState<FundingSource>(fromBalance ? 'PROJECT_BALANCE' : 'WALLET')
  const [amount, setAmount] = useState(() => (Math.min(gapCents, fromBalance ? projectBalanceCents : gapCents) / 100).toFixed(2))
  const [surplus, setSurplus] = useState<SurplusPolicy>('TO_PROJECT')
  const [idempotencyKey] = useState(() => crypto.randomUUID())
  const [done, setDone] = useState<string | null>(null)
  const { form, submit } = useMutationForm(FundRunDocument)

  // The amount is what people come to change: focus it (selected) once the form shows.
  const box = useRef<HTMLDivElement>(null)
  const ready = Boolean(wallet)
  useEffect(() => {
    if (ready) box.current?.querySelector<HTMLInputElement>('input[name="amountCents"]')?.focus()
  }, [ready])

  const balance = wallet?.viewer?.balance
  const cents = parseDollars(amount)
  const taken = cents === null ? 0 : Math.min(cents, gapCents)
  const fromCredit = Math.min(taken, balance?.creditCents ?? 0)

  const onSubmit = async () => {
    const data = await submit(
      { input: { runId, amountCents: cents ?? 0, surplusPolicy: surplus, source, idempotencyKey } },
      { amountCents: checkDollars(amount, FUND_LIMITS) },
    )
    const result = data?.fundRun
    if (result?.__typename === 'FundRunSuccess') {
      const f = result.funding
      setDone(
        source === 'PROJECT_BALANCE'
          ? `You funded ${formatCents(f.amountCents)} from the project balance.`
          : `You funded ${formatCents(f.amountCents)} (${formatCents(f.creditCents)} credit, ${formatCents(f.cashCents)} cash).`,
      )
    } else if (result?.__typename === 'InsufficientFunds') {
      form.setFormError(
        <>
          Not enough money {source === 'PROJECT_BALANCE' ? 'in the project balance' : 'in your wallet'}: this needs{' '}
          {formatCents(result.requiredCents)} and there is {formatCents(result.availableCents)}.{' '}
          <Link to="/settings/wallet">Add funds to your wallet</Link>.
        </>,
      )
    }
  }

  if (done) {
    return (
      <div>
        <Alert tone="success">{done}</Alert>
        <button type="button" className="button primary" onClick={onClose} autoFocus>
          Close
        </button>
      </div>
    )
  }
  if (!wallet) return <Loading />
  return (
    <div ref={box}>
      <Form form={form} onSubmit={onSubmit} aria-label="Fund this run">
      <p>
        Still needed: <strong>{formatCents(gapCents)}</strong>. Your wallet: {formatCents(balance?.creditCents)} credit +{' '}
        {formatCents(balance?.cashCents)} cash.
      </p>
      <TextField name="amountCents" label="Amount (USD)" inputMode="decimal" value={amount}
        onFocus={(e) => e.target.select()} onChange={(e) => setAmount(e.target.value)}
        hint={cents !== null && cents > gapCents ? `Only ${formatCents(gapCents)} is needed; that is all that will be taken.` : undefined} />
      {projectBalanceCents > 0 && (
        <RadioGroup name="source" legend="Pay from" value={source} onChange={setSource} options={[
          { value: 'WALLET', label: 'My wallet' },
          { value: 'PROJECT_BALANCE', label: `The project balance (${formatCents(projectBalanceCents)})` },
        ]} />
      )}
      {isOwner ? (
        <p className="small">If the run costs less than funded, the rest stays in the project balance for your next runs.</p>
      ) : (
        <RadioGroup name="surplusPolicy" legend="If the run costs less than funded" options={SURPLUS_OPTIONS}
          value={surplus} onChange={setSurplus} />
      )}
      {cents !== null && source === 'WALLET' && (
        <p className="small" data-testid="fund-split">
          Paid with {formatCents(fromCredit)} credit and {formatCents(taken - fromCredit)} cash (credit is used first).
        </p>
      )}
      <div className="actions">
        <SubmitButton fetching={form.fetching}>Fund {cents !== null ? formatCents(taken) : ''}</SubmitButton>
        <button type="button" className="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </Form>
    </div>
  )
}

export function FundDialog({ open, ...props }: Props) {
  return (
    <Dialog title="Fund this run" open={open} onClose={props.onClose}>
      <FundForm {...props} />
    </Dialog>
  )
}
