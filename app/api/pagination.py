"""Keyset (cursor) connections: stable under inserts, one indexed range scan per page.

Cursors encode the sort key and the primary key of the edge; ordering always ends with the
primary key so ties never reorder between pages. `paginate` pages one queryset; nested lists
page many parents at once with `app.api.windows`, through the same `Keyset` and `connection`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from app.api.errors import BadInput
from app.api.execution import of_root
from app.core import limits

T = TypeVar("T")
MAX_PAGE = limits.MAX_PAGE
DEFAULT_PAGE = 20


# Cursors are encoded only when asked for: most nested pages never read them.


@of_root
def _start_cursor(root: PageInfo) -> str | None:
    return encode_cursor(*root.start_key) if root.start_key else None


@of_root
def _end_cursor(root: PageInfo) -> str | None:
    return encode_cursor(*root.end_key) if root.end_key else None


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None = strawberry.field(resolver=_start_cursor)
    end_cursor: str | None = strawberry.field(resolver=_end_cursor)
    start_key: strawberry.Private[tuple[Any, Any] | None] = None
    end_key: strawberry.Private[tuple[Any, Any] | None] = None


@of_root
def _edge_cursor(root: Edge[Any]) -> str:
    return encode_cursor(*root.key)


@strawberry.type
class Edge(Generic[T]):
    cursor: str = strawberry.field(resolver=_edge_cursor)
    node: T
    key: strawberry.Private[tuple[Any, Any]]


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[T]:
        return [e.node for e in self.edges]


EMPTY_PAGE = PageInfo(has_next_page=False, has_previous_page=False)


def encode_cursor(value: Any, pk: Any) -> str:
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


@dataclass(frozen=True)
class Keyset:
    """A page request (`first`/`after` or `last`/`before`) over `sort` (a column, `-` for descending)."""

    size: int
    field: str
    desc: bool
    backwards: bool
    after: tuple[Any, str] | None
    before: tuple[Any, str] | None
    pk: str = "id"

    @classmethod
    def of(cls, first: int | None = None, after: str | None = None, last: int | None = None,
           before: str | None = None, sort: str = "-created_at", pk: str = "id") -> Keyset:
        if first is not None and last is not None:
            raise BadInput("Pass either `first` or `last`, not both.")
        size = last if last is not None else first if first is not None else DEFAULT_PAGE
        if not (0 <= size <= MAX_PAGE):
            raise BadInput(f"Page size must be between 0 and {MAX_PAGE}.")
        field = sort.lstrip("-")
        is_dt = field.endswith("_at")
        return cls(size=size, field=field, desc=sort.startswith("-"), backwards=last is not None,
                   after=_decode(after, is_dt) if after else None, before=_decode(before, is_dt) if before else None,
                   pk=pk)

    @property
    def scan_desc(self) -> bool:
        """The direction rows are read in (a backwards page reads towards the start, then flips)."""
        return self.desc != self.backwards

    def beyond_op(self, forward: bool) -> str:
        """Comparison selecting rows strictly after (forward) or before a cursor in display order."""
        return "lt" if self.desc == forward else "gt"

    def key(self, row: Any) -> tuple[Any, Any]:
        return getattr(row, self.field), getattr(row, self.pk)


async def connection(keyset: Keyset, rows: Sequence[Any],
                     convert: Callable[[Any], T] | Callable[[Any], Awaitable[T]]) -> Connection[T]:
    """The connection of `rows`, read in scan order with one row more than the page (tells if there is more)."""
    has_more = len(rows) > keyset.size
    page = list(rows[: keyset.size])
    if keyset.backwards:
        page.reverse()
    edges = []
    for row in page:
        node = convert(row)
        if hasattr(node, "__await__"):  # what makes it Awaitable, without the ABC's isinstance per row
            node = await node
        edges.append(Edge(node=node, key=keyset.key(row)))
    return Connection(edges=edges, page_info=page_info(keyset, has_more, edges[0].key if edges else None,
                                                        edges[-1].key if edges else None))


def page_info(keyset: Keyset, has_more: bool, start_key: tuple[Any, Any] | None,
              end_key: tuple[Any, Any] | None) -> PageInfo:
    """A page's info; `has_more`: a row beyond the page was read."""
    return PageInfo(
        has_next_page=has_more if not keyset.backwards else keyset.before is not None,
        has_previous_page=has_more if keyset.backwards else keyset.after is not None,
        start_key=start_key,
        end_key=end_key,
    )


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
    return await page_of(qs, Keyset.of(first, after, last, before, sort, pk), convert)


async def page_of(qs: QuerySet[Any], keyset: Keyset,
                  convert: Callable[[Any], T] | Callable[[Any], Awaitable[T]]) -> Connection[T]:
    """The keyset's page of `qs` as a connection."""
    return await connection(keyset, list(await keyset_page(qs, keyset)), convert)


def keyset_page(qs: QuerySet[Any], keyset: Keyset) -> QuerySet[Any]:
    """`qs` narrowed to the keyset's page, in scan order, with one row more (tells if there is more)."""
    field, pk = keyset.field, keyset.pk
    for cursor, forward in ((keyset.after, True), (keyset.before, False)):
        if cursor is not None:
            value, key = cursor
            op = keyset.beyond_op(forward)
            qs = qs.filter(Q(**{f"{field}__{op}": value}) | (Q(**{field: value}) & Q(**{f"{pk}__{op}": key})))
    order = [f"-{field}", f"-{pk}"] if keyset.scan_desc else [field, pk]
    return qs.order_by(*order).limit(keyset.size + 1)
