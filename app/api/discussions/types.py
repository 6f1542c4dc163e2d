from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry import relay

from app.accounts.models import User
from app.api.context import Info
from app.api.discussions.loaders import comments
from app.api.nodes import ModelNode
from app.api.pagination import EMPTY_PAGE, Connection
from app.api.revisions.loaders import history
from app.discussions.models import Comment, Discussion
from app.projects.models import Project
from app.revisions.markdown import render_markdown

if TYPE_CHECKING:
    from app.api.accounts.types import UserType
    from app.api.projects.types import ProjectType
    from app.api.revisions.types import RevisionType

# Other domains' types, resolved by strawberry when the schema is built (this module imports none).
UserRef = Annotated["UserType", strawberry.lazy("app.api.accounts.types")]
RevisionRef = Annotated["RevisionType", strawberry.lazy("app.api.revisions.types")]

DELETED = "[deleted]"


async def _history(info: Info, entity_type: str, row: Any, first: int | None, after: str | None, last: int | None,
                   before: str | None) -> Connection[RevisionRef]:
    if row.is_deleted:  # a deleted body must not stay readable through its history
        return Connection(edges=[], page_info=EMPTY_PAGE)
    return await history(info, entity_type, row.id, first=first, after=after, last=last, before=before)


async def _user(info: Info, user_id: str | None) -> UserRef | None:
    user = await info.context.loaders.get(User, user_id) if user_id else None
    return ModelNode.of(user) if user else None


@strawberry.type(name="Discussion")
class DiscussionType(ModelNode):
    model = Discussion
    id: relay.NodeID[str]
    title: str
    body: str = strawberry.field(description='Markdown as written; "[deleted]" once deleted.')
    body_version: int
    is_pinned: bool
    is_deleted: bool
    comment_count: int = strawberry.field(description="Comments ever posted, deleted ones included.")
    last_activity_at: datetime
    created_at: datetime
    updated_at: datetime
    author_id: strawberry.Private[str | None]
    project_id: strawberry.Private[str | None]

    @classmethod
    def from_model(cls, row: Discussion) -> DiscussionType:
        deleted = row.deleted_at is not None
        return cls(
            id=str(row.id), title=DELETED if deleted else row.title, body=DELETED if deleted else row.body,
            body_version=row.body_version, is_pinned=row.is_pinned, is_deleted=deleted,
            comment_count=row.comment_count, last_activity_at=row.last_activity_at, created_at=row.created_at,
            updated_at=row.updated_at, author_id=None if deleted else str(row.author_id),
            project_id=str(row.project_id) if row.project_id else None,
        )

    @strawberry.field(description="The body rendered to sanitised HTML.")
    def body_html(self) -> str:
        return render_markdown(self.body)

    @strawberry.field(description="Null once deleted.")
    async def author(self, info: Info) -> UserRef | None:
        return await _user(info, self.author_id)

    @strawberry.field(description="Null for a platform-level discussion.")
    async def project(self, info: Info) -> Annotated[ProjectType, strawberry.lazy("app.api.projects.types")] | None:
        row = await info.context.loaders.get(Project, self.project_id) if self.project_id else None
        return ModelNode.of(row) if row else None

    @strawberry.field(description="Depth-first thread order: each reply follows its parent, oldest first.")
    async def comments(self, info: Info, first: int | None = None,
                       after: str | None = None) -> Connection[CommentType]:
        return await comments(info, self.id, first, after)

    @strawberry.field(description="Body revisions, newest first; empty once deleted.")
    async def body_history(self, info: Info, first: int | None = None, after: str | None = None,
                           last: int | None = None, before: str | None = None) -> Connection[RevisionRef]:
        return await _history(info, "discussion", self, first, after, last, before)


@strawberry.type(name="Comment")
class CommentType(ModelNode):
    model = Comment
    id: relay.NodeID[str]
    body: str = strawberry.field(description='Markdown as written; "[deleted]" once deleted.')
    body_version: int
    depth: int = strawberry.field(description="0 for a top-level comment, parent's depth + 1 for a reply.")
    is_deleted: bool
    created_at: datetime
    updated_at: datetime
    author_id: strawberry.Private[str | None]
    parent_id: strawberry.Private[str | None]
    discussion_id: strawberry.Private[str]

    @classmethod
    def from_model(cls, row: Comment) -> CommentType:
        deleted = row.deleted_at is not None
        return cls(
            id=str(row.id), body=DELETED if deleted else row.body, body_version=row.body_version, depth=row.depth,
            is_deleted=deleted, created_at=row.created_at, updated_at=row.updated_at,
            author_id=None if deleted else str(row.author_id),
            parent_id=str(row.parent_id) if row.parent_id else None, discussion_id=str(row.discussion_id),
        )

    @strawberry.field(description="The body rendered to sanitised HTML.")
    def body_html(self) -> str:
        return render_markdown(self.body)

    @strawberry.field(description="Null once deleted.")
    async def author(self, info: Info) -> UserRef | None:
        return await _user(info, self.author_id)

    @strawberry.field(description="The comment this replies to; null for a top-level comment.")
    async def parent(self, info: Info) -> CommentType | None:
        row = await info.context.loaders.get(Comment, self.parent_id) if self.parent_id else None
        return CommentType.from_model(row) if row else None

    @strawberry.field
    async def discussion(self, info: Info) -> DiscussionType:
        return DiscussionType.from_model(await info.context.loaders.require(Discussion, self.discussion_id))

    @strawberry.field(description="Body revisions, newest first; empty once deleted.")
    async def body_history(self, info: Info, first: int | None = None, after: str | None = None,
                           last: int | None = None, before: str | None = None) -> Connection[RevisionRef]:
        return await _history(info, "comment", self, first, after, last, before)
