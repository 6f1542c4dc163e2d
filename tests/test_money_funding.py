"""fundRun over HTTP: credit before cash, the gap cap, idempotency, sources, bad input, and a
crowd of patrons racing to fund one run (which then really runs and settles)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from app.funding.models import Funding, IdempotencyRecord, Settlement
from app.funding.settlement import settle_run
from app.jobs.models import Job
from app.runs.models import Run
from tests.helpers import eventually
from tests.repos import Repo, git
from tests.test_money_support import (
    FUND_RUN,
    assert_books_balance,
    books,
    fund,
    gid,
    give_cash,
    give_credit,
    make_project,
    make_run,
    patrons,
    wallet_of,
)

MLPROJECT = """name: money
docker_env:
  image: ghcr.io/mlpatron/demo:1.0
entry_points:
  main:
    parameters:
      seconds: {type: float, default: 1}
    command: "python sleep.py {seconds}"
"""


@pytest.fixture(scope="module")
def sleeper_repo(work_dir: Path) -> Repo:
    """A real repository whose funded job sleeps a little: funded runs really run, then settle."""
    path = work_dir / f"sleeper-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    repo = Repo(path)
    repo.commit({"MLproject": MLPROJECT, "sleep.py": "import sys, time\ntime.sleep(float(sys.argv[1]))\n"})
    return repo


async def runnable_run(repo: Repo, owner_id: object, estimate: int, seconds: str = "1") -> Run:
    project = await make_project(owner_id, str(repo.path))
    return await make_run(project, estimate, uri=str(repo.path), commit_sha=repo.git("rev-parse", "HEAD"),
                          seconds=seconds)


async def test_credit_is_spent_before_cash_and_every_movement_is_in_the_ledger(api: str) -> None:
    async with patrons(api, 2) as (owner, patron):
        await give_credit(patron.user_id, 300)
        await give_cash(patron.user_id, 1000)
        run = await make_run(await make_project(owner.user_id), 5000)

        paid = await fund(patron.agent, run, 500, surplusPolicy="REFUND")
        assert paid["__typename"] == "FundRunSuccess" and paid["replayed"] is False
        assert {k: paid["funding"][k] for k in ("amountCents", "creditCents", "cashCents", "surplusPolicy")} == {
            "amountCents": 500, "creditCents": 300, "cashCents": 200, "surplusPolicy": "REFUND"}
        assert paid["funding"]["runId"] == gid("Run", run.id)
        assert paid["run"] == {"id": gid("Run", run.id), "status": "AWAITING_FUNDING", "fundedCents": 500,
                               "fundingGapCents": 4500}
        assert await wallet_of(patron.user_id) == (800, 0)

        again = await fund(patron.agent, run, 100)  # credit is gone: cash only; default policy
        assert (again["funding"]["creditCents"], again["funding"]["cashCents"]) == (0, 100)
        assert again["funding"]["surplusPolicy"] == "TO_PROJECT"

        mine = await patron.agent.data("""{ viewer {
            balance { cashCents creditCents totalCents }
            fundings(first: 10) { nodes { amountCents } }
            transactions(first: 10) { nodes { kind amountCents memo postings { account amountCents } } } } }""")
        viewer = mine["viewer"]
        assert viewer["balance"] == {"cashCents": 700, "creditCents": 0, "totalCents": 700}
        assert [f["amountCents"] for f in viewer["fundings"]["nodes"]] == [100, 500]
        kinds = [(t["kind"], t["amountCents"]) for t in viewer["transactions"]["nodes"]]
        assert kinds == [("FUNDING", -100), ("FUNDING", -500), ("DEPOSIT", 1000), ("CREDIT_GRANT", 300)]
        first_funding = viewer["transactions"]["nodes"][1]
        assert sorted((p["account"].rsplit(":", 1)[1], p["amountCents"]) for p in first_funding["postings"]) == [
            ("cash", -200), ("credit", -300)]

        fresh = await Run.get(id=run.id)
        assert (fresh.funded_cents, fresh.status) == (600, "awaiting_funding")
        await assert_books_balance()


async def test_an_offer_above_the_gap_takes_only_the_gap_and_starts_the_job_once(api: str) -> None:
    async with patrons(api, 4) as (owner, first, closer, late):
        for p in (first, closer, late):
            await give_credit(p.user_id, 10_000)
        # A repository that does not exist: the funded job's launch fails, so everything is refunded.
        run = await make_run(await make_project(owner.user_id), 1000)
        assert (await fund(first.agent, run, 400))["run"]["fundingGapCents"] == 600

        closed = await fund(closer.agent, run, 5000, surplusPolicy="REFUND")
        assert closed["__typename"] == "FundRunSuccess"
        assert closed["requestedCents"] == 5000 and closed["funding"]["amountCents"] == 600
        assert closed["run"]["status"] == "FUNDED" and closed["run"]["fundingGapCents"] == 0
        assert await wallet_of(closer.user_id) in ((0, 9400), (0, 10_000))  # (refunded once the launch failed)

        too_late = await fund(late.agent, run, 100)
        assert too_late["__typename"] == "RunNotFundable" and too_late["code"] == "RUN_NOT_FUNDABLE"
        assert too_late["status"] != "AWAITING_FUNDING"
        assert await wallet_of(late.user_id) == (0, 10_000)

        assert await Job.filter(run_id=run.id, kind="funded").count() == 1
        # The job never started (no such repository): refund_all returned everything, whatever the policy.
        await eventually(lambda: Settlement.get_or_none(run_id=run.id), lambda s: s is not None, within=30)
        assert [(f.amount_cents, f.refunded_cents) for f in await Funding.filter(run_id=run.id).order_by("created_at")
                ] == [(400, 400), (600, 600)]
        assert await wallet_of(first.user_id) == (0, 10_000) and await wallet_of(closer.user_id) == (0, 10_000)
        await assert_books_balance()


async def test_insufficient_funds_is_typed_and_moves_nothing(api: str) -> None:
    async with patrons(api, 2) as (owner, patron):
        await give_credit(patron.user_id, 70)
        await give_cash(patron.user_id, 130)
        run = await make_run(await make_project(owner.user_id), 5000)
        before = await books(users=[patron.user_id], runs=[run.id])
        short = await fund(patron.agent, run, 201)
        assert short == {"__typename": "InsufficientFunds", "code": "INSUFFICIENT_FUNDS", "requiredCents": 201,
                         "availableCents": 200, "message": short["message"]}
        assert await books(users=[patron.user_id], runs=[run.id]) == before
        assert (await fund(patron.agent, run, 200))["funding"]["amountCents"] == 200
        assert await wallet_of(patron.user_id) == (0, 0)


@pytest.mark.parametrize("amount", [0, -5, 10_000_001])
async def test_amounts_out_of_range_are_validation_failures(api: str, amount: int) -> None:
    async with patrons(api, 2) as (owner, patron):
        await give_credit(patron.user_id, 1000)
        run = await make_run(await make_project(owner.user_id), 5000)
        before = await books(users=[patron.user_id], runs=[run.id])
        bad = await fund(patron.agent, run, amount)
        assert bad["__typename"] == "ValidationFailed" and [f["field"] for f in bad["fields"]] == ["amountCents"]
        assert await books(users=[patron.user_id], runs=[run.id]) == before


async def test_bad_requests_are_refused_and_move_nothing(api: str, make_person) -> None:
    async with patrons(api, 2) as (owner, patron):
        await give_credit(patron.user_id, 1000)
        project = await make_project(owner.user_id)
        runs = {status: await make_run(project, 5000, status=status)
                for status in ("dryrun", "cancelled", "completed", "funded_failed")}
        open_run = await make_run(project, 5000)
        before = await books(users=[patron.user_id, owner.user_id], runs=[r.id for r in [*runs.values(), open_run]],
                             projects=[project.id])

        for status, run in runs.items():
            refused = await fund(patron.agent, run, 100)
            assert (refused["__typename"], refused["status"]) == ("RunNotFundable", status.upper())
        # Ints beyond 32 bits are not even valid GraphQL.
        huge = await patron.agent.error(FUND_RUN, {"i": {"runId": gid("Run", open_run.id), "amountCents": 2**40}})
        assert "amountCents" in huge["message"]
        fractional = await patron.agent.error(FUND_RUN, {"i": {"runId": gid("Run", open_run.id), "amountCents": 1.5}})
        assert "amountCents" in fractional["message"]
        # Someone else's project balance.
        err = await patron.agent.error(FUND_RUN, {"i": {"runId": gid("Run", open_run.id), "amountCents": 100,
                                                        "source": "PROJECT_BALANCE"}})
        assert err["extensions"]["code"] == "FORBIDDEN"
        # Addressing and authentication.
        missing = await patron.agent.error(FUND_RUN, {"i": {"runId": gid("Run", uuid.uuid4()), "amountCents": 1}})
        assert missing["extensions"]["code"] == "NOT_FOUND"
        malformed = await patron.agent.error(FUND_RUN, {"i": {"runId": gid("Project", project.id),
                                                              "amountCents": 1}})
        assert malformed["extensions"]["code"] == "BAD_USER_INPUT"
        anonymous = await make_person("anon")
        await anonymous.web.data("mutation { logout { ok } }")
        unauth = await anonymous.web.error(FUND_RUN, {"i": {"runId": gid("Run", open_run.id), "amountCents": 1}})
        assert unauth["extensions"]["code"] == "UNAUTHENTICATED"
        bad_key = await fund(patron.agent, open_run, 100, idempotencyKey="")
        assert bad_key["__typename"] == "ValidationFailed" and bad_key["fields"][0]["field"] == "idempotencyKey"

        assert await books(users=[patron.user_id, owner.user_id], runs=[r.id for r in [*runs.values(), open_run]],
                           projects=[project.id]) == before


async def test_the_project_owner_funds_from_the_project_balance(api: str) -> None:
    async with patrons(api, 2) as (owner, patron):
        await give_credit(patron.user_id, 1000)
        project = await make_project(owner.user_id)
        # Surplus reaches the project balance the real way: a settled run with a TO_PROJECT funding.
        earlier = await make_run(project, 100_000)
        await fund(patron.agent, earlier, 1000)
        await Run.filter(id=earlier.id).update(status="completed")
        await settle_run(earlier.id, 250, {"seconds": 1})
        await project.refresh_from_db()
        assert project.balance_cents == 750

        run = await make_run(project, 100_000)
        too_much = await fund(owner.agent, run, 751, source="PROJECT_BALANCE")
        assert (too_much["__typename"], too_much["requiredCents"], too_much["availableCents"]) == (
            "InsufficientFunds", 751, 750)
        paid = await fund(owner.agent, run, 700, source="PROJECT_BALANCE", surplusPolicy="REFUND")
        assert paid["funding"]["projectBalanceCents"] == 700 and paid["funding"]["creditCents"] == 0
        await project.refresh_from_db()
        assert project.balance_cents == 50 and await wallet_of(owner.user_id) == (0, 0)

        history = await patron.agent.data("query($id: ID!) { project(id: $id) { balanceCents "
                                          "transactions(first: 5) { nodes { kind amountCents } } } }",
                                          {"id": gid("Project", project.id)})
        assert history["project"]["balanceCents"] == 50
        assert [(t["kind"], t["amountCents"]) for t in history["project"]["transactions"]["nodes"]] == [
            ("FUNDING", -700), ("SETTLEMENT", 750)]
        await assert_books_balance()


async def test_an_idempotency_key_charges_once_even_when_retries_race(api: str) -> None:
    async with patrons(api, 2) as (owner, patron):
        await give_credit(patron.user_id, 1000)
        project = await make_project(owner.user_id)
        run, other_run = await make_run(project, 50_000), await make_run(project, 50_000)

        # A failed attempt is not remembered: the retry with the same key may succeed later.
        short = await fund(patron.agent, run, 2000, idempotencyKey="k-short")
        assert short["__typename"] == "InsufficientFunds"

        first = await fund(patron.agent, run, 100, idempotencyKey="k-1")
        again = await fund(patron.agent, run, 100, idempotencyKey="k-1")
        assert again["replayed"] is True and again["funding"] == first["funding"]

        racing = await asyncio.gather(*(fund(patron.agent, run, 150, idempotencyKey="k-race") for _ in range(12)))
        assert len({r["funding"]["id"] for r in racing}) == 1
        assert sorted(r["replayed"] for r in racing) == [False] + [True] * 11

        reused = await fund(patron.agent, other_run, 100, idempotencyKey="k-1")
        assert reused["__typename"] == "ValidationFailed" and reused["fields"][0]["field"] == "idempotencyKey"

        assert await Funding.filter(funder_id=patron.user_id).count() == 2
        assert await IdempotencyRecord.filter(user_id=patron.user_id).count() == 2
        assert await wallet_of(patron.user_id) == (0, 750)
        assert (await Run.get(id=run.id)).funded_cents == 250
        await assert_books_balance()


async def test_fifty_patrons_race_to_fund_one_run(api: str, sleeper_repo: Repo) -> None:
    """Offers total more than the gap: exactly the gap is taken, no wallet goes negative, the run is
    funded once and its job started once; the job runs, settles, and surplus follows each policy."""
    n, estimate = 50, 7_000  # affordable offers (i < 32) total 8272: more than the gap
    async with patrons(api, n + 1) as (owner, *crowd):
        start: dict[uuid.UUID, tuple[int, int]] = {}
        offers: dict[uuid.UUID, int] = {}
        for i, p in enumerate(crowd):
            await give_credit(p.user_id, 40 + i)
            await give_cash(p.user_id, 300)
            start[p.user_id], offers[p.user_id] = (300, 40 + i), 150 + 7 * i  # i ≥ 32 cannot afford the offer
        run = await runnable_run(sleeper_repo, owner.user_id, estimate)

        answers = await asyncio.gather(*(
            fund(p.agent, run, offers[p.user_id], surplusPolicy="REFUND" if i % 2 else "TO_PROJECT")
            for i, p in enumerate(crowd)))

        by_type: dict[str, list[dict]] = {}
        for answer in answers:
            by_type.setdefault(answer["__typename"], []).append(answer)
        assert set(by_type) <= {"FundRunSuccess", "InsufficientFunds", "RunNotFundable"}
        paid = by_type["FundRunSuccess"]
        assert sum(a["funding"]["amountCents"] for a in paid) == estimate
        closers = [a for a in paid if a["run"]["status"] == "FUNDED"]
        assert len(closers) == 1 and closers[0]["run"]["fundingGapCents"] == 0
        assert all(a["funding"]["amountCents"] == a["requestedCents"] for a in paid if a not in closers)
        assert all(a["requiredCents"] > a["availableCents"] for a in by_type.get("InsufficientFunds", []))
        assert all(a["status"] != "AWAITING_FUNDING" for a in by_type.get("RunNotFundable", []))
        assert await Job.filter(run_id=run.id, kind="funded").count() == 1

        fundings = {f.funder_id: f for f in await Funding.filter(run_id=run.id)}
        assert len(fundings) == len(paid)
        for user_id, f in fundings.items():
            cash0, credit0 = start[user_id]
            assert (f.credit_cents, f.cash_cents) == (min(credit0, f.amount_cents), f.amount_cents - min(
                credit0, f.amount_cents))

        # The funded job sleeps a second, completes, and the lifecycle settles the actual cost.
        settlement = await eventually(lambda: Settlement.get_or_none(run_id=run.id), lambda s: s is not None,
                                      within=90, every=0.25)
        # Money first: the settlement commits, then the run's end (a few ms later).
        await eventually(lambda: Run.get(id=run.id), lambda r: r.status == "completed", within=30, every=0.05)
        assert settlement.escrow_cents == estimate and 0 < settlement.cost_cents < estimate
        fundings = {f.funder_id: f for f in await Funding.filter(run_id=run.id)}
        surplus = estimate - settlement.cost_cents
        assert sum(f.refunded_cents + f.to_project_cents for f in fundings.values()) == surplus
        for f in fundings.values():
            share = f.refunded_cents + f.to_project_cents
            assert abs(share - surplus * f.amount_cents / estimate) < 1  # pro rata, to the cent
            if f.surplus_policy == "refund":
                assert f.to_project_cents == 0
            else:
                assert f.refunded_cents == 0
        for p in crowd:
            cash0, credit0 = start[p.user_id]
            cash, credit = await wallet_of(p.user_id)
            assert cash >= 0 and credit >= 0
            f = fundings.get(p.user_id)
            if f is None:
                assert (cash, credit) == (cash0, credit0)
                continue
            cash_back = min(f.refunded_cents, f.cash_cents)  # returns fill the cash part first
            assert (cash, credit) == (cash0 - f.cash_cents + cash_back,
                                      credit0 - f.credit_cents + f.refunded_cents - cash_back)
        project = await run.project
        assert project.balance_cents == sum(f.to_project_cents for f in fundings.values())
        await assert_books_balance()
