"""Wallet rows: atomic credits and grants (debits happen inside a funding: app.runs.fund)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from app.accounts import services as accounts
from app.accounts.models import User
from app.core import limits
from app.core.errors import ValidationError
from app.funding import ledger
from app.funding.models import LedgerKind, Wallet
from app.funding.money import validate_amount

REASON_MAX = limits.REASON


async def create_user_with_wallet(
    *, handle: str, email: str, password: str | None, display_name: str | None = None, is_admin: bool = False
) -> User:
    """A new person: the user and their empty wallet in one transaction (every user has a wallet to
    credit and to fund from; accounts know nothing of money, so the wallet is opened here)."""
    async with in_transaction():
        user = await accounts.create_user(
            handle=handle, email=email, password=password, display_name=display_name, is_admin=is_admin
        )
        await Wallet.create(user=user)
    return user


async def credit_wallet(user_id: uuid.UUID | str, *, cash_cents: int = 0, credit_cents: int = 0) -> None:
    """Add money (deltas ≥ 0): one atomic UPDATE, which also holds the row lock until commit."""
    if cash_cents < 0 or credit_cents < 0:
        raise ValueError("credit_wallet only adds; money leaves a wallet only by funding a run")
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
