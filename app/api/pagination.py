"""Keyset (cursor) connections: stable under inserts, one indexed range scan per page.

Cursors encode the sort key and the primary key of the edge; ordering always ends with the
primary key so ties never reorder between pages.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from app.api.errors import BadInput

T = TypeVar("T")
MAX_PAGE = 100
DEFAULT_PAGE = 20


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[T]:
        return [e.node for e in self.edges]


def _encode(value: Any, pk: Any) -> str:
    raw = value.isoformat() if isinstance(value, datetime) else value
    return base64.urlsafe_b64encode(json.dumps([raw, str(pk)]).encode()).decode()


def _decode(cursor: str, is_datetime: bool) -> tuple[Any, str]:
    try:
        value, pk = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if is_datetime:
            value = datetime.fromisoformat(value)
        return value, pk
    except Exception as exc:
        raise BadInput("Malformed cursor.") from exc


async def paginate(
    qs: QuerySet[Any],
    convert: Callable[[Any], T] | Callable[[Any], Awaitable[T]],
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    sort: str = "-created_at",
    pk: str = "id",
) -> Connection[T]:
    if first is not None and last is not None:
        raise BadInput("Pass either `first` or `last`, not both.")
    size = last if last is not None else first if first is not None else DEFAULT_PAGE
    if not (0 <= size <= MAX_PAGE):
        raise BadInput(f"Page size must be between 0 and {MAX_PAGE}.")
    desc = sort.startswith("-")
    field = sort.lstrip("-")
    is_dt = field.endswith("_at")
    backwards = last is not None

    def beyond(cursor: str, forward: bool) -> Q:
        value, key = _decode(cursor, is_dt)
        # Rows strictly after (forward) or before the cursor in display order.
        op = "lt" if desc == forward else "gt"
        return Q(**{f"{field}__{op}": value}) | (Q(**{field: value}) & Q(**{f"{pk}__{op}": key}))

    if after:
        qs = qs.filter(beyond(after, True))
    if before:
        qs = qs.filter(beyond(before, False))
    scan_desc = desc != backwards
    order = [f"-{field}", f"-{pk}"] if scan_desc else [field, pk]
    rows = list(await qs.order_by(*order).limit(size + 1))
    has_more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    edges = []
    for row in rows:
        node = convert(row)
        if isinstance(node, Awaitable):
            node = await node
        edges.append(Edge(cursor=_encode(getattr(row, field), getattr(row, pk)), node=node))
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=has_more if not backwards else bool(before),
            has_previous_page=has_more if backwards else bool(after),
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
