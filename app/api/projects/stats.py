"""`Project.stats`: its GraphQL types and the batched read that fills them, one statement per page of projects."""

from __future__ import annotations

import json
from collections.abc import Sequence

import strawberry
from tortoise import connections

from app.api.context import Info


@strawberry.type
class RunStatusCount:
    status: str
    count: int


@strawberry.type
class ProjectStats:
    runs_by_status: list[RunStatusCount]
    total_runs: int
    total_funded_cents: int = strawberry.field(description="Everything patrons put into the project's runs.")
    total_spent_cents: int = strawberry.field(description="Actual compute cost of its settled runs.")
    followers: int


# Each subquery walks one project's rows through its (project_id, …) index.
_STATS_SQL = """
SELECT page.id AS project_id,
    (SELECT COALESCE(json_object_agg(status, n), '{}') FROM
        (SELECT status, count(*) AS n FROM runs WHERE project_id = page.id GROUP BY status) s) AS by_status,
    (SELECT COALESCE(SUM(funded_cents), 0) FROM runs WHERE project_id = page.id) AS funded,
    (SELECT COALESCE(SUM(j.cost), 0) FROM runs r
        CROSS JOIN LATERAL (SELECT SUM(actual_cost_cents) AS cost FROM jobs WHERE run_id = r.id) j
        WHERE r.project_id = page.id) AS spent,
    (SELECT count(*) FROM project_subscriptions WHERE project_id = page.id) AS followers
FROM unnest($1::uuid[]) AS page(id)
"""


async def _stats(project_ids: Sequence[str]) -> list[ProjectStats]:
    rows = await connections.get("default").execute_query_dict(_STATS_SQL, [list(project_ids)])
    by_project = {str(r["project_id"]): r for r in rows}
    out = []
    for project_id in project_ids:
        row = by_project[project_id]
        by_status = row["by_status"] if isinstance(row["by_status"], dict) else json.loads(row["by_status"])
        counts = [RunStatusCount(status=k, count=int(v)) for k, v in sorted(by_status.items())]
        out.append(ProjectStats(
            runs_by_status=counts, total_runs=sum(c.count for c in counts), total_funded_cents=int(row["funded"]),
            total_spent_cents=int(row["spent"]), followers=int(row["followers"]),
        ))
    return out


async def stats(info: Info, project_id: str) -> ProjectStats:
    """`Project.stats`: runs by status, money raised and spent, followers."""
    return await info.context.loaders.batch("Project.stats", _stats).load(str(project_id))
