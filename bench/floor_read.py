"""The floor of bench/read.py: bare starlette + asyncpg answering the dashboard query with the same
JSON bytes as the platform, by hand: two statements (the page with its owners, then every project's
runs in one LATERAL query), no GraphQL, no ORM. `DATABASE_URL` names the database.

    uvicorn bench.floor_read:app
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

POOL_SIZE = 5  # the platform's pool (tortoise's asyncpg default)

PAGE = """SELECT p.id, p.title, u.handle FROM projects p JOIN users u ON u.id = p.owner_id
          ORDER BY p.created_at DESC, p.id DESC LIMIT $1"""
RUNS = """SELECT r.project_id, r.title, r.status, r.estimated_cost_cents, r.funded_cents
          FROM unnest($1::uuid[]) AS page(id)
          CROSS JOIN LATERAL (SELECT project_id, title, status, estimated_cost_cents, funded_cents FROM runs
                              WHERE project_id = page.id ORDER BY created_at DESC, id DESC LIMIT $2) r"""


async def _keep_session(_: asyncpg.Connection) -> None:
    """Nothing to reset: these statements leave no session state (saves a round trip per release)."""


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE,
                                               reset=_keep_session)
    try:
        yield
    finally:
        await app.state.pool.close()


async def dashboard(request: Request) -> Response:
    variables = json.loads(await request.body())["variables"]
    async with request.app.state.pool.acquire() as conn:
        page = await conn.fetch(PAGE, variables["projects"])
        runs = await conn.fetch(RUNS, [p["id"] for p in page], variables["runs"])
    by_project = defaultdict(list)
    for r in runs:
        by_project[r["project_id"]].append({"node": {
            "title": r["title"], "status": r["status"].upper(), "estimatedCostCents": r["estimated_cost_cents"],
            "fundedCents": r["funded_cents"]}})
    edges = [{"node": {"title": p["title"], "owner": {"handle": p["handle"]}, "runs": {"edges": by_project[p["id"]]}}}
             for p in page]
    body = json.dumps({"data": {"projects": {"edges": edges}}}, separators=(",", ":"))
    return Response(body, media_type="application/json")


async def health(_: Request) -> Response:
    return Response("ok")


app = Starlette(routes=[Route("/graphql", dashboard, methods=["POST"]), Route("/health", health)], lifespan=lifespan)
