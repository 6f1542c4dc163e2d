"""Versioned bodies (project/run notes, discussion/comment bodies).

Every write locks the owning row, checks the optimistic `base_version`, bumps the version and
appends a Revision in the same transaction, so concurrent writers from one base get exactly one
winner and the history never has gaps. The functions are generic over the model and its
body/version columns; callers check permissions first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from tortoise.models import Model
from tortoise.transactions import in_transaction

from app.accounts.models import User
from app.core import limits
from app.core.errors import ValidationError
from app.revisions.errors import EditNotApplicable, VersionConflict
from app.revisions.models import Revision

M = TypeVar("M", bound=Model)
BODY_MAX = limits.BODY
MAX_EDITS = 100


class TextEditLike(Protocol):
    """`TextEdit` or the GraphQL `TextEditInput`: anything with these two attributes."""

    old_text: str
    new_text: str


@dataclass(frozen=True)
class TextEdit:
    old_text: str
    new_text: str


async def record(entity_type: str, entity_id: Any, version: int, body: str, editor: User | None,
                 edit_summary: str = "") -> Revision:
    return await Revision.create(
        entity_type=entity_type, entity_id=entity_id, version=version, body=body, editor=editor,
        edit_summary=edit_summary[:300],
    )


def _occurrences(text: str, needle: str, stop: int = 2) -> tuple[int, int]:
    """(count up to `stop`, first index). Overlapping matches count: "aa" in "aaa" is ambiguous."""
    first = text.find(needle)
    count, at = 0, first
    while at != -1 and count < stop:
        count += 1
        at = text.find(needle, at + 1)
    return count, first


def check_edits(edits: Sequence[TextEditLike]) -> None:
    """Shape errors that need no state: reported before anything is locked."""
    if not edits:
        raise ValidationError({"edits": "at least one edit"})
    if len(edits) > MAX_EDITS:
        raise ValidationError({"edits": f"at most {MAX_EDITS} edits"})
    empty = {f"edits.{i}.oldText": "must not be empty" for i, e in enumerate(edits) if not e.old_text}
    if empty:
        raise ValidationError(empty)


def apply_edits(body: str, edits: Sequence[TextEditLike]) -> str:
    """Apply edits in order, each to the result of the previous; all or nothing."""
    check_edits(edits)
    for index, edit in enumerate(edits):
        count, at = _occurrences(body, edit.old_text)
        if count != 1:
            raise EditNotApplicable(index, count)
        body = body[:at] + edit.new_text + body[at + len(edit.old_text):]
    return body


def check_body(body: str, *, field: str, max_length: int = BODY_MAX, required: bool = False) -> None:
    if len(body) > max_length:
        raise ValidationError({field: f"at most {max_length} characters"})
    if required and not body.strip():
        raise ValidationError({field: "must not be empty"})


async def _write(locked: M, body_field: str, version_field: str, entity_type: str, body: str, editor: User | None,
                 summary: str, extra: Mapping[str, Any]) -> None:
    changed = dict(extra)
    if body != getattr(locked, body_field):
        version = getattr(locked, version_field) + 1
        changed |= {body_field: body, version_field: version}
        await record(entity_type, locked.pk, version, body, editor, summary)
    if not changed:
        return  # identical body: no new version, no revision
    for name, value in changed.items():
        setattr(locked, name, value)
    auto_now = [n for n, f in locked._meta.fields_map.items() if getattr(f, "auto_now", False)]
    await locked.save(update_fields=[*changed, *auto_now])


async def apply_patch(
    entity: M, body_field: str, version_field: str, entity_type: str, base_version: int,
    edits: Sequence[TextEditLike], editor: User | None, summary: str = "", *,
    max_length: int = BODY_MAX, required: bool = False, field: str | None = None,
) -> M:
    """Search/replace `edits` on `entity.<body_field>` written at `base_version`.

    Raises ValidationError (no/empty edits, result too long or empty when `required`),
    VersionConflict (stale base: carries the current body) or EditNotApplicable. Returns the
    refreshed entity. Must not run inside an outer transaction that outlives the call.
    """
    check_edits(edits)
    async with in_transaction():
        locked = await type(entity).select_for_update().get(pk=entity.pk)
        current = getattr(locked, version_field)
        if base_version != current:
            raise VersionConflict(current, getattr(locked, body_field))
        body = apply_edits(getattr(locked, body_field), edits)
        check_body(body, field=field or body_field, max_length=max_length, required=required)
        await _write(locked, body_field, version_field, entity_type, body, editor, summary, {})
    return locked


async def replace_body(
    entity: M, body_field: str, version_field: str, entity_type: str, body: str | None, editor: User | None,
    summary: str = "", base_version: int | None = None, *, max_length: int = BODY_MAX, required: bool = False,
    field: str | None = None, extra_fields: Mapping[str, Any] | None = None,
) -> M:
    """Full replace of the body (None: keep it). `base_version` None means last write wins.

    `extra_fields` (e.g. a title) are saved in the same locked write, so `updateDiscussion` /
    `updateRun` change title and body atomically. An unchanged body creates no revision.
    """
    if body is not None:
        check_body(body, field=field or body_field, max_length=max_length, required=required)
    async with in_transaction():
        locked = await type(entity).select_for_update().get(pk=entity.pk)
        current_body = getattr(locked, body_field)
        changes_body = body is not None and body != current_body
        if changes_body and base_version is not None and base_version != getattr(locked, version_field):
            raise VersionConflict(getattr(locked, version_field), current_body)
        await _write(locked, body_field, version_field, entity_type, body if body is not None else current_body,
                     editor, summary, extra_fields or {})
    return locked
