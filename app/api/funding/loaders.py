"""Batched reads of money lists nested under other lists: fundings per run or funder, wallets, ledger pages."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from strawberry.dataloader import DataLoader

from app.api.context import Info
from app.api.funding.types import BalanceType, FundingType, LedgerEntryType, LedgerPostingType
from app.api.ids import encode_id
from app.api.pagination import Connection, Keyset, connection
from app.api.windows import Window
from app.funding.models import Funding, LedgerKind, LedgerPosting, LedgerTransaction, Wallet

BY_RUN = Window(Funding, "run_id")
BY_FUNDER = Window(Funding, "funder_id")


async def run_fundings(info: Info, run_id: object, first: int | None, after: str | None) -> Connection[FundingType]:
    """`Run.fundings` (public): newest first."""
    return await info.context.loaders.page(BY_RUN, Keyset.of(first, after), run_id, FundingType.from_model)


async def user_fundings(info: Info, user_id: object, first: int | None,
                        after: str | None) -> Connection[FundingType]:
    """`User.fundings`: what this user funded, newest first."""
    return await info.context.loaders.page(BY_FUNDER, Keyset.of(first, after), user_id, FundingType.from_model)


async def _balances(user_ids: Sequence[str]) -> list[BalanceType]:
    wallets = {str(w.user_id): w for w in await Wallet.filter(user_id__in=list(user_ids))}
    return [BalanceType(cash_cents=w.cash_cents, credit_cents=w.credit_cents) if (w := wallets.get(u))
            else BalanceType(cash_cents=0, credit_cents=0) for u in user_ids]


async def balance(info: Info, user_id: object) -> BalanceType:
    """`User.balance`: one wallet query for every user being resolved."""
    return await info.context.loaders.batch("User.balance", _balances).load(str(user_id))


# A parent's accounts travel as one key, space-separated (account names hold no spaces).
LEDGER = Window(LedgerTransaction, "accounts", parent_type="text", match=(
    "t.id IN (SELECT transaction_id FROM ledger_postings WHERE account = ANY(string_to_array(page.parent, ' ')))"))


async def _entries(keyed: Sequence[str], keyset: Keyset) -> list[Connection[LedgerEntryType]]:
    """The pages of transactions of every parent, then all their postings: two statements."""
    by_parent = await LEDGER.rows(keyed, keyset)
    ids = list({row.id for rows in by_parent.values() for row in rows})
    accounts = list({a for key in keyed for a in key.split(" ")})
    lines: dict[Any, list[LedgerPostingType]] = defaultdict(list)
    for p in await LedgerPosting.filter(transaction_id__in=ids, account__in=accounts).order_by("id"):
        lines[p.transaction_id].append(LedgerPostingType(account=p.account, amount_cents=p.amount_cents))
    out = []
    for key in keyed:
        mine = set(key.split(" "))

        def entry(row: LedgerTransaction, mine: set[str] = mine) -> LedgerEntryType:
            postings = [p for p in lines[row.id] if p.account in mine]
            return LedgerEntryType(id=encode_id("LedgerTransaction", row.id), kind=LedgerKind(row.kind),
                                   memo=row.memo, amount_cents=sum(p.amount_cents for p in postings),
                                   postings=postings, created_at=row.created_at)

        out.append(await connection(keyset, by_parent.get(key, []), entry))
    return out


async def ledger_page(info: Info, accounts: Sequence[str], first: int | None,
                      after: str | None) -> Connection[LedgerEntryType]:
    """Transactions touching `accounts` (see `app.funding.ledger`), newest first: for every parent of
    the page at once (`Run.transactions`, `Project.transactions`, `User.transactions`)."""
    keyset = Keyset.of(first, after)
    loader: DataLoader[str, Connection[LedgerEntryType]] = info.context.loaders.batch(
        ("ledger", keyset), lambda keyed: _entries(keyed, keyset))
    return await loader.load(" ".join(accounts))
