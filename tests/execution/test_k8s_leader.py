"""Leader election for the watcher: a PostgreSQL advisory lock on a dedicated connection."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from app.execution.leader import AdvisoryLock, asyncpg_dsn, lock_key, run_as_leader


async def terminate_holder(server: str, name: str) -> None:
    admin = await asyncpg.connect(asyncpg_dsn(server))
    try:
        pids = await admin.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND ((classid::bigint << 32) | objid::bigint) = $1",
            lock_key(name),
        )
        assert len(pids) == 1
        await admin.execute("SELECT pg_terminate_backend($1)", pids[0]["pid"])
    finally:
        await admin.close()


async def test_only_one_holder_and_loss_is_noticed(postgres_server: str) -> None:
    name = f"test-lock-{uuid.uuid4().hex}"
    first = AdvisoryLock(postgres_server, name, retry_interval=0.05, check_interval=0.05)
    second = AdvisoryLock(postgres_server, name, retry_interval=0.05, check_interval=0.05)
    try:
        assert await first.try_acquire()
        assert first.held
        assert not await second.try_acquire()  # held elsewhere: refused, not waited for

        waiting = asyncio.create_task(second.acquire())
        await first.release()
        async with asyncio.timeout(5):
            await waiting
        assert second.held

        # Kill the holder's session: PostgreSQL drops the lock and the holder must stop acting.
        await terminate_holder(postgres_server, name)
        async with asyncio.timeout(5):
            await second.lost.wait()
        assert not second.held
        assert await first.try_acquire()  # free again
    finally:
        await first.release()
        await second.release()


class ObservedLock(AdvisoryLock):
    """Says when an acquisition attempt has been answered."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.refused = asyncio.Event()

    async def try_acquire(self) -> bool:
        got = await super().try_acquire()
        if not got:
            self.refused.set()
        return got


async def test_run_as_leader_acts_only_while_holding(postgres_server: str) -> None:
    name = f"test-lock-{uuid.uuid4().hex}"
    blocker = AdvisoryLock(postgres_server, name, retry_interval=0.05, check_interval=0.05)
    lock = ObservedLock(postgres_server, name, retry_interval=0.05, check_interval=0.05)
    acting = asyncio.Event()
    stopped_acting = asyncio.Event()
    stop = asyncio.Event()

    async def act() -> None:
        acting.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped_acting.set()

    assert await blocker.try_acquire()
    runner = asyncio.create_task(run_as_leader(lock, act, stop))
    try:
        async with asyncio.timeout(5):
            await lock.refused.wait()  # it tried while another process held the lock ...
        assert not acting.is_set()  # ... and does not act
        await blocker.release()
        async with asyncio.timeout(5):
            await acting.wait()

        # Losing the session stops the acting task at once; then it competes and wins again.
        acting.clear()
        await terminate_holder(postgres_server, name)
        async with asyncio.timeout(5):
            await stopped_acting.wait()
            await acting.wait()

        stop.set()
        async with asyncio.timeout(5):
            await runner
        assert stopped_acting.is_set()
        assert not lock.held
    finally:
        stop.set()
        runner.cancel()
        await blocker.release()
