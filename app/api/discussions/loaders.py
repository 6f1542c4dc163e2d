"""Batched reads of discussions and comments nested under other lists (one statement per field)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.api.context import Info
from app.api.nodes import ModelNode
from app.api.pagination import Connection, Keyset
from app.api.windows import Window
from app.discussions.models import Comment, Discussion

if TYPE_CHECKING:  # built through ModelNode.of: types.py imports this module
    from app.api.discussions.types import CommentType, DiscussionType

THREADS = Window(Comment, "discussion_id")
# A project's discussions; deleted ones left out (like `services.listing`).
PROJECT_DISCUSSIONS = Window(Discussion, "project_id", where=(("deleted_at", None),))


async def comments(info: Info, discussion_id: Any, first: int | None, after: str | None) -> Connection[CommentType]:
    """`Discussion.comments`: depth-first thread order (the materialised path)."""
    return await info.context.loaders.page(THREADS, Keyset.of(first, after, sort="path"), discussion_id,
                                           ModelNode.of)


async def project_discussions(info: Info, project_id: Any, first: int | None, after: str | None, last: int | None,
                              before: str | None) -> Connection[DiscussionType]:
    """`Project.discussions`: pinned first, then by latest activity."""
    return await info.context.loaders.page(PROJECT_DISCUSSIONS, Keyset.of(first, after, last, before, sort="-sort_key"),
                                           project_id, ModelNode.of)
