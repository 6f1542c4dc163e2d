from __future__ import annotations

import uuid

from tortoise import fields

from app.core.models import Entity


class User(Entity):
    handle = fields.CharField(max_length=40, unique=True)
    display_name = fields.CharField(max_length=100)
    email = fields.CharField(max_length=254, unique=True)
    password_hash = fields.CharField(max_length=200, null=True)
    is_admin = fields.BooleanField(default=False)
    bio = fields.TextField(default="")

    class Meta:
        table = "users"


class Session(Entity):
    """A browser login. Only the SHA-256 of the cookie value is stored."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="sessions", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID
    token_hash = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "sessions"


class ApiKey(Entity):
    """An agent credential `mlp_sk_…`. Only its SHA-256 is stored; the prefix identifies it in lists."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="api_keys", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID
    name = fields.CharField(max_length=100)
    prefix = fields.CharField(max_length=16)
    key_hash = fields.CharField(max_length=64, unique=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_keys"
        indexes = (("user_id", "created_at"),)
