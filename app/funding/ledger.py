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
from datetime import UTC, datetime

from tortoise import connections

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
) -> uuid.UUID | None:
    """Record one balanced transaction; call inside the caller's database transaction.

    Returns its id, or None when nothing moves (every line nets to zero). One statement for the
    transaction and its postings: fundings call this while holding the run's row lock.
    """
    lines = net(postings)
    if sum(lines.values()) != 0:
        raise UnbalancedTransaction(f"{kind} postings sum to {sum(lines.values())}: {lines}")
    if not lines:
        return None
    txn_id = uuid.uuid4()
    await connections.get("default").execute_query(
        f"WITH t AS (INSERT INTO {LedgerTransaction._meta.db_table} "
        "(id, created_at, kind, memo, user_id, project_id, run_id) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id) "
        f"INSERT INTO {LedgerPosting._meta.db_table} (transaction_id, account, amount_cents) "
        "SELECT t.id, p.account, p.amount FROM t, unnest($8::text[], $9::bigint[]) AS p(account, amount)",
        [txn_id, datetime.now(UTC), kind.value, memo[:300], _uuid(user_id), _uuid(project_id), _uuid(run_id),
         list(lines), list(lines.values())],
    )
    return txn_id


def _uuid(value: object) -> uuid.UUID | None:
    return None if value is None else value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
