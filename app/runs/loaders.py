"""Batched reads of runs for nested lists (one statement per request whatever the page sizes)."""

from __future__ import annotations

from app.api.context import Info
from app.api.pagination import Connection, Keyset
from app.api.windows import Window
from app.runs.models import Run, RunStatus
from app.runs.types import RunType


async def project_runs(info: Info, project_id: str, status: RunStatus | None, first: int | None, after: str | None,
                       sort: str) -> Connection[RunType]:
    """`Project.runs`: this project's page, read with the pages of every project being resolved."""
    window = Window(Run, "project_id", where=(("status", status.value),) if status is not None else ())
    return await info.context.loaders.page(window, Keyset.of(first, after, sort=sort), project_id, RunType.from_model)
