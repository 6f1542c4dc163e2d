"""fundRun: move money from a wallet (or the project balance) into a run's escrow.

Lives with runs because it may start the funded job; the money rules live in `app.funding`.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise.transactions import in_transaction

from app.accounts.models import User
from app.api.errors import Forbidden, NotFound
from app.core.errors import DomainError, ErrorCode, ValidationError
from app.funding import ledger, wallets
from app.funding.claims import insert_once
from app.funding.errors import InsufficientFunds
from app.funding.events import emit
from app.funding.models import Funding, IdempotencyRecord, LedgerKind, SurplusPolicy
from app.funding.money import validate_amount
from app.projects.models import Project
from app.runs.lifecycle import Lifecycle
from app.runs.models import Run

log = logging.getLogger("mlpatron.funding")

FUNDABLE = "awaiting_funding"
FUNDED = "funded"
IDEMPOTENCY_SCOPE = "fund_run"
KEY_MAX = 200


class FundingSource(enum.Enum):
    WALLET = "wallet"
    PROJECT_BALANCE = "project_balance"


class RunNotFundable(DomainError):
    code = ErrorCode.RUN_NOT_FUNDABLE

    def __init__(self, status: str, reason: str | None = None) -> None:
        super().__init__(reason or f"Only runs awaiting funding can be funded; this run is {status}.")
        self.status = status


@dataclass(frozen=True)
class FundingResult:
    funding: Funding
    run: Run
    requested_cents: int  # what the caller asked for; funding.amount_cents is what was taken
    replayed: bool  # an earlier call with the same idempotency key; nothing was charged now


async def fund_run(
    lifecycle: Lifecycle, user: User, run_id: uuid.UUID, amount_cents: int,
    surplus_policy: SurplusPolicy = SurplusPolicy.TO_PROJECT, source: FundingSource = FundingSource.WALLET,
    idempotency_key: str | None = None,
) -> FundingResult:
    """Fund a run awaiting funding, atomically, in one transaction.

    Over-funding: the amount taken is capped at the run's funding gap. A patron offering more
    than is missing pays only the gap (`funding.amountCents` says what was taken, the success
    payload also echoes `requestedCents`), so money never sits in an escrow beyond the estimate
    and settlement splits only the real cost. What is left after settlement (actual cost below
    the estimate) follows each funder's surplus policy.

    Order: the run row is locked first, then the wallet (or project); the wallet is debited
    credit first, then cash, and never below zero (InsufficientFunds). When the gap reaches 0
    the run becomes `funded` in the same transaction, and the funded job is started after commit.

    `idempotency_key`: the same user and key return the first Funding and charge once, also when
    the retries race (the key's unique row is claimed inside the transaction).
    """
    validate_amount(amount_cents)
    key = _validate_key(idempotency_key)
    if key is not None and (replay := await _replay(user, key, run_id, amount_cents)) is not None:
        return replay
    funding_id = uuid.uuid4()
    async with in_transaction():
        claimed = key is None or await insert_once(
            IdempotencyRecord, user_id=user.id, scope=IDEMPOTENCY_SCOPE, key=key, result_id=funding_id,
            created_at=datetime.now(UTC),
        )
        result = await _fund_locked(user, run_id, amount_cents, surplus_policy, source, funding_id) if claimed else None
    if result is None:  # a concurrent call with the same key committed first: answer with its funding
        assert key is not None
        replay = await _replay(user, key, run_id, amount_cents)
        assert replay is not None
        return replay
    await _after_commit(lifecycle, result)
    return result


def _validate_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= KEY_MAX or not key.isprintable():
        raise ValidationError({"idempotencyKey": f"1-{KEY_MAX} printable characters"})
    return key


async def _replay(user: User, key: str, run_id: uuid.UUID, amount_cents: int) -> FundingResult | None:
    record = await IdempotencyRecord.get_or_none(user_id=user.id, scope=IDEMPOTENCY_SCOPE, key=key)
    if record is None:
        return None
    funding = await Funding.get(id=record.result_id)
    if funding.run_id != run_id:
        raise ValidationError({"idempotencyKey": "already used to fund another run"})
    return FundingResult(funding, await Run.get(id=run_id), amount_cents, replayed=True)


async def _fund_locked(
    user: User, run_id: uuid.UUID, amount_cents: int, surplus_policy: SurplusPolicy, source: FundingSource,
    funding_id: uuid.UUID,
) -> FundingResult:
    run = await Run.select_for_update().get_or_none(id=run_id)
    if run is None:
        raise NotFound("Run")
    if run.status != FUNDABLE:
        raise RunNotFundable(run.status)
    if run.funding_gap_cents <= 0:
        raise RunNotFundable(run.status, "This run has no funding gap to fill.")
    amount = min(amount_cents, run.funding_gap_cents)
    credit = cash = from_project = 0
    if source is FundingSource.PROJECT_BALANCE:
        from_project = await _debit_project(user, run.project_id, amount)
        taken_from = [(ledger.project_balance(run.project_id), -from_project)]
    else:
        credit, cash = await wallets.debit_wallet(user.id, amount)
        taken_from = [(ledger.user_credit(user.id), -credit), (ledger.user_cash(user.id), -cash)]
    run.funded_cents += amount
    if run.funding_gap_cents == 0:
        run.status = FUNDED
    await run.save(update_fields=["funded_cents", "status", "updated_at"])
    funding = await Funding.create(
        id=funding_id, run_id=run.id, funder_id=user.id, amount_cents=amount, credit_cents=credit, cash_cents=cash,
        project_balance_cents=from_project, surplus_policy=surplus_policy.value,
    )
    await ledger.post(LedgerKind.FUNDING, f"Funding of run “{run.title}” by @{user.handle}",
                      [*taken_from, (ledger.run_escrow(run.id), amount)],
                      user_id=user.id, project_id=run.project_id, run_id=run.id)
    return FundingResult(funding, run, amount_cents, replayed=False)


async def _debit_project(user: User, project_id: uuid.UUID, amount: int) -> int:
    project = await Project.select_for_update().get(id=project_id)
    if project.owner_id != user.id:
        raise Forbidden("Only the project owner can fund runs from the project balance.")
    if amount > project.balance_cents:
        raise InsufficientFunds(amount, project.balance_cents, source="project balance")
    await Project.filter(id=project_id).update(balance_cents=project.balance_cents - amount)
    return amount


async def _after_commit(lifecycle: Lifecycle, result: FundingResult) -> None:
    """The funding's event, then (gap closed) the run's status change, then the funded job."""
    run, funding = result.run, result.funding
    await emit(f"run:{run.id}", "funding", {
        "fundingId": str(funding.id), "funderId": str(funding.funder_id), "amountCents": funding.amount_cents,
        "fundedCents": run.funded_cents, "fundingGapCents": run.funding_gap_cents, "status": run.status,
    })
    await lifecycle.funding_committed(funding, run)  # the creator hears who gave how much
    if run.status == FUNDED:
        await lifecycle.run_status_changed(run, "awaiting_funding")  # listeners' failures are logged there
        # The reconciler retries funded runs without a job, so a failure here is logged, never
        # reported as a failed funding (the money has moved).
        try:
            await lifecycle.start_funded_job(run.id)
        except Exception:
            log.exception("starting the funded job of run %s failed; the reconciler will retry", run.id)
