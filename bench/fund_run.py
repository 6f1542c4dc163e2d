"""Benchmark: N concurrent `fundRun` mutations over HTTP, against one run and against many runs,
next to N bare asyncpg transactions doing the same row work (the floor).

    .venv/bin/python -m bench.fund_run [--n 200] [--runs 50]

Starts an embedded PostgreSQL and Redis under /var/tmp (or uses DATABASE_URL / REDIS_URL), a fresh
migrated database, and the API as a uvicorn child process (its own core), so load generation does
not share an event loop with the server. Estimates are set so no run ever reaches its goal: this
measures funding, not job start-up. The floor uses an asyncpg pool as large as the app's (5).

One run: every funding waits for the same run-row lock, so both sides serialise and the ratio shows
the per-funding overhead of HTTP + GraphQL + auth + ORM + the run event. The API's CPU per funding
is counted until the RUN_FUNDED notices of the scenario's fundings are written (in the background),
and the notifications are counted at the end: one per API funding (the owner is told of each). Many runs: fundings spread
over `--runs` runs. Client, server and PostgreSQL share this machine's cores: compare ratios, not
absolute numbers, across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg

from app.embedded.child import sigterm_unwinds
from app.embedded.ports import free_port
from bench.servers import UNLIMITED_BUDGET, websocket_flags

ROOT = Path(__file__).resolve().parent.parent
AMOUNT = 100
POOL_SIZE = 5  # tortoise's asyncpg default maxsize
FUND = """mutation($i: FundRunInput!) { fundRun(input: $i) { __typename ... on FundRunSuccess { funding { id } } } }"""


@dataclass(frozen=True)
class Result:
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies) * 1000


async def timed(calls: list[Callable[[], Awaitable[None]]]) -> Result:
    """Run every call at once; wall time and each call's latency."""
    latencies: list[float] = []

    async def one(call: Callable[[], Awaitable[None]]) -> None:
        t0 = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in calls))
    return Result(time.perf_counter() - t0, latencies)


# ---- servers ---------------------------------------------------------------------------------


@contextlib.contextmanager
def backing_services() -> Iterator[tuple[str, str]]:
    """(postgres server URL, redis URL): from the environment, or embedded under /var/tmp."""
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        yield os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
        return
    from app.embedded.postgres import EmbeddedPostgres
    from app.embedded.redis import EmbeddedRedis

    work = Path(tempfile.mkdtemp(prefix="mlpatron-bench-", dir="/var/tmp"))
    pg, redis = EmbeddedPostgres(work / "postgres"), EmbeddedRedis(work / "redis")
    try:
        yield pg.start(), redis.start()
    finally:
        redis.stop()
        pg.stop()
        shutil.rmtree(work, ignore_errors=True)


async def start_api(database_url: str, redis_url: str) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "RUN_WATCHER": "false", **UNLIMITED_BUDGET,
           "MLFLOW_TRACKING_URI": ""}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory", "--host", "127.0.0.1",
        "--port", str(port), "--log-level", "warning", "--no-access-log", *websocket_flags(),
        # Between scenarios the client's pooled connections idle longer than uvicorn's default 5 s.
        "--timeout-keep-alive", "300", cwd=ROOT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(base_url=url) as http, asyncio.timeout(60):
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get("/ready") as r:
                        if r.status == 200:
                            return proc, url
                await asyncio.sleep(0.1)
    except BaseException:  # never leave the server behind
        proc.terminate()
        await proc.wait()
        raise


# ---- data ------------------------------------------------------------------------------------


async def seed(n_patrons: int, n_runs: int) -> tuple[list[tuple[uuid.UUID, str]], list[uuid.UUID]]:
    """Patrons (user id, API key) with plenty of credit, and runs that never reach their goal."""
    from app.accounts import services as accounts
    from app.funding import wallets
    from app.funding.wallets import grant_credit
    from app.projects.models import Project
    from app.runs.models import Run

    owner = await wallets.create_user_with_wallet(handle=f"owner-{uuid.uuid4().hex[:6]}", email=f"o{uuid.uuid4().hex}@x.io",
                                       password=None)
    project = await Project.create(owner=owner, title="bench", git_url="https://example.com/bench.git")
    patrons = []
    for _ in range(n_patrons):
        handle = f"p-{uuid.uuid4().hex[:10]}"
        user = await wallets.create_user_with_wallet(handle=handle, email=f"{handle}@x.io", password=None)
        await grant_credit(user.id, 1_000_000, "bench", granted_by="bench")
        patrons.append((user.id, (await accounts.create_api_key(user, "bench")).secret))
    runs = [
        (await Run.create(project=project, creator=owner, title="bench", status="awaiting_funding", uri="x",
                          version="main", commit_sha="0" * 40, gpu_type="l4", gpu_count=1,
                          machine_type="g2-standard-4", dryrun_override_param="epochs", dryrun_override_value="1",
                          estimated_cost_cents=10**12)).id
        for _ in range(n_runs)
    ]
    return patrons, runs


# ---- the two contenders ----------------------------------------------------------------------


def api_calls(http: aiohttp.ClientSession, patrons: list[tuple[uuid.UUID, str]],
              runs: list[uuid.UUID]) -> list[Callable[[], Awaitable[None]]]:
    from app.api.ids import encode_id

    def call(key: str, run_id: uuid.UUID) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            body = {"query": FUND, "variables": {"i": {"runId": encode_id("Run", run_id), "amountCents": AMOUNT}}}
            async with http.post("/graphql", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
                answer = await r.json()
            assert answer["data"]["fundRun"]["__typename"] == "FundRunSuccess", answer

        return go

    return [call(key, runs[i % len(runs)]) for i, (_, key) in enumerate(patrons)]


def floor_calls(pool: asyncpg.Pool, patrons: list[tuple[uuid.UUID, str]],
                runs: list[uuid.UUID]) -> list[Callable[[], Awaitable[None]]]:
    """The same rows locked, read, updated and inserted as one funding, with nothing around it."""

    def call(user_id: uuid.UUID, run_id: uuid.UUID) -> Callable[[], Awaitable[None]]:
        async def go() -> None:
            async with pool.acquire() as conn, conn.transaction():
                run = await conn.fetchrow("SELECT funded_cents, estimated_cost_cents, project_id FROM runs "
                                          "WHERE id = $1 FOR UPDATE", run_id)
                wallet = await conn.fetchrow("SELECT credit_cents, cash_cents FROM wallets WHERE user_id = $1 "
                                             "FOR UPDATE", user_id)
                credit = min(wallet["credit_cents"], AMOUNT)
                await conn.execute("UPDATE wallets SET credit_cents = $2, cash_cents = $3, updated_at = now() "
                                   "WHERE user_id = $1", user_id, wallet["credit_cents"] - credit,
                                   wallet["cash_cents"] - (AMOUNT - credit))
                await conn.execute("UPDATE runs SET funded_cents = $2, updated_at = now() WHERE id = $1", run_id,
                                   run["funded_cents"] + AMOUNT)
                await conn.execute(
                    "INSERT INTO fundings (id, created_at, run_id, funder_id, amount_cents, credit_cents, cash_cents, "
                    "project_balance_cents, surplus_policy, refunded_cents, to_project_cents) "
                    "VALUES ($1, now(), $2, $3, $4, $5, $6, 0, 'to_project', 0, 0)",
                    uuid.uuid4(), run_id, user_id, AMOUNT, credit, AMOUNT - credit)
                txn = uuid.uuid4()
                await conn.execute("INSERT INTO ledger_transactions (id, created_at, kind, memo, user_id, project_id, "
                                   "run_id) VALUES ($1, now(), 'funding', 'bench', $2, $3, $4)",
                                   txn, user_id, run["project_id"], run_id)
                lines = [(f"user:{user_id}:credit", -credit), (f"user:{user_id}:cash", credit - AMOUNT),
                         (f"run:{run_id}:escrow", AMOUNT)]
                await conn.executemany("INSERT INTO ledger_postings (transaction_id, account, amount_cents) "
                                       "VALUES ($1, $2, $3)", [(txn, a, v) for a, v in lines if v])

        return go

    return [call(user_id, runs[i % len(runs)]) for i, (user_id, _) in enumerate(patrons)]


async def notices_written(pool: asyncpg.Pool) -> float:
    """Seconds until no RUN_FUNDED notice is pending (the API writes them after the response)."""
    t0 = time.perf_counter()
    async with asyncio.timeout(60):
        while True:
            if not await pool.fetchval("SELECT count(*) FROM fundings WHERE notice_funded_cents IS NOT NULL"):
                return time.perf_counter() - t0
            await asyncio.sleep(0.01)


# ---- main ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used: per-funding cost that a busy, shared machine does not skew."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench(server_url: str, redis_url: str, n: int, n_runs: int) -> None:
    from app.core.db import close_db, init_db, migrate_db
    from app.embedded.postgres import create_database

    database_url = await create_database(server_url, f"mlpatron_bench_{uuid.uuid4().hex[:8]}")
    await migrate_db(database_url)
    await close_db()
    await init_db(database_url)
    api, api_url = await start_api(database_url, redis_url)
    pool = await asyncpg.create_pool(database_url, min_size=POOL_SIZE, max_size=POOL_SIZE)
    try:
        patrons, runs = await seed(n, 2 + 2 * n_runs)
        # aiohttp, not httpx: httpx's pool spends ~9 ms of client CPU per request at this concurrency.
        async with aiohttp.ClientSession(base_url=api_url, connector=aiohttp.TCPConnector(limit=n)) as http:
            await timed(api_calls(http, patrons[:20], runs[:1]))  # warm-up: connections, caches
            await timed(floor_calls(pool, patrons[:20], runs[1:2]))
            app_runs, floor_runs = runs[2:2 + n_runs], runs[2 + n_runs:]
            print(f"{n} concurrent fundings of {AMOUNT} cents; API pool and floor pool: {POOL_SIZE} connections\n")
            header = (f"{'scenario':<14}{'app f/s':>9}{'p50 ms':>9}{'p99 ms':>9}   "
                      f"{'floor f/s':>10}{'p50 ms':>9}{'p99 ms':>9}   {'floor/app':>9}")
            print(header)
            print("-" * len(header))
            for name, app_targets, floor_targets in (("one run", app_runs[:1], floor_runs[:1]),
                                                     (f"{n_runs} runs", app_runs, floor_runs)):
                cpu = cpu_seconds(api.pid)
                app = await timed(api_calls(http, patrons, app_targets))
                lag = await notices_written(pool)  # their CPU is the funding's too
                cpu = cpu_seconds(api.pid) - cpu
                floor = await timed(floor_calls(pool, patrons, floor_targets))
                print(f"{name:<14}{app.rate:>9.0f}{app.p50:>9.1f}{app.pct(0.99):>9.1f}   "
                      f"{floor.rate:>10.0f}{floor.p50:>9.1f}{floor.pct(0.99):>9.1f}   {floor.rate / app.rate:>8.1f}x"
                      f"   (API CPU {cpu / n * 1000:.2f} ms per funding; notices written {lag * 1000:.0f} ms later)")
            told = await pool.fetchval("SELECT count(*) FROM notifications WHERE kind = 'RUN_FUNDED'")
            print(f"\nRUN_FUNDED notifications: {told} for {20 + 2 * n} API fundings (one each: "
                  f"{'yes' if told == 20 + 2 * n else 'NO'})")
        from app.funding.audit import check_ledger

        problems = await check_ledger()  # the floor writes the same balanced rows: both must keep the books
        print("ledger check:", "passed" if not problems else f"{len(problems)} problem(s): {problems[:3]}")
    finally:
        await pool.close()
        api.terminate()
        await api.wait()
        await close_db()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="concurrent fundings per scenario")
    parser.add_argument("--runs", type=int, default=50, help="runs in the many-runs scenario")
    args = parser.parse_args()
    with sigterm_unwinds(), backing_services() as (server_url, redis_url):
        asyncio.run(bench(server_url, redis_url, args.n, args.runs))


if __name__ == "__main__":
    main()
