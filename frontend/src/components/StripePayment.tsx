/**
 * Card payment for a deposit: Stripe's Payment Element confirms the PaymentIntent in the
 * browser; the wallet is credited only when Stripe's signed webhook reaches the API, so
 * this waits for the deposit to turn SUCCEEDED.
 */
import { loadStripe, type Stripe, type StripeElements } from '@stripe/stripe-js'
import { useEffect, useRef, useState } from 'react'
import { useClient } from 'urql'
import { graphql } from '../gql'
import { Alert, Loading } from './feedback'

const DepositStatusDocument = graphql(`
  query DepositStatus($id: ID!) {
    node(id: $id) {
      id
      ... on Deposit {
        status
      }
    }
  }
`)

interface Props {
  depositId: string
  clientSecret: string
  publishableKey: string
  onDone: () => void
  onCancel: () => void
}

type Phase = 'loading' | 'ready' | 'paying' | 'confirming' | 'failed'

export default function StripePayment({ depositId, clientSecret, publishableKey, onDone, onCancel }: Props) {
  const mount = useRef<HTMLDivElement>(null)
  const stripe = useRef<{ stripe: Stripe; elements: StripeElements } | null>(null)
  const [phase, setPhase] = useState<Phase>('loading')
  const [message, setMessage] = useState<string | null>(null)
  const client = useClient()

  useEffect(() => {
    let cancelled = false
    loadStripe(publishableKey)
      .then((loaded) => {
        if (cancelled || !loaded || !mount.current) return
        const elements = loaded.elements({ clientSecret })
        elements.create('payment').mount(mount.current)
        stripe.current = { stripe: loaded, elements }
        setPhase('ready')
      })
      .catch(() => {
        setMessage('Could not load Stripe. Check your connection and try again.')
        setPhase('failed')
      })
    return () => {
      cancelled = true
    }
  }, [clientSecret, publishableKey])

  const waitForWebhook = async () => {
    for (let attempt = 0; attempt < 30; attempt += 1) {
      const result = await client.query(DepositStatusDocument, { id: depositId }, { requestPolicy: 'network-only' }).toPromise()
      const node = result.data?.node
      const status = node && 'status' in node ? node.status : undefined
      if (status === 'SUCCEEDED') return onDone()
      if (status === 'FAILED') break
      await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    setMessage('The payment has not been confirmed yet. Your balance updates as soon as it is.')
    setPhase('failed')
  }

  const pay = async () => {
    if (!stripe.current) return
    setPhase('paying')
    setMessage(null)
    const { error } = await stripe.current.stripe.confirmPayment({
      elements: stripe.current.elements,
      redirect: 'if_required',
    })
    if (error) {
      setMessage(error.message ?? 'The payment did not go through.')
      setPhase('ready')
      return
    }
    setPhase('confirming')
    await waitForWebhook()
  }

  return (
    <div className="panel">
      {phase === 'loading' && <Loading label="Loading the card form…" />}
      {message && <Alert tone="error">{message}</Alert>}
      {phase === 'confirming' && <Loading label="Payment sent; waiting for Stripe to confirm it…" />}
      <div ref={mount} />
      <div className="actions">
        <button type="button" className="button primary" disabled={phase !== 'ready'} onClick={pay}>
          {phase === 'paying' ? 'Paying…' : 'Pay'}
        </button>
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </div>
  )
}
