"""In-app notifications, project follows, per-kind preferences and email unsubscribe tokens."""

from __future__ import annotations

import enum
import uuid
from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.models import Model

from app.core.models import Entity

if TYPE_CHECKING:
    from app.accounts.models import User
    from app.projects.models import Project


class NotificationKind(enum.StrEnum):
    RUN_STATUS_CHANGED = "RUN_STATUS_CHANGED"
    NEW_DISCUSSION = "NEW_DISCUSSION"
    NEW_COMMENT = "NEW_COMMENT"
    RUN_FUNDED = "RUN_FUNDED"


class Notification(Entity):
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="notifications", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID
    kind = fields.CharField(max_length=40)
    project: fields.ForeignKeyNullableRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="notifications", null=True, on_delete=fields.CASCADE
    )
    project_id: uuid.UUID | None
    message = fields.CharField(max_length=500)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    read_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notifications"
        indexes = (("user_id", "created_at"),)  # column names: migrations do not map FK names


class ProjectSubscription(Entity):
    """A user following a project (run status changes, new discussions)."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="project_subscriptions", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "models.Project", related_name="subscriptions", on_delete=fields.CASCADE
    )
    project_id: uuid.UUID

    class Meta:
        table = "project_subscriptions"
        indexes = (("project_id", "user_id"),)  # a project's followers
        unique_together = (("user", "project"),)


class NotificationPreference(Model):
    """Only kinds a user changed have a row; the rest use the defaults in `services`."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="notification_preferences", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID
    kind = fields.CharField(max_length=40)
    in_app = fields.BooleanField()
    email = fields.BooleanField()

    class Meta:
        table = "notification_preferences"
        unique_together = (("user", "kind"),)


class UnsubscribeToken(Entity):
    """One per email sent; only the SHA-256 of the token in the link is stored."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="unsubscribe_tokens", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID
    kind = fields.CharField(max_length=40)
    token_hash = fields.CharField(max_length=64, unique=True)

    class Meta:
        table = "unsubscribe_tokens"


class OutboxEmail(Model):
    """An email waiting for (or done with) delivery, written in the notification's transaction."""

    id = fields.BigIntField(primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    to_address = fields.CharField(max_length=254)
    subject = fields.CharField(max_length=500)
    body = fields.TextField()
    unsubscribe_url = fields.CharField(max_length=500)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)
    last_error = fields.CharField(max_length=500, default="")

    class Meta:
        table = "email_outbox"
        indexes = (("sent_at", "next_attempt_at"),)
