"""The double-entry ledger: account names and balanced, append-only transactions.

Sign convention: a posting is the change of its account's balance. Holdings (wallet buckets,
run escrow, project balances, platform revenue) are positive; the places money enters from
(`external:stripe`, `platform:credit_grants`) go negative. Every transaction sums to zero, so
the whole ledger does too, and each holding's balance is the plain sum of its postings.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from app.funding.models import LedgerKind, LedgerPosting, LedgerTransaction

STRIPE = "external:stripe"
CREDIT_GRANTS = "platform:credit_grants"
PLATFORM_REVENUE = "platform:revenue"

Posting = tuple[str, int]


def user_cash(user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}:cash"


def user_credit(user_id: uuid.UUID | str) -> str:
    return f"user:{user_id}:credit"


def run_escrow(run_id: uuid.UUID | str) -> str:
    return f"run:{run_id}:escrow"


def project_balance(project_id: uuid.UUID | str) -> str:
    return f"project:{project_id}:balance"


def user_accounts(user_id: uuid.UUID | str) -> list[str]:
    return [user_cash(user_id), user_credit(user_id)]


class UnbalancedTransaction(ValueError):
    pass


def net(postings: Iterable[Posting]) -> dict[str, int]:
    """Postings merged per account, zero lines dropped (one line per account per transaction)."""
    merged: dict[str, int] = defaultdict(int)
    for account, amount in postings:
        merged[account] += amount
    return {account: amount for account, amount in merged.items() if amount}


async def post(
    kind: LedgerKind, memo: str, postings: Iterable[Posting], *, user_id: object = None,
    project_id: object = None, run_id: object = None,
) -> LedgerTransaction | None:
    """Record one balanced transaction; call inside the caller's database transaction.

    Returns None when nothing moves (every line nets to zero).
    """
    lines = net(postings)
    if sum(lines.values()) != 0:
        raise UnbalancedTransaction(f"{kind} postings sum to {sum(lines.values())}: {lines}")
    if not lines:
        return None
    txn = await LedgerTransaction.create(kind=kind.value, memo=memo[:300], user_id=user_id, project_id=project_id,
                                         run_id=run_id)
    await LedgerPosting.bulk_create(
        [LedgerPosting(transaction_id=txn.id, account=acct, amount_cents=amount) for acct, amount in lines.items()]
    )
    return txn
