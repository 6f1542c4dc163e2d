"""Watcher benchmark (not a test): simulated cluster → `mlpatron watcher` → PostgreSQL → Redis → subscribers.

1. State: `--jobs` Jobs created at once; each pod goes Pending → Running for 1-3 s → Succeeded
   (the simulated cluster's synthetic containers: no process each). Measured: the lag from a
   container's end (cluster clock) to the job's terminal wake-up on Redis (`jobs`, published
   after the commit), and jobs never reported.
2. Logs: `--log-jobs` Jobs each logging `--rate` lines/s for `--seconds`; one `jobLogs` subscriber
   per job on an API process (`--subscription jobLogBatches`: a message per batch of lines).
   Measured: delivered/expected and the lag from a line's creation in
   the pod log to its receipt by the subscriber. Floor: the same load followed directly with
   kubernetes-asyncio log follow (no watcher, no database, no Redis), as a ratio.
3. The watcher's memory per followed pod (RSS while following minus RSS idle) and its API calls
   per Job (lists, watches, log opens, pod reads: list+watch, not polling).

    .venv/bin/python -m bench.watcher --jobs 1000 --log-jobs 200 --rate 50 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import websockets

from app.embedded.child import sigterm_unwinds
from bench.realtime import percentile
from bench.servers import children, tree_cpu, uvicorn_process

LOGS = {  # one message per line, or per batch of lines (the subscription for busy dashboards)
    "jobLogs": "subscription($id: ID!) { jobLogs(jobId: $id, afterSeq: 0, tail: 5000) { seq stream line } }",
    "jobLogBatches": "subscription($id: ID!) { jobLogBatches(jobId: $id, afterSeq: 0, tail: 5000) "
                     "{ lastSeq lines { seq stream line } } }",
}
PER_SOCKET = 20  # subscriptions per websocket (the API allows 25)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tick_lag(line: str, now: float) -> float:
    return now - float(line.split()[1])


def cpu_by_part() -> dict[str, float]:
    """CPU seconds so far of each part of the pipeline (this process's children, by command)."""
    names = {"k8s_fake.cluster": "cluster", "main() watcher": "watcher", "create_app": "api", "bin/postgres": "postgres",
             "valkey": "redis"}  # fmt: skip
    out = {"bench": tree_cpu(os.getpid()) - sum(tree_cpu(c) for c in children(os.getpid()))}
    for child in children(os.getpid()):
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            part = next((v for k, v in names.items() if k in cmd), "other")
            out[part] = out.get(part, 0.0) + tree_cpu(child)
    return out


def cpu_report(before: dict[str, float], after: dict[str, float]) -> str:
    return ", ".join(f"{k} {after[k] - before.get(k, 0.0):.1f}" for k in sorted(after))


# One line as the subscriber got it: (job, seq) → (when the pod wrote it, when it arrived).
Received = dict[tuple[str, int], tuple[float, float]]


async def subscribe_logs(url: str, job_gids: list[str], received: Received, field: str = "jobLogs") -> None:
    """One websocket, one `field` subscription per job; returns when every one has completed."""
    async with websockets.connect(url.replace("http", "ws") + "/graphql", subprotocols=["graphql-transport-ws"],
                                  max_queue=None) as ws:  # fmt: skip
        await ws.send(json.dumps({"type": "connection_init", "payload": {}}))
        await ws.recv()
        for gid in job_gids:
            await ws.send(json.dumps({"id": gid, "type": "subscribe",
                                      "payload": {"query": LOGS[field], "variables": {"id": gid}}}))  # fmt: skip
        open_ids = set(job_gids)
        async for raw in ws:
            message = orjson.loads(raw)  # the client's own CPU shares the cores with what it measures
            if message["type"] == "next":
                data = message["payload"]["data"][field]
                now = time.time()
                for line in data["lines"] if field == "jobLogBatches" else (data,):
                    if line["stream"] != "event":  # the pod's Kubernetes Events: not the container's ticks
                        received[(message["id"], line["seq"])] = (float(line["line"].split()[1]), now)
            elif message["type"] in ("complete", "error"):
                if message["type"] == "error":
                    print(f"subscription {message['id']} failed: {message['payload']}", file=sys.stderr)
                open_ids.discard(message["id"])
                if not open_ids:
                    return


async def floor_follow(api: Any, pod: str, lags: list[float]) -> int:
    """Follow one pod's log directly, as the watcher does, minus everything after the read."""
    from app.execution.k8s_api import iter_lines

    resp = await api.open_log(pod, "main", follow=True, timestamps=False)
    got = 0
    try:
        async for raw, _ in iter_lines(resp.content):
            lags.append(tick_lag(raw.decode(), time.time()))
            got += 1
    finally:
        resp.release()
    return got


async def floor_watch(api: Any, job_names: set[str], lags: list[float], watching: asyncio.Event) -> int:
    """The floor Jobs' pods found as the watcher finds them (one pod watch, no polling), each
    followed from the moment its container has started; returns the lines read."""
    from app.execution.k8s_manifests import JOB_ID_LABEL, MAIN_CONTAINER
    from app.execution.k8s_status import container_status

    selector = f"!{JOB_ID_LABEL}"
    _, rv = await api.list("pods", label_selector=selector)
    followers: dict[str, asyncio.Task[int]] = {}
    watching.set()
    async with contextlib.aclosing(api.watch("pods", rv, label_selector=selector)) as stream:
        async for event in stream:
            pod = event.get("object") or {}
            job = (pod.get("metadata", {}).get("labels") or {}).get("job-name")
            state = (container_status(pod, MAIN_CONTAINER) or {}).get("state") or {}
            if job in job_names and job not in followers and ("running" in state or "terminated" in state):
                followers[job] = asyncio.create_task(floor_follow(api, pod["metadata"]["name"], lags))
                if len(followers) == len(job_names):
                    break
    return sum(await asyncio.gather(*followers.values()))


async def create_jobs(api: Any, manifests: list[dict[str, Any]]) -> None:
    gate = asyncio.Semaphore(32)

    async def one(manifest: dict[str, Any]) -> None:
        async with gate:
            await api.create_job(manifest)

    await asyncio.gather(*(one(m) for m in manifests))


def manifests_for(job_ids: list[uuid.UUID], command: str, *, labelled: bool = True) -> list[dict]:
    from app.execution.executor import JobSpec
    from app.execution.k8s_manifests import JOB_ID_LABEL, KubernetesConfig, build_job_manifest

    out = []
    for job_id in job_ids:
        spec = JobSpec(job_id=str(job_id), run_id="bench", kind="dryrun", repo_url="https://example.com/r.git",
                       commit_sha="0" * 40, command=command, env={}, deadline_seconds=3600)  # fmt: skip
        manifest = build_job_manifest(spec, KubernetesConfig())
        if not labelled:  # the floor's Jobs: invisible to the watcher, which selects by this label
            for labels in (manifest["metadata"]["labels"], manifest["spec"]["template"]["metadata"]["labels"]):
                labels.pop(JOB_ID_LABEL)
        out.append(manifest)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000, help="Jobs changing state at once")
    parser.add_argument("--log-jobs", type=int, default=200, help="Jobs logging at once")
    parser.add_argument("--rate", type=float, default=50.0, help="log lines per second per Job")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each logging Job logs")
    parser.add_argument("--subscription", choices=sorted(LOGS), default="jobLogs",
                        help="what the subscribers follow: a message per line, or per batch of lines")
    args = parser.parse_args()
    load_at_start = os.getloadavg()  # the machine is shared: say how busy it was

    from redis.asyncio import Redis

    from app.api.ids import encode_id
    from app.core.db import close_db, init_db, migrate_db
    from app.embedded.postgres import EmbeddedPostgres, create_database
    from app.embedded.redis import EmbeddedRedis
    from app.execution.k8s_api import KubeApi, create_api_client
    from app.execution.k8s_manifests import KubernetesConfig
    from tests.api_process import WatcherProcess
    from tests.k8s_fake.cluster import ClusterProcess

    work = Path(tempfile.mkdtemp(prefix="mlpatron-bench-watcher-", dir="/var/tmp"))
    pg, redis_server = EmbeddedPostgres(work / "pg"), EmbeddedRedis(work / "redis")
    scenario = {"defaults": {"pending_seconds": 0.5, "pull_seconds": 0.1}, "rules": [
        {"match": {"command_contains": "bench-log"}, "synthetic_seconds": args.seconds,
         "synthetic_lines_per_second": args.rate},
        *({"match": {"command_contains": f"bench-state-{s}"}, "synthetic_seconds": s} for s in (1, 2, 3)),
    ]}  # fmt: skip
    cluster = ClusterProcess(work / "cluster", scenario)
    watcher: WatcherProcess | None = None
    client = None
    try:
        db_url = await create_database(pg.start(), "bench")
        redis_url = redis_server.start()
        await migrate_db(db_url)
        await init_db(db_url)
        env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "RUN_WATCHER": "false", "MLPATRON_DATA_DIR": str(work),
               "EXECUTOR": "kubernetes", "KUBECONFIG": str(cluster.kubeconfig), "MLFLOW_TRACKING_URI": ""}  # fmt: skip
        # The watcher as deployed (k8s/40-watcher.yaml): 20 database connections, not tortoise's 5.
        watcher = WatcherProcess({**env, "DATABASE_POOL_SIZE": "20"}, work / "watcher.log")
        config = KubernetesConfig(kubeconfig=str(cluster.kubeconfig), in_cluster=False)
        client = await create_api_client(config)
        api = KubeApi(client, config.namespace)

        from app.funding.wallets import create_user_with_wallet
        from app.jobs.models import Job, JobLogLine
        from app.projects.models import Project
        from app.runs.models import Run

        user = await create_user_with_wallet(handle="bench", email="bench@example.test", password=None)
        project = await Project.create(owner=user, title="bench", git_url="https://example.com/r.git")

        async def db_jobs(n: int) -> list[uuid.UUID]:
            """`n` jobs, each of its own run (as in life: runs lock their own row and stream)."""
            runs = [Run(id=uuid.uuid4(), project=project, creator=user, title="bench", uri="https://example.com/r.git",
                        version="main", commit_sha="0" * 40, gpu_type="l4", gpu_count=1, status="completed",
                        machine_type="g2-standard-4", dryrun_override_param="epochs", dryrun_override_value="1",
                        parameters={"epochs": "1"}) for _ in range(n)]  # fmt: skip
            await Run.bulk_create(runs)
            ids = [uuid.uuid4() for _ in range(n)]
            await Job.bulk_create([Job(id=i, run_id=r.id, kind="dryrun", status="pending", executor="kubernetes",
                                       deadline_seconds=3600, spec={}) for i, r in zip(ids, runs, strict=True)])  # fmt: skip
            return ids

        await asyncio.to_thread(watcher.wait_for_log, WatcherProcess.LEADING, 120)

        # ---- 1. state
        redis = Redis.from_url(redis_url)
        pubsub = redis.pubsub()
        await pubsub.subscribe("jobs")
        ended: dict[str, float] = {}
        state_ids = await db_jobs(args.jobs)
        names = {}
        commands = {}
        for job_id in state_ids:
            commands[job_id] = f"bench-state-{random.choice((1, 2, 3))}"
        manifests = [m for i in state_ids for m in manifests_for([i], commands[i])]
        for job_id, manifest in zip(state_ids, manifests, strict=True):
            names[manifest["metadata"]["name"]] = str(job_id)
        cpu_start = cpu_by_part()
        started = time.monotonic()
        await create_jobs(api, manifests)
        created_in = time.monotonic() - started
        async with asyncio.timeout(300):
            while len(ended) < args.jobs:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None:
                    continue
                body = json.loads(message["data"])
                if body.get("status") in ("succeeded", "failed", "cancelled"):
                    ended.setdefault(body["job"], time.time())
        state_seconds = time.monotonic() - started
        finished = await asyncio.to_thread(cluster.api, "/_sim/finished")
        state_lags = [ended[names[n]] - t for n, t in finished.items() if n in names and names[n] in ended]
        await pubsub.aclose()
        await redis.aclose()
        calls_state = (await asyncio.to_thread(cluster.api, "/_sim/stats"))["requests"]
        idle_rss = rss_kib(watcher.proc.pid)
        cpu_state = cpu_by_part()

        # ---- 2. logs through the platform
        expected_lines = int(args.rate * args.seconds)
        log_ids = await db_jobs(args.log_jobs)
        gids = [str(encode_id("Job", i)) for i in log_ids]
        received: Received = {}
        peak_rss = idle_rss
        async with uvicorn_process("app.main:create_app", env, "/ready", factory=True) as api_url:
            subscribers = [asyncio.create_task(subscribe_logs(api_url, gids[i:i + PER_SOCKET], received,
                                                              args.subscription))
                           for i in range(0, len(gids), PER_SOCKET)]  # fmt: skip
            cpu_logs_start = cpu_by_part()
            await create_jobs(api, manifests_for(log_ids, "bench-log"))
            done = asyncio.gather(*subscribers)
            while not done.done():
                peak_rss = max(peak_rss, rss_kib(watcher.proc.pid))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(done), 0.5)
            await done
            cpu_logs = cpu_by_part()
        calls_all = (await asyncio.to_thread(cluster.api, "/_sim/stats"))["requests"]

        # ---- floor: the same load read straight from the API server
        floor_lags: list[float] = []
        cpu_floor_start = cpu_by_part()
        floor_ids = [uuid.uuid4() for _ in range(args.log_jobs)]
        floor_manifests = manifests_for(floor_ids, "bench-log", labelled=False)
        watching = asyncio.Event()
        floor = asyncio.create_task(floor_watch(api, {m["metadata"]["name"] for m in floor_manifests}, floor_lags,
                                                watching))  # fmt: skip
        await watching.wait()
        await create_jobs(api, floor_manifests)
        floor_got = await floor
        cpu_floor = cpu_by_part()
        # Where a line's lag goes: the watcher's write stamps `created_at` as it takes the batch.
        stored = {(str(encode_id("Job", job_id)), seq): at.timestamp() for job_id, seq, at in
                  await JobLogLine.filter(job_id__in=log_ids, stream="stdout").values_list("job_id", "seq", "created_at")}  # fmt: skip
        lags = [got - wrote for wrote, got in received.values()]
        first_line = min((wrote for wrote, _ in received.values()), default=0.0)
        by_second: dict[int, list[float]] = {}
        for wrote, got in received.values():
            by_second.setdefault(int(wrote - first_line), []).append(got - wrote)
        to_write = [stored[key] - wrote for key, (wrote, _) in received.items() if key in stored]
        to_subscriber = [got - stored[key] for key, (_, got) in received.items() if key in stored]

        # ---- report
        print("load average (1/5/15 min) at the start: {:.1f} {:.1f} {:.1f}, at the end: {:.1f} {:.1f} {:.1f}".format(
            *load_at_start, *os.getloadavg()))  # fmt: skip
        jobs_total = args.jobs + args.log_jobs
        watcher_calls = {k: v for k, v in calls_all.items() if not k.startswith("POST")}
        print(f"state: {args.jobs} Jobs created in {created_in:.1f} s, all terminal in {state_seconds:.1f} s; "
              f"never reported: {args.jobs - len(state_lags)}")  # fmt: skip
        print(f"  lag container end → terminal wake-up: p50={percentile(state_lags, 0.5) * 1000:.0f}ms "
              f"p99={percentile(state_lags, 0.99) * 1000:.0f}ms max={max(state_lags) * 1000:.0f}ms")  # fmt: skip
        print(f"  CPU seconds: {cpu_report(cpu_start, cpu_state)}")
        delivered = len(received)
        total = expected_lines * args.log_jobs
        print(f"logs: {args.log_jobs} Jobs x {args.rate:g} lines/s x {args.seconds:g} s = {total} lines "
              f"({args.log_jobs * args.rate:.0f} lines/s), a {args.subscription} subscriber each; "
              f"delivered/expected={delivered / total:.4f}")  # fmt: skip
        p50, p99 = percentile(lags, 0.5) * 1000, percentile(lags, 0.99) * 1000
        f50, f99 = percentile(floor_lags, 0.5) * 1000, percentile(floor_lags, 0.99) * 1000
        print(f"  platform lag pod log → subscriber: p50={p50:.0f}ms p99={p99:.0f}ms max={max(lags) * 1000:.0f}ms")
        print("    p99 by second since the first line (ms): " + " ".join(
            f"{percentile(by_second[k], 0.99) * 1000:.0f}" for k in sorted(by_second)))  # fmt: skip
        for what, part in (("pod log → the watcher's write", to_write), ("write → subscriber", to_subscriber)):
            print(f"    of which {what}: p50={percentile(part, 0.5) * 1000:.0f}ms "
                  f"p99={percentile(part, 0.99) * 1000:.0f}ms")  # fmt: skip
        print(f"  CPU seconds: {cpu_report(cpu_logs_start, cpu_logs)}")
        print(f"  floor (direct log follow, no watcher/DB/Redis): delivered/expected={floor_got / total:.4f} "
              f"p50={f50:.0f}ms p99={f99:.0f}ms; ratio p50 x{p50 / f50:.1f} p99 x{p99 / f99:.1f}")  # fmt: skip
        print(f"    floor CPU seconds: {cpu_report(cpu_floor_start, cpu_floor)}")
        print(f"watcher RSS: idle {idle_rss / 1024:.0f} MiB, peak while following {args.log_jobs} pods "
              f"{peak_rss / 1024:.0f} MiB: {(peak_rss - idle_rss) / args.log_jobs:.0f} KiB per followed pod")  # fmt: skip
        per_job = {k: round(v / jobs_total, 2) for k, v in sorted(watcher_calls.items())}
        state_per_job = {k: round(v / args.jobs, 2) for k, v in sorted(calls_state.items()) if not k.startswith("POST")}
        print(f"watcher API calls per Job (state phase): {state_per_job}")
        print(f"watcher API calls per Job (both phases, {jobs_total} Jobs): {per_job}")
    finally:
        if client is not None:
            await client.close()
        if watcher is not None:
            watcher.stop()
        cluster.stop()
        await close_db()
        redis_server.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    with sigterm_unwinds():  # SIGTERM stops the servers started above, like Ctrl-C
        asyncio.run(main())
