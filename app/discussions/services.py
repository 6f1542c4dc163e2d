"""Discussions and threaded comments: create, edit (author), pin (moderators), soft delete.

Moderators of a project discussion are the project owner and admins; of a platform discussion,
admins. Soft delete keeps rows (the thread keeps its shape); the API masks their content.
Notifications go out after the write has committed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from app.accounts.models import User
from app.core import limits
from app.core.errors import Forbidden, InvalidState, ValidationError
from app.core.ids import encode_id
from app.discussions.models import Comment, Discussion
from app.events import services as events
from app.notifications import services as notifications
from app.notifications.models import NotificationKind
from app.projects.models import Project
from app.revisions import services as revisions

log = logging.getLogger("mlpatron.discussions")
TITLE_MAX = limits.TITLE
BODY_MAX = limits.DISCUSSION
COMMENT_MAX = limits.COMMENT
MAX_DEPTH = 30  # 30 path segments of 9 characters fit Comment.path
PATH_DIGITS = 8
# Pinned discussions sort above any activity time (microseconds since 1970 stay below 10**17 until 5138).
PIN_BOOST = 10**17


def sort_key(is_pinned: bool, last_activity_at: datetime) -> int:
    return (PIN_BOOST if is_pinned else 0) + int(last_activity_at.timestamp() * 1_000_000)


def _title(title: str) -> str:
    title = title.strip()
    if not (1 <= len(title) <= TITLE_MAX):
        raise ValidationError({"title": f"1-{TITLE_MAX} characters"})
    return title


def _validate(title: str | None, body: str | None, body_max: int) -> None:
    errors: dict[str, str] = {}
    if title is not None:
        try:
            _title(title)
        except ValidationError as err:
            errors |= err.fields
    if body is not None:
        try:
            revisions.check_body(body, field="body", max_length=body_max, required=True)
        except ValidationError as err:
            errors |= err.fields
    if errors:
        raise ValidationError(errors)


# ---- permissions ---------------------------------------------------------------------------


async def _owner_id(project_id: Any) -> str | None:
    if project_id is None:
        return None
    owner = await Project.filter(id=project_id).values_list("owner_id", flat=True)
    return str(owner[0]) if owner else None


async def is_moderator(actor: User, discussion: Discussion) -> bool:
    return actor.is_admin or await _owner_id(discussion.project_id) == str(actor.id)


def check_author(actor: User, row: Discussion | Comment) -> None:
    """Editing: the author only, and not after deletion."""
    if row.author_id != actor.id:
        raise Forbidden("Only the author can edit this.")
    if row.deleted_at is not None:
        raise InvalidState("It was deleted and can no longer be edited.")


# ---- discussions ---------------------------------------------------------------------------


Admit = Callable[[], Awaitable[None]] | None


async def create_discussion(author: User, *, title: str, body: str, project: Project | None = None,
                            admit: Admit = None) -> Discussion:
    """`admit` (the rate limit) runs after validation, so a rejected draft costs no quota."""
    _validate(title, body, BODY_MAX)
    if admit is not None:
        await admit()
    now = datetime.now(UTC)
    async with in_transaction():
        discussion = await Discussion.create(
            project=project, author=author, title=_title(title), body=body, last_activity_at=now,
            sort_key=sort_key(False, now),
        )
        await revisions.record("discussion", discussion.id, 1, body, author, "created")
    if project is not None:
        payload = {"discussionId": encode_id("Discussion", discussion.id), "discussionTitle": discussion.title,
                   "projectId": encode_id("Project", project.id), "projectTitle": project.title,
                   "authorHandle": author.handle}
        recipients = [project.owner_id, *await notifications.followers(project.id)]
        await _notify(NotificationKind.NEW_DISCUSSION, _others(recipients, author), payload, project.id)
    return discussion


async def update_discussion(
    actor: User, discussion: Discussion, *, title: str | None, body: str | None, base_version: int | None,
    summary: str = "",
) -> Discussion:
    check_author(actor, discussion)
    _validate(title, body, BODY_MAX)
    updated = await revisions.replace_body(
        discussion, "body", "body_version", "discussion", body, actor, summary, base_version,
        max_length=BODY_MAX, required=True, extra_fields={"title": _title(title)} if title is not None else None,
    )
    await announce_change(updated, "edited")
    return updated


async def set_pinned(actor: User, discussion: Discussion, pinned: bool) -> Discussion:
    if not await is_moderator(actor, discussion):
        who = "the project owner or an admin" if discussion.project_id else "an admin"
        raise Forbidden(f"Only {who} can pin or unpin this discussion.")
    async with in_transaction():
        locked = await Discussion.select_for_update().get(id=discussion.id)
        if locked.deleted_at is not None:
            raise InvalidState("A deleted discussion cannot be pinned.")
        locked.is_pinned = pinned
        locked.sort_key = sort_key(pinned, locked.last_activity_at)
        await locked.save(update_fields=["is_pinned", "sort_key"])
    return locked


async def delete_discussion(actor: User, discussion: Discussion) -> Discussion:
    """Author, project owner or admin. Idempotent; also unpins, so it leaves the top of the list."""
    if discussion.author_id != actor.id and not await is_moderator(actor, discussion):
        raise Forbidden("Only the author, the project owner or an admin can delete this discussion.")
    async with in_transaction():
        locked = await Discussion.select_for_update().get(id=discussion.id)
        if locked.deleted_at is None:
            locked.deleted_at = datetime.now(UTC)
            locked.is_pinned = False
            locked.sort_key = sort_key(False, locked.last_activity_at)
            await locked.save(update_fields=["deleted_at", "is_pinned", "sort_key"])
    await announce_change(locked, "deleted")
    return locked


def listing(project_id: Any = None) -> QuerySet[Discussion]:
    """A project's discussions, or platform-level ones when `project_id` is None; deleted ones left out."""
    qs = Discussion.filter(deleted_at__isnull=True)
    return qs.filter(project_id=project_id) if project_id is not None else qs.filter(project_id__isnull=True)


# ---- comments ------------------------------------------------------------------------------


async def create_comment(author: User, discussion: Discussion, *, body: str, parent_id: Any = None,
                         admit: Admit = None) -> Comment:
    _validate(None, body, COMMENT_MAX)
    if admit is not None:
        await admit()
    async with in_transaction():
        # The lock serialises comment numbering and excludes a concurrent delete.
        locked = await Discussion.select_for_update().get(id=discussion.id)
        if locked.deleted_at is not None:
            raise InvalidState("The discussion was deleted; it takes no new comments.")
        parent = await _parent(locked, parent_id) if parent_id is not None else None
        locked.comment_count += 1
        segment = f"{locked.comment_count:0{PATH_DIGITS}d}"
        comment = await Comment.create(
            discussion=locked, parent=parent, author=author, body=body,
            path=f"{parent.path}.{segment}" if parent else segment, depth=parent.depth + 1 if parent else 0,
        )
        await revisions.record("comment", comment.id, 1, body, author, "created")
        locked.last_activity_at = comment.created_at
        locked.sort_key = sort_key(locked.is_pinned, comment.created_at)
        await locked.save(update_fields=["comment_count", "last_activity_at", "sort_key"])
    await _notify_comment(locked, comment, author)
    return comment


async def _parent(discussion: Discussion, parent_id: Any) -> Comment:
    parent = await Comment.get_or_none(id=parent_id, discussion_id=discussion.id)
    if parent is None:
        raise ValidationError({"parentId": "no such comment in this discussion"})
    if parent.deleted_at is not None:
        raise InvalidState("The comment you reply to was deleted.")
    if parent.depth + 1 >= MAX_DEPTH:
        raise ValidationError({"parentId": f"threads nest at most {MAX_DEPTH} levels; reply higher up"})
    return parent


async def _notify_comment(discussion: Discussion, comment: Comment, author: User) -> None:
    """Replies reach the project's owner and followers and everyone who took part in the thread."""
    participants = await Comment.filter(discussion_id=discussion.id).distinct().values_list("author_id", flat=True)
    recipients = [discussion.author_id, *participants]
    payload: dict[str, Any] = {
        "discussionId": encode_id("Discussion", discussion.id), "discussionTitle": discussion.title,
        "commentId": encode_id("Comment", comment.id), "authorHandle": author.handle,
    }
    if discussion.project_id is not None:
        recipients += [await _owner_id(discussion.project_id), *await notifications.followers(discussion.project_id)]
        payload["projectId"] = encode_id("Project", discussion.project_id)
    await _notify(NotificationKind.NEW_COMMENT, _others(recipients, author), payload, discussion.project_id)


async def _notify(kind: NotificationKind, recipients: list[str], payload: dict[str, Any], project_id: Any) -> None:
    """The post is committed: a failing notification is logged, it does not fail the mutation.
    Project posts also go to the project's activity stream (`projectActivity`)."""
    try:
        if project_id is not None:
            activity = "discussion" if kind == NotificationKind.NEW_DISCUSSION else "comment"
            await events.append(f"project:{project_id}", activity, payload)
        await notifications.notify(kind, recipients, payload, project_id=project_id)
    except Exception:
        log.exception("notifying %s failed", kind)


def _others(recipients: list[Any], author: User) -> list[str]:
    return [str(r) for r in recipients if r is not None and str(r) != str(author.id)]


async def update_comment(actor: User, comment: Comment, *, body: str, base_version: int | None,
                         summary: str = "") -> Comment:
    check_author(actor, comment)
    updated = await revisions.replace_body(comment, "body", "body_version", "comment", body, actor, summary,
                                           base_version, max_length=COMMENT_MAX, required=True)
    await announce_change(updated, "edited")
    return updated


async def delete_comment(actor: User, comment: Comment) -> Comment:
    """Author, the discussion's project owner or admin. Idempotent; replies stay in place."""
    if comment.author_id != actor.id and not await is_moderator(actor, await Discussion.get(id=comment.discussion_id)):
        raise Forbidden("Only the author, the project owner or an admin can delete this comment.")
    if comment.deleted_at is None:
        comment.deleted_at = datetime.now(UTC)
        await Comment.filter(id=comment.id, deleted_at__isnull=True).update(deleted_at=comment.deleted_at)
    await announce_change(comment, "deleted")
    return comment


async def announce_change(row: Discussion | Comment, change: str) -> None:
    """An edit or deletion (`change`) of a project post goes to the project's activity stream
    (`discussion_edited`, `comment_deleted`, …), so pages showing it update without a reload.
    The change is committed: a failing append is logged, it does not fail the mutation."""
    discussion = row if isinstance(row, Discussion) else await Discussion.get(id=row.discussion_id)
    if discussion.project_id is None:
        return
    payload = {"discussionId": encode_id("Discussion", discussion.id)}
    if isinstance(row, Comment):
        payload["commentId"] = encode_id("Comment", row.id)
    try:
        await events.append(f"project:{discussion.project_id}", f"{type(row).__name__.lower()}_{change}", payload)
    except Exception:
        log.exception("announcing a %s %s failed", type(row).__name__, change)

