"""A Redis outage under a running platform (external-Redis configuration): the test owns a
Redis-protocol server, kills it with SIGKILL mid-stream and starts it again on the same port.
The platform degrades (PostgreSQL re-reads, typed answers) and recovers by itself."""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.core.redis import connect
from app.embedded.redis import EmbeddedRedis
from app.events.hub import DEGRADED_REREAD_SECONDS, RECONNECT_DELAY
from tests.api_process import ApiProcess, replica_env
from tests.client import GraphQLClient, Person
from tests.experiments import create_run, logs, make_demo_repo, make_project
from tests.helpers import eventually
from tests.repos import Repo
from tests.test_discussions import COMMENT, discussion_in, project_of
from tests.test_realtime import ACTIVITY, JOB_LOGS, JOB_STATUS, NOTIFS, collect, dryrun_of
from tests.ws import WsClient

# Scheduling noise on a busy 2-core machine, on top of the documented bounds.
SLACK_SECONDS = 1.0


class Platform:
    """One API process (with its local executor) on a Redis the test can crash and restart."""

    def __init__(self, settings, work_dir: Path, **env: str) -> None:
        # Not supervised: the test plays the operator of an external Redis and decides when it is back.
        self.redis = EmbeddedRedis(work_dir / "outage-redis", supervise=False)
        self.redis_url = self.redis.start()
        self.api = ApiProcess(replica_env(settings, self.redis_url) | env, work_dir / "outage-api.log")
        self.http = httpx.AsyncClient(base_url=self.api.url, timeout=10)

    def crash_redis(self) -> None:
        self.redis.kill(signal.SIGKILL)

    async def ready(self, query: str = "") -> httpx.Response:
        return await self.http.get(f"/ready{query}")

    async def metric(self, name: str) -> float:
        text = (await self.http.get("/metrics")).text
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    async def close(self) -> None:
        await self.http.aclose()
        self.api.stop()
        self.redis.stop()


# Low content limits, so that the fallback limiter's refusals are reached quickly.
LIMITS = {"COMMENTS_PER_HOUR": "3", "COMMENTS_PER_HOUR_API_KEY": "3", "FEEDBACK_PER_DAY": "2"}


@pytest.fixture
async def platform(api: str, settings, work_dir: Path) -> AsyncIterator[Platform]:
    platform = Platform(settings, work_dir, **LIMITS)
    try:
        await asyncio.to_thread(platform.api.wait_ready)
        yield platform
    finally:
        await platform.close()


@pytest.fixture(scope="module")
def demo_repo(work_dir: Path) -> Repo:
    return make_demo_repo(work_dir)


async def follow_logs(ws: WsClient, job_id: str, arrivals: list[tuple[float, dict]],
                      seen: asyncio.Event | None = None, marker: str = "") -> None:
    """Collect (arrival time, line) of a job's log stream until it ends with the job."""
    async with asyncio.timeout(120):
        async for data in ws.subscribe(JOB_LOGS, {"id": job_id, "after": 0, "tail": 1000}):
            arrivals.append((time.monotonic(), data["jobLogs"]))
            if seen is not None and data["jobLogs"]["line"].startswith(marker):
                seen.set()


async def test_subscribers_get_everything_through_an_outage_then_push_again(platform: Platform,
                                                                            demo_repo: Repo) -> None:
    """The job logs, then ends, while Redis is down; its subscribers get every line and the final
    status from PostgreSQL re-reads. After the restart the same websocket is back to push."""
    person = await Person.create(platform.api.url, "outage")
    project = await make_project(person.agent, demo_repo)
    run = await create_run(person.agent, project, demo_repo, **dryrun_of(30, 0.1))
    job_id = run["dryrunJob"]["id"]
    ws = await WsClient.connect(platform.api.url)
    arrivals: list[tuple[float, dict]] = []
    epoch_5 = asyncio.Event()
    follower = asyncio.create_task(follow_logs(ws, job_id, arrivals, epoch_5, "epoch 5"))
    statuses = asyncio.create_task(collect(ws, JOB_STATUS, {"id": job_id}))
    try:
        await asyncio.wait_for(epoch_5.wait(), 60)
        platform.crash_redis()
        outage_began = time.monotonic()
        down = await eventually(platform.ready, lambda r: r.status_code == 503, within=5)
        assert down.json()["failing"] == ["redis"] and down.json()["status"] == "unavailable"
        degraded = await platform.ready("?degraded=ok")  # what the Kubernetes readiness probe asks
        assert degraded.status_code == 200 and degraded.json()["status"] == "degraded"
        await follower  # the job ended during the outage: its streams completed all the same
        assert [s["status"] for s in await statuses][-1] == "SUCCEEDED"
        outage_ended = time.monotonic()
        await asyncio.to_thread(platform.redis.start)
        await eventually(platform.ready, lambda r: r.status_code == 200,
                         within=RECONNECT_DELAY[1] + SLACK_SECONDS)
    finally:
        follower.cancel()
        statuses.cancel()
    received = [line for _, line in arrivals]
    assert received == await logs(person.agent, job_id, tail=1000)  # every line, in order, none twice
    assert sum(x["line"].startswith("epoch") for x in received) == 30
    during_outage = [t for t, _ in arrivals if outage_began <= t <= outage_ended]
    gaps = [b - a for a, b in zip([outage_began, *during_outage], [*during_outage, outage_ended], strict=True)]
    assert max(gaps) <= DEGRADED_REREAD_SECONDS + SLACK_SECONDS, gaps
    assert await platform.metric("mlpatron_redis_outages_total") >= 1
    assert await platform.metric("mlpatron_redis_fallback_rereads_total") >= 1

    # Push again, on the same websocket: lines arrive about as often as they are written (0.1 s),
    # not in the one-second batches of the outage.
    again = await create_run(person.agent, project, demo_repo, **dryrun_of(12, 0.1))
    pushed: list[tuple[float, dict]] = []
    try:
        await follow_logs(ws, again["dryrunJob"]["id"], pushed)
    finally:
        await ws.close()
    times = [t for t, line in pushed if line["line"].startswith("epoch")]
    assert statistics.median(b - a for a, b in itertools.pairwise(times)) < DEGRADED_REREAD_SECONDS / 2
    await person.close()


SIGN_UP = "mutation($i: SignUpInput!) { signUp(input: $i) { __typename } }"
LOGIN = "mutation($i: LoginInput!) { login(input: $i) { __typename } }"
FEEDBACK = "mutation($i: SubmitFeedbackInput!) { submitFeedback(input: $i) { __typename } }"


async def comment(person: Person, discussion: dict, body: str) -> dict:
    """The createComment answer: its typename, or the GraphQL error's extensions."""
    body_ = await person.web.execute(COMMENT, {"i": {"discussionId": discussion["id"], "body": body}})
    return body_["errors"][0]["extensions"] if body_.get("errors") else {"code": body_["data"]["createComment"]["__typename"]}


async def feedback(person: Person) -> dict:
    body = await person.web.execute(FEEDBACK, {"i": {"type": "BUG", "title": "t", "description": "d"}})
    return body["errors"][0]["extensions"] if body.get("errors") else {"code": body["data"]["submitFeedback"]["__typename"]}


async def test_typed_answers_during_an_outage_and_limits_hold_again_after(platform: Platform) -> None:
    owner, fan = await Person.create(platform.api.url, "typed"), await Person.create(platform.api.url, "fan")
    project_id = await project_of(owner)
    discussion = await discussion_in(owner, project_id)
    ws = await WsClient.connect(platform.api.url)
    owner_ws = await WsClient.connect(platform.api.url, {"authorization": f"Bearer {owner.api_key}"})
    activity: list[dict] = []
    notified: list[dict] = []

    async def follow(client: WsClient, query: str, variables: dict, into: list[dict]) -> None:
        async for data in client.subscribe(query, variables):
            into.append(next(iter(data.values())))

    followers = [asyncio.create_task(follow(ws, ACTIVITY, {"p": project_id}, activity)),
                 asyncio.create_task(follow(owner_ws, NOTIFS, {}, notified))]
    await eventually(lambda: asyncio.sleep(0, (len(activity), len(notified))),  # the discussion; a snapshot
                     lambda counts: min(counts) >= 1, within=10)
    platform.crash_redis()
    await eventually(platform.ready, lambda r: r.status_code == 503, within=5)
    anonymous = GraphQLClient(platform.api.url)
    try:
        # Authentication limits fail closed: a typed refusal with a retry hint, and no account made.
        for query, variables in [
            (SIGN_UP, {"i": {"handle": "during-outage", "email": "during@example.test", "password": "correct horse battery"}}),
            (LOGIN, {"i": {"email": owner.email, "password": "correct horse battery"}}),
        ]:
            err = await anonymous.error(query, variables)
            assert err["extensions"]["code"] == "SERVICE_UNAVAILABLE", err
            assert err["extensions"]["retryAfterSeconds"] > 0 and err["extensions"]["traceId"]
        # Content limits fall back to a per-process sliding window: same limit, true retry hint.
        answers = [await comment(fan, discussion, f"during {i}") for i in range(4)]
        assert [a["code"] for a in answers] == ["CommentSuccess"] * 3 + ["RATE_LIMITED"]
        assert 0 < answers[-1]["retryAfterSeconds"] <= 3600
        answers = [await feedback(fan) for _ in range(3)]
        assert [a["code"] for a in answers] == ["SubmitFeedbackSuccess"] * 2 + ["RATE_LIMITED"]
        assert 0 < answers[-1]["retryAfterSeconds"] <= 86400
        # What was committed meanwhile reaches the subscriber (PostgreSQL re-reads), within the bound.
        await eventually(lambda: asyncio.sleep(0, [a["kind"] for a in activity]),
                         lambda kinds: kinds.count("comment") == 3, within=DEGRADED_REREAD_SECONDS + SLACK_SECONDS)
        await eventually(lambda: asyncio.sleep(0, [n["kind"] for n in notified]),  # the owner's, per comment
                         lambda kinds: kinds.count("notification") == 3, within=DEGRADED_REREAD_SECONDS + SLACK_SECONDS)
    finally:
        await anonymous.close()
        for follower in followers:
            follower.cancel()
        await ws.close()
        await owner_ws.close()
    from app.accounts.models import User

    assert not await User.filter(handle="during-outage").exists()

    await asyncio.to_thread(platform.redis.start)
    await eventually(platform.ready, lambda r: r.status_code == 200, within=RECONNECT_DELAY[1] + SLACK_SECONDS)
    assert await platform.metric('mlpatron_ratelimit_fallbacks_total{bucket="comment",policy="local"}') == 4
    # Back on Redis: authentication works and the shared limit holds again.
    assert (await owner.web.data(LOGIN, {"i": {"email": owner.email, "password": "correct horse battery"}})
            )["login"]["__typename"] == "ViewerSession"
    fresh = await Person.create(platform.api.url, "after")
    answers = [await comment(fresh, discussion, f"after {i}") for i in range(4)]
    assert [a["code"] for a in answers] == ["CommentSuccess"] * 3 + ["RATE_LIMITED"]
    redis = connect(platform.redis_url)
    assert await redis.zcard(f"rl:comment:{fresh.user_id}") == 3  # counted in Redis, not in the process
    await redis.aclose()
    for person in (owner, fan, fresh):
        await person.close()
