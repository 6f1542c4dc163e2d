"""Notifications: who hears about what, in-app rows, email with one-click unsubscribe, preferences.

`notify` is the one entry point producers call, after their own transaction has committed:
it writes the in-app rows and the emails (into the outbox, `outbox.py`) in one transaction,
then appends a `user:<id>` event per row (the realtime wake-up) and wakes the outbox sender.
Preferences are per kind with merge semantics; missing rows mean the default.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from app.accounts.models import User
from app.core.errors import ValidationError
from app.core.ids import encode_id
from app.core.settings import get_settings
from app.events import services as events
from app.funding.models import Funding
from app.funding.money import dollars
from app.jobs.models import Job
from app.notifications import email, outbox
from app.notifications.models import (
    Notification,
    NotificationKind,
    NotificationPreference,
    ProjectSubscription,
    UnsubscribeToken,
)
from app.runs.models import Run


@dataclass(frozen=True)
class Preference:
    kind: NotificationKind
    in_app: bool
    email: bool


@dataclass(frozen=True)
class PreferenceChange:
    """None leaves the current value unchanged (merge semantics)."""

    kind: NotificationKind
    in_app: bool | None = None
    email: bool | None = None


DEFAULT_IN_APP = True
DEFAULT_EMAIL = True

_MESSAGES = {
    NotificationKind.RUN_STATUS_CHANGED: 'Run "{runTitle}" in {projectTitle} is now {newStatus} (was {oldStatus}).',
    NotificationKind.NEW_DISCUSSION: '{authorHandle} started a discussion in {projectTitle}: "{discussionTitle}".',
    NotificationKind.NEW_COMMENT: '{authorHandle} replied in "{discussionTitle}".',
    NotificationKind.RUN_FUNDED: '{funderHandle} funded {amount} of "{runTitle}" in {projectTitle}: {progress}.',
}

# What a status change means for the people told about it, with the money it moved; the
# generic sentence above is for any other change.
_STATUS_MESSAGES = {
    "awaiting funding": 'The dryrun of "{runTitle}" in {projectTitle} succeeded: the run needs {estimate} to start.',
    "dryrun failed": 'The dryrun of "{runTitle}" in {projectTitle} failed, so the run cannot be funded; '
                     'its log says why.',
    "funded": '"{runTitle}" in {projectTitle} is fully funded: {funded} from {patrons}. It starts now.',
    "running": '"{runTitle}" in {projectTitle} started running.',
    "completed": '"{runTitle}" in {projectTitle} completed. It cost {cost} of the {funded} funded{surplus}.',
    "failed": '"{runTitle}" in {projectTitle} failed. It cost {cost} of the {funded} funded{surplus}.',
    "cancelled": '"{runTitle}" in {projectTitle} was cancelled{surplus}.',
}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def render_message(kind: NotificationKind, payload: dict[str, Any]) -> str:
    template = _MESSAGES[kind]
    if kind is NotificationKind.RUN_STATUS_CHANGED:
        template = _STATUS_MESSAGES.get(payload.get("newStatus", ""), template)
    return template.format_map(_Blank(payload))[:500]


def _link(kind: NotificationKind, payload: dict[str, Any]) -> str:
    base = get_settings().public_url
    if kind in (NotificationKind.RUN_STATUS_CHANGED, NotificationKind.RUN_FUNDED):
        return f"{base}/runs/{payload.get('runId', '')}"
    return f"{base}/discussions/{payload.get('discussionId', '')}"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ---- preferences ---------------------------------------------------------------------------


async def _effective(user_ids: Sequence[str], kind: NotificationKind) -> dict[str, Preference]:
    rows = await NotificationPreference.filter(user_id__in=list(user_ids), kind=kind.value)
    stored = {str(r.user_id): Preference(kind, r.in_app, r.email) for r in rows}
    return {uid: stored.get(uid, Preference(kind, DEFAULT_IN_APP, DEFAULT_EMAIL)) for uid in user_ids}


async def preferences(user_id: Any) -> list[Preference]:
    """The effective preference for every kind."""
    rows = {r.kind: r for r in await NotificationPreference.filter(user_id=user_id)}
    return [
        Preference(k, rows[k].in_app, rows[k].email) if k in rows else Preference(k, DEFAULT_IN_APP, DEFAULT_EMAIL)
        for k in NotificationKind
    ]


# One statement per kind, so concurrent updates of different fields never overwrite each other.
_UPSERT = """
INSERT INTO notification_preferences (user_id, kind, in_app, email)
VALUES ($1, $2, COALESCE($3::boolean, $5::boolean), COALESCE($4::boolean, $6::boolean))
ON CONFLICT (user_id, kind) DO UPDATE SET
  in_app = COALESCE($3::boolean, notification_preferences.in_app),
  email = COALESCE($4::boolean, notification_preferences.email)
"""


async def update_preferences(user_id: Any, changes: Sequence[PreferenceChange]) -> list[Preference]:
    kinds = [c.kind for c in changes]
    if len(set(kinds)) != len(kinds):
        raise ValidationError({"preferences": "each kind at most once"})
    conn = connections.get("default")
    for change in changes:
        await conn.execute_query(_UPSERT, [str(user_id), change.kind.value, change.in_app, change.email,
                                           DEFAULT_IN_APP, DEFAULT_EMAIL])
    return await preferences(user_id)


async def unsubscribe(token: str, *, all_kinds: bool = False) -> NotificationKind | None:
    """Turn email off for the token's kind (or every kind). Raises ValidationError for an unknown token.

    Returns the kind that was turned off, or None when all kinds were."""
    row = await UnsubscribeToken.get_or_none(token_hash=_sha256(token.strip())) if token.strip() else None
    if row is None:
        raise ValidationError({"token": "unknown unsubscribe token"})
    kinds = list(NotificationKind) if all_kinds else [NotificationKind(row.kind)]
    await update_preferences(row.user_id, [PreferenceChange(k, email=False) for k in kinds])
    return None if all_kinds else kinds[0]


# ---- follows -------------------------------------------------------------------------------


async def follow(user_id: Any, project_id: Any) -> None:
    """Idempotent: following twice keeps one subscription."""
    if await ProjectSubscription.filter(user_id=user_id, project_id=project_id).exists():
        return
    with contextlib.suppress(IntegrityError):  # a concurrent follow won
        await ProjectSubscription.create(user_id=user_id, project_id=project_id)


async def unfollow(user_id: Any, project_id: Any) -> None:
    await ProjectSubscription.filter(user_id=user_id, project_id=project_id).delete()


async def followers(project_id: Any) -> list[str]:
    ids = await ProjectSubscription.filter(project_id=project_id).order_by("created_at").values_list(
        "user_id", flat=True)
    return [str(i) for i in ids]


# ---- delivery ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """One message of a kind to its recipients (user ids, distinct)."""

    recipients: list[str]
    payload: dict[str, Any]
    project_id: Any = None


def distinct_recipients(recipients: Iterable[Any]) -> list[str]:
    return list(dict.fromkeys(str(r) for r in recipients if r is not None))


async def notify(kind: NotificationKind | str, recipients: Iterable[Any], payload: dict[str, Any],
                 project_id: Any = None) -> list[Notification]:
    """Notify each distinct recipient once, by their preferences for `kind`.

    Call outside any transaction: it commits the rows before publishing `user:<id>` events.
    Returns the in-app notifications written.
    """
    kind = NotificationKind(kind)
    notice = Notice(distinct_recipients(recipients), payload, project_id)
    if not notice.recipients:
        return []
    async with in_transaction() as conn:
        rows, mails = await write(kind, [notice], conn)
    await announce(kind, rows, mails)
    return rows


async def write(kind: NotificationKind, notices: Sequence[Notice],
                conn: BaseDBAsyncClient) -> tuple[list[Notification], int]:
    """The in-app rows and queued emails of `notices` (by each recipient's preferences), in the
    caller's transaction: (rows written, emails queued). Call `announce` after it commits."""
    prefs = await _effective(list({uid: None for n in notices for uid in n.recipients}), kind)
    rows: list[Notification] = []
    wanted: list[tuple[str, str, dict[str, Any]]] = []  # (user id, message, payload) to email
    emailing = email.email_enabled()
    for notice in notices:
        message = render_message(kind, notice.payload)
        rows += [Notification(user_id=uid, kind=kind.value, project_id=notice.project_id, message=message,
                              payload=notice.payload) for uid in notice.recipients if prefs[uid].in_app]
        if emailing:
            wanted += [(uid, message, notice.payload) for uid in notice.recipients if prefs[uid].email]
    if rows:
        await Notification.bulk_create(rows, using_db=conn)
    return rows, await _emails(kind, wanted, conn)


async def announce(kind: NotificationKind, rows: Sequence[Notification], mails: int) -> None:
    """After the commit of `write`: a `user:<id>` event per row (the realtime wake-up; one
    statement per user), then the outbox sender is woken."""
    per_user: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        per_user.setdefault(str(row.user_id), []).append(
            {"id": encode_id("Notification", row.id), "kind": kind.value})
    for user_id, payloads in per_user.items():
        await events.append_many(f"user:{user_id}", "notification", payloads)
    if mails:
        await outbox.announce()


async def _emails(kind: NotificationKind, wanted: list[tuple[str, str, dict[str, Any]]],
                  conn: BaseDBAsyncClient) -> int:
    """Queue one email per (user, message), each with its own unsubscribe token, in the caller's transaction."""
    if not wanted:
        return 0
    addresses = {str(u.id): u.email for u in await User.filter(id__in={uid for uid, _, _ in wanted}).using_db(conn)}
    mails = [(uid, message, payload, secrets.token_urlsafe(24)) for uid, message, payload in wanted if uid in addresses]
    await UnsubscribeToken.bulk_create(
        [UnsubscribeToken(user_id=uid, kind=kind.value, token_hash=_sha256(token)) for uid, _, _, token in mails],
        using_db=conn)
    base = get_settings().public_url
    await outbox.enqueue([
        email.OutgoingEmail(to=addresses[uid], subject=message, text=f"{message}\n\n{_link(kind, payload)}",
                            unsubscribe_url=f"{base}/unsubscribe?token={token}")
        for uid, message, payload, token in mails
    ], conn)
    return len(mails)


async def notify_run_status(run_id: Any, old_status: str, new_status: str) -> list[Notification]:
    """After a run status change: the run's creator, its funders and the project's followers, once each."""
    run = await Run.get_or_none(id=run_id).prefetch_related("project")
    if run is None:
        return []
    fundings = await Funding.filter(run_id=run.id).order_by("created_at")
    funders = [f.funder_id for f in fundings]
    recipients = [run.creator_id, *funders, *await followers(run.project_id)]
    payload = {
        "runId": encode_id("Run", run.id), "runTitle": run.title,
        "projectId": encode_id("Project", run.project_id), "projectTitle": run.project.title,
        "oldStatus": old_status.replace("_", " "), "newStatus": new_status.replace("_", " "),
        **await _money_words(run, fundings),
    }
    return await notify(NotificationKind.RUN_STATUS_CHANGED, recipients, payload, project_id=run.project_id)


async def _money_words(run: Run, fundings: list[Funding]) -> dict[str, str]:
    """The amounts a status message names, in dollars: estimate, funded, cost, who paid, where the rest went."""
    handles = dict(await User.filter(id__in={f.funder_id for f in fundings}).values_list("id", "handle"))
    names = list(dict.fromkeys(handles.get(f.funder_id, "someone") for f in fundings))
    patrons = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    refunded = sum(f.refunded_cents for f in fundings)
    kept = sum(f.to_project_cents for f in fundings)
    surplus = [f"{dollars(refunded)} was refunded to its patrons"] if refunded else []
    surplus += [f"{dollars(kept)} went to the project balance"] if kept else []
    cost = cast(list[int | None], await Job.filter(id=run.funded_job_id).values_list(
        "actual_cost_cents", flat=True)) if run.funded_job_id else []
    return {
        "estimate": dollars(run.estimated_cost_cents or 0), "funded": dollars(run.funded_cents),
        "patrons": patrons or "nobody", "cost": dollars(cost[0] or 0) if cost else dollars(0),
        "surplus": "; " + " and ".join(surplus) if surplus else "",
    }


async def on_run_status(run: Run, old_status: str) -> None:
    """Run-status listener (wired by `app.main.start_runtime`): a new run tells nobody, its creator just made it."""
    if old_status:
        await notify_run_status(run.id, old_status, run.status)


# ---- reading -------------------------------------------------------------------------------


def for_user(user_id: Any, *, is_read: bool | None = None, project_id: Any = None) -> QuerySet[Notification]:
    qs = Notification.filter(user_id=user_id)
    if is_read is not None:
        qs = qs.filter(read_at__isnull=not is_read)
    if project_id is not None:
        qs = qs.filter(project_id=project_id)
    return qs


async def unread_count(user_id: Any) -> int:
    return await for_user(user_id, is_read=False).count()


async def mark_read(user_id: Any, notification_id: Any) -> Notification | None:
    """None when the notification is not the user's (indistinguishable from missing)."""
    row = await Notification.get_or_none(id=notification_id, user_id=user_id)
    if row is not None and row.read_at is None:
        row.read_at = datetime.now(UTC)
        if await Notification.filter(id=row.id, read_at__isnull=True).update(read_at=row.read_at):
            await events.append(f"user:{user_id}", "read", {"id": encode_id("Notification", row.id)})
    return row


async def mark_all_read(user_id: Any, project_id: Any = None) -> int:
    count = await for_user(user_id, is_read=False, project_id=project_id).update(read_at=datetime.now(UTC))
    if count:
        await events.append(f"user:{user_id}", "read", {"count": count})
    return count
