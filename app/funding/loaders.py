"""Batched reads of money lists nested under other lists: fundings per run or funder, wallets."""

from __future__ import annotations

from collections.abc import Sequence

from app.api.context import Info
from app.api.pagination import Connection, Keyset
from app.api.windows import Window
from app.funding.models import Funding, Wallet
from app.funding.types import BalanceType, FundingType

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
