"""Wallet rows: debits under a row lock (credit first, never below zero), atomic credits, grants."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tortoise import connections
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from app.core.errors import ValidationError
from app.funding import ledger
from app.funding.errors import InsufficientFunds
from app.funding.models import LedgerKind, Wallet
from app.funding.money import validate_amount

REASON_MAX = 200


async def debit_wallet(user_id: uuid.UUID | str, amount_cents: int) -> tuple[int, int]:
    """Take `amount_cents`, credit bucket first, then cash; returns (credit, cash) taken.

    Call inside a transaction: the wallet row stays locked until it commits. One statement (lock,
    check, update) because it runs while the caller holds the run's row lock.
    """
    rows = await connections.get("default").execute_query_dict(
        "WITH before AS (SELECT user_id, credit_cents, cash_cents FROM wallets WHERE user_id = $1 FOR UPDATE) "
        "UPDATE wallets w SET credit_cents = b.credit_cents - LEAST(b.credit_cents, $2), "
        "cash_cents = b.cash_cents - ($2 - LEAST(b.credit_cents, $2)), updated_at = $3 "
        "FROM before b WHERE w.user_id = b.user_id AND b.credit_cents + b.cash_cents >= $2 "
        "RETURNING LEAST(b.credit_cents, $2) AS credit",
        [user_id, amount_cents, datetime.now(UTC)],
    )
    if not rows:
        wallet = await Wallet.get(user_id=user_id)
        raise InsufficientFunds(amount_cents, wallet.credit_cents + wallet.cash_cents)
    credit = int(rows[0]["credit"])
    return credit, amount_cents - credit


async def credit_wallet(user_id: uuid.UUID | str, *, cash_cents: int = 0, credit_cents: int = 0) -> None:
    """Add money (deltas ≥ 0): one atomic UPDATE, which also holds the row lock until commit."""
    if cash_cents < 0 or credit_cents < 0:
        raise ValueError("credit_wallet only adds; use debit_wallet to take money")
    updated = await Wallet.filter(user_id=user_id).update(
        cash_cents=F("cash_cents") + cash_cents, credit_cents=F("credit_cents") + credit_cents,
        updated_at=datetime.now(UTC),
    )
    if updated != 1:
        raise LookupError(f"no wallet for user {user_id}")


async def grant_credit(user_id: uuid.UUID | str, amount_cents: int, reason: str, *, granted_by: str) -> None:
    """Admin credit (promotions, compensation): platform:credit_grants → the user's credit bucket."""
    validate_amount(amount_cents)
    reason = reason.strip()
    if not 1 <= len(reason) <= REASON_MAX:
        raise ValidationError({"reason": f"1-{REASON_MAX} characters"})
    async with in_transaction():
        await credit_wallet(user_id, credit_cents=amount_cents)
        await ledger.post(
            LedgerKind.CREDIT_GRANT, f"{reason} (granted by {granted_by})",
            [(ledger.CREDIT_GRANTS, -amount_cents), (ledger.user_credit(user_id), amount_cents)],
            user_id=user_id,
        )
