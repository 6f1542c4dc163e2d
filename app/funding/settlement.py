"""Closing a run's escrow exactly once.

`settle_run` (the funded job ended: completed, failed, or cancelled after it started) charges the
actual cost, capped at the escrow, to platform revenue and returns the rest pro rata to the
fundings by amount (largest remainder, so no cent is lost or created), each by its surplus
policy. `refund_all` (cancelled before the funded job started) returns every funding in full to
where it came from, whatever its policy.

Returning to the source: a run's cost consumes credit before cash, like funding does, so a
funding's returned share fills its cash part first, then its credit part; project-balance
fundings go back to the project balance.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from tortoise.expressions import F
from tortoise.fields.relational import ForeignKeyFieldInstance
from tortoise.models import Model
from tortoise.transactions import in_transaction

from app.funding import ledger, wallets
from app.funding.events import emit
from app.funding.models import Funding, LedgerKind, Settlement, SettlementKind, SurplusPolicy
from app.funding.money import dollars, largest_remainder
from app.projects.models import Project


@dataclass(frozen=True)
class Share:
    """Where one funding's unspent share goes."""

    funding: Funding
    cash_cents: int = 0
    credit_cents: int = 0
    project_balance_cents: int = 0  # back to the project balance it was taken from
    to_project_cents: int = 0  # surplus kept by the project (`to_project` policy)

    @property
    def refunded_cents(self) -> int:
        return self.cash_cents + self.credit_cents + self.project_balance_cents


def plan_shares(fundings: list[Funding], cost_cents: int, *, refund_everything: bool) -> list[Share]:
    """Split what is left after `cost_cents` over `fundings` (pure; see the module docstring)."""
    escrow = sum(f.amount_cents for f in fundings)
    if not 0 <= cost_cents <= escrow:
        raise ValueError(f"cost {cost_cents} outside the escrow 0..{escrow}")
    shares = largest_remainder(escrow - cost_cents, [f.amount_cents for f in fundings])
    planned = []
    for funding, share in zip(fundings, shares, strict=True):
        if not refund_everything and SurplusPolicy(funding.surplus_policy) is SurplusPolicy.TO_PROJECT:
            planned.append(Share(funding, to_project_cents=share))
            continue
        cash = min(share, funding.cash_cents)
        credit = min(share - cash, funding.credit_cents)
        planned.append(Share(funding, cash_cents=cash, credit_cents=credit,
                             project_balance_cents=share - cash - credit))
    return planned


async def settle_run(run_id: uuid.UUID, cost_cents: int, cost_detail: dict[str, Any]) -> None:
    """Charge the actual cost (capped at the escrow), return the rest by policy. Idempotent."""
    if cost_cents < 0:
        raise ValueError("cost_cents must be ≥ 0")
    await _close(run_id, SettlementKind.SETTLED, cost_cents, cost_detail)


async def refund_all(run_id: uuid.UUID, reason: str) -> None:
    """Return every funding in full to its source. Idempotent; a run already settled is left alone.

    Call once the run has left `awaiting_funding` (fundRun then refuses it), so nothing lands later.
    """
    await _close(run_id, SettlementKind.REFUNDED, 0, {"reason": reason})


def _run_model() -> type[Model]:
    # funding/ never imports runs/ (runs import funding); the relation knows the model.
    field = Funding._meta.fields_map["run"]
    assert isinstance(field, ForeignKeyFieldInstance)
    model: type[Model] = field.related_model
    return model


async def _close(run_id: uuid.UUID, kind: SettlementKind, cost_cents: int, detail: dict[str, Any]) -> None:
    async with in_transaction():
        # The run row first (as fundRun does), so a funding cannot interleave and a run closes once.
        run = await _run_model().select_for_update().get_or_none(id=run_id)
        if run is None:
            raise LookupError(f"run {run_id} not found")
        if await Settlement.exists(run_id=run_id):
            return
        fundings = await Funding.filter(run_id=run_id).select_for_update().order_by("created_at", "id")
        escrow = sum(f.amount_cents for f in fundings)
        cost = min(cost_cents, escrow)
        shares = plan_shares(fundings, cost, refund_everything=kind is SettlementKind.REFUNDED)
        project_id: uuid.UUID = getattr(run, "project_id")  # noqa: B009 - the run model is not imported here
        await _pay_out(project_id, shares)
        postings: list[ledger.Posting] = [(ledger.run_escrow(run_id), -escrow), (ledger.PLATFORM_REVENUE, cost)]
        for s in shares:
            postings += [
                (ledger.user_cash(s.funding.funder_id), s.cash_cents),
                (ledger.user_credit(s.funding.funder_id), s.credit_cents),
                (ledger.project_balance(project_id), s.project_balance_cents + s.to_project_cents),
            ]
        settled = kind is SettlementKind.SETTLED
        memo = (f"Run settled: it cost {dollars(cost)} of the {dollars(escrow)} funded" if settled
                else f"Run refunded: {detail['reason']}")
        await ledger.post(LedgerKind.SETTLEMENT if kind is SettlementKind.SETTLED else LedgerKind.REFUND, memo,
                          postings, project_id=project_id, run_id=run_id)
        refunded = sum(s.refunded_cents for s in shares)
        to_project = sum(s.to_project_cents for s in shares)
        await Settlement.create(run_id=run_id, kind=kind.value, escrow_cents=escrow, cost_cents=cost,
                                refunded_cents=refunded, to_project_cents=to_project, detail=detail)
    await emit(f"run:{run_id}", f"funding_{kind.value}", {
        "escrowCents": escrow, "costCents": cost, "refundedCents": refunded, "toProjectCents": to_project,
    })


async def _pay_out(project_id: uuid.UUID, shares: list[Share]) -> None:
    """Credit wallets (in user-id order, so concurrent settlements never deadlock) and the project."""
    per_user: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    for s in shares:
        per_user[s.funding.funder_id][0] += s.cash_cents
        per_user[s.funding.funder_id][1] += s.credit_cents
        s.funding.refunded_cents = s.refunded_cents
        s.funding.to_project_cents = s.to_project_cents
    for user_id in sorted(per_user, key=str):
        cash, credit = per_user[user_id]
        if cash or credit:
            await wallets.credit_wallet(user_id, cash_cents=cash, credit_cents=credit)
    to_project = sum(s.project_balance_cents + s.to_project_cents for s in shares)
    if to_project:
        await Project.filter(id=project_id).update(balance_cents=F("balance_cents") + to_project)
    if shares:
        await Funding.bulk_update([s.funding for s in shares], fields=["refunded_cents", "to_project_cents"])
