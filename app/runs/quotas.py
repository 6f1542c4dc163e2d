"""Dryrun quotas per user: in any 24 hours (DRYRUNS_PER_DAY) and at once (CONCURRENT_DRYRUNS).

Counted from the jobs themselves, not from requests: a refused or replayed createRun costs
nothing, and the count is as durable as the jobs. The check runs inside the transaction that
creates the dryrun, under a per-user advisory lock, so API replicas racing for the last slot
are served one after the other and exactly `limit` dryruns start.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

from tortoise.transactions import in_transaction

from app.core.errors import QuotaExceeded
from app.core.settings import get_settings

DAY = timedelta(days=1)
# While a dryrun runs we cannot know when it ends; its deadline bounds the wait, this shortens it.
CONCURRENT_RETRY_SECONDS = 15

_RECENT = """SELECT j.created_at FROM jobs j JOIN runs r ON r.id = j.run_id
WHERE r.creator_id = $1 AND j.kind = 'dryrun' AND j.created_at > $2 ORDER BY j.created_at DESC LIMIT $3"""
_ACTIVE = """SELECT j.created_at FROM runs r JOIN jobs j ON j.id = r.dryrun_job_id
WHERE r.creator_id = $1 AND r.status = 'dryrun' ORDER BY j.created_at LIMIT $2"""


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(math.ceil((moment - now).total_seconds()), 1)


async def reserve_dryrun(user_id: uuid.UUID) -> None:
    """Raise QuotaExceeded if `user_id` may not start another dryrun now. Call inside the
    transaction that creates the dryrun job: the lock is held until it commits."""
    settings = get_settings()
    now = datetime.now(UTC)
    async with in_transaction() as conn:
        await conn.execute_query("SELECT pg_advisory_xact_lock(hashtext('dryrun-quota:' || $1))", [str(user_id)])
        _, recent = await conn.execute_query(_RECENT, [user_id, now - DAY, settings.dryruns_per_day])
        if len(recent) >= settings.dryruns_per_day:
            # The oldest of the last `limit` dryruns leaves the 24-hour window first.
            wait = _seconds_until(recent[-1]["created_at"] + DAY, now)
            raise QuotaExceeded("DRYRUNS_PER_DAY", settings.dryruns_per_day, wait,
                                f"At most {settings.dryruns_per_day} dryruns in 24 hours; the next one can start "
                                f"in {wait} s.")
        _, active = await conn.execute_query(_ACTIVE, [user_id, settings.concurrent_dryruns])
        if len(active) >= settings.concurrent_dryruns:
            deadline = active[0]["created_at"] + timedelta(seconds=settings.dryrun_deadline_seconds)
            wait = min(_seconds_until(deadline, now), CONCURRENT_RETRY_SECONDS)
            raise QuotaExceeded("CONCURRENT_DRYRUNS", settings.concurrent_dryruns, wait,
                                f"At most {settings.concurrent_dryruns} dryruns at once; wait for one to finish "
                                f"(or cancel one) and retry.")
