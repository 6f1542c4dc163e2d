from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields

from app.core.models import Entity

if TYPE_CHECKING:
    from app.accounts.models import User


class Feedback(Entity):
    """A bug report, feature request or question sent to the platform team."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="feedback", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID
    type = fields.CharField(max_length=20)  # bug | feature | question
    title = fields.CharField(max_length=200)
    description = fields.TextField()

    class Meta:
        table = "feedback"
