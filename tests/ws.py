"""A minimal graphql-transport-ws client (what graphql-ws speaks), for subscription tests."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import websockets

PROTOCOL = "graphql-transport-ws"


class WsClient:
    def __init__(self, conn: websockets.ClientConnection) -> None:
        self.conn = conn
        self._ids = itertools.count(1)
        self._queues: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, base_url: str, payload: dict[str, Any] | None = None,
                      headers: dict[str, str] | None = None) -> WsClient:
        url = base_url.replace("http://", "ws://") + "/graphql"
        conn = await websockets.connect(url, subprotocols=[PROTOCOL], additional_headers=headers or {})
        await conn.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        ack = json.loads(await asyncio.wait_for(conn.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        return cls(conn)

    async def _read(self) -> None:
        try:
            async for raw in self.conn:
                message = json.loads(raw)
                if message.get("type") == "ping":
                    await self.conn.send(json.dumps({"type": "pong"}))
                    continue
                queue = self._queues.get(message.get("id", ""))
                if queue is not None:
                    queue.put_nowait(message)
        except websockets.ConnectionClosed:
            pass
        for queue in self._queues.values():
            queue.put_nowait({"type": "closed"})

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None,
                        sub_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Yield each `next` payload's data; raise on `error`; stop on `complete`."""
        sid = sub_id or str(next(self._ids))
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues[sid] = queue
        await self.conn.send(json.dumps({"id": sid, "type": "subscribe",
                                         "payload": {"query": query, "variables": variables or {}}}))
        try:
            while True:
                message = await queue.get()
                if message["type"] == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        raise SubscriptionError(payload["errors"])
                    yield payload["data"]
                elif message["type"] == "error":
                    raise SubscriptionError(message["payload"])
                elif message["type"] in ("complete", "closed"):
                    return
        finally:
            self._queues.pop(sid, None)

    async def close(self) -> None:
        await self.conn.close()
        await self._reader


class SubscriptionError(Exception):
    def __init__(self, errors: Any) -> None:
        super().__init__(errors)
        self.errors = errors
