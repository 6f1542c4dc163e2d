"""Count the SQL statements (round trips) one GraphQL request sends, at the asyncpg connection.

For an API served in this process (tests, the read benchmark): requests carrying the header
`x-count-statements: <token>` record every statement they cause (text and arguments, for EXPLAIN),
the pool's reset on release included, under that token. Background work (watchers, hub) is not counted.
"""

from __future__ import annotations

import contextlib
import contextvars
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg.connection

from app.main import GraphQLApp

HEADER = "x-count-statements"
_current: contextvars.ContextVar[list[tuple[str, tuple[Any, ...]]] | None] = contextvars.ContextVar("counted_statements", default=None)


class StatementCounter:
    def __init__(self) -> None:
        self.by_token: dict[str, list[tuple[str, tuple[Any, ...]]]] = {}

    def new_token(self) -> str:
        token = uuid.uuid4().hex
        self.by_token[token] = []
        return token


@contextlib.contextmanager
def counting_statements() -> Iterator[StatementCounter]:
    counter = StatementCounter()
    conn = asyncpg.connection.Connection
    originals = {name: getattr(conn, name) for name in ("execute", "_execute", "_executemany")}
    get_context = GraphQLApp.get_context

    def record(query: str, args: tuple[Any, ...] = ()) -> None:
        seen = _current.get()
        if seen is not None:
            seen.append((query, args))

    async def execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args:  # the simple-query protocol: BEGIN, COMMIT, the pool's reset
            record(query)
        return await originals["execute"](self, query, *args, **kwargs)

    async def _execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        record(query, args[0] if args else ())
        return await originals["_execute"](self, query, *args, **kwargs)

    async def _executemany(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        record(query)
        return await originals["_executemany"](self, query, *args, **kwargs)

    async def counted_context(self: Any, request: Any, response: Any = None) -> Any:
        token = request.headers.get(HEADER)
        if token in counter.by_token:
            _current.set(counter.by_token[token])  # inherited by every task the request starts
        return await get_context(self, request, response)

    patches = {"execute": execute, "_execute": _execute, "_executemany": _executemany}
    for name, fn in patches.items():
        setattr(conn, name, fn)
    GraphQLApp.get_context = counted_context  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        for name, fn in originals.items():
            setattr(conn, name, fn)
        GraphQLApp.get_context = get_context  # type: ignore[method-assign]
