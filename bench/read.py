"""Benchmark: the read path. A dashboard page (projects with their owners and latest runs) served by
the platform (one uvicorn process) against a bare starlette + asyncpg floor (bench/floor_read.py)
answering the same JSON bytes from the same database; then SQL statements per request for nested
list queries at first: 10 / 50 / 100 (they must not grow with the page).

    .venv/bin/python -m bench.read [--seconds 5] [--rounds 3] [--concurrency 16]

Seeds 100 projects x 10 runs (owners, fundings, a job per run, discussions with comments) with
generate_series into a fresh migrated database on an embedded PostgreSQL (or DATABASE_URL /
REDIS_URL). Both servers are loaded by the same aiohttp client, interleaved, `--rounds` times. The
client, both servers and PostgreSQL share this machine's cores: compare the ratio, not absolute
numbers, across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg

from app.embedded.child import sigterm_unwinds
from bench import seed
from bench.fund_run import backing_services
from bench.servers import SERVER_PIDS, UNLIMITED_BUDGET, children, tree_cpu, uvicorn_process

PROJECTS, RUNS_PER_PROJECT = 100, 10
DASHBOARD = """query($projects: Int!, $runs: Int!) { projects(first: $projects) { edges { node {
  title owner { handle } runs(first: $runs) { edges { node { title status estimatedCostCents fundedCents } } } } } } }"""

# Nested list queries whose statement count must not depend on `first:` ($n everywhere).
NESTED = {
    "projects > owner, runs": """query($n: Int!) { projects(first: $n) { edges { node { title owner { handle }
        runs(first: $n) { edges { node { title status } } } } } } }""",
    "projects > stats": "query($n: Int!) { projects(first: $n) { edges { node { stats { totalRuns totalFundedCents "
                        "runsByStatus { status count } followers } } } } }",
    "projects > runs > fundings > funder": """query($n: Int!) { projects(first: $n) { edges { node {
        runs(first: $n) { edges { node { fundings(first: $n) { edges { node { amountCents funder { handle } }
        } } } } } } } } }""",
    "jobs(PENDING) > queuePosition, run": """query($n: Int!) { jobs(status: PENDING, first: $n) { edges { node {
        queuePosition run { title } } } } }""",
    "discussions > comments > author": """query($n: Int!) { discussions(first: $n) { edges { node { title
        comments(first: $n) { edges { node { body author { handle } } } } } } } }""",
}


@dataclass(frozen=True)
class Load:
    seconds: float
    latencies: list[float]
    cpu: dict[str, float]  # CPU seconds spent during the load: the server, PostgreSQL, Redis, this client

    def cpu_ms(self, part: str) -> float:
        """CPU per request, in ms: load-independent where the rate is not."""
        return self.cpu[part] / len(self.latencies) * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def cpu_times(url: str) -> dict[str, float]:
    """CPU seconds so far of the server at `url`, the PostgreSQL and Redis servers under this process, and this process."""
    out = {"server": tree_cpu(SERVER_PIDS[url]), "postgres": 0.0, "redis": 0.0, "client": time.process_time()}
    for child in children(os.getpid()):
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{child}/cmdline").read_bytes()
            part = "postgres" if b"postgres" in command else "redis" if b"valkey" in command else None
            if part:
                out[part] += tree_cpu(child)
    return out


async def load(http: aiohttp.ClientSession, url: str, body: dict, seconds: float, concurrency: int) -> Load:
    """`concurrency` clients posting back to back for `seconds`."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    cpu_before = cpu_times(url)

    async def client() -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            async with http.post(url + "/graphql", json=body) as r:
                await r.read()
                assert r.status == 200
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    cpu = {part: spent - cpu_before[part] for part, spent in cpu_times(url).items()}
    return Load(elapsed, latencies, cpu)


def _merged(loads: list[Load]) -> Load:
    return Load(sum(x.seconds for x in loads), [t for x in loads for t in x.latencies],
                {part: sum(x.cpu[part] for x in loads) for part in loads[0].cpu})


async def seed_database(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await seed.users(conn, "owner", PROJECTS)
        await seed.users(conn, "patron", 20)
        await seed.projects(conn, "owner", PROJECTS)
        await seed.runs(conn, "Project", PROJECTS * RUNS_PER_PROJECT)
        await seed.jobs(conn, pending_every=5)
        await seed.fundings(conn, "patron", 20, per_run=3)
        await seed.discussions(conn, "owner-1", 100, comments=12)
        await seed.analyze(conn)
    finally:
        await conn.close()


async def throughput(api: str, floor: str, args: argparse.Namespace) -> None:
    body = {"query": DASHBOARD, "variables": {"projects": 50, "runs": 10}}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        answers = []
        for url in (api, floor):
            async with http.post(url + "/graphql", json=body) as r:
                answers.append(await r.read())
        assert answers[0] == answers[1], f"floor differs:\n{answers[0][:300]!r}\n{answers[1][:300]!r}"
        assert b'"errors"' not in answers[0] and answers[0].count(b'"title"') == 50 * 11, answers[0][:300]
        print(f"dashboard: projects(first: 50) x runs(first: 10), {len(answers[0])} identical bytes; "
              f"{args.concurrency} concurrent connections, {args.seconds:.0f} s per turn, interleaved\n")
        for url in (api, floor):  # warm-up: connections, caches, JIT-free but import-heavy first requests
            await load(http, url, body, 1, args.concurrency)
        results: dict[str, list[Load]] = {"platform": [], "floor": []}
        for _ in range(args.rounds):
            results["platform"].append(await load(http, api, body, args.seconds, args.concurrency))
            results["floor"].append(await load(http, floor, body, args.seconds, args.concurrency))
    header = f"{'round':<8}{'platform req/s':>15}{'p50 ms':>9}{'p99 ms':>9}   {'floor req/s':>12}{'p50 ms':>9}" \
             f"{'p99 ms':>9}   {'ratio':>6}"
    print(header)
    print("-" * len(header))
    rows = [*zip(results["platform"], results["floor"], strict=True)]
    merged = (_merged(results["platform"]), _merged(results["floor"]))
    for name, (app, floor_) in [*((str(i + 1), r) for i, r in enumerate(rows)), ("all", merged)]:
        print(f"{name:<8}{app.rate:>15.1f}{app.ms(0.5):>9.1f}{app.ms(0.99):>9.1f}   {floor_.rate:>12.1f}"
              f"{floor_.ms(0.5):>9.1f}{floor_.ms(0.99):>9.1f}   {app.rate / floor_.rate:>5.2f}x")
    print("\nCPU per request, ms (all rounds): " + "; ".join(
        f"{name} " + ", ".join(f"{part} {x.cpu_ms(part):.2f}" for part in x.cpu)
        for name, x in (("platform", merged[0]), ("floor", merged[1]))))
    ratios = [a.rate / f.rate for a, f in rows]
    print(f"\nplatform / floor: {merged[0].rate / merged[1].rate:.2f}x (median of rounds "
          f"{statistics.median(ratios):.2f}x; target >= 0.5x)")


async def statements(database_url: str, redis_url: str) -> None:
    """The platform served in this process, so statements are counted at its asyncpg connections."""
    import uvicorn

    from app.core.settings import override_settings
    from app.embedded.ports import free_port
    from app.main import create_app
    from bench.statements import HEADER, counting_statements

    settings = override_settings(database_url=database_url, redis_url=redis_url, run_watcher=False,
                                 mlflow_tracking_uri="", requests_per_minute=10**9, anonymous_requests_per_minute=10**9)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        print("\nSQL statements per request (round trips, the pool's reset included)")
        sizes = (10, 50, 100)
        print(f"{'query':<40}" + "".join(f"{'first: ' + str(n):>12}" for n in sizes))
        with counting_statements() as counter:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
                for name, query in NESTED.items():
                    counts = []
                    for n in sizes:
                        token = counter.new_token()
                        async with http.post("/graphql", json={"query": query, "variables": {"n": n}},
                                             headers={HEADER: token}) as r:
                            answer = await r.json()
                        assert not answer.get("errors"), answer["errors"]
                        counts.append(len(counter.by_token[token]))
                    print(f"{name:<40}" + "".join(f"{c:>12}" for c in counts))
    finally:
        server.should_exit = True
        await task


async def bench(server_url: str, redis_url: str, args: argparse.Namespace) -> None:
    async with seed.scratch_database(server_url, "mlpatron_bench") as database_url:
        await seed_database(database_url)
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "RUN_WATCHER": "false",
               "MLFLOW_TRACKING_URI": "", **UNLIMITED_BUDGET}
        async with uvicorn_process("app.main:create_app", env, "/ready", factory=True) as api, \
                uvicorn_process("bench.floor_read:app", {"DATABASE_URL": database_url}) as floor:
            await throughput(api, floor, args)
        await statements(database_url, redis_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5, help="load per server per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with sigterm_unwinds(), backing_services() as (server_url, redis_url):
        asyncio.run(bench(server_url, redis_url, args))


if __name__ == "__main__":
    main()
