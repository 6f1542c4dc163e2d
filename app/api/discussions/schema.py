"""Discussions API: lists, threads, create/edit/patch/delete, pin; rate limited per user."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.api import ratelimit
from app.api.context import Info
from app.api.discussions.types import CommentType, DiscussionType
from app.api.errors import InvalidStateError, ValidationFailed, typed_errors
from app.api.ids import decode_id
from app.api.pagination import Connection, paginate
from app.api.revisions.types import (
    EditNotApplicableError,
    PatchTextInput,
    VersionConflictError,
    VersionedBody,
    patch_body,
)
from app.core.settings import get_settings
from app.discussions import services
from app.discussions.models import Comment, Discussion
from app.projects.models import Project

DISCUSSION_BODY = VersionedBody(Discussion, "Discussion", "discussion", max_length=services.BODY_MAX, required=True)
COMMENT_BODY = VersionedBody(Comment, "Comment", "comment", max_length=services.COMMENT_MAX, required=True)


async def load_discussion(info: Info, id: strawberry.ID) -> Discussion:
    row = await info.context.loaders.node(Discussion, id, "Discussion")
    return row


async def load_comment(info: Info, id: strawberry.ID) -> Comment:
    row = await info.context.loaders.node(Comment, id, "Comment")
    return row


async def _rate_limit(info: Info, bucket: str, per_hour: int, per_hour_api_key: int) -> None:
    """One count per user whatever the credential; agents (API keys) hit the lower ceiling first."""
    user = info.context.require_user()
    limit = per_hour_api_key if info.context.api_key is not None else per_hour
    await ratelimit.hit(info.context.require_services(), bucket, str(user.id), limit, 3600)


async def _discussion_limit(info: Info) -> None:
    s = get_settings()
    await _rate_limit(info, "discussion", s.discussions_per_hour, s.discussions_per_hour_api_key)


async def _comment_limit(info: Info) -> None:
    s = get_settings()
    await _rate_limit(info, "comment", s.comments_per_hour, s.comments_per_hour_api_key)


@strawberry.type
class DiscussionsQuery:
    @strawberry.field(description="A project's discussions, or platform-level ones without `projectId`: "
                                  "pinned first, then by latest activity.")
    async def discussions(
        self, info: Info, first: int | None = None, after: str | None = None, last: int | None = None,
        before: str | None = None, project_id: strawberry.ID | None = None,
    ) -> Connection[DiscussionType]:
        project = (await info.context.loaders.node(Project, project_id, "Project")).id if project_id else None
        return await paginate(services.listing(project), DiscussionType.from_model, first=first, after=after,
                              last=last, before=before, sort="-sort_key")

    @strawberry.field(description="A discussion with its comment thread (deleted ones show as [deleted]).")
    async def discussion(self, info: Info, id: strawberry.ID) -> DiscussionType:
        return DiscussionType.from_model(await load_discussion(info, id))


@strawberry.input
class CreateProjectDiscussionInput:
    project_id: strawberry.ID
    title: str
    body: str


@strawberry.input
class CreateDiscussionInput:
    title: str
    body: str


@strawberry.input
class UpdateDiscussionInput:
    id: strawberry.ID
    title: str | None = None
    body: str | None = None
    body_base_version: int | None = strawberry.field(
        default=None, description="Optimistic lock for `body`; omit for last-write-wins."
    )
    edit_summary: str = ""


@strawberry.input
class DiscussionIdInput:
    id: strawberry.ID


@strawberry.input
class CreateCommentInput:
    discussion_id: strawberry.ID
    parent_id: strawberry.ID | None = strawberry.field(default=None, description="Reply to this comment.")
    body: str


@strawberry.input
class UpdateCommentInput:
    id: strawberry.ID
    body: str
    body_base_version: int | None = strawberry.field(
        default=None, description="Optimistic lock for `body`; omit for last-write-wins."
    )
    edit_summary: str = ""


@strawberry.input
class CommentIdInput:
    id: strawberry.ID


@strawberry.type
class DiscussionSuccess:
    discussion: DiscussionType


@strawberry.type
class CommentSuccess:
    comment: CommentType


def _discussion(row: Discussion) -> DiscussionSuccess:
    return DiscussionSuccess(discussion=DiscussionType.from_model(row))


def _comment(row: Comment) -> CommentSuccess:
    return CommentSuccess(comment=CommentType.from_model(row))


CreateDiscussionPayload = Annotated[DiscussionSuccess | ValidationFailed, strawberry.union("CreateDiscussionPayload")]
UpdateDiscussionPayload = Annotated[
    DiscussionSuccess | ValidationFailed | VersionConflictError | InvalidStateError,
    strawberry.union("UpdateDiscussionPayload"),
]
PatchDiscussionBodyPayload = Annotated[
    DiscussionSuccess | VersionConflictError | EditNotApplicableError | ValidationFailed | InvalidStateError,
    strawberry.union("PatchDiscussionBodyPayload"),
]
PinDiscussionPayload = Annotated[DiscussionSuccess | InvalidStateError, strawberry.union("PinDiscussionPayload")]
CreateCommentPayload = Annotated[
    CommentSuccess | ValidationFailed | InvalidStateError, strawberry.union("CreateCommentPayload")
]
UpdateCommentPayload = Annotated[
    CommentSuccess | ValidationFailed | VersionConflictError | InvalidStateError,
    strawberry.union("UpdateCommentPayload"),
]
PatchCommentBodyPayload = Annotated[
    CommentSuccess | VersionConflictError | EditNotApplicableError | ValidationFailed | InvalidStateError,
    strawberry.union("PatchCommentBodyPayload"),
]


@strawberry.type
class DiscussionsMutation:
    @strawberry.mutation(description="Start a discussion on a project. Rate limited: 10/hour, 5 with an API key.")
    @typed_errors
    async def create_project_discussion(
        self, info: Info, input: CreateProjectDiscussionInput,
    ) -> CreateDiscussionPayload:
        user = info.context.require_user()
        project = await info.context.loaders.node(Project, input.project_id, "Project")
        row = await services.create_discussion(user, title=input.title, body=input.body, project=project,
                                               admit=lambda: _discussion_limit(info))
        return _discussion(row)

    @strawberry.mutation(description="Start a platform-level discussion (feature requests, general topics).")
    @typed_errors
    async def create_discussion(self, info: Info, input: CreateDiscussionInput) -> CreateDiscussionPayload:
        user = info.context.require_user()
        row = await services.create_discussion(user, title=input.title, body=input.body,
                                               admit=lambda: _discussion_limit(info))
        return _discussion(row)

    @strawberry.mutation(description="Author only. Full replace; fields left out keep their value.")
    @typed_errors
    async def update_discussion(self, info: Info, input: UpdateDiscussionInput) -> UpdateDiscussionPayload:
        user = info.context.require_user()
        row = await load_discussion(info, input.id)
        row = await services.update_discussion(user, row, title=input.title, body=input.body,
                                               base_version=input.body_base_version, summary=input.edit_summary)
        return _discussion(row)

    @strawberry.mutation(description="Author only. Search/replace edits on the body.")
    async def patch_discussion_body(self, info: Info, input: PatchTextInput) -> PatchDiscussionBodyPayload:
        row = await patch_body(info, input, DISCUSSION_BODY, authorize=services.check_author, success=lambda row: row)
        if not isinstance(row, Discussion):
            return row  # the typed error
        await services.announce_change(row, "edited")
        return _discussion(row)

    @strawberry.mutation(description="Author, project owner or admin. Soft delete: the thread keeps its shape.")
    async def delete_discussion(self, info: Info, input: DiscussionIdInput) -> DiscussionSuccess:
        user = info.context.require_user()
        return _discussion(await services.delete_discussion(user, await load_discussion(info, input.id)))

    @strawberry.mutation(description="Project owner or admin (platform discussions: admin).")
    async def pin_discussion(self, info: Info, input: DiscussionIdInput) -> PinDiscussionPayload:
        return await _set_pinned(info, input, True)

    @strawberry.mutation(description="Project owner or admin (platform discussions: admin).")
    async def unpin_discussion(self, info: Info, input: DiscussionIdInput) -> PinDiscussionPayload:
        return await _set_pinned(info, input, False)

    @strawberry.mutation(description="Comment or reply (`parentId`). Rate limited: 30/hour, 15 with an API key.")
    @typed_errors
    async def create_comment(self, info: Info, input: CreateCommentInput) -> CreateCommentPayload:
        user = info.context.require_user()
        discussion = await load_discussion(info, input.discussion_id)
        parent = decode_id(input.parent_id, "Comment") if input.parent_id else None
        row = await services.create_comment(user, discussion, body=input.body, parent_id=parent,
                                            admit=lambda: _comment_limit(info))
        return _comment(row)

    @strawberry.mutation(description="Author only. Full replace of the body.")
    @typed_errors
    async def update_comment(self, info: Info, input: UpdateCommentInput) -> UpdateCommentPayload:
        user = info.context.require_user()
        row = await load_comment(info, input.id)
        row = await services.update_comment(user, row, body=input.body, base_version=input.body_base_version,
                                            summary=input.edit_summary)
        return _comment(row)

    @strawberry.mutation(description="Author only. Search/replace edits on the body.")
    async def patch_comment_body(self, info: Info, input: PatchTextInput) -> PatchCommentBodyPayload:
        row = await patch_body(info, input, COMMENT_BODY, authorize=services.check_author, success=lambda row: row)
        if not isinstance(row, Comment):
            return row  # the typed error
        await services.announce_change(row, "edited")
        return _comment(row)

    @strawberry.mutation(description="Author, project owner or admin. Soft delete: replies stay in place.")
    async def delete_comment(self, info: Info, input: CommentIdInput) -> CommentSuccess:
        user = info.context.require_user()
        return _comment(await services.delete_comment(user, await load_comment(info, input.id)))


@typed_errors
async def _set_pinned(info: Info, input: DiscussionIdInput, pinned: bool) -> PinDiscussionPayload:
    user = info.context.require_user()
    row = await load_discussion(info, input.id)
    row = await services.set_pinned(user, row, pinned)
    return _discussion(row)
