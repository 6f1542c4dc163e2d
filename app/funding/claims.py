"""Insert-once claims: the first writer of a unique key wins, later ones learn they lost.

`INSERT … ON CONFLICT DO NOTHING` waits for a concurrent inserter of the same key to commit or
roll back, so exactly one transaction gets True (idempotency keys, Stripe event ids) and a
loser's transaction stays usable (no IntegrityError aborting it).
"""

from __future__ import annotations

from typing import Any

from tortoise import connections
from tortoise.models import Model


async def insert_once(model: type[Model], **values: Any) -> bool:
    """Insert a row unless one with the same unique key exists; True when this call inserted it."""
    columns = list(values)
    sql = (
        f'INSERT INTO "{model._meta.db_table}" ({", ".join(columns)}) '
        f"VALUES ({', '.join(f'${i}' for i in range(1, len(columns) + 1))}) ON CONFLICT DO NOTHING RETURNING 1"
    )
    rows = await connections.get(model._meta.default_connection or "default").execute_query_dict(
        sql, list(values.values())
    )
    return bool(rows)
