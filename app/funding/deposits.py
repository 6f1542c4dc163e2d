"""Card deposits through Stripe PaymentIntents.

`create_deposit` opens a PaymentIntent and returns its client secret for the browser to confirm;
the wallet's cash grows only when the signed `payment_intent.succeeded` webhook arrives, and each
Stripe event id is applied once (its StripeEvent row commits with the credit).
"""

from __future__ import annotations

import functools
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import stripe
from tortoise.transactions import in_transaction

from app.accounts.models import User
from app.core.settings import get_settings
from app.funding import ledger, wallets
from app.funding.claims import insert_once
from app.funding.errors import PaymentsNotConfigured
from app.funding.events import emit
from app.funding.models import Deposit, DepositStatus, LedgerKind, StripeEvent
from app.funding.money import validate_amount

log = logging.getLogger("mlpatron.stripe")

CURRENCY = "usd"
DEPOSIT_MIN_CENTS = 100  # Stripe refuses card charges under $0.50; $1 keeps fees sensible
DEPOSIT_MAX_CENTS = 1_000_000
SUCCEEDED = "payment_intent.succeeded"
FAILED = "payment_intent.payment_failed"


@functools.cache
def _client(secret_key: str, api_base: str) -> stripe.StripeClient:
    return stripe.StripeClient(secret_key, base_addresses={"api": api_base} if api_base else None)


def stripe_client() -> stripe.StripeClient:
    settings = get_settings()
    if not settings.stripe_secret_key:
        raise PaymentsNotConfigured()
    return _client(settings.stripe_secret_key, settings.stripe_api_base)


async def create_deposit(user: User, amount_cents: int) -> tuple[Deposit, str]:
    """A pending Deposit and the PaymentIntent client secret the browser confirms with Stripe.js."""
    validate_amount(amount_cents, minimum=DEPOSIT_MIN_CENTS, maximum=DEPOSIT_MAX_CENTS)
    client = stripe_client()
    deposit_id = uuid.uuid4()
    intent = await client.v1.payment_intents.create_async(
        params={"amount": amount_cents, "currency": CURRENCY,
                "metadata": {"deposit_id": str(deposit_id), "user_id": str(user.id)}},
        options={"idempotency_key": f"deposit-{deposit_id}"},
    )
    # Created after the intent, but before anyone can confirm it: only this answer carries the secret.
    deposit = await Deposit.create(id=deposit_id, user=user, amount_cents=amount_cents, payment_intent_id=intent.id)
    return deposit, intent.client_secret or ""


async def apply_event(event_id: str, event_type: str, intent: dict[str, Any]) -> bool:
    """Apply a verified Stripe event once; False for replays and events we do not act on."""
    if event_type not in (SUCCEEDED, FAILED):
        return False
    async with in_transaction():
        if not await insert_once(StripeEvent, id=event_id, type=event_type, received_at=datetime.now(UTC)):
            return False
        deposit = await Deposit.select_for_update().get_or_none(payment_intent_id=intent["id"])
        if deposit is None:
            log.warning("stripe event %s for unknown payment intent %s ignored", event_id, intent["id"])
            return True
        if deposit.status == DepositStatus.SUCCEEDED:
            return True  # another event for the same intent already credited it
        if event_type == FAILED:
            # Not terminal: the customer may retry the same intent with another card.
            await Deposit.filter(id=deposit.id).update(status=DepositStatus.FAILED.value)
            return True
        amount = _received_cents(intent, deposit)
        await wallets.credit_wallet(deposit.user_id, cash_cents=amount)
        await ledger.post(LedgerKind.DEPOSIT, f"Card deposit ({intent['id']})",
                          [(ledger.STRIPE, -amount), (ledger.user_cash(deposit.user_id), amount)],
                          user_id=deposit.user_id)
        await Deposit.filter(id=deposit.id).update(status=DepositStatus.SUCCEEDED.value,
                                                   completed_at=datetime.now(UTC))
    await emit(f"user:{deposit.user_id}", "deposit_succeeded", {"depositId": str(deposit.id), "amountCents": amount})
    return True


def _received_cents(intent: dict[str, Any], deposit: Deposit) -> int:
    """What Stripe says it received (the truth about money), flagged if it differs from the request."""
    amount = int(intent.get("amount_received") or intent["amount"])
    if amount != deposit.amount_cents or intent.get("currency", CURRENCY) != CURRENCY:
        log.error("deposit %s: requested %s %s, Stripe received %s %s", deposit.id, deposit.amount_cents, CURRENCY,
                  amount, intent.get("currency"))
    return amount
