"""Helpers shared by the money tests (no tests here): patrons, wallets, runs built in the test,
and snapshots of the books to prove that a rejected request moved nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from tortoise import connections

from app.accounts import services as accounts
from app.api.ids import encode_id
from app.funding import deposits, ledger, wallets
from app.funding.audit import check_ledger
from app.funding.models import Deposit, Wallet
from app.projects.models import Project
from app.runs.models import Run
from tests.client import GraphQLClient

FUND_RUN = """mutation($i: FundRunInput!) { fundRun(input: $i) { __typename
  ... on FundRunSuccess { requestedCents replayed
        funding { id amountCents creditCents cashCents projectBalanceCents surplusPolicy refundedCents runId
                  funder { handle } }
        run { id status fundedCents fundingGapCents } }
  ... on InsufficientFunds { code message requiredCents availableCents }
  ... on RunNotFundable { code message status }
  ... on ValidationFailed { code message fields { field message } } } }"""


@dataclass
class Patron:
    user_id: uuid.UUID
    handle: str
    agent: GraphQLClient  # authenticated with the patron's API key


@asynccontextmanager
async def patrons(api: str, n: int, prefix: str = "patron") -> AsyncIterator[list[Patron]]:
    """`n` users with API keys, made through the services (no password hashing: fast for crowds)."""
    made: list[Patron] = []
    try:
        for _ in range(n):
            handle = f"{prefix}-{uuid.uuid4().hex[:8]}"
            user = await wallets.create_user_with_wallet(handle=handle, email=f"{handle}@example.test", password=None)
            key = await accounts.create_api_key(user, "agent")
            made.append(Patron(user.id, handle, GraphQLClient(api, key.secret)))
        yield made
    finally:
        for p in made:
            await p.agent.close()


async def give_credit(user_id: object, cents: int) -> None:
    await wallets.grant_credit(user_id, cents, "test credit", granted_by="tests")


async def give_cash(user_id: object, cents: int) -> None:
    """A card deposit applied through the same path as Stripe's verified webhook."""
    intent_id = f"pi_test_{uuid.uuid4().hex}"
    await Deposit.create(user_id=user_id, amount_cents=cents, payment_intent_id=intent_id)
    applied = await deposits.apply_event(f"evt_test_{uuid.uuid4().hex}", deposits.SUCCEEDED,
                                         {"id": intent_id, "amount": cents, "currency": "usd"})
    assert applied


async def wallet_of(user_id: object) -> tuple[int, int]:
    """(cash, credit)."""
    w = await Wallet.get(user_id=user_id)
    return w.cash_cents, w.credit_cents


async def make_project(owner_id: object, git_url: str = "https://example.com/money.git") -> Project:
    return await Project.create(owner_id=owner_id, title="money", git_url=git_url)


async def make_run(project: Project, estimate_cents: int, *, status: str = "awaiting_funding",
                   uri: str | None = None, commit_sha: str = "0" * 40, seconds: str = "1") -> Run:
    """A run as the lifecycle leaves it after its dryrun (no dryrun job: the money tests start here)."""
    return await Run.create(
        project_id=project.id, creator_id=project.owner_id, title="money run", status=status,
        uri=uri or project.git_url, version="main", commit_sha=commit_sha, parameters={"seconds": seconds},
        gpu_type="l4", gpu_count=1, machine_type="g2-standard-4", dryrun_override_param="seconds",
        dryrun_override_value="0", estimated_cost_cents=estimate_cents,
    )


def gid(type_name: str, pk: object) -> str:
    return str(encode_id(type_name, pk))


async def fund(client: GraphQLClient, run: Run | str, amount: int, **extra: Any) -> dict[str, Any]:
    run_id = run if isinstance(run, str) else gid("Run", run.id)
    return (await client.data(FUND_RUN, {"i": {"runId": run_id, "amountCents": amount, **extra}}))["fundRun"]


async def books(*, users: Sequence[Any] = (), runs: Sequence[Any] = (), projects: Sequence[Any] = ()) -> dict[str, Any]:
    """The money state of these users, runs and projects: their ledger accounts (postings and
    balances), wallets, project balances, run funding, fundings and idempotency records."""
    users, runs, projects = [str(u) for u in users], [str(r) for r in runs], [str(p) for p in projects]
    accounts = ([a for u in users for a in ledger.user_accounts(u)] + [ledger.run_escrow(r) for r in runs]
                + [ledger.project_balance(p) for p in projects])
    conn = connections.get("default")

    async def q(sql: str, *args: Any) -> list[tuple[Any, ...]]:
        return [tuple(r.values()) for r in await conn.execute_query_dict(sql, list(args))]

    return {
        "postings": await q("SELECT account, count(*), sum(amount_cents) FROM ledger_postings "
                            "WHERE account = ANY($1::text[]) GROUP BY 1 ORDER BY 1", accounts),
        "wallets": await q("SELECT user_id, cash_cents, credit_cents FROM wallets WHERE user_id::text = ANY($1) "
                           "ORDER BY 1", users),
        "projects": await q("SELECT id, balance_cents FROM projects WHERE id::text = ANY($1) ORDER BY 1", projects),
        "runs": await q("SELECT id, status, funded_cents FROM runs WHERE id::text = ANY($1) ORDER BY 1", runs),
        "fundings": await q("SELECT count(*) FROM fundings WHERE run_id::text = ANY($1) OR funder_id::text = ANY($2)",
                            runs, users),
        "idempotency": await q("SELECT count(*) FROM idempotency_records WHERE user_id::text = ANY($1)", users),
    }


async def assert_books_balance() -> None:
    assert await check_ledger() == []
