"""Compiled reads: a query made of columns, to-one rows and pages, answered from the driver's records.

A dashboard page (`projects { edges { node { title owner { handle } runs(first: 10) { edges { node {
title status … } } } } } }`) is data straight out of three tables. Planned execution (`app.api.plans`)
still makes a model instance of every row, a GraphQL object of every instance and completes every
field through its getter. A compiled read does none of that: the query is compiled once per document
into one statement per page or link that reads only the selected columns, and the response is built
from the records by one precompiled function per selection.

Only what the types declare is compiled, so every rule that lives in a resolver keeps running:
- a field of a `RowFields` type whose reader is a `Column` the driver returns as the model holds it,
  or `Computed` from such columns;
- the relay `id` of such a type, and `__typename`;
- a resolver marked with `reads(...)`: `Root` (a root page), `Nested` (a page per parent) or `ToOne`
  (the row a column names). `Root` and `Nested` name the function the resolver itself pages with,
  so both read the same rows;
- connections: `edges { cursor node }`, `nodes` and `pageInfo`, made as planned pages make them.

Anything else makes the query planned instead. At run time anything unexpected (an argument the
input policy or the page refuses, a missing row, null in a non-null field) abandons the compiled
read, and the query is planned from the start, which reports it: query resolvers only read.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    FieldNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    OperationDefinitionNode,
    get_named_type,
)
from graphql.execution.values import get_argument_values
from strawberry import relay
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField
from tortoise import connections
from tortoise.queryset import QuerySet

from app.api.execution import Fallback, plain_build
from app.api.input_policy import violations
from app.api.node_cache import NodeCache
from app.api.nodes import Column, Computed, RowFields
from app.api.pagination import Keyset, encode_cursor, keyset_page, page_info
from app.api.rows import native_columns
from app.api.selections import Unsupported, fields_of
from app.api.windows import Window

F = TypeVar("F", bound=Callable[..., Any])
Row = Mapping[str, Any]


@dataclass(frozen=True)
class Root:
    """A root connection: `page(**arguments)` is the queryset and keyset the resolver pages."""

    page: Callable[..., tuple[QuerySet[Any], Keyset]]


@dataclass(frozen=True)
class Nested:
    """A connection per parent: `page(**arguments)` is the window and keyset the resolver reads."""

    page: Callable[..., tuple[Window, Keyset]]


@dataclass(frozen=True)
class ToOne:
    """The row of the field's type whose primary key is the parent's `column` (never null)."""

    column: str


Declaration = Root | Nested | ToOne


def reads(declaration: Declaration) -> Callable[[F], F]:
    """Marks a resolver as compiled by `declaration` (under `@strawberry.field`)."""

    def mark(fn: F) -> F:
        fn._reads = declaration  # type: ignore[attr-defined]
        return fn

    return mark


@dataclass(eq=False)
class _Selection:
    """What a selection on one object type reads and builds: columns in, a dict out. Model attributes
    and columns share their names (`native_columns`).

    The dict is built by one function made for the selection (`builder`), as `dataclasses` makes
    `__init__`: each field an expression of `row` in one dict display, no call per field where the
    value is already what GraphQL sends."""

    model: Any
    columns: list[str]
    # (response key, Python expression of `row` and of `env`'s names), in the selection's order
    entries: list[tuple[str, str]] = field(default_factory=list)
    env: dict[str, Any] = field(default_factory=dict)
    links: list[tuple[str, _Link]] = field(default_factory=list)
    _build: Callable[[Row, list[list[Any]]], dict[str, Any]] | None = None

    def read(self, column: str) -> None:
        if column not in self.columns:
            self.columns.append(column)

    def value(self, key: str, template: str, *objects: Any) -> None:
        """A field computed by `template` (an expression of `row`; `{0}`, `{1}`… name `objects`)."""
        names = []
        for obj in objects:
            names.append(f"_{len(self.env)}")
            self.env[names[-1]] = obj
        self.entries.append((key, template.format(*names)))

    def link(self, key: str, link: _Link) -> None:
        self.entries.append((key, "None"))  # keeps the selection's order; filled by the next level
        self.links.append((key, link))

    def builder(self) -> Callable[[Row, list[list[Any]]], dict[str, Any]]:
        """`build(row, slots)`: the row's dict; each link's (dict, key, parent key) appended to its slots."""
        if self._build is None:
            lines = ["def build(row, slots):",
                     f"    out = {{{', '.join(f'{key!r}: {expression}' for key, expression in self.entries)}}}"]
            lines += [f"    slots[{i}].append((out, {key!r}, row[{link.parent_column!r}]))"
                      for i, (key, link) in enumerate(self.links)]
            lines.append("    return out")
            namespace = dict(self.env)
            exec("\n".join(lines), namespace)  # response keys, column names and `env` only
            self._build = namespace["build"]
        return self._build


@dataclass(eq=False)
class _Link:
    """A resolver field compiled by its declaration; `shape` wraps its rows' dicts as the selection asks."""

    declaration: Declaration
    definition: GraphQLField
    node: FieldNode
    strawberry_field: StrawberryField
    child: _Selection
    shape: Callable[[list[Any], _Page], Any]
    parent_column: str | None  # the parent's column naming the rows (None at the root)


def _object_type(type_: GraphQLOutputType) -> GraphQLObjectType:
    named = get_named_type(type_)
    if not isinstance(named, GraphQLObjectType):
        raise Unsupported
    return named


def _declared(definition: GraphQLField | None) -> tuple[Declaration, StrawberryField]:
    strawberry_field = definition.extensions.get("strawberry-definition") if definition is not None else None
    resolver = getattr(strawberry_field, "base_resolver", None)
    declaration = getattr(getattr(resolver, "wrapped_func", None), "_reads", None)
    if declaration is None or strawberry_field.extensions:  # type: ignore[union-attr]  # permission classes
        raise Unsupported
    return declaration, strawberry_field  # type: ignore[return-value]


def _selection(type_: GraphQLObjectType, node: FieldNode) -> _Selection:
    origin = getattr(type_.extensions.get("strawberry-definition"), "origin", None)
    if not (isinstance(origin, type) and issubclass(origin, RowFields)):
        raise Unsupported
    model = origin.model  # type: ignore[attr-defined]
    native = native_columns(model)
    selection = _Selection(model, [])
    for key, child in fields_of(node):
        name = child.name.value
        if name == "__typename":
            selection.value(key, repr(type_.name))
            continue
        definition = type_.fields.get(name)
        if definition is None:
            raise Unsupported
        if name == "id" and _relay_id(origin):
            selection.read("id")
            selection.value(key, f"{{0}}({type_.name!r}, str(row['id']))", relay.to_base64)
            continue
        strawberry_field = definition.extensions.get("strawberry-definition")
        reader = origin.row_fields.get(strawberry_field.python_name) if strawberry_field is not None else None
        if isinstance(reader, Column | Computed) and strawberry_field.base_resolver is None:
            _row_value(selection, key, reader, definition, child, native)
            continue
        selection.link(key, _link(selection, definition, child, native))
    if not selection.entries:
        raise Unsupported
    return selection


def _row_value(selection: _Selection, key: str, reader: Column | Computed, definition: GraphQLField,
               node: FieldNode, native: frozenset[str]) -> None:
    """A field the row holds: a column, or computed from columns."""
    build = plain_build(definition.type, (node,))
    columns = (reader.name,) if isinstance(reader, Column) else reader.columns
    if not native.issuperset(columns) or build is None or node.arguments:
        raise Unsupported
    for column in columns:
        selection.read(column)
    if isinstance(reader, Column):
        selection.value(key, *_column_value(f"row[{reader.name!r}]", reader.convert, build, definition.type))
    else:
        read = ", ".join(f"row[{column!r}]" for column in columns)
        selection.value(key, f"{{0}}({{1}}({read}))", build, reader.compute)


def _relay_id(origin: type) -> bool:
    """The relay id is `to_base64(type name, str(row id))` unless the type resolves it its own way."""
    reader = origin.row_fields.get("id")  # type: ignore[attr-defined]
    return (issubclass(origin, relay.Node) and isinstance(reader, Column) and reader.name == "id"
            and origin.resolve_id.__func__ is relay.Node.resolve_id.__func__  # type: ignore[attr-defined]
            and origin.resolve_typename.__func__ is relay.Node.resolve_typename.__func__)  # type: ignore[attr-defined]


def _column_value(read: str, convert: Callable[[Any], Any] | None, build: Callable[[Any], Any],
                  type_: GraphQLOutputType) -> tuple[Any, ...]:
    """The expression (and its objects) completing the column `read` reads: `build` (the full
    completion) where the value is not already what GraphQL sends."""
    named = get_named_type(type_)
    if convert is None and named in (GraphQLString, GraphQLID):
        return f"(v if type(v := {read}) is str else {{0}}(v))", build
    if convert is None and named is GraphQLInt:
        return f"(v if type(v := {read}) is int and {GRAPHQL_MIN_INT} <= v <= {GRAPHQL_MAX_INT} else {{0}}(v))", build
    if convert is None and named is GraphQLBoolean:
        return f"(v if type(v := {read}) is bool else {{0}}(v))", build
    if convert is not None and isinstance(named, GraphQLEnumType):
        known: dict[Any, Any] = {}  # an enum's handful of stored values, each completed once

        def complete(value: Any) -> Any:
            known[value] = done = build(None if value is None else convert(value))
            return done

        return f"({{0}}[v] if (v := {read}) in {{0}} else {{1}}(v))", known, complete
    if convert is None:
        return f"{{0}}({read})", build
    return f"{{0}}(None if (v := {read}) is None else {{1}}(v))", build, convert


def _link(parent: _Selection | None, definition: GraphQLField | None, node: FieldNode, native: frozenset[str]) -> _Link:
    declaration, strawberry_field = _declared(definition)
    assert definition is not None
    if isinstance(declaration, ToOne):
        type_ = definition.type
        if not (isinstance(type_, GraphQLNonNull) and isinstance(type_.of_type, GraphQLObjectType)):
            raise Unsupported
        child = _selection(type_.of_type, node)
        child.read("id")
        if parent is None or declaration.column not in native:
            raise Unsupported
        parent.read(declaration.column)
        return _Link(declaration, definition, node, strawberry_field, child, lambda built, _: built[0],
                     declaration.column)
    if (parent is None) != isinstance(declaration, Root):
        raise Unsupported
    connection = _object_type(definition.type)
    child, shape = _connection(connection, node)
    if parent is not None:
        parent.read("id")
    return _Link(declaration, definition, node, strawberry_field, child, shape, None if parent is None else "id")


@dataclass(frozen=True, slots=True)
class _Page:
    """A parent's rows in display order; `keyset` and `has_more` (a row beyond them was read) for a page."""

    rows: list[Row]
    keyset: Keyset | None = None
    has_more: bool = False

    def key(self, row: Row) -> tuple[Any, Any]:
        assert self.keyset is not None
        return row[self.keyset.field], row[self.keyset.pk]


Shape = Callable[[list[Any], _Page], Any]  # the nodes' dicts and their page -> the field's value


def _connection(type_: GraphQLObjectType, node: FieldNode) -> tuple[_Selection, Shape]:
    """The nodes' selection and the shape of `edges`, `nodes` and `pageInfo` around their dicts."""
    nodes: list[tuple[GraphQLObjectType, FieldNode]] = []
    parts: list[tuple[str, Shape]] = []
    for key, child in fields_of(node):
        name = child.name.value
        if name == "__typename":
            parts.append((key, _constant(type_.name)))
        elif name == "nodes":
            nodes.append((_object_type(type_.fields[name].type), child))
            parts.append((key, lambda built, _: built))
        elif name == "edges":
            parts.append((key, _edges(_object_type(type_.fields[name].type), child, nodes)))
        elif name == "pageInfo" and (build := plain_build(type_.fields[name].type, (child,))) is not None:
            parts.append((key, _page_info(build)))
        else:
            raise Unsupported
    if len(nodes) != 1:
        raise Unsupported  # one selection of the nodes, read once (not `nodes` and `edges` together)
    return _selection(*nodes[0]), lambda built, page: {key: value(built, page) for key, value in parts}


def _constant(value: str) -> Shape:
    return lambda _built, _page: value


def _page_info(build: Callable[[Any], Any]) -> Shape:
    """`pageInfo` as `app.api.pagination.connection` makes it, completed as planned execution would."""

    def value(_built: list[Any], page: _Page) -> Any:
        assert page.keyset is not None
        rows = page.rows
        return build(page_info(page.keyset, page.has_more, page.key(rows[0]) if rows else None,
                               page.key(rows[-1]) if rows else None))

    return value


def _edges(type_: GraphQLObjectType, node: FieldNode, nodes: list[tuple[GraphQLObjectType, FieldNode]]) -> Shape:
    """The edges around the nodes' dicts, for an edge's selection."""
    parts: list[tuple[str, str | None]] = []  # (key, what: `__typename`'s value, None for the node, "" the cursor)
    for key, child in fields_of(node):
        name = child.name.value
        if name == "__typename":
            parts.append((key, type_.name))
        elif name == "node":
            nodes.append((_object_type(type_.fields["node"].type), child))
            parts.append((key, None))
        elif name == "cursor":
            parts.append((key, ""))
        else:
            raise Unsupported
    if len(parts) == 1 and parts[0][1] is None:  # `edges { node { … } }`
        only = parts[0][0]
        return lambda built, _page: [{only: node} for node in built]

    def edges(built: list[Any], page: _Page) -> list[dict[str, Any]]:
        return [{key: node if what is None else encode_cursor(*page.key(row)) if what == "" else what
                 for key, what in parts} for node, row in zip(built, page.rows, strict=True)]

    return edges


@dataclass(frozen=True)
class Compiled:
    roots: list[tuple[str, _Link]]


_compiled: NodeCache[OperationDefinitionNode, Compiled | None] = NodeCache(512)


def compiled_for(operation: OperationDefinitionNode, root_type: GraphQLObjectType) -> Compiled | None:
    """The operation's compiled read (None if it has none), made once per parsed document."""
    return _compiled.get(operation, lambda op: _compile(op, root_type))


def _compile(operation: OperationDefinitionNode, root_type: GraphQLObjectType) -> Compiled | None:
    try:
        return Compiled([(key, _link(None, root_type.fields.get(node.name.value), node, frozenset()))
                         for key, node in fields_of(operation)])
    except Unsupported:
        return None


async def read(compiled: Compiled, executor: Any) -> dict[str, Any]:
    """The operation's data; raises (Fallback or whatever a page refused) when it must be planned instead.

    `executor` is the request's graphql-core execution context (its variables and schema)."""
    data: dict[str, Any] = {}
    # Per link of this level: (the output dict, its key, the parent's key value) to fill.
    level: dict[_Link, list[tuple[dict[str, Any], str, Any]]] = {link: [(data, key, None)]
                                                                  for key, link in compiled.roots}
    while level:
        following: dict[_Link, list[tuple[dict[str, Any], str, Any]]] = defaultdict(list)
        fetches = [_fetch(link, [p for _, _, p in slots], executor) for link, slots in level.items()]
        # One link (a root page) is awaited in this task; several run side by side.
        fetched = [await fetches[0]] if len(fetches) == 1 else await asyncio.gather(*fetches)
        for (link, slots), by_parent in zip(level.items(), fetched, strict=True):
            build = link.child.builder()
            children = [following[child] for _, child in link.child.links]
            for out, key, parent in slots:
                page = by_parent(parent)
                out[key] = link.shape([build(row, children) for row in page.rows], page)
        level = {link: slots for link, slots in following.items() if slots}
    return data


async def _fetch(link: _Link, parents: Sequence[Any], executor: Any) -> Callable[[Any], _Page]:
    """The link's rows for all `parents`: a function from a parent's key to its page."""
    declaration, columns = link.declaration, link.child.columns
    if isinstance(declaration, ToOne):
        meta = link.child.model._meta
        _, records = await connections.get("default").execute_query(
            f"SELECT {', '.join(columns)} FROM {meta.db_table} WHERE {meta.db_pk_column} = ANY($1::uuid[])",
            [list(dict.fromkeys(parents))])
        by_id = {record[meta.db_pk_column]: _Page([record]) for record in records}
        return by_id.__getitem__  # a missing row: KeyError, and the query is planned
    kwargs = _arguments(link, executor)
    if isinstance(declaration, Root):
        qs, keyset = declaration.page(**kwargs)
        rows: list[Row] = list(await keyset_page(qs, keyset).values(*_with_keys(columns, keyset)))
        page = _page(rows, keyset)
        return lambda _parent: page
    window, keyset = declaration.page(**kwargs)
    query, params = window.sql(keyset, _with_keys(columns, keyset))
    params[0] = list(dict.fromkeys(parents))  # a parent reached twice (through to-one rows) is read once
    _, records = await connections.get("default").execute_query(query, params)
    by_parent: dict[Any, list[Row]] = defaultdict(list)
    for record in records:
        by_parent[record["window_parent"]].append(record)
    pages = {parent: _page(rows, keyset) for parent, rows in by_parent.items()}
    empty = _Page([], keyset)
    return lambda parent: pages.get(parent, empty)


def _with_keys(columns: list[str], keyset: Keyset) -> list[str]:
    """The columns, and the keyset's (the window orders by them; cursors are made of them)."""
    return [*columns, *(c for c in (keyset.field, keyset.pk) if c not in columns)]


def _page(rows: list[Row], keyset: Keyset) -> _Page:
    """The page of rows read in scan order with one more (as `app.api.pagination.connection` pages them)."""
    page = rows[: keyset.size]
    if keyset.backwards:
        page.reverse()
    return _Page(page, keyset, len(rows) > keyset.size)


def _arguments(link: _Link, executor: Any) -> dict[str, Any]:
    """The resolver's keyword arguments, coerced, checked by the input policy and converted as strawberry does."""
    args = get_argument_values(link.definition, link.node, executor.variable_values, None, executor.hide_suggestions)
    policy = getattr(link.definition.resolve, "policy_args", None)
    if policy is not None and violations(policy, args):
        raise Fallback
    schema = executor.schema._strawberry_schema
    return convert_arguments(args, link.strawberry_field.arguments, config=schema.config,
                             scalar_registry=schema.schema_converter.scalar_registry)
