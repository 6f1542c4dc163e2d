"""Versioned bodies: every write of notes/bodies appends a Revision with the new version."""

from __future__ import annotations

from typing import Any

from app.accounts.models import User
from app.revisions.models import Revision


async def record(entity_type: str, entity_id: Any, version: int, body: str, editor: User | None,
                 edit_summary: str = "") -> Revision:
    return await Revision.create(
        entity_type=entity_type, entity_id=entity_id, version=version, body=body, editor=editor,
        edit_summary=edit_summary[:300],
    )
