"""Planned execution of queries: the whole operation compiled once, run breadth-first.

graphql-core executes a dashboard page depth-first, field by field: for each of 50 projects it
builds a resolve-info, coerces `runs(first: $runs)`'s arguments again, wraps the resolver's
coroutine in a task, gathers the siblings and completes each value through a chain of calls.
A *plan* does the same work once per document (cached with the parsed document) and runs it a
level at a time:

- fields a value can complete itself (plain attributes, `@of_root` resolvers, their objects and
  lists) are completed by precompiled functions (`app.api.execution`);
- every other field is a *hole*: its resolver — graphql-core's resolve function, so strawberry's
  argument conversion, field extensions, the input policy and every check inside the resolver run
  exactly as before — is called for all parents of the level, the arguments coerced once per
  request, and the coroutines stepped side by side in the request's task (their loads join one
  dataloader batch; no task per resolver). Their values are completed, which opens the next
  level's holes, until none is left.

A plan is made only for queries (no mutation, subscription or incremental delivery) whose
selections are fields of object types, without directives or repeated response keys once their
fragments are inlined (`app.api.selections`), and only when no graphql-core middleware (a schema
extension's `resolve` hook) is installed.
Anything else at run time — an error, null in a non-null field, a failed type check — abandons
the plan and graphql-core executes the operation from the start, so errors, their paths and null
propagation are graphql-core's own. Query resolvers only read, so running them again is harmless
(and the request's loaders already hold their rows).
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    ExecutionResult,
    FieldNode,
    GraphQLArgument,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    is_leaf_type,
)
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, is_iterable
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

from app.api.compiled import Compiled, compiled_for, read
from app.api.execution import Fallback, PlainFieldsExecutionContext, plain_build, plain_getter
from app.api.input_policy import violations
from app.api.node_cache import NodeCache
from app.api.selections import Unsupported, fields_of, inlined

PLAN_CACHE_SIZE = 512

# (the output object, its response key, the parent value, the field, the field's path)
Hole = tuple[dict[str, Any], str, Any, "Resolved", Path]
# Completes a value whose selection has holes: (value, its path, holes to fill later) -> output.
Complete = Callable[[Any, Path, list[Hole]], Any]


@dataclass(frozen=True, eq=False)
class Resolved:
    """A field computed by its resolver; `complete` (with holes) or `build` (without) completes its value.

    `direct` is the strawberry field when its resolver may be called without strawberry's wrapper:
    no field extensions (permission classes are extensions), scalar or enum arguments only (their
    conversion is the same for every parent), `policy` the input policy's arguments if it guards it."""

    parent_type: GraphQLObjectType
    definition: GraphQLField
    node: FieldNode
    complete: Complete | None
    build: Callable[[Any], Any] | None
    direct: StrawberryField | None = None
    policy: dict[str, GraphQLArgument] | None = None


def _strawberry_wrapper(fn: Any) -> bool:
    return getattr(fn, "__qualname__", "").startswith("GraphQLCoreConverter.from_resolver.")


def _resolved(parent_type: GraphQLObjectType, definition: GraphQLField, node: FieldNode, complete: Complete | None,
              build: Callable[[Any], Any] | None) -> Resolved:
    field = definition.extensions.get("strawberry-definition")
    policy = getattr(definition.resolve, "policy_args", None)
    resolve = definition.resolve.__wrapped__ if policy is not None else definition.resolve  # type: ignore[union-attr]
    direct = (isinstance(field, StrawberryField) and field.base_resolver is not None and not field.extensions
              and _strawberry_wrapper(resolve)
              and all(is_leaf_type(get_named_type(a.type)) for a in definition.args.values()))
    return Resolved(parent_type, definition, node, complete, build, field if direct else None, policy)


# An operation's plan: completes the root value, leaving the root fields' holes.
Plan = Complete


def _object_plan(type_: GraphQLObjectType, node: FieldNode | OperationDefinitionNode, root: bool = False) -> Complete:
    # (key, plain getter or None, plain build or None, holey completion or None, resolved field or None)
    fields: list[tuple[str, Any, Any, Complete | None, Resolved | None]] = []
    for key, selection in fields_of(node):
        name = selection.name.value
        if name == "__typename":
            fields.append((key, None, type_.name, None, None))
            continue
        definition = type_.fields.get(name)
        if definition is None:
            raise Unsupported
        build = plain_build(definition.type, (selection,))
        getter = plain_getter(definition) if not selection.arguments else None
        complete = None if build is not None else _value_plan(definition.type, selection)
        if getter is not None:
            fields.append((key, getter, build, complete, None))
        else:
            fields.append((key, None, None, None, _resolved(type_, definition, selection, complete, build)))
    return _object(type_, fields, root)


def _value_plan(type_: GraphQLOutputType, node: FieldNode) -> Complete:
    """Completion of a value whose selection has holes (plain selections have a plain build)."""
    if isinstance(type_, GraphQLNonNull):
        return _non_null(_value_plan(type_.of_type, node))
    if isinstance(type_, GraphQLList):
        return _list(_value_plan(type_.of_type, node))
    if isinstance(type_, GraphQLObjectType):
        return _object_plan(type_, node)
    raise Unsupported  # an interface or union


def _non_null(inner: Complete) -> Complete:
    def complete(value: Any, path: Path, holes: list[Hole]) -> Any:
        if value is None:
            raise Fallback
        return inner(value, path, holes)

    return complete


def _list(item: Complete) -> Complete:
    def complete(value: Any, path: Path, holes: list[Hole]) -> Any:
        if value is None:
            return None
        if not is_iterable(value):
            raise Fallback  # graphql-core reports a non-list
        return [item(v, Path(path, i, None), holes) for i, v in enumerate(value)]

    return complete


def _object(type_: GraphQLObjectType, fields: list[tuple[str, Any, Any, Complete | None, Resolved | None]],
            root: bool) -> Complete:
    """The root object (`root`) is whatever root value the request has, None included."""
    is_type_of = None if root else type_.is_type_of
    name = type_.name

    def complete(value: Any, path: Path, holes: list[Hole]) -> Any:
        if value is None and not root:
            return None
        # strawberry's type checks read only the value (the resolve info is not needed here).
        if isinstance(value, Exception) or (is_type_of is not None and is_type_of(value, None) is not True):  # type: ignore[arg-type]
            raise Fallback
        out: dict[str, Any] = {}
        for key, get, build, holey, resolved in fields:
            if resolved is not None:
                out[key] = None  # keeps the selection's order; filled when its level runs
                holes.append((out, key, value, resolved, Path(path, key, name)))
                continue
            if get is None:
                out[key] = build  # __typename
                continue
            got = get(value)
            if isinstance(got, Exception) or hasattr(got, "__await__"):
                raise Fallback
            out[key] = build(got) if build is not None else holey(got, Path(path, key, name), holes)  # type: ignore[misc]
        return out

    return complete


_plans: NodeCache[OperationDefinitionNode, Plan | None] = NodeCache(PLAN_CACHE_SIZE)


def plan_for(operation: OperationDefinitionNode, root_type: GraphQLObjectType) -> Plan | None:
    """The operation's plan (None if it has none), made once per parsed document."""
    return _plans.get(operation, lambda op: _plan(op, root_type))


def _plan(operation: OperationDefinitionNode, root_type: GraphQLObjectType) -> Plan | None:
    if operation.operation != OperationType.QUERY:
        return None
    try:
        return _object_plan(root_type, operation, root=True)
    except Unsupported:
        return None


async def run(plan: Plan, executor: Any, root_value: Any) -> dict[str, Any]:
    """The operation's data; raises Fallback when graphql-core must execute it instead.

    `executor` is the request's graphql-core execution context (resolve infos, variables)."""
    holes: list[Hole] = []
    data = plan(root_value, None, holes)  # type: ignore[arg-type]
    callers: dict[Resolved, Callable[[Any, Path], Any]] = {}
    while holes:
        calls = []
        for _, _, parent, resolved, path in holes:
            call = callers.get(resolved)
            if call is None:
                call = callers[resolved] = _caller(resolved, executor)
            try:
                calls.append(call(parent, path))
            except Exception:
                _close(calls)
                raise Fallback from None
        values = await settle(calls)
        level, holes = holes, []
        for (out, key, _, resolved, path), value in zip(level, values, strict=True):
            if isinstance(value, Exception):
                raise Fallback
            if resolved.build is not None:
                out[key] = resolved.build(value)
            elif resolved.complete is not None:
                out[key] = resolved.complete(value, path, holes)
    return data


def _caller(resolved: Resolved, executor: Any) -> Callable[[Any, Path], Any]:
    """Calls `resolved`'s resolver for one parent, its arguments coerced once for all of them."""
    definition, nodes, parent_type = resolved.definition, [resolved.node], resolved.parent_type
    args = _arguments(resolved, executor)
    strawberry_schema = executor.schema._strawberry_schema
    field = resolved.direct
    if field is None or strawberry_schema.exception_handlers:
        resolve = definition.resolve or executor.field_resolver
        return lambda parent, path: resolve(parent, executor.build_resolve_info(definition, nodes, parent_type, path),
                                            **args)
    if resolved.policy is not None and violations(resolved.policy, args):
        raise Fallback  # graphql-core rejects them as the policy does
    # What strawberry's wrapper does for each call, done once: convert the arguments, find the parameters.
    try:
        kwargs = convert_arguments(args, field.arguments, config=strawberry_schema.config,
                                   scalar_registry=strawberry_schema.schema_converter.scalar_registry)
    except Exception:
        raise Fallback from None
    resolver = field.base_resolver
    assert resolver is not None
    fn: Callable[..., Any] = resolver.wrapped_func  # type: ignore[assignment]  # bound by strawberry
    as_self = resolver.self_parameter is not None
    as_parent = [p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p is not None]
    info_name = resolver.info_parameter.name if resolver.info_parameter is not None else None
    info_class = strawberry_schema.config.info_class

    def call(parent: Any, path: Path) -> Any:
        named = dict(kwargs)
        for name in as_parent:
            named[name] = parent
        if info_name is not None:
            named[info_name] = info_class(_raw_info=executor.build_resolve_info(definition, nodes, parent_type, path),
                                          _field=field)
        return fn(parent, **named) if as_self else fn(**named)

    return call


def _arguments(resolved: Resolved, executor: Any) -> dict[str, Any]:
    if not (resolved.definition.args or resolved.node.arguments):
        return {}
    try:
        return get_argument_values(resolved.definition, resolved.node, executor.variable_values, None,
                                   executor.hide_suggestions)
    except Exception:
        raise Fallback from None


def _close(calls: list[Any]) -> None:
    """Calls made before one raised: never started, so closing them runs nothing."""
    for call in calls:
        if type(call) is types.CoroutineType:
            call.close()


async def settle(calls: list[Any]) -> list[Any]:
    """The values of `calls` (values, or awaitables run side by side in the current task); the
    exception of an awaitable that raised stands in for its value.

    Each coroutine is stepped until it waits on a future, as a task would step it: the loads of
    all of them join the same dataloader batches, without a task per coroutine. As with
    graphql-core's gather, one raising does not stop the others."""
    results = [_awaited(c) if type(c) is not types.CoroutineType and hasattr(c, "__await__") else c for c in calls]
    running = [i for i, call in enumerate(results) if type(call) is types.CoroutineType]
    pending = set(running)
    try:
        while running:
            waiting = [(i, signal) for i in running if (signal := _step(results, i, pending)) is not _DONE]
            running = []
            for i, signal in waiting:
                if await _wait(signal):
                    running.append(i)
                else:
                    results[i].close()
                    results[i] = RuntimeError(f"Task got bad yield: {signal!r}")
                    pending.discard(i)
    except BaseException:  # this request is cancelled: so is every coroutine still waiting
        for i in pending:
            _cancel(results[i])
        raise
    return results


_DONE = object()


def _step(results: list[Any], i: int, pending: set[int]) -> Any:
    """Runs coroutine `i` to its next wait: what it yielded, or _DONE with its outcome in `results`."""
    try:
        signal = results[i].send(None)
    except StopIteration as done:
        results[i] = done.value
    except Exception as exc:
        results[i] = exc
    else:
        if asyncio.isfuture(signal):  # taken over, as a task does: others may await the same future
            signal._asyncio_future_blocking = False
        return signal
    pending.discard(i)
    return _DONE


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


async def _wait(signal: Any) -> bool:
    """Waits, as a task would, for what a stepped coroutine yielded (the coroutine reads the
    outcome when resumed); False if that is nothing a task could wait for."""
    if signal is None:  # a bare yield (asyncio.sleep(0)): let the loop run once
        await asyncio.sleep(0)
        return True
    if not asyncio.isfuture(signal):
        return False
    try:
        await signal
    except asyncio.CancelledError:
        if not signal.cancelled():
            raise  # this request is being cancelled
    except Exception:  # the stepped coroutine receives it when resumed
        pass
    return True


def _cancel(coroutine: Any) -> None:
    try:
        coroutine.throw(asyncio.CancelledError())
    except BaseException:  # ended, as a cancelled task would
        return
    coroutine.close()  # it went on waiting, and nothing will wake it


class PlannedExecutionContext(PlainFieldsExecutionContext):
    """Executes a query as a compiled read (`app.api.compiled`) or by its plan when it has one, otherwise
    (and on Fallback) as graphql-core does."""

    def execute_collected_root_fields(self, root_type: GraphQLObjectType, root_value: Any, grouped_field_set: Any,
                                      serially: bool, new_defer_usages: Any) -> Any:
        operation = None if serially or new_defer_usages or self._middleware() else inlined(
            self.operation, root_type, self.fragments)
        plan = plan_for(operation, root_type) if operation is not None else None
        if plan is None:
            return super().execute_collected_root_fields(root_type, root_value, grouped_field_set, serially,
                                                         new_defer_usages)
        assert operation is not None
        return self._planned(plan, compiled_for(operation, root_type), root_type, root_value, grouped_field_set)

    async def _planned(self, plan: Plan, compiled: Compiled | None, root_type: GraphQLObjectType, root_value: Any,
                       grouped_field_set: Any) -> Any:
        if compiled is not None:
            try:
                return await read(compiled, self)
            except Exception:  # Fallback, or an argument a page refused: the plan (or graphql-core) reports it
                pass
        try:
            return await run(plan, self, root_value)
        except Exception:  # Fallback, or a value the plan's completion refused: graphql-core reports it
            pass
        data = super().execute_collected_root_fields(root_type, root_value, grouped_field_set, False, ())
        return await data if self.is_awaitable(data) else data

    def build_response(self, data: dict[str, Any] | None) -> Any:
        response = super().build_response(data)
        if isinstance(response, ExecutionResult):
            # graphql-core's executor references itself through its resolve-info helpers (bound
            # methods): a cycle that would keep the request's context, loaders and rows alive until
            # the collector's next full pass (a dashboard page: ~15 ms of collection per request).
            # A complete result needs them no more.
            self.async_helpers = None  # type: ignore[assignment]
        return response
