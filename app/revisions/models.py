from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields

from app.core.models import Entity

if TYPE_CHECKING:
    from app.accounts.models import User


class Revision(Entity):
    """One version of a versioned body (project/run notes, discussion/comment bodies)."""

    entity_type = fields.CharField(max_length=20)
    entity_id = fields.UUIDField()
    version = fields.IntField()
    body = fields.TextField()
    editor: fields.ForeignKeyNullableRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="revisions", null=True, on_delete=fields.SET_NULL
    )
    editor_id: uuid.UUID | None
    edit_summary = fields.CharField(max_length=300, default="")

    class Meta:
        table = "revisions"
        unique_together = (("entity_type", "entity_id", "version"),)
