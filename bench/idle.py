"""Idle subscriptions benchmark (not a test): what N dashboards cost while nothing happens.

N websocket connections, each with one `jobStatus` subscription on the same quiet job, on one API
process (uvicorn child). Prints, against the same process with no subscription open:
- RSS per idle subscription (connection included),
- database transactions per second while idle (pg_stat_database, the whole database),
- the latency of an HTTP query meanwhile.

    .venv/bin/python -m bench.idle --subscribers 1000 5000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import time
import uuid
from datetime import UTC, datetime

import aiohttp
import asyncpg
import websockets

from app.embedded.child import sigterm_unwinds
from bench.fund_run import backing_services
from bench.servers import UNLIMITED_BUDGET, uvicorn_process

STATUS = "subscription($id: ID!) { jobStatus(jobId: $id) { seq status } }"
QUERY = "query($id: ID!) { job(id: $id) { status timeline { seq status } } }"
IDLE_SECONDS = 10.0
CONNECT_AT_ONCE = 200


async def rss_kib(http: aiohttp.ClientSession) -> float:
    """The API process's resident memory, from its own /metrics (prometheus_client's process collector)."""
    async with http.get("/metrics") as r:
        text = await r.text()
    return float(re.search(r"^process_resident_memory_bytes (\S+)$", text, re.M).group(1)) / 1024


async def transactions(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return await conn.fetchval("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                                   "WHERE datname = current_database()")
    finally:
        await conn.close()


async def idle_rates(database_url: str) -> float:
    """Transactions/s of the database over IDLE_SECONDS (our own two reads excluded)."""
    before = await transactions(database_url)
    await asyncio.sleep(IDLE_SECONDS)
    # Statistics reach pg_stat_database when a backend's transaction ends; our connection counts one.
    return max(await transactions(database_url) - before - 1, 0) / IDLE_SECONDS


async def query_latency(http: aiohttp.ClientSession, job_gid: str, n: int = 30) -> float:
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        async with http.post("/graphql", json={"query": QUERY, "variables": {"id": job_gid}}) as r:
            body = await r.json()
            assert body.get("data"), body
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1000


async def subscribe(url: str, job_gid: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url.replace("http://", "ws://") + "/graphql", subprotocols=["graphql-transport-ws"],
                                  max_queue=None)
    await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": STATUS, "variables": {"id": job_gid}}}))
    first = json.loads(await ws.recv())  # the job's current state: the subscription is live
    assert first["type"] == "next", first
    return ws


async def bench(server_url: str, redis_url: str, counts: list[int]) -> None:
    from app.core.db import close_db, init_db, migrate_db
    from app.embedded.postgres import create_database

    database_url = await create_database(server_url, f"mlpatron_idle_{uuid.uuid4().hex[:8]}")
    await migrate_db(database_url)
    await close_db()
    await init_db(database_url)
    job_gid = await seed_job()
    env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "RUN_WATCHER": "false", **UNLIMITED_BUDGET, "MLFLOW_TRACKING_URI": ""}
    async with uvicorn_process("app.main:create_app", env, factory=True) as url, \
            aiohttp.ClientSession(base_url=url) as http:
        for ws in [await subscribe(url, job_gid) for _ in range(20)]:  # warm-up: caches, first allocations
            await ws.close()
        base_latency = await query_latency(http, job_gid)
        base_rate = await idle_rates(database_url)
        base_rss = await rss_kib(http)
        print(f"one API process, N idle jobStatus subscriptions (a websocket each) on one quiet job; "
              f"no subscription: RSS {base_rss / 1024:.0f} MiB, {base_rate:.1f} transactions/s, "
              f"query p50 {base_latency:.1f} ms\n")
        header = f"{'N':>6}{'RSS/sub KiB':>13}{'subs/GiB':>10}{'tx/s idle':>11}{'query p50 ms':>14}{'vs none':>9}"
        print(header)
        print("-" * len(header))
        for n in counts:
            conns: list[websockets.ClientConnection] = []
            while len(conns) < n:
                batch = min(CONNECT_AT_ONCE, n - len(conns))
                conns += await asyncio.gather(*(subscribe(url, job_gid) for _ in range(batch)))
            rss = await rss_kib(http)
            rate = await idle_rates(database_url)
            latency = await query_latency(http, job_gid)
            per_sub = (rss - base_rss) / n
            print(f"{n:>6}{per_sub:>13.1f}{1024 * 1024 / max(per_sub, 0.001):>10.0f}{rate:>11.1f}{latency:>14.1f}"
                  f"{latency / base_latency:>8.2f}x")
            await asyncio.gather(*(ws.close() for ws in conns))
    await close_db()


async def seed_job() -> str:
    """A job with one transition (its current state) that nothing runs."""
    from app.api.ids import encode_id
    from app.funding.wallets import create_user_with_wallet
    from app.jobs.models import Job, JobTransition
    from app.projects.models import Project
    from app.runs.models import Run

    user = await create_user_with_wallet(handle="idle", email="idle@example.test", password=None)
    project = await Project.create(owner=user, title="idle", git_url="https://example.com/r.git")
    run = await Run.create(project=project, creator=user, title="idle", uri="https://example.com/r.git",
                           version="main", commit_sha="0" * 40, gpu_type="l4", gpu_count=1,
                           machine_type="g2-standard-4", dryrun_override_param="epochs", dryrun_override_value="1")
    job = await Job.create(id=uuid.uuid4(), run=run, kind="dryrun", executor="bench", deadline_seconds=600,
                           event_seq=1)
    await JobTransition.create(job=job, seq=1, status="pending", at=datetime.now(UTC))
    return encode_id("Job", job.id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1000, 5000])
    args = parser.parse_args()
    with sigterm_unwinds(), backing_services() as (server_url, redis_url):
        asyncio.run(bench(server_url, redis_url, args.subscribers))


if __name__ == "__main__":
    main()
