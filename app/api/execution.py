"""GraphQL execution with short paths for plain fields.

A dashboard page is mostly plain data: `projects(first: 50) { … runs(first: 10) { edges { node {
title status … } } } }` completes ~550 objects and ~2,000 scalars that are attribute reads.
graphql-core builds a resolve-info object, an argument dict and a completion chain for each
(~15 µs). Two short paths skip that for what needs none of it:

- a *plain leaf*: a field strawberry marks as basic (no resolver, permission or extension: it
  reads an attribute) with no arguments and a scalar or enum type;
- a *plain subtree*: an object (or list of objects) whose whole selection is plain leaves, plain
  objects and `@of_root` resolvers, without fragments, directives, aliases of one field twice or
  abstract types. Its result is built by one precompiled function per selection.

Anything unusual (null in a non-null field, a serialiser error, an awaitable, a failed type
check) falls back to graphql-core's full path, which reports it exactly as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    FieldNode,
    GraphQLEnumType,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    Undefined,
    is_leaf_type,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

F = TypeVar("F", bound=Callable[..., Any])
Build = Callable[[Any], Any]
# (attribute, coerce, nullable) of a plain leaf; None when the field needs the full path.
Leaf = tuple[str, Callable[[Any], Any], bool] | None
PLAN_CACHE_SIZE = 4096


def of_root(fn: F) -> F:
    """Marks a resolver that is a pure, synchronous function of its object (`fn(root)`): plain subtrees
    may call it directly."""
    fn._of_root = True  # type: ignore[attr-defined]
    return fn


class Fallback(Exception):
    """Something the short path does not judge: complete the value the full way."""


def plain_getter(field: Any) -> Callable[[Any], Any] | None:
    """How a plain subtree reads a field from its object, or None if it cannot."""
    definition = field.extensions.get("strawberry-definition")
    if definition is None or field.args:
        return None
    if getattr(field.resolve, "_is_default", False) and definition.default_resolver is getattr:
        name = definition.python_name
        return lambda source: getattr(source, name)
    resolver = definition.base_resolver
    fn = getattr(resolver, "wrapped_func", None)
    if fn is not None and getattr(fn, "_of_root", False) and not definition.extensions:
        return fn
    return None


def _non_null(inner: Build) -> Build:
    def complete(value: Any) -> Any:
        if value is None:
            raise Fallback
        return inner(value)

    return complete


def _list(item: Build) -> Build:
    return lambda value: None if value is None else [item(v) for v in value]


def _scalar(type_: Any) -> Build:
    coerce = type_.coerce_output_value
    # An enum has a handful of values: each is coerced once (strawberry's coercion is a slow path).
    known: dict[Any, Any] | None = {} if isinstance(type_, GraphQLEnumType) else None

    def complete(value: Any) -> Any:
        if value is None:
            return None
        if known is not None and value in known:
            return known[value]
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise Fallback
        if known is not None:
            known[value] = coerced
        return coerced

    if type_ is GraphQLString or type_ is GraphQLID:
        return lambda value: value if type(value) is str else complete(value)  # graphql-core returns a str as it is
    if type_ is GraphQLInt:  # and an int within 32 bits
        low, high = GRAPHQL_MIN_INT, GRAPHQL_MAX_INT
        return lambda value: value if type(value) is int and low <= value <= high else complete(value)
    return complete


def _object(type_: GraphQLObjectType, fields: list[tuple[str, Callable[[Any], Any], Build]]) -> Build:
    # strawberry's type checks read only the value (the resolve info is not needed here).
    is_type_of: Callable[[Any, Any], Any] | None = type_.is_type_of

    def complete(value: Any) -> Any:
        if value is None:
            return None
        if is_type_of is not None and is_type_of(value, None) is not True:
            raise Fallback
        out = {}
        for key, get, build in fields:
            got = get(value)
            if isinstance(got, Exception) or hasattr(got, "__await__"):
                raise Fallback
            out[key] = build(got)
        return out

    return complete


def _constant(value: str) -> Callable[[Any], str]:
    return lambda _source: value


def _constant_build(value: Any) -> Any:
    return value


def _selection(type_: GraphQLObjectType, node: FieldNode) -> list[tuple[str, Callable[[Any], Any], Build]] | None:
    """(response key, getter, completion) of each field selected under `node`, or None if one is not plain."""
    fields: list[tuple[str, Callable[[Any], Any], Build]] = []
    for selection in node.selection_set.selections if node.selection_set else ():
        if not isinstance(selection, FieldNode) or selection.directives or selection.arguments:
            return None
        key = selection.alias.value if selection.alias else selection.name.value
        if any(k == key for k, _, _ in fields):
            return None  # the same key twice: graphql-core merges them
        if selection.name.value == "__typename":
            fields.append((key, _constant(type_.name), _constant_build))
            continue
        field = type_.fields.get(selection.name.value)
        getter = plain_getter(field) if field is not None else None
        build = plain_build(field.type, (selection,)) if field is not None and getter is not None else None
        if getter is None or build is None:
            return None
        fields.append((key, getter, build))
    return fields or None


def plain_build(type_: GraphQLOutputType, nodes: tuple[FieldNode, ...]) -> Build | None:
    """A function completing a value of `type_` for the selection of `nodes`, or None if not plain."""
    if isinstance(type_, GraphQLNonNull | GraphQLList):
        inner = plain_build(type_.of_type, nodes)
        if inner is None:
            return None
        return _non_null(inner) if isinstance(type_, GraphQLNonNull) else _list(inner)
    if is_leaf_type(type_):
        return _scalar(type_)
    if not isinstance(type_, GraphQLObjectType) or len(nodes) != 1:
        return None
    fields = _selection(type_, nodes[0])
    return _object(type_, fields) if fields is not None else None


class PlainFieldsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    _leaves: dict[tuple[str, str], Leaf] = {}
    # Keyed by the type and the (parsed-once, cached) field nodes; both are kept so ids stay theirs.
    _plans: dict[tuple[int, ...], tuple[Any, Build | None]] = {}

    def _leaf(self, parent_type: GraphQLObjectType, field_name: str) -> Leaf:
        key = (parent_type.name, field_name)
        try:
            return self._leaves[key]
        except KeyError:
            pass
        leaf: Leaf = None
        field = parent_type.fields.get(field_name)
        definition = field.extensions.get("strawberry-definition") if field is not None else None
        if (definition is not None and not field.args and getattr(field.resolve, "_is_default", False)
                and definition.default_resolver is getattr):
            nullable = not isinstance(field.type, GraphQLNonNull)
            named = field.type if nullable else field.type.of_type
            if is_leaf_type(named):
                leaf = (definition.python_name, named.coerce_output_value, nullable)
        self._leaves[key] = leaf
        return leaf

    def _plan(self, return_type: GraphQLOutputType, field_details_list: Any) -> Build | None:
        key = (id(return_type), *(id(d.node) for d in field_details_list))
        cached = self._plans.get(key)
        if cached is not None:
            return cached[1]
        if len(self._plans) >= PLAN_CACHE_SIZE:
            self._plans.clear()
        nodes = tuple(d.node for d in field_details_list)
        plan = plain_build(return_type, nodes)
        self._plans[key] = ((return_type, nodes), plan)
        return plan

    def _middleware(self) -> bool:
        return self.middleware_manager is not None and bool(self.middleware_manager.middlewares)

    def execute_field(self, parent_type: GraphQLObjectType, source: Any, field_details_list: Any, path: Any,
                      position_context: Any) -> Any:
        node = field_details_list[0].node
        leaf = None if node.arguments or self._middleware() else self._leaf(parent_type, node.name.value)
        if leaf is not None:
            attribute, coerce, nullable = leaf
            value = getattr(source, attribute)
            if value is None:
                if nullable:
                    return None
            elif not isinstance(value, Exception) and not self.is_awaitable(value):
                try:
                    coerced = coerce(value)
                except Exception:  # the full path turns it into a located GraphQL error
                    coerced = None
                if coerced is not None and coerced is not Undefined:
                    return coerced
        return super().execute_field(parent_type, source, field_details_list, path, position_context)

    def complete_value(self, return_type: GraphQLOutputType, field_details_list: Any, info: Any, path: Any,
                       result: Any, position_context: Any) -> Any:
        if not is_leaf_type(return_type) and not self._middleware():
            plan = self._plan(return_type, field_details_list)
            if plan is not None:
                try:
                    return plan(result)
                except Exception:  # Fallback, or an error the full path will locate and report
                    pass
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)
