"""Settlement maths on runs built in the test: completed, failed and cancelled runs, odd cents,
caps, refunds to the buckets money came from, and closing a run exactly once."""

from __future__ import annotations

import asyncio
import random

import pytest

from app.funding import ledger
from app.funding.models import Funding, LedgerTransaction, Settlement
from app.funding.money import largest_remainder
from app.funding.settlement import refund_all, settle_run
from app.runs.models import Run
from tests.test_money_support import (
    assert_books_balance,
    books,
    fund,
    give_cash,
    give_credit,
    make_project,
    make_run,
    patrons,
    wallet_of,
)


def test_largest_remainder_never_loses_or_creates_a_cent() -> None:
    assert largest_remainder(201, [100, 100, 101]) == [67, 67, 67]
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]  # ties go to the earliest
    assert largest_remainder(0, [5, 7]) == [0, 0] and largest_remainder(0, []) == []
    assert largest_remainder(5, [0, 3, 0]) == [0, 5, 0]
    rng = random.Random(7)
    for _ in range(2000):
        weights = [rng.randint(0, 10_000) for _ in range(rng.randint(1, 30))]
        if not any(weights):
            continue
        total = rng.randint(0, sum(weights))
        parts = largest_remainder(total, weights)
        assert sum(parts) == total
        assert all(abs(p - total * w / sum(weights)) < 1 for p, w in zip(parts, weights, strict=True))
    with pytest.raises(ValueError):
        largest_remainder(1, [0, 0])


@pytest.fixture
async def funded(api: str):
    """A run (estimate far above what is funded) with 100 (REFUND, from credit), 100 (TO_PROJECT,
    from cash) and 101 (REFUND, 60 credit + 41 cash); tests then mark it as the lifecycle would."""
    async with patrons(api, 4) as (owner, a, b, c):
        await give_credit(a.user_id, 100)
        await give_cash(b.user_id, 100)
        await give_credit(c.user_id, 60)
        await give_cash(c.user_id, 41)
        run = await make_run(await make_project(owner.user_id), 100_000)
        await fund(a.agent, run, 100, surplusPolicy="REFUND")
        await fund(b.agent, run, 100, surplusPolicy="TO_PROJECT")
        await fund(c.agent, run, 101, surplusPolicy="REFUND")
        yield run, (a, b, c)


@pytest.mark.parametrize("final_status", ["completed", "funded_failed", "cancelled"])
async def test_settlement_charges_the_cost_and_splits_the_rest_pro_rata(funded, final_status: str) -> None:
    run, (a, b, c) = funded
    await Run.filter(id=run.id).update(status=final_status)
    await settle_run(run.id, 100, {"seconds": 5070, "hourly_cents": 71})

    # 201 left over [100, 100, 101]: 66.78 + 66.78 + 67.45 → largest remainders → 67 each.
    rows = {f.funder_id: f for f in await Funding.filter(run_id=run.id)}
    assert [(rows[p.user_id].refunded_cents, rows[p.user_id].to_project_cents) for p in (a, b, c)] == [
        (67, 0), (0, 67), (67, 0)]
    assert await wallet_of(a.user_id) == (0, 67)  # back to credit, where it came from
    assert await wallet_of(b.user_id) == (0, 0)  # TO_PROJECT
    assert await wallet_of(c.user_id) == (41, 26)  # the cash part first, then credit
    project = await run.project
    assert project.balance_cents == 67
    s = await Settlement.get(run_id=run.id)
    assert (s.kind, s.escrow_cents, s.cost_cents, s.refunded_cents, s.to_project_cents) == (
        "settled", 301, 100, 134, 67)
    assert s.detail == {"seconds": 5070, "hourly_cents": 71}
    txn = await LedgerTransaction.get(run_id=run.id, kind="settlement")
    assert {p.account: p.amount_cents for p in await txn.postings} == {
        ledger.run_escrow(run.id): -301, ledger.PLATFORM_REVENUE: 100, ledger.user_credit(a.user_id): 67,
        ledger.user_cash(c.user_id): 41, ledger.user_credit(c.user_id): 26, ledger.project_balance(project.id): 67}
    await assert_books_balance()


async def test_a_cost_above_the_escrow_is_capped_and_nothing_comes_back(funded) -> None:
    run, people = funded
    await Run.filter(id=run.id).update(status="funded_failed")
    await settle_run(run.id, 10_000, {"seconds": 999_999})
    s = await Settlement.get(run_id=run.id)
    assert (s.cost_cents, s.refunded_cents, s.to_project_cents) == (301, 0, 0)
    assert [await wallet_of(p.user_id) for p in people] == [(0, 0)] * 3
    await assert_books_balance()


async def test_refund_all_returns_everything_to_its_source_whatever_the_policy(funded) -> None:
    run, (a, b, c) = funded
    await Run.filter(id=run.id).update(status="cancelled")
    await refund_all(run.id, "cancelled before the funded job started")
    assert await wallet_of(a.user_id) == (0, 100)
    assert await wallet_of(b.user_id) == (100, 0)  # TO_PROJECT, but nothing was spent
    assert await wallet_of(c.user_id) == (41, 60)
    assert [f.refunded_cents for f in await Funding.filter(run_id=run.id).order_by("created_at")] == [100, 100, 101]
    assert (await run.project).balance_cents == 0
    s = await Settlement.get(run_id=run.id)
    assert (s.kind, s.cost_cents, s.refunded_cents, s.detail) == (
        "refunded", 0, 301, {"reason": "cancelled before the funded job started"})
    await assert_books_balance()


async def test_a_run_closes_exactly_once_even_when_settlements_race(funded) -> None:
    run, people = funded
    await Run.filter(id=run.id).update(status="completed")
    await asyncio.gather(*(settle_run(run.id, 100 + i, {"attempt": i}) for i in range(6)),
                         refund_all(run.id, "late cancel"))
    after = await books(users=[p.user_id for p in people], runs=[run.id])
    await settle_run(run.id, 0, {})
    await refund_all(run.id, "again")
    assert await books(users=[p.user_id for p in people], runs=[run.id]) == after
    assert await Settlement.filter(run_id=run.id).count() == 1
    assert await LedgerTransaction.filter(run_id=run.id, kind__in=["settlement", "refund"]).count() == 1
    await assert_books_balance()


async def test_project_balance_fundings_go_back_to_the_project(api: str) -> None:
    async with patrons(api, 2) as (owner, patron):
        await give_credit(patron.user_id, 1000)
        project = await make_project(owner.user_id)
        earlier = await make_run(project, 100_000)
        await fund(patron.agent, earlier, 1000)
        await Run.filter(id=earlier.id).update(status="completed")
        await settle_run(earlier.id, 0, {})
        run = await make_run(project, 100_000)
        await fund(owner.agent, run, 600, source="PROJECT_BALANCE", surplusPolicy="REFUND")
        await fund(owner.agent, run, 399, source="PROJECT_BALANCE", surplusPolicy="TO_PROJECT")
        await project.refresh_from_db()
        assert project.balance_cents == 1
        await Run.filter(id=run.id).update(status="completed")
        await settle_run(run.id, 333, {})
        await project.refresh_from_db()
        assert project.balance_cents == 1 + 999 - 333 and await wallet_of(owner.user_id) == (0, 0)
        await assert_books_balance()


async def test_settling_a_run_without_fundings_moves_nothing(api: str) -> None:
    async with patrons(api, 1) as (owner,):
        run = await make_run(await make_project(owner.user_id), 1000, status="cancelled")
        await refund_all(run.id, "nobody funded it")
        s = await Settlement.get(run_id=run.id)
        assert (s.escrow_cents, s.refunded_cents) == (0, 0)
        assert not await LedgerTransaction.filter(run_id=run.id).exists()
        with pytest.raises(ValueError):
            await settle_run(run.id, -1, {})
