"""`Query.runs`: runs across projects for patrons (status filter defaulting to awaiting funding,
search, project), three orders with keyset pagination both ways, the indexes behind them, bad input."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tortoise.transactions import in_transaction

from app.funding import wallets
from app.runs.discovery import DiscoveryOrder, discover
from app.runs.models import Run, RunStatus
from tests.experiments import pk
from tests.test_money_support import fund, gid, give_credit, make_project, make_run, patrons

RUNS = """query($first: Int, $after: String, $last: Int, $before: String, $status: RunStatus, $projectId: ID,
              $search: String, $order: RunDiscoveryOrder!) {
  runs(first: $first, after: $after, last: $last, before: $before, status: $status, projectId: $projectId,
       search: $search, orderBy: $order) {
    edges { cursor node { id title status fundingGapCents fundedCents estimatedCostCents project { id } } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""

RUNS_DEFAULT = "query($search: String) { runs(search: $search) { nodes { id } } }"


@pytest.fixture(scope="module")
async def market(api: str):
    """Two projects with runs at different stages of funding, titled with a word no other test uses."""
    word = f"zebra{uuid.uuid4().hex[:8]}"
    owner = await wallets.create_user_with_wallet(handle=f"owner-{word}", email=f"{word}@example.test", password=None)
    p1, p2 = await make_project(owner.id), await make_project(owner.id)
    specs = [  # (name, project, estimate, funded, status)
        ("r1", p1, 1000, 900, "awaiting_funding"),
        ("r2", p1, 500, 0, "awaiting_funding"),
        ("r3", p2, 10_000, 5000, "awaiting_funding"),
        ("r4", p2, None, 0, "dryrun"),
        ("r5", p2, 300, 0, "awaiting_funding"),
    ]
    runs: dict[str, Run] = {}
    async with patrons(api, 1, "discoverer") as [patron]:
        await give_credit(patron.user_id, 100_000)
        for name, project, estimate, funded, status in specs:
            run = await make_run(project, estimate or 0, status=status)
            if estimate is None:
                await Run.filter(id=run.id).update(estimated_cost_cents=None)
            await Run.filter(id=run.id).update(title=f"{name} {word}")
            if funded:  # partial fundings through the API leave the run awaiting funding
                assert (await fund(patron.agent, run, funded))["__typename"] == "FundRunSuccess"
            runs[name] = await Run.get(id=run.id)
    return word, {"p1": gid("Project", p1.id), "p2": gid("Project", p2.id)}, {
        n: gid("Run", r.id) for n, r in runs.items()}


async def page(client, **args) -> dict:
    variables = {"order": "NEWEST"} | args
    return (await client.data(RUNS, variables))["runs"]


def names(conn: dict, ids: dict[str, str]) -> list[str]:
    by_id = {v: k for k, v in ids.items()}
    return [by_id[e["node"]["id"]] for e in conn["edges"]]


async def test_default_is_awaiting_funding_newest_first(client, market) -> None:
    word, _, ids = market
    body = await client.data(RUNS_DEFAULT, {"search": word})
    assert [n["id"] for n in body["runs"]["nodes"]] == [ids[n] for n in ("r5", "r3", "r2", "r1")]


async def test_orders(client, market) -> None:
    word, _, ids = market
    gap = await page(client, search=word, order="SMALLEST_GAP")
    assert names(gap, ids) == ["r1", "r5", "r2", "r3"]
    assert [e["node"]["fundingGapCents"] for e in gap["edges"]] == [100, 300, 500, 5000]
    share = names(await page(client, search=word, order="LARGEST_FUNDED_SHARE"), ids)
    # r5 and r2 tie at 0 % funded: the id breaks the tie, the same way on every page.
    assert share[:2] == ["r1", "r3"] and sorted(share[2:]) == ["r2", "r5"]
    assert share[2:] == sorted(share[2:], key=lambda n: pk(ids[n]), reverse=True)


async def test_filters(client, market) -> None:
    word, projects, ids = market
    assert names(await page(client, search=word, projectId=projects["p1"]), ids) == ["r2", "r1"]
    assert names(await page(client, search=word, status=None), ids) == ["r5", "r4", "r3", "r2", "r1"]
    assert names(await page(client, search=word, status="DRYRUN"), ids) == ["r4"]
    assert names(await page(client, search="r3 " + word), ids) == ["r3"]
    owner_handle = f"owner-{word}"
    assert len((await page(client, search=owner_handle))["edges"]) == 4
    assert (await page(client, search=f"nothing-{word}"))["edges"] == []


@pytest.mark.parametrize("order", [o.name for o in DiscoveryOrder])
async def test_keyset_pagination_both_ways(client, market, order: str) -> None:
    word, _, ids = market
    whole = names(await page(client, search=word, status=None, order=order), ids)
    seen, after = [], None
    while True:
        conn = await page(client, search=word, status=None, order=order, first=2, after=after)
        seen += names(conn, ids)
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == whole and len(whole) == 5
    back, before = [], None
    while True:
        conn = await page(client, search=word, status=None, order=order, last=2, before=before)
        back = names(conn, ids) + back
        if not conn["pageInfo"]["hasPreviousPage"]:
            break
        before = conn["pageInfo"]["startCursor"]
    assert back == whole


async def test_bad_input(client, market) -> None:
    word, _, _ = market
    cases = [
        ({"projectId": "not-an-id"}, "BAD_USER_INPUT"),
        ({"projectId": gid("Run", uuid.uuid4())}, "BAD_USER_INPUT"),
        ({"first": 101}, "BAD_USER_INPUT"),
        ({"first": -1}, "BAD_USER_INPUT"),
        ({"after": "garbage"}, "BAD_USER_INPUT"),
        ({"search": "x" * 201}, "BAD_USER_INPUT"),
    ]
    for args, code in cases:
        error = await client.error(RUNS, {"order": "NEWEST", "search": word} | args)
        assert error["extensions"]["code"] == code, (args, error)
    unknown_project = await page(client, projectId=gid("Project", uuid.uuid4()))
    assert unknown_project["edges"] == []


@pytest.mark.parametrize("order", list(DiscoveryOrder))
async def test_each_order_is_an_index_scan(market, order: DiscoveryOrder) -> None:
    """The page query can walk the order's index with no sort. The test database is small and
    shared by the whole suite, so the planner is told what a big table would tell it: scans that
    need a sort (sequential, bitmap, or an index on a prefix of the order, then an incremental
    sort) are off, and the plan must still find an ordered index."""
    field = order.value.lstrip("-")
    qs = discover(status=RunStatus.AWAITING_FUNDING, project_id=None, text=None, order=order)
    sql = qs.order_by(order.value, "-id" if order.value.startswith("-") else "id").limit(21).sql(params_inline=True)
    async with in_transaction() as conn:
        await conn.execute_script("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; "
                                  "SET LOCAL enable_sort = off; SET LOCAL enable_incremental_sort = off")
        plan = "\n".join(r["QUERY PLAN"] for r in await conn.execute_query_dict(f"EXPLAIN {sql}"))
    expected = {"created_at": "idx_runs_status_created", "gap": "idx_runs_status_gap",
                "share": "idx_runs_status_share"}[field]
    assert expected in plan and "Sort" not in plan.split(expected)[0], plan


RUNS_CHANGED = "subscription { runsChanged { at } }"


async def test_runs_changed_wakes_discovery_when_a_run_is_funded(api: str) -> None:
    """Anonymous: a tick once listening, then another when a run on any project gets money."""
    from tests.ws import WsClient

    async with patrons(api, 2, "waker") as [owner, patron]:
        await give_credit(patron.user_id, 1000)
        run = await make_run(await make_project(owner.user_id), 800)
        ws = await WsClient.connect(api)
        try:
            ticks = ws.subscribe(RUNS_CHANGED)
            async with asyncio.timeout(30):
                first = await anext(ticks)
                assert (await fund(patron.agent, run, 300))["__typename"] == "FundRunSuccess"
                second = await anext(ticks)
            assert second["runsChanged"]["at"] >= first["runsChanged"]["at"]
            await ticks.aclose()
        finally:
            await ws.close()


async def test_public_fundings_on_a_profile(api: str, make_person) -> None:
    """What a patron funded is on their profile for anyone; their wallet history is not."""
    async with patrons(api, 2, "backer") as [owner, patron]:
        await give_credit(patron.user_id, 1000)
        run = await make_run(await make_project(owner.user_id), 800)
        for amount in (100, 250):
            assert (await fund(patron.agent, run, amount))["__typename"] == "FundRunSuccess"
        stranger = await make_person("stranger")
        profile = await stranger.web.data(
            "query($id: ID!) { user(id: $id) { publicFundings(first: 5) { nodes { amountCents run { id } } } } }",
            {"id": gid("User", patron.user_id)})
        assert profile["user"]["publicFundings"]["nodes"] == [
            {"amountCents": 250, "run": {"id": gid("Run", run.id)}},
            {"amountCents": 100, "run": {"id": gid("Run", run.id)}}]
        denied = await stranger.web.error("query($id: ID!) { user(id: $id) { transactions { nodes { kind } } } }",
                                          {"id": gid("User", patron.user_id)})
        assert denied["extensions"]["code"] == "FORBIDDEN"
