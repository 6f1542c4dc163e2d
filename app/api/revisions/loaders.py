"""Batched revision histories: `notesHistory` / `bodyHistory` of every entity on a page in one statement."""

from __future__ import annotations

from typing import Any

from app.api.context import Info
from app.api.pagination import Connection, Keyset
from app.api.revisions.types import RevisionType
from app.api.windows import Window
from app.revisions.models import Revision


async def history(info: Info, entity_type: str, entity_id: Any, *, first: int | None = None, after: str | None = None,
                  last: int | None = None, before: str | None = None) -> Connection[RevisionType]:
    """Newest first; page to older revisions with `after: pageInfo.endCursor`."""
    window = Window(Revision, "entity_id", where=(("entity_type", entity_type),))
    keyset = Keyset.of(first, after, last, before, sort="-version")
    return await info.context.loaders.page(window, keyset, entity_id, RevisionType.from_model)
