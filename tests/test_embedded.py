"""Embedded servers: start, connect, restart, stop (MLflow is covered elsewhere); supervision
(killed servers come back on the same port); `mlpatron serve` and the benchmarks stop every
server they started, also when interrupted."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from app.core.redis import connect
from app.embedded.child import RESTART_DELAY
from app.embedded.ports import free_port, port_is_open
from app.embedded.postgres import EmbeddedPostgres, create_database
from app.embedded.redis import EmbeddedRedis
from app.events.hub import RECONNECT_DELAY
from tests.helpers import eventually
from tests.processes import alive, cmdline, descendants

ROOT = Path(__file__).resolve().parent.parent
SIGN_UP = "mutation($i: SignUpInput!) { signUp(input: $i) { __typename } }"


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


async def _wait_restarted(server, old_pid: int) -> None:
    """Until the supervisor has restarted `server` (counted once its new process answered)."""
    restarts = server.restarts
    await eventually(lambda: asyncio.to_thread(lambda: server.restarts > restarts and server.pid != old_pid),
                     lambda ok: ok, within=RESTART_DELAY[0] + 10)


async def test_a_killed_redis_is_restarted_on_the_same_port(data_dir: Path, caplog) -> None:
    with EmbeddedRedis(data_dir / "redis") as server:
        url, pid = server.url, server.pid
        assert pid is not None
        client = connect(url)  # the platform's client: one quick retry after a reset connection
        await client.set("k", "v")
        for restarts in (1, 2):  # twice: supervision continues after a restart
            old = server.pid
            assert old is not None
            os.kill(old, signal.SIGKILL)
            await _wait_restarted(server, old)
            assert server.url == url and server.restarts == restarts and server.is_ready()
        assert await client.ping()  # same URL: the client simply reconnects
        await client.aclose()
        assert f"embedded redis (pid {pid}) exited with -9; restarting it on {url}" in caplog.text
        last = server.pid
    assert last is not None and not alive(last) and not port_is_open(server.port)


async def test_a_killed_postgres_is_restarted_on_the_same_port_with_its_data(data_dir: Path) -> None:
    with EmbeddedPostgres(data_dir / "pg") as pg:
        conn = await asyncpg.connect(pg.url)
        await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
        await conn.close()
        old = pg.pid
        assert old is not None
        backends = descendants(old)
        os.kill(old, signal.SIGKILL)
        await _wait_restarted(pg, old)
        assert not any(alive(p) for p in backends)  # the dead postmaster's children went with it
        assert await _fetchval(pg.url, "SELECT v FROM kept") == 7
        last = pg.pid
    assert last is not None and not alive(last) and not port_is_open(pg.port)


async def test_serve_restarts_its_killed_redis_and_sigterm_stops_every_child(settings, data_dir: Path) -> None:
    """`mlpatron serve` with an existing database and MLflow, the embedded Redis-protocol server."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {
        "DATABASE_URL": settings.database_url, "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
        "MLPATRON_DATA_DIR": str(data_dir / "data"), "ALLOW_LOCAL_REPOS": "true", "RUN_WATCHER": "false"}
    port = free_port()
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        serve = await asyncio.create_subprocess_exec(str(Path(sys.executable).parent / "mlpatron"), "serve",
                                                     "--port", str(port), env=env, stdout=log, stderr=log)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            async def ready() -> int:
                try:
                    return (await http.get("/ready")).status_code
                except httpx.HTTPError:
                    return 0

            await eventually(ready, lambda code: code == 200, within=60)
            redis_pid = _valkey_of(serve.pid)
            assert redis_pid is not None
            redis_port = _port_of(redis_pid)
            os.kill(redis_pid, signal.SIGKILL)
            restarted = await eventually(lambda: asyncio.to_thread(_valkey_of, serve.pid),
                                         lambda pid: pid not in (None, redis_pid), within=RESTART_DELAY[0] + 10)
            assert _port_of(restarted) == redis_port  # same address: clients reconnect
            await eventually(ready, lambda code: code == 200, within=RECONNECT_DELAY[1] + 5)
            signed_up = await http.post("/graphql", json={"query": SIGN_UP, "variables": {"i": {
                "handle": f"sv-{uuid.uuid4().hex[:8]}", "email": f"{uuid.uuid4().hex}@example.test",
                "password": "correct horse battery"}}})
            assert signed_up.json()["data"]["signUp"]["__typename"] == "ViewerSession"
        children = descendants(serve.pid)
        assert children
        serve.send_signal(signal.SIGTERM)
        await asyncio.wait_for(serve.wait(), 60)
    finally:
        if serve.returncode is None:  # the test failed: still stop its servers (SIGKILL would orphan them)
            serve.terminate()
            try:
                await asyncio.wait_for(serve.wait(), 60)
            except TimeoutError:
                serve.kill()
                await serve.wait()
    survivors = [p for p in children if alive(p)]
    assert not survivors, [cmdline(p) for p in survivors]
    assert "embedded redis (pid" in log_path.read_text() and "restarting it on" in log_path.read_text()


INTERRUPTS = [signal.SIGTERM, signal.SIGINT]


@pytest.mark.parametrize("sig", INTERRUPTS)
def test_an_interrupted_benchmark_leaves_no_server_behind(data_dir: Path, sig: int) -> None:
    """bench.realtime starts PostgreSQL, a Redis-protocol server and four uvicorn processes."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    _interrupt_when_servers_up([sys.executable, "-m", "bench.realtime", "--subscribers", "2", "--seconds", "600"],
                               env, data_dir / "bench.log", sig, uvicorns=4)


BLOCKING_TEST = """
import time


def test_holds_servers(postgres_server, redis_server):
    time.sleep(600)
"""


@pytest.mark.parametrize("sig", INTERRUPTS)
def test_an_interrupted_test_session_leaves_no_server_behind(data_dir: Path, sig: int) -> None:
    """The session fixtures start embedded PostgreSQL and Redis when no TEST_*_URL is set."""
    (data_dir / "test_holds.py").write_text(BLOCKING_TEST)
    env = {k: v for k, v in os.environ.items() if k not in ("TEST_DATABASE_URL", "TEST_REDIS_URL")}
    _interrupt_when_servers_up([sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-c",
                                str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), str(data_dir / "test_holds.py")],
                               env, data_dir / "pytest.log", sig, uvicorns=0)


def _interrupt_when_servers_up(command: list[str], env: dict[str, str], log_path: Path, sig: int,
                               uvicorns: int) -> None:
    """Run `command` until PostgreSQL, Redis and `uvicorns` uvicorn processes run below it, send
    `sig`, and check that none of the processes it had started survives it."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not _servers_up(proc.pid, uvicorns):
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        children = descendants(proc.pid)
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    survivors = [p for p in children if alive(p)]
    assert not survivors, [cmdline(p) for p in survivors]


def _servers_up(pid: int, uvicorns: int) -> bool:
    commands = [" ".join(cmdline(p)) for p in descendants(pid)]
    return (any("valkey-server" in c for c in commands) and any("postgres" in c for c in commands)
            and sum("uvicorn" in c for c in commands) >= uvicorns)


def _valkey_of(pid: int) -> int | None:
    """The embedded Redis-protocol server below `pid` (None while it is being restarted)."""
    found = [p for p in descendants(pid) if "valkey-server" in " ".join(cmdline(p))]
    return found[0] if len(found) == 1 else None


def _port_of(pid: int) -> str:
    """From the arguments, or from the title valkey gives itself once started ("valkey-server HOST:PORT")."""
    args = cmdline(pid)
    return args[args.index("--port") + 1] if "--port" in args else " ".join(args).split()[-1].rsplit(":", 1)[-1]
