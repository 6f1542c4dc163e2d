"""One input policy for the whole schema, checked before any resolver runs.

Every argument of every field is walked with its GraphQL type: text (`String`, `ID`) must
not contain NUL or lone UTF-16 surrogates (PostgreSQL and the UTF-8 encoder refuse them)
and has a maximum length; `Int`s have bounds; `JSON` (run parameters) is a small flat
object of short text and finite numbers of bounded magnitude. Limits live in
`app/core/limits.py`. A violation answers a mutation with its typed `ValidationFailed`
(field paths inside `input`, e.g. `edits.0.newText`), any other field with a
`BAD_USER_INPUT` error, before the resolver, so it costs no quota, writes no row and
calls no git.

The check wraps the graphql-core resolvers (and subscription sources) of fields that take
arguments, once at start-up: fields without arguments pay nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FloatValueNode,
    GraphQLArgument,
    GraphQLDefaultInput,
    GraphQLError,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    IntValueNode,
    Undefined,
    Visitor,
    visit,
)
from graphql.utilities.value_to_literal import default_scalar_value_to_literal

from app.api.errors import ApiError, error_payload
from app.core import limits
from app.core.errors import ValidationError

Problems = dict[str, str]


def text_problem(value: str, limit: int) -> str | None:
    """Why `value` cannot be stored, or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode text (no lone surrogates)"
    if len(value) > limit:
        return f"at most {limit} characters"
    return None


def text_limit(owner: str | None, key: str, scalar: str) -> int:
    table = limits.TEXT_LIMITS
    return table.get(f"{owner}.{key}") or table.get(key) or table.get(scalar, limits.TEXT)


def _check_json(value: Any, path: str, problems: Problems, depth: int = 1) -> None:
    if isinstance(value, str):
        if (why := text_problem(value, limits.PARAM_VALUE)) is not None:
            problems[path] = why
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int | float):
        if not (math.isfinite(value) and abs(value) <= limits.PARAM_MAGNITUDE):
            problems[path] = f"must be a finite number of magnitude at most {limits.PARAM_MAGNITUDE:.0e}"
    elif depth >= limits.JSON_DEPTH:
        problems[path] = "nested too deeply"
    elif isinstance(value, dict | list):
        _check_json_container(value, path, problems, depth)


def _check_json_container(value: dict[Any, Any] | list[Any], path: str, problems: Problems, depth: int) -> None:
    if len(value) > limits.PARAMS:
        problems[path] = f"at most {limits.PARAMS} entries"
        return
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, str) and (why := text_problem(key, limits.PARAM_NAME)) is not None:
            problems[path] = f"parameter names: {why}"  # never echo a hostile key in the path
            continue
        _check_json(item, f"{path}.{key}", problems, depth + 1)


def _check(value: Any, type_: Any, path: str, key: str, owner: str | None, problems: Problems) -> None:
    if value is None or value is Undefined:
        return
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        for i, item in enumerate(value):
            _check(item, type_.of_type, f"{path}.{i}", key, owner, problems)
    elif isinstance(type_, GraphQLInputObjectType):
        for name, item in value.items():
            _check(item, type_.fields[name].type, f"{path}.{name}", name, type_.name, problems)
    elif isinstance(type_, GraphQLScalarType):
        _check_scalar(value, type_, path, key, owner, problems)


def _check_scalar(value: Any, type_: GraphQLScalarType, path: str, key: str, owner: str | None,
                  problems: Problems) -> None:
    if type_.name == "JSON":
        _check_json(value, path, problems)
    elif isinstance(value, str):
        if (why := text_problem(value, text_limit(owner, key, type_.name))) is not None:
            problems[path] = why
    elif type_.name == "Int" and isinstance(value, int):
        low, high = limits.INT_BOUNDS.get(key, limits.INT_DEFAULT)
        if not low <= value <= high:
            problems[path] = f"must be between {low} and {high}"


def violations(args: dict[str, GraphQLArgument], kwargs: dict[str, Any]) -> Problems:
    """Field path -> what is wrong, for every argument value that breaks the policy."""
    problems: Problems = {}
    for name, value in kwargs.items():
        if name in args:
            _check(value, args[name].type, name, name, None, problems)
    # Paths are reported inside the one `input` argument, as the services report theirs.
    return {path.removeprefix("input."): why for path, why in problems.items()}


class _LongNumbers(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.errors: list[GraphQLError] = []

    def enter_int_value(self, node: IntValueNode, *_: Any) -> None:
        self._check(node)

    def enter_float_value(self, node: FloatValueNode, *_: Any) -> None:
        self._check(node)

    def _check(self, node: IntValueNode | FloatValueNode) -> None:
        if len(node.value) > limits.NUMBER_LITERAL:
            self.errors.append(GraphQLError(
                f"Number literal longer than {limits.NUMBER_LITERAL} characters.", nodes=[node]))


def long_number_literals(document: DocumentNode) -> list[GraphQLError]:
    """Number literals too long to convert: graphql-core's validation would raise Python's
    int-conversion ValueError (an internal error) on more than 4300 digits."""
    finder = _LongNumbers()
    visit(document, finder)
    return finder.errors


def _offers_validation_failed(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLUnionType) and any(t.name == "ValidationFailed" for t in type_.types)


def _rejection(problems: Problems, typed: bool) -> Any:
    if typed:
        return error_payload(ValidationError(problems))
    path, why = next(iter(problems.items()))
    raise ApiError(f"Invalid argument {path}: {why}", "BAD_USER_INPUT", field=path)


def _guarded(fn: Callable[..., Any], args: dict[str, GraphQLArgument], typed: bool) -> Callable[..., Any]:
    def guarded(root: Any, info: Any, **kwargs: Any) -> Any:
        problems = violations(args, kwargs)
        if problems:
            return _rejection(problems, typed)
        return fn(root, info, **kwargs)

    # Planned execution (app.api.plans) checks the arguments once for all parents, then calls `fn`'s resolver.
    guarded.__wrapped__ = fn  # type: ignore[attr-defined]
    guarded.policy_args = args  # type: ignore[attr-defined]
    return guarded


def _guard_field(field: GraphQLField, typed: bool, subscription: bool) -> None:
    if subscription and field.subscribe is not None:
        field.subscribe = _guarded(field.subscribe, field.args, typed=False)
    elif field.resolve is not None:
        field.resolve = _guarded(field.resolve, field.args, typed)


def _literal_defaults(inputs: Iterable[GraphQLArgument | GraphQLInputField]) -> None:
    """`JSON` defaults such as `parameters = {}`: graphql-core cannot turn a dict into a literal
    for introspection (`defaultValue`), so give it the literal."""
    for item in inputs:
        if isinstance(item.default_value, dict | list) and item.default is None:
            item.default = GraphQLDefaultInput(literal=default_scalar_value_to_literal(item.default_value))


def install(schema: strawberry.Schema) -> None:
    """Apply the policy to every field with arguments (at start-up, once)."""
    core: GraphQLSchema = schema._schema  # the graphql-core schema strawberry built
    for type_ in core.type_map.values():
        if type_.name.startswith("__"):
            continue
        if isinstance(type_, GraphQLInputObjectType):
            _literal_defaults(type_.fields.values())
        elif isinstance(type_, GraphQLObjectType):
            for field in type_.fields.values():
                if not field.args:
                    continue
                _literal_defaults(field.args.values())
                _guard_field(field, typed=type_ is core.mutation_type and _offers_validation_failed(field.type),
                             subscription=type_ is core.subscription_type)
