"""The email outbox: mail is written in the same transaction as the notification that causes it and
delivered by `OutboxSender` with retries, so an SMTP outage delays mail but never loses it.

Delivery claims due rows with `FOR UPDATE SKIP LOCKED`, so any number of processes may run a sender
and each mail is handed to SMTP by one of them. A mail counts as sent once the server accepted it;
only a crash between that acceptance and the commit marking it sent can repeat it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.core.settings import get_settings
from app.core.tasks import cancel_and_wait
from app.events.bus import publish
from app.events.hub import Hub
from app.notifications import email
from app.notifications.models import OutboxEmail

log = logging.getLogger("mlpatron.outbox")

TOPIC = "outbox"
BATCH = 50
MAX_ATTEMPTS = 12  # with the backoff below: about a day of retries
IDLE_RECHECK_SECONDS = 60.0  # also catches wake-ups lost while Redis was away

_CLAIM = """
SELECT id, to_address, subject, body, unsubscribe_url, attempts FROM email_outbox
WHERE sent_at IS NULL AND attempts < $1 AND next_attempt_at <= now()
ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
"""


async def enqueue(mails: list[email.OutgoingEmail], using_db: BaseDBAsyncClient) -> None:
    """Write mails in the caller's transaction; call `announce()` after it commits."""
    now = datetime.now(UTC)
    await OutboxEmail.bulk_create([
        OutboxEmail(to_address=m.to, subject=m.subject, body=m.text, unsubscribe_url=m.unsubscribe_url,
                    next_attempt_at=now) for m in mails], using_db=using_db)


async def announce() -> None:
    """Wake the senders (any process): new mail is due."""
    await publish(TOPIC)


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after the `attempts`-th failure, capped at an hour."""
    base = get_settings().email_retry_base_seconds
    return timedelta(seconds=min(base * 2 ** (attempts - 1), 3600.0))


async def deliver_due() -> int:
    """One pass: send every due mail (up to a batch); returns how many were handed over (sent or failed)."""
    settings = get_settings()
    if not settings.smtp_host:
        return 0
    async with in_transaction() as conn:
        rows = await conn.execute_query_dict(_CLAIM, [MAX_ATTEMPTS, BATCH])
        if not rows:
            return 0
        mails = [email.OutgoingEmail(to=r["to_address"], subject=r["subject"], text=r["body"],
                                     unsubscribe_url=r["unsubscribe_url"]) for r in rows]
        outcome = await asyncio.to_thread(email.deliver, settings.smtp_host, settings.smtp_port,
                                          settings.email_from, mails)
        now = datetime.now(UTC)
        sent = [r["id"] for r, error in zip(rows, outcome, strict=True) if error is None]
        if sent:
            await OutboxEmail.filter(id__in=sent).using_db(conn).update(sent_at=now)
        for row, error in zip(rows, outcome, strict=True):
            if error is not None:
                attempts = row["attempts"] + 1
                await OutboxEmail.filter(id=row["id"]).using_db(conn).update(
                    attempts=attempts, last_error=error, next_attempt_at=now + retry_delay(attempts))
                if attempts >= MAX_ATTEMPTS:
                    log.error("giving up on mail %s to %s after %d attempts: %s", row["id"], row["to_address"],
                              attempts, error)
    return len(rows)


async def seconds_until_next_due() -> float | None:
    row = await OutboxEmail.filter(sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS).order_by(
        "next_attempt_at").first().values("next_attempt_at")
    if row is None:
        return None
    return max(0.0, (row["next_attempt_at"] - datetime.now(UTC)).total_seconds())


class OutboxSender:
    """Delivers the outbox in the background: on a wake-up, when a retry falls due, and every minute."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="email-outbox")

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        async with self._hub.listen(TOPIC) as signal:
            while True:
                wait = IDLE_RECHECK_SECONDS
                try:
                    while await deliver_due() == BATCH:
                        pass
                    due = await seconds_until_next_due()
                    if due is not None:
                        wait = min(wait, max(due, 1.0))  # rows locked by another sender: no spin
                except Exception:
                    log.exception("email outbox pass failed")
                await signal.wait(wait)
