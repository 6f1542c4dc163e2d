"""fundRun: move money from a wallet (or the project balance) into a run's escrow.

Lives with runs because it may start the funded job; the money rules live in `app.funding`.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from tortoise import connections
from tortoise.transactions import in_transaction

from app.accounts.models import User
from app.core.errors import DomainError, ErrorCode, Forbidden, NotFound, ValidationError
from app.events import services as events
from app.funding import ledger
from app.funding.claims import insert_once
from app.funding.errors import InsufficientFunds
from app.funding.models import Funding, IdempotencyRecord, LedgerKind, SurplusPolicy
from app.funding.money import validate_amount
from app.runs.lifecycle import Lifecycle
from app.runs.models import Run, RunStatus

log = logging.getLogger("mlpatron.funding")

FUNDABLE = RunStatus.AWAITING_FUNDING.value
FUNDED = RunStatus.FUNDED.value
IDEMPOTENCY_SCOPE = "fund_run"
KEY_MAX = 200
FUNDING_EVENT = "funding"  # the kind of the run-stream event each funding appends


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
    event_seq: int = 0  # the run's `funding` event, written with the funding (0 when replayed)


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
    if key is None:  # one statement, atomic on its own: no BEGIN and COMMIT round trips around it
        result: FundingResult | None = await _fund_locked(user, run_id, amount_cents, surplus_policy, source,
                                                         funding_id)
    else:
        async with in_transaction():
            claimed = await insert_once(IdempotencyRecord, user_id=user.id, scope=IDEMPOTENCY_SCOPE, key=key,
                                        result_id=funding_id, created_at=datetime.now(UTC))
            result = await _fund_locked(user, run_id, amount_cents, surplus_policy, source,
                                        funding_id) if claimed else None
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


# The whole funding in one statement, so the run's row lock is held only while PostgreSQL runs it
# (never across round trips that wait behind other requests on this process's event loop). Order:
# the run row is locked first, then the wallet (or the project); nothing is written unless every
# check passes. The funding is written with its RUN_FUNDED notice pending (`notice_funded_cents`:
# the run's new funded total), which `app.notifications.funded` writes after the commit, off this
# request. $1 run, $2 funder, $3 amount offered, $4 source, $5 funding id, $6 now, $7 surplus
# policy, $8 ledger transaction id, $9 ledger kind, $10 memo prefix, $11-$14 ledger accounts
# (credit, cash, project balance, escrow), $15 fundable status, $16 funded status, $17 the run
# event's kind. The run's `funding` event is written by the same statement (its seq comes back),
# so only the wake-up is left for after the commit.
_FUND = """
WITH run AS (
    SELECT id, project_id, title, status, GREATEST(COALESCE(estimated_cost_cents, 0) - funded_cents, 0) AS gap
    FROM runs WHERE id = $1 FOR UPDATE
), ask AS (
    SELECT LEAST($3::bigint, gap) AS amount FROM run WHERE status = $15 AND gap > 0
), wallet AS (
    SELECT user_id, credit_cents, cash_cents FROM wallets
    WHERE $4::text = 'wallet' AND user_id = $2 AND (SELECT amount FROM ask) IS NOT NULL FOR UPDATE
), project AS (
    SELECT p.id, p.owner_id, p.balance_cents FROM projects p
    WHERE $4::text = 'project_balance' AND p.id = (SELECT project_id FROM run)
      AND (SELECT amount FROM ask) IS NOT NULL FOR UPDATE
), from_wallet AS (
    UPDATE wallets w SET credit_cents = b.credit_cents - LEAST(b.credit_cents, a.amount),
                         cash_cents = b.cash_cents - (a.amount - LEAST(b.credit_cents, a.amount)), updated_at = $6
    FROM wallet b, ask a WHERE w.user_id = b.user_id AND b.credit_cents + b.cash_cents >= a.amount
    RETURNING LEAST(b.credit_cents, a.amount) AS credit, a.amount - LEAST(b.credit_cents, a.amount) AS cash,
              0::bigint AS from_project
), from_project AS (
    UPDATE projects p SET balance_cents = b.balance_cents - a.amount
    FROM project b, ask a WHERE p.id = b.id AND b.owner_id = $2 AND b.balance_cents >= a.amount
    RETURNING 0::bigint AS credit, 0::bigint AS cash, a.amount AS from_project
), moved AS (
    SELECT credit, cash, from_project, credit + cash + from_project AS amount
    FROM (SELECT * FROM from_wallet UNION ALL SELECT * FROM from_project) m
), funded AS (
    UPDATE runs r SET funded_cents = r.funded_cents + m.amount, updated_at = $6,
                      status = CASE WHEN r.funded_cents + m.amount >= r.estimated_cost_cents THEN $16 ELSE r.status END
    FROM moved m WHERE r.id = $1 RETURNING r.*
), funding AS (
    INSERT INTO fundings (id, created_at, run_id, funder_id, amount_cents, credit_cents, cash_cents,
                          project_balance_cents, surplus_policy, refunded_cents, to_project_cents, notice_funded_cents)
    SELECT $5, $6, $1, $2, m.amount, m.credit, m.cash, m.from_project, $7, 0, 0, f.funded_cents FROM moved m, funded f
), txn AS (
    INSERT INTO ledger_transactions (id, created_at, kind, memo, user_id, project_id, run_id)
    SELECT $8, $6, $9, left(format($10::text, r.title), 300), $2, r.project_id, $1 FROM run r, moved
    RETURNING id
), postings AS (
    INSERT INTO ledger_postings (transaction_id, account, amount_cents)
    SELECT t.id, p.account, p.amount FROM txn t, moved m,
        LATERAL (VALUES ($11::text, -m.credit), ($12::text, -m.cash),
                        (replace($13::text, '{project}', (SELECT project_id FROM run)::text), -m.from_project),
                        ($14::text, m.amount)) AS p(account, amount)
    WHERE p.amount <> 0
), """ + events.append_ctes(
    "'run:' || $1::text", "$17::text",
    "jsonb_build_object('fundingId', $5::text, 'funderId', $2::text, 'amountCents', m.amount, 'fundedCents', "
    "f.funded_cents, 'fundingGapCents', GREATEST(COALESCE(f.estimated_cost_cents, 0) - f.funded_cents, 0), "
    "'status', f.status)",
    "funded f, moved m",
) + """
SELECT r.status AS fund_status, (SELECT amount FROM ask) AS fund_amount, (SELECT seq FROM event) AS fund_event_seq,
       (SELECT credit_cents + cash_cents FROM wallets WHERE user_id = $2) AS fund_wallet,
       (SELECT owner_id FROM project) AS fund_owner, (SELECT balance_cents FROM project) AS fund_balance,
       m.credit AS fund_credit, m.cash AS fund_cash, m.from_project AS fund_from_project, f.*
FROM run r LEFT JOIN moved m ON true LEFT JOIN funded f ON true
"""


async def _fund_locked(
    user: User, run_id: uuid.UUID, amount_cents: int, surplus_policy: SurplusPolicy, source: FundingSource,
    funding_id: uuid.UUID,
) -> FundingResult:
    now = datetime.now(UTC)
    rows = await connections.get("default").execute_query_dict(_FUND, [
        run_id, user.id, amount_cents, source.value, funding_id, now, surplus_policy.value, uuid.uuid4(),
        LedgerKind.FUNDING.value, f"Funding of run “%s” by @{user.handle.replace('%', '%%')}",
        ledger.user_credit(user.id), ledger.user_cash(user.id), ledger.project_balance("{project}"),
        ledger.run_escrow(run_id), FUNDABLE, FUNDED, FUNDING_EVENT,
    ])
    if not rows:
        raise NotFound("Run")
    row = rows[0]
    if row["fund_amount"] is None:
        status = row["fund_status"]
        raise RunNotFundable(status) if status != FUNDABLE else RunNotFundable(
            status, "This run has no funding gap to fill.")
    amount = row["fund_amount"]
    if row["fund_credit"] is None:  # nothing moved
        if source is FundingSource.PROJECT_BALANCE:
            if row["fund_owner"] != user.id:
                raise Forbidden("Only the project owner can fund runs from the project balance.")
            raise InsufficientFunds(amount, row["fund_balance"], source="project balance")
        raise InsufficientFunds(amount, row["fund_wallet"] or 0)
    run = Run._init_from_db(**{k: v for k, v in row.items() if not k.startswith("fund_")})
    funding = Funding(id=funding_id, created_at=now, run_id=run.id, funder_id=user.id, amount_cents=amount,
                      credit_cents=row["fund_credit"], cash_cents=row["fund_cash"],
                      project_balance_cents=row["fund_from_project"], surplus_policy=surplus_policy.value)
    return FundingResult(funding, run, amount_cents, replayed=False, event_seq=row["fund_event_seq"])


async def _after_commit(lifecycle: Lifecycle, result: FundingResult) -> None:
    """The funding event's wake-up, then (gap closed) the run's status change, then the funded job."""
    run, funding = result.run, result.funding
    await events.wake(f"run:{run.id}", FUNDING_EVENT, result.event_seq)
    await lifecycle.funding_committed(funding, run)  # the creator hears who gave how much
    if run.status == FUNDED:
        await lifecycle.run_status_changed(run, FUNDABLE)  # listeners' failures are logged there
        # The reconciler retries funded runs without a job, so a failure here is logged, never
        # reported as a failed funding (the money has moved).
        try:
            await lifecycle.start_funded_job(run.id)
        except Exception:
            log.exception("starting the funded job of run %s failed; the reconciler will retry", run.id)
