"""Batched reads of runs for nested lists (one statement per request whatever the page sizes)."""

from __future__ import annotations

from app.api.context import Info
from app.api.pagination import Connection, Keyset
from app.api.runs.types import RunOrder, RunType
from app.api.windows import Window, node_fields
from app.runs.models import Run, RunStatus

# Big columns of a run and the fields that show them: a list that shows none of them does not read them.
_BIG = {"notes": {"notes", "notesHtml"}, "parameters": {"parameters"}, "estimate_detail": {"estimateDetail"}}


def project_runs_page(status: RunStatus | None = None, first: int | None = None, after: str | None = None,
                      order_by: RunOrder | None = None, *, skip: tuple[str, ...] = ()) -> tuple[Window, Keyset]:
    """The runs `Project.runs(...)` pages, and how (what its resolver and compiled reads both read);
    `skip`: columns not read."""
    window = Window(Run, "project_id", where=(("status", status.value),) if status is not None else (), skip=skip)
    return window, Keyset.of(first, after, sort=(order_by or RunOrder.NEWEST).value)


async def project_runs(info: Info, project_id: str, status: RunStatus | None, first: int | None, after: str | None,
                       order: RunOrder | None) -> Connection[RunType]:
    """`Project.runs`: this project's page, read with the pages of every project being resolved."""
    shown = node_fields(info)
    skip = () if shown is None else tuple(column for column, fields in _BIG.items() if not fields & shown)
    window, keyset = project_runs_page(status, first, after, order, skip=skip)
    return await info.context.loaders.page(window, keyset, project_id, RunType.from_row)
