"""The floor for the realtime benchmark: a bare Redis pub/sub → websocket forwarder.

One Redis subscription per process, every message sent as-is to every connected websocket.
No database, no GraphQL, no resume: the least work any fan-out can do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

CHANNEL = "bench:floor"
clients: set[WebSocket] = set()


async def relay() -> None:
    redis = Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    pubsub = redis.pubsub()
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        if message["type"] == "message":
            await asyncio.gather(*(ws.send_text(message["data"]) for ws in list(clients)), return_exceptions=True)


async def endpoint(ws: WebSocket) -> None:
    await ws.accept()
    clients.add(ws)
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        clients.discard(ws)


@contextlib.asynccontextmanager
async def lifespan(_: Starlette) -> AsyncIterator[None]:
    task = asyncio.create_task(relay())
    yield
    task.cancel()


app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], lifespan=lifespan)
