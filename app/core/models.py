"""Shared model columns: UUID keys (safe to expose inside global ids) and creation time."""

from tortoise import fields
from tortoise.models import Model


class Entity(Model):
    id = fields.UUIDField(primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        abstract = True
