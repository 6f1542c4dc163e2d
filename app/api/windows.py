"""Per-parent keyset windows: one page of a nested list for every parent of a page, in one statement.

`Project.runs` under `projects(first: 50)` must not send 50 queries: the parents' ids go in as one
array and a LATERAL subquery reads each parent's page with the same keyset conditions `paginate`
uses (`LIMIT size + 1` through the `(parent, sort, id)` index), so statements per request do not
depend on page sizes. Rows are built straight from the driver's records (`app.api.rows`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from graphql import FieldNode
from strawberry.types import Info
from tortoise import connections
from tortoise.models import Model

from app.api.node_cache import NodeCache
from app.api.pagination import Connection, Keyset, connection
from app.api.rows import hydrate_all

T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    """Rows of `model` whose `parent` column names one of the parents, plus equality filters.

    `where` holds `(column, value)` pairs (None: IS NULL); `parent_type` is the parent key's SQL type.
    `match`, when given, is the SQL condition tying a row `t` to its parent key `page.parent` instead
    of `t.<parent> = page.parent` (then `parent` only names the key)."""

    model: type[Model]
    parent: str
    where: tuple[tuple[str, Any], ...] = ()
    parent_type: str = "uuid"
    match: str | None = None
    # Columns not read (None on the instances): big ones the page does not show.
    skip: tuple[str, ...] = ()

    def sql(self, keyset: Keyset, columns: Sequence[str] | None = None) -> tuple[str, list[Any]]:
        """The statement and its parameters (the parents' array first); `columns` instead of `skip`'s."""
        params: list[Any] = []

        def param(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        parents = param(None)  # filled in by `rows`
        conditions = [self.match or f"t.{self.parent} = page.parent"]
        for column, value in self.where:
            conditions.append(f"t.{column} IS NULL" if value is None else f"t.{column} = {param(value)}")
        key = f"(t.{keyset.field}, t.{keyset.pk})"
        for cursor, forward in ((keyset.after, True), (keyset.before, False)):
            if cursor is not None:
                op = "<" if keyset.beyond_op(forward) == "lt" else ">"
                conditions.append(f"{key} {op} ({param(cursor[0])}, {param(cursor[1])}::uuid)")
        direction = " DESC" if keyset.scan_desc else ""
        order = f"{{0}}.{keyset.field}{direction}, {{0}}.{keyset.pk}{direction}"
        table = self.model._meta.db_table
        query = (
            f"SELECT page.parent AS window_parent, w.* "
            f"FROM unnest({parents}::{self.parent_type}[]) WITH ORDINALITY AS page(parent, n) "
            f"CROSS JOIN LATERAL (SELECT {self._columns(columns)} FROM {table} t WHERE {' AND '.join(conditions)} "
            f"ORDER BY {order.format('t')} LIMIT {param(keyset.size + 1)}) w "
            f"ORDER BY page.n, {order.format('w')}"
        )
        return query, params

    def _columns(self, columns: Sequence[str] | None) -> str:
        if columns is not None:
            return ", ".join(f"t.{c}" for c in columns)
        if not self.skip:
            return "t.*"
        every = dict.fromkeys(self.model._meta.fields_db_projection.values())
        return ", ".join(f"t.{c}" for c in every if c not in self.skip)

    async def rows(self, parents: Sequence[Any], keyset: Keyset) -> dict[str, list[Any]]:
        """Each parent's rows (model instances) in scan order, `keyset.size + 1` at most."""
        query, params = self.sql(keyset)
        params[0] = list(parents)
        _, records = await connections.get("default").execute_query(query, params)
        by_parent: dict[str, list[Any]] = defaultdict(list)
        for row in hydrate_all(self.model, records, missing=self.skip):
            by_parent[str(row.__dict__.pop("window_parent"))].append(row)
        return by_parent

    async def pages(self, parents: Sequence[Any], keyset: Keyset,
                    convert: Callable[[Any], T] | Callable[[Any], Awaitable[T]]) -> list[Connection[T]]:
        """One connection per parent, in the order of `parents`."""
        by_parent = await self.rows(parents, keyset)
        return [await connection(keyset, by_parent.get(str(p), []), convert) for p in parents]


_shown: NodeCache[FieldNode, frozenset[str] | None] = NodeCache(4096)


def node_fields(info: Info[Any, Any]) -> frozenset[str] | None:
    """The GraphQL fields selected on a connection's nodes (`edges { node { … } }` and `nodes { … }`),
    or None when fragments there make it unclear (then every column is read). Worked out once per
    field node: a page of 50 projects asks it for each project's runs."""
    nodes = info._raw_info.field_nodes
    if len(nodes) != 1:
        return _node_fields(nodes)
    return _shown.get(nodes[0], lambda node: _node_fields([node]))


def _node_fields(nodes: Sequence[FieldNode]) -> frozenset[str] | None:
    names: set[str] = set()
    for field in nodes:
        for selection in _fields(field):
            if selection is None:
                return None
            if selection.name.value == "nodes":
                targets: list[FieldNode | None] = [selection]
            elif selection.name.value == "edges":
                targets = [s for s in _fields(selection) if s is None or s.name.value == "node"]
            else:
                continue
            for target in targets:
                for leaf in _fields(target) if target is not None else [None]:
                    if leaf is None:
                        return None
                    names.add(leaf.name.value)
    return frozenset(names)


def _fields(node: FieldNode) -> list[FieldNode | None]:
    """The fields selected under `node`; None stands for a fragment."""
    selections = node.selection_set.selections if node.selection_set else ()
    return [s if isinstance(s, FieldNode) else None for s in selections]
