"""Realtime fan-out benchmark (not a test).

K websocket subscribers (split across 2 API processes) follow one job's logs over
graphql-transport-ws while a producer writes L lines/second through the platform's own
JobRecorder (Postgres row with its seq, then a Redis wake-up). Prints delivered/expected,
p50/p99 latency from a line's write to its receipt, and the same for the floor: a bare Redis
pub/sub → websocket forwarder (bench/floor_forwarder.py), as a ratio.

    .venv/bin/python -m bench.realtime --subscribers 500 --rate 5 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import websockets

from app.embedded.child import sigterm_unwinds
from app.embedded.ports import free_port
from bench.servers import UNLIMITED_BUDGET, websocket_flags

ROOT = Path(__file__).resolve().parent.parent


def start_server(args: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    # The floor is served like the API (same websocket implementation and settings).
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", *args, "--host", "127.0.0.1", "--port", str(port),
                             "--log-level", "warning", *websocket_flags()], cwd=ROOT, env={**os.environ, **env},
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)
    return proc, port


def wait_port(port: int, path: str, within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"server on {port} did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


QUERIES = {
    "lines": "subscription($id: ID!) { jobLogs(jobId: $id, afterSeq: 0, tail: 5000) { seq line } }",
    "batches": "subscription($id: ID!) { jobLogBatches(jobId: $id, afterSeq: 0) { lastSeq lines { seq line } } }",
}


async def graphql_subscriber(port: int, job_id: str, mode: str, latencies: list[float], ready: asyncio.Event,
                             counter: list[int]) -> int:
    got = 0
    async with websockets.connect(f"ws://127.0.0.1:{port}/graphql", subprotocols=["graphql-transport-ws"],
                                  max_queue=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        await ws.recv()
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": QUERIES[mode], "variables": {"id": job_id}}}))
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "next":
                data = message["payload"]["data"]
                lines = [data["jobLogs"]] if mode == "lines" else data["jobLogBatches"]["lines"]
                now = time.time()
                for line in lines:
                    latencies.append(now - float(line["line"].split()[1]))
                got += len(lines)
            elif message["type"] in ("complete", "error"):
                break
    return got


async def floor_subscriber(port: int, expected: int, latencies: list[float], ready: asyncio.Event,
                           counter: list[int], within: float) -> int:
    """Counts what arrives within `within` seconds: the bare forwarder has no catch-up, and a message it
    loses (its Redis subscription dropped for a slow reader) shows as delivered/expected < 1, not a hang."""
    got = 0
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_queue=None) as ws:
        counter[0] += 1
        if counter[0] == counter[1]:
            ready.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                async for raw in ws:
                    latencies.append(time.time() - float(raw.split()[1]))
                    got += 1
                    if got >= expected:
                        break
    return got


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=500)
    parser.add_argument("--rate", type=float, default=5.0, help="log lines per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--mode", choices=sorted(QUERIES), default="lines",
                        help="jobLogs (one message per line) or jobLogBatches (all available lines per message)")
    args = parser.parse_args()
    lines = int(args.rate * args.seconds)

    from app.core.db import close_db, migrate_db
    from app.embedded.postgres import EmbeddedPostgres, create_database
    from app.embedded.redis import EmbeddedRedis

    work = Path(tempfile.mkdtemp(prefix="mlpatron-bench-", dir="/var/tmp"))
    pg, redis = EmbeddedPostgres(work / "pg"), EmbeddedRedis(work / "redis")
    procs: list[subprocess.Popen] = []
    try:
        db_url = await create_database(pg.start(), "bench")
        redis_url = redis.start()
        await migrate_db(db_url)
        await close_db()
        env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "RUN_WATCHER": "false", **UNLIMITED_BUDGET, "MLPATRON_DATA_DIR": str(work)}
        api_ports, floor_ports = [], []
        for _ in range(2):
            proc, port = start_server(["app.main:create_app", "--factory"], env, work / "api.log")
            procs.append(proc)
            api_ports.append(port)
            proc, port = start_server(["bench.floor_forwarder:app"], env, work / "floor.log")
            procs.append(proc)
            floor_ports.append(port)
        for port in api_ports:
            wait_port(port, "/health")
        for port in floor_ports:
            wait_port(port, "/")

        from app.core.settings import override_settings
        from app.main import start_runtime, stop_runtime

        services = await start_runtime(override_settings(database_url=db_url, redis_url=redis_url, run_watcher=False,
                                                        data_dir=work))
        from app.api.ids import encode_id
        from app.funding.wallets import create_user_with_wallet
        from app.jobs.models import Job
        from app.jobs.status import JobStatus, JobUpdate
        from app.projects.models import Project
        from app.runs.models import Run

        user = await create_user_with_wallet(handle="bench", email="bench@example.test", password=None)
        project = await Project.create(owner=user, title="bench", git_url="https://example.com/r.git")
        run = await Run.create(project=project, creator=user, title="bench", uri="https://example.com/r.git",
                               version="main", commit_sha="0" * 40, gpu_type="l4", gpu_count=1,
                               machine_type="g2-standard-4", dryrun_override_param="epochs", dryrun_override_value="1",
                               parameters={"epochs": "1"})
        job = await Job.create(id=uuid.uuid4(), run=run, kind="dryrun", executor="bench", deadline_seconds=600)
        recorder = services.lifecycle.recorder

        async def measure(kind: str) -> tuple[float, list[float]]:
            latencies: list[float] = []
            ready = asyncio.Event()
            counter = [0, args.subscribers]
            if kind == "platform":
                job_gid = encode_id("Job", job.id)
                subs = [asyncio.create_task(graphql_subscriber(api_ports[i % 2], job_gid, args.mode, latencies, ready, counter))
                        for i in range(args.subscribers)]
            else:
                subs = [asyncio.create_task(floor_subscriber(floor_ports[i % 2], lines, latencies, ready, counter,
                                                             args.seconds + 150)) for i in range(args.subscribers)]
            await asyncio.wait_for(ready.wait(), 120)
            await asyncio.sleep(1.0)  # let the servers register every subscription before the first line
            interval = 1 / args.rate
            start = time.monotonic()
            for n in range(lines):
                await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))
                payload = f"line {time.time():.6f} {n}"
                if kind == "platform":
                    await recorder.job_log(str(job.id), "stdout", payload)
                else:
                    await services.redis.publish("bench:floor", payload)
            if kind == "platform":
                await recorder.job_update(JobUpdate(job_id=str(job.id), status=JobStatus.RUNNING, at=_now()))
                await recorder.job_update(JobUpdate(job_id=str(job.id), status=JobStatus.SUCCEEDED, at=_now()))
            delivered = await asyncio.wait_for(asyncio.gather(*subs), 300)
            return sum(delivered) / (lines * args.subscribers), latencies

        platform_ratio, platform_lat = await measure("platform")
        floor_ratio, floor_lat = await measure("floor")
        p50, p99 = percentile(platform_lat, 0.5) * 1000, percentile(platform_lat, 0.99) * 1000
        f50, f99 = percentile(floor_lat, 0.5) * 1000, percentile(floor_lat, 0.99) * 1000
        print(f"subscribers={args.subscribers} (2 API processes) lines={lines} rate={args.rate}/s mode={args.mode}")
        print(f"platform: delivered/expected={platform_ratio:.4f} p50={p50:.1f}ms p99={p99:.1f}ms "
              f"mean={statistics.fmean(platform_lat) * 1000:.1f}ms")
        print(f"floor (bare Redis→websocket): delivered/expected={floor_ratio:.4f} p50={f50:.1f}ms p99={f99:.1f}ms")
        print(f"ratio platform/floor: p50 x{p50 / f50:.2f}  p99 x{p99 / f99:.2f}")
        await stop_runtime(services)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


if __name__ == "__main__":
    with sigterm_unwinds():  # SIGTERM stops the servers started above, like Ctrl-C
        asyncio.run(main())
