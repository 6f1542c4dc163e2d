"""Bulk data for the read benchmarks, written with generate_series in a few statements (not the API).

Rows get every NOT NULL column (tortoise's defaults live in Python, not in the schema).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg

RUN_STATUSES = ["awaiting_funding", "funded", "completed", "dryrun", "dryrun_failed", "cancelled"]


async def users(conn: asyncpg.Connection, prefix: str, n: int) -> None:
    await conn.execute(
        """INSERT INTO users (id, created_at, handle, display_name, email, is_admin, bio)
           SELECT gen_random_uuid(), now() - make_interval(secs => i), $1 || '-' || i, 'User ' || i,
                  $1 || '-' || i || '@bench.test', false, ''
           FROM generate_series(1, $2) i""", prefix, n)


async def projects(conn: asyncpg.Connection, owner_prefix: str, n: int, age_days: int = 0,
                   title: str = "Project") -> None:
    """`n` projects titled `<title> <i>`, the i-th owned by `<owner_prefix>-<i>`; smaller i is newer."""
    await conn.execute(
        """INSERT INTO projects (id, created_at, owner_id, title, git_url, notes, notes_version, balance_cents,
                                 updated_at)
           SELECT gen_random_uuid(), now() - make_interval(days => $3, secs => i), u.id, $4 || ' ' || i,
                  'https://example.com/p' || i || '.git', '# Notes of project ' || i, 1, 0, now()
           FROM generate_series(1, $2) i JOIN users u ON u.handle = $1 || '-' || i""", owner_prefix, n, age_days,
        title)


async def runs(conn: asyncpg.Connection, project_title: str, n: int, age_days: int = 0, start: int = 1,
               statuses: list[str] = RUN_STATUSES, funded: bool = True) -> None:
    """Runs `start`..`n` spread over the projects whose title starts with `project_title`; smaller i is newer.
    `funded=False` leaves `funded_cents` at 0 (books that balance without fundings)."""
    await conn.execute(
        """WITH p AS (SELECT id, owner_id, row_number() OVER (ORDER BY id) - 1 AS k, count(*) OVER () AS total
                      FROM projects WHERE title LIKE $1 || ' %')
           INSERT INTO runs (id, created_at, project_id, creator_id, title, status, uri, version, commit_sha,
                             entry_point, parameters, gpu_type, gpu_count, machine_type, spot, dryrun_override_param,
                             dryrun_override_value, notes, notes_version, estimated_cost_cents,
                             estimated_duration_seconds, estimate_detail, funded_cents, updated_at)
           SELECT gen_random_uuid(), now() - make_interval(days => $3, secs => i), p.id, p.owner_id, 'Run ' || i,
                  ($4::text[])[1 + i % cardinality($4::text[])], 'https://example.com/r.git', 'main', repeat('a', 40),
                  'main', '{"epochs": "10", "lr": "0.01"}', 'l4', 1, 'g2-standard-4', false, 'epochs', '1',
                  '', 1, 1000 + i % 5000, 3600, '{"hourly": 100, "seconds": 3600, "detail": "x"}',
                  CASE WHEN $6 THEN (i * 7) % 1000 ELSE 0 END,
                  now()
           FROM generate_series($5::int, $2) i JOIN p ON p.k = i % p.total""",
        project_title, n, age_days, statuses, start, funded)


async def jobs(conn: asyncpg.Connection, pending_every: int) -> None:
    """A dryrun job for each run without one; every `pending_every`-th is pending, the rest finished."""
    await conn.execute(
        """INSERT INTO jobs (id, created_at, run_id, kind, status, executor, handle, spec, deadline_seconds,
                             log_seq, event_seq)
           SELECT gen_random_uuid(), r.created_at, r.id, 'dryrun',
                  CASE WHEN row_number() OVER (ORDER BY r.created_at, r.id) % $1 = 0 THEN 'pending' ELSE 'succeeded'
                  END, 'local', '{}', '{"command": "python train.py"}', 600, 0, 0
           FROM runs r WHERE NOT EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.id)""", pending_every)


async def fundings(conn: asyncpg.Connection, patron_prefix: str, patrons: int, per_run: int) -> None:
    """`per_run` fundings for each run without any."""
    await conn.execute(
        """INSERT INTO fundings (id, created_at, run_id, funder_id, amount_cents, credit_cents, cash_cents,
                                 project_balance_cents, surplus_policy, refunded_cents, to_project_cents)
           SELECT gen_random_uuid(), r.created_at + make_interval(secs => k), r.id, u.id, 100 * k, 100 * k, 0, 0,
                  'to_project', 0, 0
           FROM runs r CROSS JOIN generate_series(1, $3) k
           JOIN users u ON u.handle = $1 || '-' || (1 + (k + abs(hashtext(r.id::text))) % $2)
           WHERE NOT EXISTS (SELECT 1 FROM fundings f WHERE f.run_id = r.id)""", patron_prefix, patrons, per_run)


async def discussions(conn: asyncpg.Connection, author_handle: str, n: int, comments: int, start: int = 1) -> None:
    """Platform discussions `start`..`n` with `comments` comments each."""
    await conn.execute(
        """INSERT INTO discussions (id, created_at, project_id, author_id, title, body, body_version, is_pinned,
                                    comment_count, last_activity_at, sort_key, updated_at)
           SELECT gen_random_uuid(), now() - make_interval(secs => i), NULL, u.id, 'Discussion ' || i, 'Body', 1,
                  false, $3, now() - make_interval(secs => i), -i, now()
           FROM generate_series($4::int, $2) i JOIN users u ON u.handle = $1""", author_handle, n, comments, start)
    await conn.execute(
        """INSERT INTO comments (id, created_at, discussion_id, parent_id, author_id, body, body_version, path, depth,
                                 updated_at)
           SELECT gen_random_uuid(), d.created_at + make_interval(secs => c), d.id, NULL, d.author_id,
                  'Comment ' || c, 1, lpad(c::text, 8, '0'), 0, now()
           FROM discussions d CROSS JOIN generate_series(1, $1) c
           WHERE NOT EXISTS (SELECT 1 FROM comments x WHERE x.discussion_id = d.id)""", comments)


async def analyze(conn: asyncpg.Connection) -> None:
    """Fresh statistics and visibility map, as a database that has been running a while has."""
    await conn.execute("VACUUM ANALYZE")


@contextlib.asynccontextmanager
async def scratch_database(server_url: str, prefix: str) -> AsyncIterator[str]:
    """A fresh migrated database on the server for one benchmark run, dropped afterwards (a 10^6-row
    run leaves gigabytes otherwise)."""
    from app.core.db import close_db, migrate_db
    from app.embedded.postgres import create_database

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    database_url = await create_database(server_url, name)
    try:
        await migrate_db(database_url)
        await close_db()
        yield database_url
    finally:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
