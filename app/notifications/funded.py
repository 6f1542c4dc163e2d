"""RUN_FUNDED: the run's creator and the project's owner hear who gave how much, written in the
background instead of on the funding's request path.

`fundRun` commits each funding with its notice pending (`Funding.notice_funded_cents`, the run's
funded total right after it). `FundingNotifier` claims pending fundings in batches, writes their
notifications (and emails, into the outbox) and clears the pending mark in one transaction, so each
funding's notice is written exactly once, also with several processes (claims skip rows another
process holds) and across a crash (the mark stays until the commit). Concurrent fundings coalesce:
one pass writes every notice pending by then with a few statements, not a transaction per funding.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from tortoise.transactions import in_transaction

from app.core.ids import encode_id
from app.core.tasks import cancel_and_wait
from app.events.hub import Signal
from app.funding.models import Funding
from app.funding.money import dollars
from app.notifications import services
from app.notifications.models import NotificationKind
from app.runs.models import Run

log = logging.getLogger("mlpatron.notifications")

BATCH = 500
# Pending notices a process left behind when it died are written by the others this often (and
# by any process at its start).
RECHECK_SECONDS = 30.0

# $1 batch size. The mark is cleared in the claiming statement; the transaction makes it stick
# only together with the notifications.
_CLAIM = """
WITH due AS (
    SELECT id, created_at, run_id, funder_id, amount_cents, notice_funded_cents FROM fundings
    WHERE notice_funded_cents IS NOT NULL ORDER BY created_at LIMIT $1 FOR NO KEY UPDATE SKIP LOCKED
), told AS (
    UPDATE fundings f SET notice_funded_cents = NULL FROM due WHERE f.id = due.id
)
SELECT d.amount_cents, d.notice_funded_cents AS funded_cents, d.funder_id, u.handle AS funder_handle,
       r.id AS run_id, r.title AS run_title, r.creator_id, r.estimated_cost_cents, r.project_id,
       p.title AS project_title, p.owner_id
FROM due d JOIN runs r ON r.id = d.run_id JOIN projects p ON p.id = r.project_id JOIN users u ON u.id = d.funder_id
ORDER BY d.created_at
"""


def _notice(row: dict[str, Any]) -> services.Notice:
    gap = max((row["estimated_cost_cents"] or 0) - row["funded_cents"], 0)
    payload = {
        "runId": encode_id("Run", row["run_id"]), "runTitle": row["run_title"],
        "projectId": encode_id("Project", row["project_id"]), "projectTitle": row["project_title"],
        "funderHandle": row["funder_handle"], "amountCents": row["amount_cents"],
        "amount": dollars(row["amount_cents"]),
        "progress": f"{dollars(row['funded_cents'])} funded, {dollars(gap)} to go" if gap > 0 else "fully funded",
    }
    # Not the funder, who just did it.
    recipients = [r for r in (row["creator_id"], row["owner_id"]) if str(r) != str(row["funder_id"])]
    return services.Notice(services.distinct_recipients(recipients), payload, row["project_id"])


async def notify_pending(batch: int = BATCH) -> int:
    """Write the notices of up to `batch` pending fundings; how many fundings were claimed."""
    kind = NotificationKind.RUN_FUNDED
    async with in_transaction() as conn:
        due = await conn.execute_query_dict(_CLAIM, [batch])
        rows, mails = await services.write(kind, [_notice(r) for r in due], conn)
    await services.announce(kind, rows, mails)
    return len(due)


class FundingNotifier:
    """Writes pending RUN_FUNDED notices in the background: at start, when this process commits a
    funding (`funding_committed`, a lifecycle funding listener), and every RECHECK_SECONDS."""

    def __init__(self) -> None:
        self._due = Signal()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="funding-notices")

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def funding_committed(self, funding: Funding, run: Run) -> None:
        self._due.set()

    async def _run(self) -> None:
        while True:
            try:
                while await notify_pending() == BATCH:
                    pass
            except Exception:  # the marks stay: the next pass writes them
                log.exception("writing RUN_FUNDED notices failed")
            await self._due.wait(RECHECK_SECONDS)
