"""Benchmark: read latency as the tables grow. Seeds 10^3, then 10^5, then 10^6 runs (each with a
job, a funding and a comment's worth of discussion rows) with generate_series, and after each step
prints the median latency of typical pages served by the platform (one uvicorn process).

    .venv/bin/python -m bench.scale [--sizes 1000,100000,1000000] [--samples 25]

An "old" project holds 50 runs created a year before everything else, so its runs page sits at the
far end of any global time index; one of its runs has 50 fundings. About 1 job in 100 is pending.
Target: every query at 10^6 within 2x of its latency at 10^3.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import aiohttp
import asyncpg

from app.embedded.child import sigterm_unwinds
from bench import seed
from bench.fund_run import backing_services
from bench.servers import UNLIMITED_BUDGET, uvicorn_process

QUERIES = {
    "project(old).runs(first:20)": """query($project: ID!) { project(id: $project) { runs(first: 20) {
        edges { node { title status fundedCents } } } } }""",
    "jobs(PENDING, first:20){queuePosition}": """{ jobs(status: PENDING, first: 20) { edges { node {
        queuePosition } } } }""",
    "run.fundings(first:20)": """query($run: ID!) { run(id: $run) { fundings(first: 20) { edges { node {
        amountCents } } } } }""",
    "discussions(first:20){comments(first:10)}": """{ discussions(first: 20) { edges { node { title
        comments(first: 10) { edges { node { body } } } } } } }""",
}
COMMENTS_PER_DISCUSSION = 50


async def grow(database_url: str, runs_before: int, runs: int) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await seed.runs(conn, "Project", runs, start=runs_before + 1)
        await seed.jobs(conn, pending_every=100)
        await seed.fundings(conn, "patron", 20, per_run=1)
        await seed.discussions(conn, "owner-1", runs // COMMENTS_PER_DISCUSSION, COMMENTS_PER_DISCUSSION,
                               start=runs_before // COMMENTS_PER_DISCUSSION + 1)
        await seed.analyze(conn)
    finally:
        await conn.close()


async def seed_old(database_url: str) -> dict[str, str]:
    """The old project (50 runs, one with 50 fundings); returns the query variables naming them."""
    from app.api.ids import encode_id

    conn = await asyncpg.connect(database_url)
    try:
        await seed.users(conn, "owner", 100)
        await seed.users(conn, "patron", 20)
        await seed.users(conn, "old", 1)
        await seed.projects(conn, "old", 1, age_days=365, title="Old")
        await seed.projects(conn, "owner", 100)
        await seed.runs(conn, "Old", 50, age_days=365)
        await seed.fundings(conn, "patron", 20, per_run=50)
        project = await conn.fetchval("SELECT id FROM projects WHERE title = 'Old 1'")
        run = await conn.fetchval("SELECT id FROM runs WHERE project_id = $1 ORDER BY created_at LIMIT 1", project)
    finally:
        await conn.close()
    return {"project": encode_id("Project", project), "run": encode_id("Run", run)}


async def median_ms(http: aiohttp.ClientSession, query: str, variables: dict[str, str], samples: int) -> float:
    body = {"query": query, "variables": variables}
    times = []
    for i in range(samples + 3):
        t0 = time.perf_counter()
        async with http.post("/graphql", json=body) as r:
            answer = await r.json()
        assert not answer.get("errors"), answer["errors"]
        if i >= 3:  # the first ones warm caches and prepared statements
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def bench(server_url: str, redis_url: str, sizes: list[int], samples: int) -> None:
    results: dict[str, list[float]] = {name: [] for name in QUERIES}
    async with seed.scratch_database(server_url, "mlpatron_scale") as database_url:
        variables = await seed_old(database_url)
        env = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "RUN_WATCHER": "false",
               "MLFLOW_TRACKING_URI": "", **UNLIMITED_BUDGET}
        async with uvicorn_process("app.main:create_app", env, "/ready", factory=True) as api, \
                aiohttp.ClientSession(api) as http:
            before = 0
            for size in sizes:
                t0 = time.perf_counter()
                await grow(database_url, before, size)
                before = size
                print(f"seeded {size:>9,} runs/jobs/fundings/comments in {time.perf_counter() - t0:.0f} s",
                      flush=True)
                for name, query in QUERIES.items():
                    results[name].append(await median_ms(http, query, variables, samples))
    header = f"\n{'median latency, ms':<44}" + "".join(f"{f'{n:,} runs':>14}" for n in sizes) + \
             f"{'largest/smallest':>18}"
    print(header)
    print("-" * (len(header) - 1))
    for name, values in results.items():
        print(f"{name:<44}" + "".join(f"{v:>14.1f}" for v in values) + f"{values[-1] / values[0]:>17.2f}x")
    print("\ntarget: largest/smallest <= 2x for every query")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,100000,1000000", help="cumulative run counts")
    parser.add_argument("--samples", type=int, default=25)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with sigterm_unwinds(), backing_services() as (server_url, redis_url):
        asyncio.run(bench(server_url, redis_url, sizes, args.samples))


if __name__ == "__main__":
    main()
