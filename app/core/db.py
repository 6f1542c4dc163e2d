"""Tortoise configuration: one app, every domain's models, built-in migrations in `migrations/`."""

from __future__ import annotations

from typing import Any

import asyncpg
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url

MODEL_MODULES = [
    "app.accounts.models",
    "app.projects.models",
    "app.revisions.models",
    "app.funding.models",
    "app.runs.models",
    "app.jobs.models",
    "app.events.models",
    "app.discussions.models",
    "app.notifications.models",
    "app.feedback.models",
]


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Replaces asyncpg's reset on every release to the pool (`RESET ALL`, `UNLISTEN *`, …: one more
    round trip per statement). Pooled connections hold no session state here: advisory locks and
    listeners use their own connections. Only a transaction left open is rolled back."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def tortoise_config(database_url: str, pool_size: int | None = None) -> dict[str, Any]:
    connection = expand_db_url(database_url)
    connection["credentials"]["reset"] = _reset_connection
    if pool_size:
        connection["credentials"]["maxsize"] = pool_size
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def init_db(database_url: str, pool_size: int | None = None) -> None:
    """`pool_size`: connections of this process (tortoise's default, 5, when None)."""
    # Global fallback: uvicorn runs the lifespan in one task and requests in others, and
    # tortoise 1.x keeps its context in a contextvar otherwise invisible across them.
    await Tortoise.init(config=tortoise_config(database_url, pool_size), _enable_global_fallback=True)


MIGRATION_LOCK = 0x6D6C70  # "mlp": replicas starting together migrate one at a time


async def migrate_db(database_url: str) -> None:
    import asyncpg
    from tortoise.migrations.api.migrate import migrate

    lock = await asyncpg.connect(database_url)
    try:
        await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await migrate(config=tortoise_config(database_url))
    finally:
        await lock.close()  # the session ends, so does its advisory lock


async def close_db() -> None:
    await Tortoise.close_connections()


def _cli_config() -> dict[str, Any]:
    import os

    return tortoise_config(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mlpatron_dev"))


# `tortoise -c app.core.db.TORTOISE_ORM makemigrations` reads this.
TORTOISE_ORM = _cli_config()
