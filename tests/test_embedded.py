"""Embedded PostgreSQL and Redis adapters: start, connect, restart, stop (MLflow is covered elsewhere)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from app.embedded.ports import free_port, port_is_open
from app.embedded.postgres import EmbeddedPostgres, create_database
from app.embedded.redis import EmbeddedRedis


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Not tmp_path: /tmp/pytest-of-root is 0700, and as root PostgreSQL runs as an unprivileged
    # user that must traverse the parents. /var/tmp is world-traversable.
    path = Path(tempfile.mkdtemp(prefix="mlpatron-embedded-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def _fetchval(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def test_postgres_start_connect_stop_and_restart_on_existing_data(data_dir: Path) -> None:
    pg = EmbeddedPostgres(data_dir / "pg")
    url = pg.start()
    try:
        assert url == f"postgres://postgres@127.0.0.1:{pg.port}/postgres"
        assert await _fetchval(url, "SELECT 1") == 1
        assert await _fetchval(url, "SHOW listen_addresses") == "127.0.0.1"
        conn = await asyncpg.connect(url)
        await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
        await conn.close()
    finally:
        pg.stop()
    assert not port_is_open(pg.port)
    assert not (pg.data_dir / "postmaster.pid").exists()
    pg.stop()  # idempotent

    # A new object on the same data reuses the cluster (no initdb) and may keep the port.
    again = EmbeddedPostgres(data_dir / "pg", port=pg.port)
    assert again.start() == url
    try:
        assert await _fetchval(url, "SELECT v FROM kept") == 42
    finally:
        again.stop()


async def test_postgres_restart_keeps_url(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir / "pg", port=free_port()) as pg:
        url = pg.url
        assert pg.restart() == url
        assert await _fetchval(url, "SELECT 1") == 1
    assert not port_is_open(pg.port)


async def test_create_database_is_idempotent(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir / "pg") as pg:
        db_url = await create_database(pg.url, "mlpatron_x")
        assert db_url == pg.url.rsplit("/", 1)[0] + "/mlpatron_x"
        assert await create_database(pg.url, "mlpatron_x") == db_url
        assert await _fetchval(db_url, "SELECT current_database()") == "mlpatron_x"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to hand the cluster to another user")
async def test_postgres_as_root_only_grants_traversal(data_dir: Path) -> None:
    private = data_dir / "private"
    private.mkdir(mode=0o700)
    with EmbeddedPostgres(private / "pg") as pg:
        assert await _fetchval(pg.url, "SELECT 1") == 1
        assert pg.data_dir.stat().st_uid != 0
    mode = stat.S_IMODE(private.stat().st_mode)
    assert mode == 0o701  # search bit only: names inside stay unlistable


async def test_redis_start_ping_restart_stop(data_dir: Path) -> None:
    server = EmbeddedRedis(data_dir / "redis")
    url = server.start()
    try:
        assert url == f"redis://127.0.0.1:{server.port}/0"
        # from_url() clients get no retry policy by default (Redis(host=...) gets 10 retries):
        # without one the first command after the restart fails with "Connection closed by server".
        client = aioredis.Redis.from_url(url, retry=Retry(ExponentialBackoff(cap=1, base=0.05), 5))
        assert await client.ping()
        assert await client.config_get("save") == {"save": ""}
        assert await client.config_get("appendonly") == {"appendonly": "no"}
        assert await client.config_get("bind") == {"bind": "127.0.0.1"}
        await client.set("k", "v")

        # Same URL after a restart; the client reconnects by itself; nothing is persisted.
        assert server.restart() == url
        assert await client.ping()
        assert await client.get("k") is None
        await client.aclose()
    finally:
        server.stop()
    assert not port_is_open(server.port)
    server.stop()  # idempotent


def test_redis_context_manager_with_fixed_port(data_dir: Path) -> None:
    port = free_port()
    with EmbeddedRedis(data_dir / "redis", port=port) as server:
        assert server.url == f"redis://127.0.0.1:{port}/0"
        assert port_is_open(port)
    assert not port_is_open(port)
