from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields

from app.core.models import Entity

if TYPE_CHECKING:
    from app.accounts.models import User


class Project(Entity):
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "models.User", related_name="projects", on_delete=fields.RESTRICT
    )
    owner_id: uuid.UUID
    title = fields.CharField(max_length=200)
    git_url = fields.CharField(max_length=500)
    notes = fields.TextField(default="")
    notes_version = fields.IntField(default=1)
    # Surplus kept by the project (`to_project` policy); moved only through the ledger.
    balance_cents = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "projects"
        # Keyset pages: by owner newest first, and recently updated (column names: migrations do not map FKs).
        indexes = (("owner_id", "created_at", "id"), ("updated_at", "id"))
