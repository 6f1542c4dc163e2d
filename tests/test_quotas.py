"""Dryrun quotas per user (DRYRUNS_PER_DAY, CONCURRENT_DRYRUNS) hold across two API processes:
the refused createRun / copyRun is a typed `RateLimited` with a positive `retryAfterSeconds`
and creates nothing; a replayed idempotency key is not a new dryrun; racing replicas start
exactly the allowed number."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.jobs.models import Job
from app.runs.models import Run
from tests.api_process import replica_env, replica_pair
from tests.client import GraphQLClient
from tests.experiments import CREATE_RUN, make_demo_repo, make_project, run_input
from tests.repos import Repo
from tests.test_copy_run import COPY_RUN

CREATE = CREATE_RUN.replace("... on GitError", "... on RateLimited { code quota limit retryAfterSeconds message }\n"
                                                "  ... on GitError")
COPY = COPY_RUN.replace("... on GitError", "... on RateLimited { code quota limit retryAfterSeconds }\n"
                                           "  ... on GitError")
CANCEL = 'mutation($id: ID!) { cancelRun(input: {id: $id}) { __typename } }'
PER_DAY, AT_ONCE = 3, 2


@pytest.fixture(scope="module")
def repo(work_dir: Path) -> Repo:
    return make_demo_repo(work_dir)


@pytest.fixture(scope="module")
async def replicas(settings, work_dir: Path) -> AsyncIterator[tuple[str, str]]:
    env = replica_env(settings) | {"DRYRUNS_PER_DAY": str(PER_DAY), "CONCURRENT_DRYRUNS": str(AT_ONCE)}
    async with replica_pair(env, work_dir, "quota") as urls:
        yield urls


def slow(project: str, repo: Repo, **extra) -> dict:
    """A run whose dryrun takes a minute (until cancelled): it stays in DRYRUN."""
    return {"i": run_input(project, repo, parameters={"epochs": 3, "seconds": 60}) | extra}


async def counts(user_id: str) -> tuple[int, int]:
    return await Run.filter(creator_id=user_id).count(), await Job.filter(run__creator_id=user_id).count()


async def test_concurrent_then_daily_quota_across_replicas(replicas, repo: Repo, make_person) -> None:
    researcher = await make_person("quota")
    project = await make_project(researcher.agent, repo)
    async with GraphQLClient(replicas[0], researcher.api_key) as a, GraphQLClient(replicas[1], researcher.api_key) as b:
        key = f"quota-{uuid.uuid4()}"
        first = (await a.data(CREATE, slow(project, repo, idempotencyKey=key)))["createRun"]
        second = (await b.data(CREATE, slow(project, repo)))["createRun"]
        assert first["__typename"] == second["__typename"] == "RunSuccess", (first, second)

        before = await counts(researcher.user_id)
        busy = (await a.data(CREATE, slow(project, repo)))["createRun"]
        assert busy["__typename"] == "RateLimited" and busy["quota"] == "CONCURRENT_DRYRUNS", busy
        assert busy["code"] == "RATE_LIMITED" and busy["limit"] == AT_ONCE and 0 < busy["retryAfterSeconds"] <= 15
        copied = (await b.data(COPY, {"i": {"runId": first["run"]["id"]}}))["copyRun"]
        assert copied["__typename"] == "RateLimited" and copied["quota"] == "CONCURRENT_DRYRUNS", copied
        assert await counts(researcher.user_id) == before

        # Retrying the first call with its key returns its run: a replay is not a new dryrun.
        replay = (await b.data(CREATE, slow(project, repo, idempotencyKey=key)))["createRun"]
        assert replay["__typename"] == "RunSuccess" and replay["run"]["id"] == first["run"]["id"]

        # A dryrun that ends frees its slot: the third dryrun of the day starts.
        assert (await a.data(CANCEL, {"id": first["run"]["id"]}))["cancelRun"]["__typename"] == "RunSuccess"
        third = (await b.data(CREATE, slow(project, repo)))["createRun"]
        assert third["__typename"] == "RunSuccess", third
        for run in (second, third):
            await a.data(CANCEL, {"id": run["run"]["id"]})

        before = await counts(researcher.user_id)
        for client in (a, b):  # nothing is running, but three dryruns started within 24 hours
            daily = (await client.data(CREATE, slow(project, repo)))["createRun"]
            assert daily["__typename"] == "RateLimited" and daily["quota"] == "DRYRUNS_PER_DAY", daily
            assert 86_000 < daily["retryAfterSeconds"] <= 86_400 and daily["limit"] == PER_DAY
        copied = (await a.data(COPY, {"i": {"runId": third["run"]["id"]}}))["copyRun"]
        assert copied["__typename"] == "RateLimited" and copied["quota"] == "DRYRUNS_PER_DAY"
        assert await counts(researcher.user_id) == before


async def test_racing_replicas_start_exactly_the_allowed_dryruns(replicas, repo: Repo, make_person) -> None:
    researcher = await make_person("racer")
    project = await make_project(researcher.agent, repo)
    async with GraphQLClient(replicas[0], researcher.api_key) as a, GraphQLClient(replicas[1], researcher.api_key) as b:
        results = await asyncio.gather(*[
            (a if i % 2 else b).data(CREATE, slow(project, repo, title=f"race {i}")) for i in range(6)])
        kinds = sorted(r["createRun"]["__typename"] for r in results)
        assert kinds == ["RateLimited"] * 4 + ["RunSuccess"] * AT_ONCE, kinds
        assert await counts(researcher.user_id) == (AT_ONCE, AT_ONCE)
        for r in results:
            if r["createRun"]["__typename"] == "RunSuccess":
                await a.data(CANCEL, {"id": r["createRun"]["run"]["id"]})
