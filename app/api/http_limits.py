"""Limits on what a client may send over HTTP and websockets, before GraphQL sees it.

- request bodies above `MAX_BODY_BYTES` (1 MiB) are answered 413, whether announced by
  Content-Length or streamed in chunks, without being buffered;
- JSON nested deeper than `MAX_JSON_DEPTH` (64) is a 400 (a websocket message: close 4400),
  never a RecursionError;
- at most `MAX_SUBSCRIPTIONS_PER_CONNECTION` (25) operations per websocket: the extra one gets
  an `error` message "Subscription limit reached" and the connection stays open;
- a websocket message that is not a protocol message (not an object, no string `type` or `id`,
  a subscription without a string `query`) closes the connection with 4400 (legacy graphql-ws:
  1002), instead of crashing the connection or answering INTERNAL_SERVER_ERROR.
"""

from __future__ import annotations

import json
from typing import Any

from cross_web import HTTPException
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

MAX_BODY_BYTES = 1 << 20
MAX_JSON_DEPTH = 64
MAX_SUBSCRIPTIONS_PER_CONNECTION = 25


class TooDeep(json.JSONDecodeError):
    """A JSONDecodeError, so strawberry's websocket handler closes with 4400 as for bad JSON."""

    def __init__(self, doc: str) -> None:
        super().__init__(f"JSON nested deeper than {MAX_JSON_DEPTH} levels", doc, 0)


def _deeper_than(value: Any, limit: int) -> bool:
    if isinstance(value, dict):
        value = list(value.values())
    elif not isinstance(value, list):
        return False
    if limit == 0:
        return True
    return any(_deeper_than(item, limit - 1) for item in value)


def decode_json(data: str | bytes) -> object:
    """json.loads with a nesting limit (the C decoder recurses: ~1,000 levels raise RecursionError)."""
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    try:
        value = json.loads(data)
    except RecursionError:
        raise TooDeep(text) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # an integer of more than 4300 digits
        raise json.JSONDecodeError(str(exc)[:100], text, 0) from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise TooDeep(text)
    return value


class LimitedJSON:
    """Mixin for strawberry's view: the JSON limits above, with a 400 that says which."""

    def decode_json(self, data: str | bytes) -> object:
        return decode_json(data)

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return decode_json(data)
        except TooDeep as exc:
            raise HTTPException(400, exc.msg) from None
        except json.JSONDecodeError:
            raise HTTPException(400, "Unable to parse request body as JSON") from None


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware: 413 for HTTP request bodies over `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            status = 413 if declared.isdigit() else 400
            await PlainTextResponse(self._message(status), status_code=status)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            await PlainTextResponse(self._message(413), status_code=413)(scope, receive, send)

    def _message(self, status: int) -> str:
        return f"Request body larger than {self.max_bytes} bytes." if status == 413 else "Invalid Content-Length."


def malformed(message: object) -> str | None:
    """Why a websocket message is not a well-formed protocol message, or None."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        return "Invalid message"
    needs_id = message["type"] in ("subscribe", "complete", "start", "stop")
    if ("id" in message or needs_id) and not isinstance(message.get("id"), str):
        return "Invalid message id"
    if message["type"] in ("subscribe", "start"):  # graphql-transport-ws, legacy graphql-ws
        payload = message.get("payload")
        if not (isinstance(payload, dict) and isinstance(payload.get("query"), str)
                and isinstance(payload.get("variables") or {}, dict)
                and isinstance(payload.get("operationName") or "", str)):
            return "Invalid subscribe payload"
    return None


class WellFormedMessages:
    """Mixin for strawberry's graphql-transport-ws handler: malformed messages close with 4400."""

    async def handle_message(self, message: Any) -> None:
        if (why := malformed(message)) is not None:
            await self.handle_invalid_message(why)  # type: ignore[attr-defined]
            return
        await super().handle_message(message)  # type: ignore[misc]


class LegacyWSHandler(BaseGraphQLWSHandler[Any, None]):
    """strawberry's legacy graphql-ws handler: malformed messages close with 1002 (protocol error)."""

    async def handle_message(self, message: Any) -> None:
        if (why := malformed(message)) is not None:
            await self.websocket.close(code=1002, reason=why)
            return
        await super().handle_message(message)
