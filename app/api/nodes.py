"""Relay `Node` support for types backed by a tortoise model."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from typing import Any, ClassVar, Self

from strawberry import relay
from tortoise.models import Model

from app.api.context import Info


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


class ModelNode(relay.Node):
    """Subclasses set `model` and implement `from_model`; `visible` hides nodes from some callers."""

    model: ClassVar[type[Model]]

    @classmethod
    def from_model(cls, row: Any) -> Self:
        raise NotImplementedError

    @classmethod
    def visible(cls, info: Info, row: Any) -> bool:
        return True

    @classmethod
    async def resolve_nodes(
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        async def one(node_id: str) -> Self | None:
            key = _uuid_or_none(node_id)
            row = await info.context.loaders.get(cls.model, key) if key else None
            return cls.from_model(row) if row is not None and cls.visible(info, row) else None

        return list(await asyncio.gather(*(one(n) for n in node_ids)))
