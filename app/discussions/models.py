"""Discussions (project-level or platform-level) and their threaded comments."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields

from app.core.models import Entity

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.projects.models import Project


class Discussion(Entity):
    # null: a platform-level discussion
    project: fields.ForeignKeyNullableRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="discussions", null=True, on_delete=fields.RESTRICT
    )
    project_id: uuid.UUID | None
    author: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="discussions", on_delete=fields.RESTRICT
    )
    author_id: uuid.UUID
    title = fields.CharField(max_length=200)
    body = fields.TextField()
    body_version = fields.IntField(default=1)
    is_pinned = fields.BooleanField(default=False)
    # Also numbers the comments (their thread path); soft-deleted comments stay counted.
    comment_count = fields.IntField(default=0)
    last_activity_at = fields.DatetimeField()
    # Pinned first, then latest activity, folded into one column so lists are a keyset range scan.
    sort_key = fields.BigIntField()
    deleted_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "discussions"
        indexes = (("project_id", "sort_key"),)  # column names: migrations do not map FK names


class Comment(Entity):
    discussion: fields.ForeignKeyRelation[Discussion] = fields.ForeignKeyField(
        "models.Discussion", related_name="comments", on_delete=fields.RESTRICT
    )
    discussion_id: uuid.UUID
    parent: fields.ForeignKeyNullableRelation[Comment] = fields.ForeignKeyField(
        "models.Comment", related_name="replies", null=True, on_delete=fields.RESTRICT
    )
    parent_id: uuid.UUID | None
    author: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="comments", on_delete=fields.RESTRICT
    )
    author_id: uuid.UUID
    body = fields.TextField()
    body_version = fields.IntField(default=1)
    # Materialised path of zero-padded comment numbers ("00000001.00000004"): ordering by it lists
    # the thread depth-first, oldest first among siblings, with a single keyset column.
    path = fields.CharField(max_length=300)
    depth = fields.IntField(default=0)
    deleted_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "comments"
        unique_together = (("discussion", "path"),)
