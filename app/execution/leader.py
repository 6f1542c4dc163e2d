"""Leader election for the watcher: a PostgreSQL session advisory lock.

Several `mlpatron watcher` processes may run (rolling updates, a second replica by mistake);
only the one holding the lock acts. The lock lives as long as its dedicated connection: when
the holder dies, PostgreSQL releases it and another watcher's next attempt wins. A holder
whose connection breaks (network, server restart, `pg_terminate_backend`) can no longer prove
it holds the lock, so it stops acting at once (`lost` is set) and competes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

log = logging.getLogger(__name__)

DEFAULT_LOCK_NAME = "mlpatron:k8s-watcher"


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def asyncpg_dsn(database_url: str) -> str:
    """Tortoise URLs (`postgres://`, `asyncpg://`, `psql://`) → a DSN asyncpg accepts."""
    parts = urlsplit(database_url)
    if parts.scheme in ("asyncpg", "psql", "postgres", "postgresql", "pgsql"):
        parts = parts._replace(scheme="postgresql")
    return urlunsplit(parts)


class AdvisoryLock:
    """`AdvisoryLock(database_url, name=DEFAULT_LOCK_NAME, retry_interval=2.0, check_interval=5.0)`.

    `await acquire()` returns once held (trying every `retry_interval` s); `lost` is set when
    the lock can no longer be trusted; `await release()` gives it back.
    """

    def __init__(
        self,
        database_url: str,
        name: str = DEFAULT_LOCK_NAME,
        *,
        retry_interval: float = 2.0,
        check_interval: float = 5.0,
    ) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.name = name
        self.key = lock_key(name)
        self.retry_interval = retry_interval
        self.check_interval = check_interval
        self.lost = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._checker: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None and not self.lost.is_set()

    async def try_acquire(self) -> bool:
        """One attempt; True when this process now holds the lock."""
        if self.held:
            return True
        await self._drop()
        conn = await asyncpg.connect(self.dsn)
        try:
            got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key)
        except BaseException:
            await _close(conn)
            raise
        if not got:
            await _close(conn)
            return False
        self._conn = conn
        self.lost = asyncio.Event()
        conn.add_termination_listener(self._on_terminated)
        self._checker = asyncio.create_task(self._check(), name=f"advisory-lock-{self.name}")
        log.info("advisory lock %r acquired", self.name)
        return True

    async def acquire(self) -> None:
        """Wait until the lock is ours (another holder may keep it indefinitely)."""
        announced = False
        while True:
            try:
                if await self.try_acquire():
                    return
                if not announced:
                    log.info("advisory lock %r is held by another process; waiting", self.name)
                    announced = True
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("advisory lock %r: database unavailable (%s); retrying", self.name, exc)
            # Polling is the only way to learn about a session lock becoming free without blocking
            # a connection inside pg_advisory_lock (which would hide a dead database from us).
            await asyncio.sleep(self.retry_interval * (0.75 + random.random() / 2))

    async def release(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            with contextlib.suppress(Exception):
                await self._conn.execute("SELECT pg_advisory_unlock($1)", self.key)
        await self._drop()

    def _on_terminated(self, conn: asyncpg.Connection) -> None:
        if conn is self._conn:  # not our own release closing it
            self._mark_lost("connection terminated")

    def _mark_lost(self, why: str) -> None:
        if not self.lost.is_set():
            log.warning("advisory lock %r lost: %s", self.name, why)
            self.lost.set()

    async def _check(self) -> None:
        """Prove the session (hence the lock) is alive every `check_interval` seconds."""
        conn = self._conn
        assert conn is not None
        while not self.lost.is_set():
            await asyncio.sleep(self.check_interval)
            try:
                async with asyncio.timeout(max(self.check_interval, 1.0)):
                    held = await conn.fetchval(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
                        " AND granted AND ((classid::bigint << 32) | objid::bigint) = $1",
                        self.key,
                    )
            except Exception as exc:
                self._mark_lost(f"connection check failed: {type(exc).__name__}: {exc}")
                return
            if not held:
                self._mark_lost("the lock is no longer granted to this session")
                return

    async def _drop(self) -> None:
        checker, self._checker = self._checker, None
        if checker is not None and checker is not asyncio.current_task():
            checker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await checker
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close(conn)


async def _close(conn: asyncpg.Connection) -> None:
    try:
        async with asyncio.timeout(5):
            await conn.close()
    except Exception:
        conn.terminate()


async def run_as_leader(lock: AdvisoryLock, act: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Until `stop`: acquire `lock`, run `act()` while it is held; cancel `act` the moment the
    lock is lost (then compete again) or `stop` is set."""
    stopper = asyncio.create_task(stop.wait())
    try:
        while not stop.is_set():
            acquiring = asyncio.create_task(lock.acquire())
            await asyncio.wait([acquiring, stopper], return_when=asyncio.FIRST_COMPLETED)
            if not acquiring.done():
                acquiring.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await acquiring
                break
            acquiring.result()
            acting = asyncio.ensure_future(act())
            lost = asyncio.create_task(lock.lost.wait())
            try:
                await asyncio.wait([acting, lost, stopper], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (acting, lost):
                    task.cancel()
                results = await asyncio.gather(acting, lost, return_exceptions=True)
                await lock.release()
            error = results[0]
            if isinstance(error, Exception):
                log.error("leader task failed: %s; releasing leadership", error, exc_info=error)
                await asyncio.sleep(lock.retry_interval)  # do not spin on a persistent failure
    finally:
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopper
        await lock.release()
