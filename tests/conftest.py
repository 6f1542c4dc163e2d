"""Test infrastructure: real PostgreSQL, a real Redis-protocol server and the real API served by
uvicorn on loopback, all in the test's event loop.

`TEST_DATABASE_URL` / `TEST_REDIS_URL` point at existing servers; otherwise throwaway embedded
ones are started (and stopped) by this session. Each session uses a fresh database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import uvicorn

from app.embedded.ports import free_port
from tests.client import GraphQLClient, Person

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM unwinds like Ctrl-C (app.embedded.child.sigterm_unwinds), so the session's fixtures
    # still stop every server they started when a CI job or a developer kills the run.
    signal.signal(signal.SIGTERM, signal.default_int_handler)


@pytest.fixture(scope="session")
def work_dir() -> Iterator[Path]:
    # /var/tmp is traversable by the unprivileged user embedded PostgreSQL runs as.
    path = Path(tempfile.mkdtemp(prefix="mlpatron-test-", dir="/var/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server(work_dir: Path) -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    from app.embedded.postgres import EmbeddedPostgres

    server = EmbeddedPostgres(work_dir / "postgres")
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def redis_server(work_dir: Path) -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    from app.embedded.redis import EmbeddedRedis

    server = EmbeddedRedis(work_dir / "redis")
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
def mlflow_server(work_dir: Path) -> Iterator[str]:
    """A real MLflow tracking server (its own virtual environment, created on first use)."""
    url = os.environ.get("TEST_MLFLOW_TRACKING_URI")
    if url:
        yield url
        return
    from app.embedded.mlflow import MlflowServer

    server = MlflowServer(work_dir / "mlflow")
    yield server.start()
    server.stop()


@pytest.fixture(scope="session")
async def database_url(postgres_server: str) -> AsyncIterator[str]:
    """A fresh database for this session, migrated with the project's migrations."""
    import asyncpg

    from app.core.db import close_db, migrate_db
    from app.embedded.postgres import create_database

    name = f"mlpatron_test_{uuid.uuid4().hex[:10]}"
    url = await create_database(postgres_server, name)
    await migrate_db(url)
    await close_db()
    yield url
    admin = urlsplit(postgres_server)
    conn = await asyncpg.connect(admin.geturl())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def settings(database_url: str, redis_server: str, mlflow_server: str, work_dir: Path):
    from app.core.settings import override_settings

    return override_settings(
        database_url=database_url,
        redis_url=redis_server,
        mlflow_tracking_uri=mlflow_server,
        startup_overhead_seconds=60,
        cancel_grace_seconds=2,
        data_dir=work_dir / "data",
        allow_local_repos=True,
        run_watcher=True,
        auth_attempts_per_hour=100_000,
        dryruns_per_day=100_000,  # tests/test_quotas.py runs its own replicas with low quotas
        concurrent_dryruns=1000,
        requests_per_minute=1_000_000,  # tests/test_request_budget.py runs its own replicas with small budgets
        anonymous_requests_per_minute=1_000_000,
    )


@pytest.fixture(scope="session")
def asgi_app(settings):
    from app.main import create_app

    return create_app(settings)


@pytest.fixture(scope="session")
async def api(asgi_app) -> AsyncIterator[str]:
    """The real ASGI app served by uvicorn on a loopback port, in this event loop."""
    port = free_port()
    from app.main import WEBSOCKETS

    config = uvicorn.Config(asgi_app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **WEBSOCKETS)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    try:
        await asyncio.wait_for(asyncio.shield(task), 30)
    except TimeoutError:  # a hung shutdown must fail loudly, with the tasks that hang it
        for pending in asyncio.all_tasks():
            pending.print_stack(limit=8)
        raise


@pytest.fixture
def services(api: str, asgi_app):
    """The served app's services (lifecycle, hub, …), as its resolvers see them."""
    return asgi_app.state.services


@pytest.fixture
async def client(api: str) -> AsyncIterator[GraphQLClient]:
    async with GraphQLClient(api) as c:
        yield c


@pytest.fixture
async def make_person(api: str) -> AsyncIterator:
    """Factory: a signed-up human (session cookie) with an API key for their agent."""
    made: list[Person] = []

    async def make(prefix: str = "u", *, admin: bool = False) -> Person:
        person = await Person.create(api, prefix, admin=admin)
        made.append(person)
        return person

    yield make
    for p in made:
        await p.close()

