"""Shared fan-out for graphql-transport-ws subscriptions.

Subscribers in this process with the same document, variables and viewer share one execution (a
`Broadcast`): each event is executed and serialised once, and every subscriber is sent the same
payload text framed with its own operation id. Per subscriber, an event costs a websocket write.

- The viewer is part of the key: fields that depend on who asks (private streams,
  `viewerIsFollowing`, who may see an e-mail) are never shared across users.
- A subscriber that joins a running broadcast first gets what the broadcast has sent so far (kept
  up to REPLAY_BYTES; past that it takes no more joiners and the next one starts a new execution),
  so it sees the stream it asked for: nothing skipped, nothing twice.
- Back-pressure: each subscriber has a bounded outbox (OUTBOX_BYTES). A subscriber that cannot keep
  up is detached, its unsent frames are dropped, and it continues on its own execution that reads
  PostgreSQL after the last position it was sent (`Position.resume_after`), paced by its socket.
  So it never slows the others down, and memory stays bounded.
- Direct events: executing and serialising one event through strawberry costs ~75 µs, a busy log
  streams thousands of lines a second, and a log line's selection is a few attributes. A resolver
  whose selection is plain (`direct_events`: scalar fields and plain objects, no fragments,
  directives or resolvers, and no schema extension that acts on each event) builds each event's
  payload itself, with the same completion graphql-core's short path uses (`app.api.execution`),
  and hands the item straight to the broadcast: the same bytes, a few µs. A value the short path
  does not judge (a null in a non-null field, …) is yielded to strawberry as before.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import json
import logging
from typing import TYPE_CHECKING, Any

import orjson
from graphql import GraphQLError, OperationType, get_operation_ast, parse
from prometheus_client import Counter
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.utils.aio import aclosing

from app.api.context import Context, Info
from app.api.execution import Build, plain_build
from app.api.extensions import MAX_TOKENS
from app.api.http_limits import WellFormedMessages
from app.api.loaders import Loaders
from app.events.streams import Position

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

    from strawberry.schema import BaseSchema, Schema
    from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage

log = logging.getLogger("mlpatron.fanout")

OUTBOX_BYTES = 256 * 1024
REPLAY_BYTES = 256 * 1024
EXECUTIONS = Counter("mlpatron_subscription_results_total",
                     "Subscription results executed and serialised (one per event per shared execution)",
                     ["shared"])
_SHARED, _ALONE = EXECUTIONS.labels("true"), EXECUTIONS.labels("false")  # looked up once, not per event


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    """One message of a stream, serialised once: `next` (payload is the JSON text), `error`, `complete`."""

    kind: str
    payload: str
    position: int | None

    @property
    def final(self) -> bool:
        return self.kind != "next"

    def frame(self, id_json: str) -> str:
        if self.kind == "complete":
            return f'{{"id":{id_json},"type":"complete"}}'
        return f'{{"id":{id_json},"type":"{self.kind}","payload":{self.payload}}}'


COMPLETE = Item("complete", "", None)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()  # like the HTTP answers (app.main)


def serialise(result: ExecutionResult | PreExecutionError, position: int | None) -> Item:
    """The same `next` / `error` payloads strawberry's own handler sends."""
    if isinstance(result, PreExecutionError):
        return Item("error", _dumps([e.formatted for e in result.errors or ()]), None)
    payload: dict[str, Any] = {"data": result.data}
    if result.errors:
        payload["errors"] = [e.formatted for e in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return Item("next", _dumps(payload), position)


@functools.lru_cache(maxsize=512)
def is_subscription(query: str, operation_name: str | None) -> bool:
    """Parsed once per document; anything unparsable goes down strawberry's path, which reports it."""
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError:
        return False
    operation = get_operation_ast(document, operation_name)
    return operation is not None and operation.operation == OperationType.SUBSCRIPTION


async def execute(schema: BaseSchema, op: Operation[Context, None], context: Context,
                  shared: bool) -> AsyncIterator[Item]:
    """Yield the serialised items of one execution of `op`, ending with an `error` or `complete`."""
    counter = _SHARED if shared else _ALONE
    try:
        source = await schema.stream(op.query, variable_values=op.variables, context_value=context,
                                     operation_name=op.operation_name)
        async with aclosing(source):
            async for result in source:
                if not isinstance(result, ExecutionResult | PreExecutionError):
                    error = GraphQLError("Incremental delivery is not supported over graphql-transport-ws")
                    yield Item("error", _dumps([error.formatted]), None)
                    return
                counter.inc()
                item = serialise(result, context.position.seq)
                yield item
                if item.final:
                    return
    except Exception:
        log.exception("subscription execution failed")
    yield COMPLETE


def _per_event_hooks(extension: SchemaExtension) -> bool:
    """Does the extension act on each event of a subscription? Masking errors does not matter here:
    a direct event has none."""
    kind = type(extension)
    stream_hook = kind.on_stream_result is not SchemaExtension.on_stream_result and not isinstance(extension,
                                                                                                   MaskErrors)
    return (stream_hook or kind._implements_resolve()
            or kind.get_results is not SchemaExtension.get_results)


@functools.lru_cache(maxsize=8)
def _events_need_strawberry(schema: Schema) -> bool:
    return any(_per_event_hooks(e) for e in schema.get_extensions())


class DirectEvents:
    """Sends a subscription's events as items serialised here, bypassing strawberry's per-event
    execution. `send` returns False for a value it does not judge: yield that one to strawberry."""

    __slots__ = ("build", "emit", "key")

    def __init__(self, key: str, build: Build, emit: Callable[[Item], Awaitable[None]]) -> None:
        self.key, self.build, self.emit = key, build, emit

    async def send(self, value: Any, position: int | None) -> bool:
        try:
            data = self.build(value)
        except Exception:  # Fallback, or an error the full path locates and reports
            return False
        await self.emit(Item("next", _dumps({"data": {self.key: data}}), position))
        return True


def direct_events(info: Info) -> DirectEvents | None:
    """For a subscription resolver served by the fan-out whose selection is plain; else None."""
    emit = info.context.direct
    if emit is None:
        return None
    raw = info._raw_info
    if len(raw.field_nodes) != 1 or raw.field_nodes[0].directives or _events_need_strawberry(info.schema):
        return None
    build = plain_build(raw.return_type, tuple(raw.field_nodes))
    if build is None:
        return None
    node = raw.field_nodes[0]
    return DirectEvents(node.alias.value if node.alias else node.name.value, build, emit)


Broadcasts = dict[tuple[Any, ...], "Broadcast"]


class Broadcast:
    """One execution shared by every subscriber of the same key in this process."""

    def __init__(self, registry: Broadcasts, key: tuple[Any, ...], schema: BaseSchema,
                 op: Operation[Context, None], context: Context) -> None:
        self.registry, self.key, self.context = registry, key, context
        self.subscribers: set[Subscriber] = set()
        self.replay: list[Item] | None = []  # None once it grew past REPLAY_BYTES: no more joiners
        self.replay_bytes = 0
        registry[key] = self
        context.direct = self._direct
        self.task = asyncio.create_task(self._run(schema, op), name="broadcast")

    def attach(self, subscriber: Subscriber) -> None:
        assert self.replay is not None
        for item in self.replay:
            subscriber.push(item)
        self.subscribers.add(subscriber)

    def detach(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers:
            self._close_to_joiners()
            self.task.cancel()

    def _close_to_joiners(self) -> None:
        self.replay = None
        if self.registry.get(self.key) is self:
            del self.registry[self.key]

    def _emit(self, item: Item) -> None:
        if self.replay is not None:
            self.replay.append(item)
            self.replay_bytes += len(item.payload)
            if self.replay_bytes > REPLAY_BYTES or item.final:
                self._close_to_joiners()
        for subscriber in list(self.subscribers):
            subscriber.push(item)

    async def _direct(self, item: Item) -> None:
        _SHARED.inc()
        self._emit(item)

    async def _run(self, schema: BaseSchema, op: Operation[Context, None]) -> None:
        try:
            async for item in execute(schema, op, self.context, shared=True):
                self._emit(item)
        finally:
            self._close_to_joiners()


class SharedOperation(Operation[Context, None]):
    """An operation served by a broadcast: its `task` exists only while it has something to write."""

    __slots__ = ("subscriber",)
    subscriber: Subscriber


class Subscriber:
    """One operation of one connection fed by a broadcast. Idle, it is a few attributes: no task,
    no queue. A push makes the outbox and starts a writer task, which ends once it has written all."""

    __slots__ = ("backlog", "broadcast", "handler", "id_json", "lagging", "op", "outbox", "sent")

    def __init__(self, handler: FanoutHandler, op: SharedOperation, broadcast: Broadcast) -> None:
        self.handler, self.op, self.broadcast = handler, op, broadcast
        self.id_json = _dumps(op.id)
        self.outbox: collections.deque[Item] | None = None
        self.backlog = 0
        self.sent: int | None = None  # position of the last item written to the socket
        self.lagging = False

    def push(self, item: Item) -> None:
        if self.lagging:
            return
        if self.backlog + len(item.payload) > OUTBOX_BYTES and not item.final:
            # Too slow: drop what is queued and continue alone from PostgreSQL.
            self.lagging = True
            self.outbox = None
            self.backlog = 0
            self.broadcast.detach(self)
        else:
            if self.outbox is None:
                self.outbox = collections.deque()
            self.outbox.append(item)
            self.backlog += len(item.payload)
        if self.op.task is None:
            self.op.task = asyncio.create_task(self._write(), name="subscriber")
            self.op.task.add_done_callback(self.handler._task_done)

    async def send(self, item: Item) -> None:
        if item.final:
            # Forget the id before the last frame, so the client may reuse it at once.
            self.handler.operations.pop(self.op.id, None)
        await self.handler.websocket.ws.send_text(item.frame(self.id_json))  # type: ignore[attr-defined]  # starlette's socket
        if item.position is not None:
            self.sent = item.position

    async def _write(self) -> None:
        try:
            while self.outbox:
                item = self.outbox.popleft()
                self.backlog -= len(item.payload)
                await self.send(item)
                if item.final:
                    self.broadcast.detach(self)
                    return
            self.outbox = None
            if self.lagging:
                await self._continue_alone()
                return
        except WebSocketDisconnect:
            return  # the connection's shutdown closes this operation
        self.op.task = None  # written all: idle again

    async def _continue_alone(self) -> None:
        context = dataclasses.replace(self.broadcast.context, loaders=Loaders(),
                                      position=Position(resume_after=self.sent), direct=self._direct)
        async for item in execute(self.handler.schema, self.op, context, shared=False):
            await self.send(item)

    async def _direct(self, item: Item) -> None:
        _ALONE.inc()
        await self.send(item)

    def close(self) -> None:
        """The client completed the operation or went away."""
        if not self.lagging:
            self.broadcast.detach(self)
        if self.op.task is not None:
            self.op.task.cancel()


def viewer_scope(context: Context) -> tuple[Any, ...]:
    """Who the results are computed for: streams are shared only within one scope."""
    return (str(context.user.id) if context.user else None, context.auth_error is not None)


class TextWebSocket(ASGIWebSocketAdapter):
    """Protocol messages as text frames: the view encodes JSON to bytes (fast HTTP answers), which
    strawberry would send as binary frames, and graphql-ws clients (the SPA's) refuse those."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        encoded = self.view.encode_json(message)
        try:
            await self.ws.send_text(encoded.decode() if isinstance(encoded, bytes) else encoded)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


class FanoutHandler(WellFormedMessages, BaseGraphQLTransportWSHandler[Context, None]):
    """strawberry's graphql-transport-ws handler, with subscriptions served through broadcasts.

    Queries and mutations over the socket, protocol errors and unparsable documents keep
    strawberry's own path. The view holds the broadcasts (`view.broadcasts`), shared by every
    connection it serves."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload = message.get("payload") or {}
        query, variables = payload.get("query"), payload.get("variables")
        operation_name = payload.get("operationName")
        if (not self.connection_acknowledged or message["id"] in self.operations or not isinstance(query, str)
                or not (variables is None or isinstance(variables, dict))
                or not (operation_name is None or isinstance(operation_name, str))
                or not is_subscription(query, operation_name) or self._at_limit()):
            await super().handle_subscribe(message)  # strawberry's answer (the limit: an `error` message)
            return
        op = SharedOperation(self, message["id"], query, variables, operation_name)
        key = (query, operation_name, json.dumps(variables, sort_keys=True) if variables else "",
               viewer_scope(self.context))
        registry: Broadcasts = self.view.broadcasts  # type: ignore[attr-defined]
        broadcast = registry.get(key)
        if broadcast is None:
            context = dataclasses.replace(self.context, request=None, response=None, loaders=Loaders(),
                                          position=Position())
            broadcast = Broadcast(registry, key, self.schema, op, context)
        self.operations[op.id] = op
        op.subscriber = Subscriber(self, op, broadcast)
        broadcast.attach(op.subscriber)

    async def cleanup_operation(self, operation_id: str) -> None:
        op = self.operations.get(operation_id)
        if not isinstance(op, SharedOperation):
            await super().cleanup_operation(operation_id)
            return
        del self.operations[operation_id]
        op.subscriber.close()

    def _at_limit(self) -> bool:
        limit = self.max_subscriptions_per_connection
        return limit is not None and len(self.operations) >= limit
