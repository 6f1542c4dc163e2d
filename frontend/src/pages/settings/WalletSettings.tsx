/** Wallet: balances, deposits by card (Stripe PaymentIntent), fundings and every movement. */
import { lazy, Suspense, useState } from 'react'
import { Link } from 'react-router'
import { useQuery } from 'urql'
import { Alert, EmptyState, Loading, QueryState } from '../../components/feedback'
import { Form, SubmitButton, TextField } from '../../components/forms'
import { FundingList, LedgerList } from '../../components/Money'
import { LoadMore, Pages } from '../../components/Pages'
import { graphql } from '../../gql'
import { checkDollars, formatCents, parseDollars } from '../../lib/format'
import { useMutationForm } from '../../lib/useMutationForm'

const StripePayment = lazy(() => import('../../components/StripePayment'))

const WalletDocument = graphql(`
  query Wallet {
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

const WalletTransactionsDocument = graphql(`
  query WalletTransactions($after: String) {
    viewer {
      id
      transactions(first: 20, after: $after) {
        nodes {
          ...LedgerEntryItem
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`)

const WalletFundingsDocument = graphql(`
  query WalletFundings($after: String) {
    viewer {
      id
      fundings(first: 20, after: $after) {
        nodes {
          ...FundingItem
          run {
            id
            title
          }
        }
        pageInfo {
          hasNextPage
          endCursor
        }
      }
    }
  }
`)

const CreateDepositDocument = graphql(`
  mutation CreateDeposit($input: CreateDepositInput!) {
    createDeposit(input: $input) {
      __typename
      ... on CreateDepositSuccess {
        clientSecret
        publishableKey
        deposit {
          id
          amountCents
          status
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

/** The API's deposit limits: card fees make tiny deposits pointless. */
const DEPOSIT_LIMITS = { min: 100, max: 1_000_000 }

interface Payment {
  depositId: string
  clientSecret: string
  publishableKey: string
}

function DepositForm({ onDeposited }: { onDeposited: () => void }) {
  const [amount, setAmount] = useState('20.00')
  const [payment, setPayment] = useState<Payment | null>(null)
  const [notConfigured, setNotConfigured] = useState(false)
  const { form, submit } = useMutationForm(CreateDepositDocument)

  const onSubmit = async () => {
    const cents = parseDollars(amount)
    const data = await submit(
      { input: { amountCents: cents ?? 0 } },
      { amountCents: checkDollars(amount, DEPOSIT_LIMITS) },
    )
    const result = data?.createDeposit
    setNotConfigured(result?.__typename === 'PaymentsNotConfigured')
    if (result?.__typename === 'PaymentsNotConfigured') form.clear() // the notice below says it better
    if (result?.__typename === 'CreateDepositSuccess') {
      if (result.publishableKey) {
        setPayment({ depositId: result.deposit.id, clientSecret: result.clientSecret, publishableKey: result.publishableKey })
      } else {
        form.setFormError('Card payments are not available right now (no Stripe publishable key).')
      }
    }
  }

  if (payment) {
    return (
      <Suspense fallback={<Loading label="Loading the card form…" />}>
        <StripePayment
          {...payment}
          onDone={() => {
            setPayment(null)
            onDeposited()
          }}
          onCancel={() => setPayment(null)}
        />
      </Suspense>
    )
  }
  return (
    <>
      {notConfigured && (
        <Alert tone="warning">
          Payments are not configured on this server, so card deposits are unavailable. Credit granted by the platform
          still works.
        </Alert>
      )}
      <Form form={form} onSubmit={onSubmit} aria-label="Deposit" className="form inline">
        <TextField name="amountCents" label="Deposit (USD)" inputMode="decimal" value={amount}
          hint={`From ${formatCents(DEPOSIT_LIMITS.min)} to ${formatCents(DEPOSIT_LIMITS.max)}.`}
          onChange={(e) => setAmount(e.target.value)} />
        <SubmitButton fetching={form.fetching}>Deposit by card</SubmitButton>
      </Form>
    </>
  )
}

function TransactionsPage({ after, onMore }: { after: string | null; onMore: ((c: string) => void) | null }) {
  const [result] = useQuery({ query: WalletTransactionsDocument, variables: { after } })
  return (
    <QueryState result={result}>
      {(data) => {
        const page = data.viewer?.transactions
        if (!page) return null
        if (after === null && page.nodes.length === 0) return <EmptyState title="No money has moved yet." />
        return (
          <>
            <LedgerList entries={page.nodes} />
            <LoadMore pageInfo={page.pageInfo} fetching={result.fetching} onMore={onMore} />
          </>
        )
      }}
    </QueryState>
  )
}

function FundingsPage({ after, onMore }: { after: string | null; onMore: ((c: string) => void) | null }) {
  const [result] = useQuery({ query: WalletFundingsDocument, variables: { after } })
  return (
    <QueryState result={result}>
      {(data) => {
        const page = data.viewer?.fundings
        if (!page) return null
        if (after === null && page.nodes.length === 0) {
          return <EmptyState title="You have not funded a run yet."><Link to="/">Find one to fund</Link></EmptyState>
        }
        return (
          <>
            <FundingList fundings={page.nodes} title={(f) => <Link to={`/runs/${f.run.id}`}>{f.run.title}</Link>} />
            <LoadMore pageInfo={page.pageInfo} fetching={result.fetching} onMore={onMore} />
          </>
        )
      }}
    </QueryState>
  )
}

export function WalletSettings() {
  const [result, refetch] = useQuery({ query: WalletDocument })
  const balance = result.data?.viewer?.balance
  return (
    <>
      <h2>Wallet</h2>
      <QueryState result={result}>
        {() =>
          balance && (
            <dl className="stats">
              <div>
                <dt>Total</dt>
                <dd data-testid="wallet-total">{formatCents(balance.totalCents)}</dd>
              </div>
              <div>
                <dt>Credit</dt>
                <dd>{formatCents(balance.creditCents)}</dd>
              </div>
              <div>
                <dt>Cash</dt>
                <dd>{formatCents(balance.cashCents)}</dd>
              </div>
            </dl>
          )
        }
      </QueryState>
      <p className="muted small">Funding a run uses credit first, then cash.</p>
      <h3>Add funds</h3>
      <DepositForm onDeposited={() => refetch({ requestPolicy: 'network-only' })} />
      <h3>Your fundings</h3>
      <Pages>{(after, onMore) => <FundingsPage after={after} onMore={onMore} />}</Pages>
      <h3>Transactions</h3>
      <Pages>{(after, onMore) => <TransactionsPage after={after} onMore={onMore} />}</Pages>
    </>
  )
}
