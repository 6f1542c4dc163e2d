/**
 * Fund a run from the wallet: amount, what happens to any surplus, and how the amount splits
 * between credit (used first) and cash. Typed errors: InsufficientFunds links to the wallet.
 */
import { useState } from 'react'
import { Link } from 'react-router'
import { useQuery } from 'urql'
import { graphql } from '../../gql'
import type { FundingSource, SurplusPolicy } from '../../gql/graphql'
import { formatCents, parseDollars } from '../../lib/format'
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

interface Props {
  runId: string
  gapCents: number
  /** The project's balance, offered only to the project's owner. */
  projectBalanceCents?: number
  open: boolean
  onClose: () => void
}

function FundForm({ runId, gapCents, projectBalanceCents = 0, onClose }: Omit<Props, 'open'>) {
  const [{ data: wallet }] = useQuery({ query: WalletBalanceDocument, requestPolicy: 'network-only' })
  const [amount, setAmount] = useState((gapCents / 100).toFixed(2))
  const [surplus, setSurplus] = useState<SurplusPolicy>('TO_PROJECT')
  const [source, setSource] = useState<FundingSource>('WALLET')
  const [idempotencyKey] = useState(() => crypto.randomUUID())
  const [done, setDone] = useState<string | null>(null)
  const { form, submit } = useMutationForm(FundRunDocument)

  const balance = wallet?.viewer?.balance
  const cents = parseDollars(amount)
  const taken = cents === null ? 0 : Math.min(cents, gapCents)
  const fromCredit = Math.min(taken, balance?.creditCents ?? 0)

  const onSubmit = async () => {
    const data = await submit(
      { input: { runId, amountCents: cents ?? 0, surplusPolicy: surplus, source, idempotencyKey } },
      { amountCents: cents === null && 'Enter an amount in dollars, like 12.50.' },
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
        <button type="button" className="button primary" onClick={onClose}>
          Close
        </button>
      </div>
    )
  }
  if (!wallet) return <Loading />
  return (
    <Form form={form} onSubmit={onSubmit} aria-label="Fund this run">
      <p>
        Still needed: <strong>{formatCents(gapCents)}</strong>. Your wallet: {formatCents(balance?.creditCents)} credit +{' '}
        {formatCents(balance?.cashCents)} cash.
      </p>
      <TextField name="amountCents" label="Amount (USD)" inputMode="decimal" value={amount}
        onChange={(e) => setAmount(e.target.value)}
        hint={cents !== null && cents > gapCents ? `Only ${formatCents(gapCents)} is needed; that is all that will be taken.` : undefined} />
      {projectBalanceCents > 0 && (
        <RadioGroup name="source" legend="Pay from" value={source} onChange={setSource} options={[
          { value: 'WALLET', label: 'My wallet' },
          { value: 'PROJECT_BALANCE', label: `The project balance (${formatCents(projectBalanceCents)})` },
        ]} />
      )}
      <RadioGroup name="surplusPolicy" legend="If the run costs less than funded" options={SURPLUS_OPTIONS} value={surplus}
        onChange={setSurplus} />
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
  )
}

export function FundDialog({ open, ...props }: Props) {
  return (
    <Dialog title="Fund this run" open={open} onClose={props.onClose}>
      <FundForm {...props} />
    </Dialog>
  )
}
