"""Realtime: resumable subscriptions over graphql-transport-ws, across API processes, through a
Redis restart, and from a real JavaScript graphql-ws client."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import websockets

from tests.api_process import ApiProcess, replica_env
from tests.experiments import create_run, logs, make_demo_repo, make_project, pk, wait_run
from tests.helpers import eventually
from tests.repos import Repo
from tests.ws import SubscriptionError, WsClient

ROOT = Path(__file__).resolve().parent.parent
JOB_LOGS = "subscription($id: ID!, $after: Int, $tail: Int!) { jobLogs(jobId: $id, afterSeq: $after, tail: $tail) { seq stream line } }"
JOB_STATUS = "subscription($id: ID!) { jobStatus(jobId: $id) { seq status pendingInfo error { containerTerminated { exitCode } } } }"


def dryrun_of(epochs: int, seconds: float) -> dict:
    """createRun overrides making the *dryrun* itself log `epochs` epochs, `seconds` apart."""
    return {"parameters": {"epochs": epochs * 2, "seconds": seconds}, "dryrunOverrideValue": epochs}


@pytest.fixture(scope="module")
def demo_repo(work_dir: Path) -> Repo:
    return make_demo_repo(work_dir)


@pytest.fixture
async def researcher(make_person):
    return await make_person("live")


async def collect(ws: WsClient, query: str, variables: dict, limit: int | None = None) -> list[dict]:
    items = []
    async with asyncio.timeout(90):
        async for data in ws.subscribe(query, variables):
            items.append(next(iter(data.values())))
            if limit is not None and len(items) >= limit:
                break
    return items


async def test_job_logs_and_status_stream_to_the_end(api: str, researcher, demo_repo: Repo) -> None:
    project = await make_project(researcher.agent, demo_repo)
    run = await create_run(researcher.agent, project, demo_repo, **dryrun_of(4, 0.15))
    job_id = run["dryrunJob"]["id"]
    ws = await WsClient.connect(api)  # anonymous: job logs are public, as over HTTP
    try:
        statuses, lines = await asyncio.gather(
            collect(ws, JOB_STATUS, {"id": job_id}),
            collect(ws, JOB_LOGS, {"id": job_id, "after": 0, "tail": 100}),
        )
    finally:
        await ws.close()
    assert statuses[-1]["status"] == "SUCCEEDED"
    seqs = [s["seq"] for s in statuses]
    assert seqs == sorted(set(seqs))
    assert lines == await logs(researcher.agent, job_id, tail=1000)  # every line, once, in order
    assert [x["line"] for x in lines if x["line"].startswith("epoch")] == [f"epoch {i} loss {1 / (i + 1) + 0.01:.4f}" for i in range(4)]


async def test_resume_after_disconnect_gets_every_line_exactly_once(api: str, researcher, demo_repo: Repo) -> None:
    project = await make_project(researcher.agent, demo_repo)
    run = await create_run(researcher.agent, project, demo_repo, **dryrun_of(12, 0.15))
    job_id = run["dryrunJob"]["id"]
    first = await WsClient.connect(api)
    head = await collect(first, JOB_LOGS, {"id": job_id, "after": 0, "tail": 100}, limit=3)
    await first.close()  # the client drops mid-stream
    second = await WsClient.connect(api)
    try:
        rest = await collect(second, JOB_LOGS, {"id": job_id, "after": head[-1]["seq"], "tail": 1000})
    finally:
        await second.close()
    received = head + rest
    assert [x["seq"] for x in received] == list(range(1, len(received) + 1))
    assert received == await logs(researcher.agent, job_id, tail=1000)


async def test_tail_and_after_seq_beyond_the_end(api: str, researcher, demo_repo: Repo) -> None:
    project = await make_project(researcher.agent, demo_repo)
    run = await create_run(researcher.agent, project, demo_repo, parameters={"epochs": 2, "seconds": 0})
    run = await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING"})
    job_id = run["dryrunJob"]["id"]
    every = await logs(researcher.agent, job_id, tail=1000)
    ws = await WsClient.connect(api)
    try:
        assert await collect(ws, JOB_LOGS, {"id": job_id, "tail": 2}) == every[-2:]
        assert await collect(ws, JOB_LOGS, {"id": job_id, "after": every[-1]["seq"] + 50, "tail": 10}) == []
        statuses = await collect(ws, JOB_STATUS, {"id": job_id})
        assert [s["status"] for s in statuses] == ["SUCCEEDED"]  # current state first, then it ends
    finally:
        await ws.close()


async def test_bad_subscriptions_get_protocol_errors(api: str, make_person) -> None:
    missing = base64.b64encode(b"Job:00000000-0000-0000-0000-000000000000").decode()
    ws = await WsClient.connect(api)
    try:
        with pytest.raises(SubscriptionError) as err:
            await collect(ws, JOB_LOGS, {"id": missing, "tail": 5})
        assert err.value.errors[0]["extensions"]["code"] == "NOT_FOUND"
        with pytest.raises(SubscriptionError) as err:
            await collect(ws, JOB_LOGS, {"id": "garbage", "tail": 5})
        assert err.value.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    finally:
        await ws.close()

    url = api.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as raw:
        await raw.send("this is not json")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(raw.recv(), 10)
        assert closed.value.rcvd.code == 4400
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as raw:
        await raw.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": "{ __typename }"}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(raw.recv(), 10)
        assert closed.value.rcvd.code == 4401  # subscribe before connection_init
    person = await make_person("dup")
    project_id = base64.b64encode(b"Project:00000000-0000-0000-0000-000000000000").decode()
    async with websockets.connect(url, subprotocols=["graphql-transport-ws"]) as raw:
        await raw.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {person.api_key}"}}))
        assert json.loads(await raw.recv())["type"] == "connection_ack"
        sub = {"type": "subscribe", "id": "same", "payload": {
            "query": "subscription($p: ID!) { projectActivity(projectId: $p) { seq } }", "variables": {"p": project_id}}}
        await raw.send(json.dumps(sub))
        await raw.send(json.dumps(sub))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(raw.recv(), 10)
        assert closed.value.rcvd.code == 4409  # Subscriber for same already exists


async def test_hub_releases_topics_when_clients_go(api: str, services, researcher, demo_repo: Repo) -> None:
    project = await make_project(researcher.agent, demo_repo)
    run = await create_run(researcher.agent, project, demo_repo, **dryrun_of(30, 0.2))
    job_id = run["dryrunJob"]["id"]
    hub = services.hub
    before = hub.topics
    ws = await WsClient.connect(api)
    await collect(ws, JOB_LOGS, {"id": job_id, "after": 0, "tail": 10}, limit=1)
    stream = ws.subscribe(JOB_LOGS, {"id": job_id, "after": 0, "tail": 10})
    await anext(stream)
    assert hub.topics == before + 1
    await ws.close()

    async def topics() -> int:
        return hub.topics

    await eventually(topics, lambda n: n == before, within=10)
    await researcher.agent.data("mutation($i: RunIdInput!) { cancelRun(input: $i) { __typename } }", {"i": {"id": run["id"]}})


async def test_two_processes_share_events_and_survive_a_redis_restart(settings, work_dir: Path, researcher,
                                                                      demo_repo: Repo) -> None:
    """A subscriber on process A sees log lines of a job driven through process B, while the
    Redis-protocol server they share restarts mid-job."""
    from app.embedded.redis import EmbeddedRedis

    redis = EmbeddedRedis(work_dir / "redis-replicas")
    redis_url = redis.start()
    a = ApiProcess(replica_env(settings, redis_url), work_dir / "api-a.log")
    b = ApiProcess(replica_env(settings, redis_url), work_dir / "api-b.log")
    try:
        await asyncio.gather(asyncio.to_thread(a.wait_ready), asyncio.to_thread(b.wait_ready))
        from tests.client import GraphQLClient

        async with GraphQLClient(b.url, researcher.api_key) as via_b:
            project = await make_project(via_b, demo_repo)
            run = await create_run(via_b, project, demo_repo,
                                   **dryrun_of(25, 0.2))
        job_id = run["dryrunJob"]["id"]
        ws = await WsClient.connect(a.url, {"authorization": f"Bearer {researcher.api_key}"})
        received: list[dict] = []
        mid_job = asyncio.Event()

        async def follow() -> None:
            async with asyncio.timeout(120):
                async for data in ws.subscribe(JOB_LOGS, {"id": job_id, "after": 0, "tail": 1000}):
                    received.append(data["jobLogs"])
                    if data["jobLogs"]["line"].startswith("epoch 3"):
                        mid_job.set()

        follower = asyncio.create_task(follow())
        await asyncio.wait_for(mid_job.wait(), 60)
        await asyncio.to_thread(redis.restart)  # every pub/sub connection drops
        await follower
        await ws.close()
        everything = await logs(researcher.agent, job_id, tail=1000)
        assert received == everything
        assert sum(x["line"].startswith("epoch") for x in received) == 25
    finally:
        a.stop()
        b.stop()
        redis.stop()


async def test_javascript_graphql_ws_client_receives_log_lines(api: str, researcher, demo_repo: Repo) -> None:
    node_dir = ROOT / "tests" / "js"
    assert shutil.which("node"), "node is required for the interop test"
    assert (node_dir / "node_modules" / "graphql-ws").exists(), "run `npm ci` in tests/js (make test does)"
    project = await make_project(researcher.agent, demo_repo)
    run = await create_run(researcher.agent, project, demo_repo, **dryrun_of(3, 0.1))
    job_id = run["dryrunJob"]["id"]
    proc = await asyncio.create_subprocess_exec(
        "node", str(node_dir / "subscribe_logs.mjs"), api.replace("http://", "ws://") + "/graphql", job_id,
        researcher.api_key, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    assert proc.returncode == 0, err.decode()
    received = [json.loads(line) for line in out.decode().splitlines()]
    assert received == await logs(researcher.agent, job_id, tail=1000)
    assert sum(x["line"].startswith("epoch") for x in received) == 3


NOTIFS = "subscription { viewerNotifications { seq kind unreadCount notification { message } } }"
ACTIVITY = "subscription($p: ID!) { projectActivity(projectId: $p, afterSeq: 0) { seq kind payload } }"
DISCUSS = """mutation($i: CreateProjectDiscussionInput!) { createProjectDiscussion(input: $i) { __typename } }"""


async def test_viewer_notifications_and_project_activity_stream_live(api: str, make_person, demo_repo: Repo) -> None:
    owner, patron = await make_person("owner"), await make_person("fan")
    project = await make_project(owner.agent, demo_repo)
    anonymous = await WsClient.connect(api)
    try:
        with pytest.raises(SubscriptionError) as err:
            await collect(anonymous, NOTIFS, {})
        assert err.value.errors[0]["extensions"]["code"] == "UNAUTHENTICATED"  # private stream
    finally:
        await anonymous.close()

    ws = await WsClient.connect(api, {"authorization": f"Bearer {owner.api_key}"})
    try:
        notifications = ws.subscribe(NOTIFS)
        activity = ws.subscribe(ACTIVITY, {"p": project})
        snapshot = (await anext(notifications))["viewerNotifications"]
        assert snapshot["kind"] == "snapshot" and snapshot["unreadCount"] == 0
        await patron.agent.data(DISCUSS, {"i": {"projectId": project, "title": "Batch size?", "body": "Try 64."}})
        async with asyncio.timeout(20):
            note = (await anext(notifications))["viewerNotifications"]
            seen = (await anext(activity))["projectActivity"]
        assert note["kind"] == "notification" and note["unreadCount"] == 1 and "Batch size?" in note["notification"]["message"]
        assert seen["kind"] == "discussion" and seen["payload"]["discussionTitle"] == "Batch size?"
        await owner.agent.data("mutation { markAllNotificationsRead { __typename } }")
        async with asyncio.timeout(20):
            read = (await anext(notifications))["viewerNotifications"]
        assert read["kind"] == "read" and read["unreadCount"] == 0
    finally:
        await ws.close()


async def test_discussion_rate_limit_holds_across_replicas(settings, work_dir: Path, make_person, demo_repo: Repo) -> None:
    """The 6th discussion in an hour from an API key is refused, whichever replica counts it."""
    from tests.client import GraphQLClient

    owner = await make_person("limits")
    project = await make_project(owner.agent, demo_repo)
    a = ApiProcess(replica_env(settings), work_dir / "api-rl-a.log")
    b = ApiProcess(replica_env(settings), work_dir / "api-rl-b.log")
    try:
        await asyncio.gather(asyncio.to_thread(a.wait_ready), asyncio.to_thread(b.wait_ready))
        async with GraphQLClient(a.url, owner.api_key) as via_a, GraphQLClient(b.url, owner.api_key) as via_b:
            for i in range(5):
                client = via_a if i % 2 == 0 else via_b
                ok = await client.data(DISCUSS, {"i": {"projectId": project, "title": f"t{i}", "body": "b"}})
                assert ok["createProjectDiscussion"]["__typename"] == "DiscussionSuccess", ok
            refused = await via_b.error(DISCUSS, {"i": {"projectId": project, "title": "t5", "body": "b"}})
        assert refused["extensions"]["code"] == "RATE_LIMITED" and 0 < refused["extensions"]["retryAfter"] <= 3600
    finally:
        a.stop()
        b.stop()


async def test_legacy_graphql_ws_protocol_still_streams(api: str, researcher, demo_repo: Repo) -> None:
    """Older clients (subscriptions-transport-ws, protocol `graphql-ws`) get the same stream."""
    project = await make_project(researcher.agent, demo_repo)
    run = await create_run(researcher.agent, project, demo_repo, parameters={"epochs": 2, "seconds": 0})
    run = await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING"})
    job_id = run["dryrunJob"]["id"]
    url = api.replace("http://", "ws://") + "/graphql"
    received = []
    async with websockets.connect(url, subprotocols=["graphql-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {researcher.api_key}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "start", "payload": {
            "query": JOB_LOGS, "variables": {"id": job_id, "after": 0, "tail": 100}}}))
        async with asyncio.timeout(30):
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "complete":
                    break
                if message["type"] == "data":
                    received.append(message["payload"]["data"]["jobLogs"])
    assert received == await logs(researcher.agent, job_id, tail=1000)


RUN_UPDATES = """subscription($id: ID!, $after: Int) { runUpdates(runId: $id, afterSeq: $after) {
  seq kind payload run { status fundedCents fundingGapCents } } }"""


async def test_run_updates_stream_funding_and_every_status_to_the_end(api: str, researcher, make_person,
                                                                      demo_repo: Repo) -> None:
    from app.funding.wallets import grant_credit

    project = await make_project(researcher.agent, demo_repo)
    run = await create_run(researcher.agent, project, demo_repo, parameters={"epochs": 2, "seconds": 0})
    run = await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING"})
    patron = await make_person("stream-patron")
    await grant_credit(patron.user_id, run["fundingGapCents"], "test", granted_by="tests")
    ws = await WsClient.connect(api)
    try:
        updates = ws.subscribe(RUN_UPDATES, {"id": run["id"]})
        snapshot = (await anext(updates))["runUpdates"]
        assert snapshot["kind"] == "snapshot" and snapshot["run"]["status"] == "AWAITING_FUNDING"
        await patron.agent.data("mutation($i: FundRunInput!) { fundRun(input: $i) { __typename } }",
                                {"i": {"runId": run["id"], "amountCents": run["fundingGapCents"]}})
        rest = []
        async with asyncio.timeout(90):
            async for data in updates:
                rest.append(data["runUpdates"])
    finally:
        await ws.close()
    statuses = [u["payload"]["status"] for u in rest if u["kind"] == "status"]
    assert statuses == ["funded", "completed"]  # the stream ends only after the final status
    assert [u["seq"] for u in rest] == sorted({u["seq"] for u in rest}) and rest[0]["seq"] > snapshot["seq"]
    funding = next(u for u in rest if u["kind"] == "funding")
    assert funding["run"]["fundedCents"] >= run["fundingGapCents"] or funding["run"]["fundingGapCents"] == 0


BATCHES = """subscription($id: ID!, $after: Int, $max: Int!) { jobLogBatches(jobId: $id, afterSeq: $after, maxLines: $max) {
  lastSeq lines { seq stream line } } }"""


async def test_log_batches_carry_every_line_once_and_resume_from_last_seq(api: str, researcher,
                                                                          demo_repo: Repo) -> None:
    project = await make_project(researcher.agent, demo_repo)
    run = await create_run(researcher.agent, project, demo_repo, **dryrun_of(6, 0))
    run = await wait_run(researcher.agent, run["id"], {"AWAITING_FUNDING"})
    job_id = run["dryrunJob"]["id"]
    every = await logs(researcher.agent, job_id, tail=1000)
    ws = await WsClient.connect(api)
    try:
        batches = await collect(ws, BATCHES, {"id": job_id, "after": 0, "max": 4})
        assert all(1 <= len(b["lines"]) <= 4 and b["lastSeq"] == b["lines"][-1]["seq"] for b in batches)
        assert [line for b in batches for line in b["lines"]] == every
        rest = await collect(ws, BATCHES, {"id": job_id, "after": batches[0]["lastSeq"], "max": 500})
        assert [line for b in rest for line in b["lines"]] == every[len(batches[0]["lines"]):]
        with pytest.raises(SubscriptionError) as err:
            await collect(ws, BATCHES, {"id": job_id, "after": 0, "max": 0})
        assert err.value.errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
    finally:
        await ws.close()


BOARD = "subscription { jobsBoard(status: PENDING) { jobs { id queuePosition } } }"


async def test_jobs_board_positions_match_the_queue(api: str, researcher, demo_repo: Repo) -> None:
    """The board ranks pending jobs itself; each rank equals the job's own queuePosition."""
    import uuid

    from app.api.ids import encode_id
    from app.jobs.models import Job
    from app.runs.models import Run

    project = await make_project(researcher.agent, demo_repo)
    run = await Run.create(project_id=pk(project), creator_id=researcher.user_id, title="queued", status="cancelled",
                           uri=str(demo_repo.path), version="main", commit_sha="0" * 40, gpu_type="l4",
                           gpu_count=1, machine_type="g2-standard-4", dryrun_override_param="epochs",
                           dryrun_override_value="1")
    # Never submitted (no handle) and fresh: nothing launches them during the test.
    queued = [await Job.create(id=uuid.uuid4(), run=run, kind="dryrun", executor="local", deadline_seconds=60)
              for _ in range(3)]
    ours = [encode_id("Job", j.id) for j in queued]
    ws = await WsClient.connect(api)
    try:
        board = (await collect(ws, BOARD, {}, limit=1))[0]["jobs"]
        counted = [(await researcher.agent.data("query($id: ID!) { job(id: $id) { queuePosition } }",
                                                {"id": i}))["job"]["queuePosition"] for i in ours]
    finally:
        await ws.close()
        for job in queued:
            await job.delete()
        await run.delete()
    positions = {j["id"]: j["queuePosition"] for j in board}
    assert [positions[i] for i in ours] == counted  # the board's ranks agree with the per-job count
    assert counted == sorted(counted) and sorted(positions.values()) == list(range(1, len(board) + 1))
