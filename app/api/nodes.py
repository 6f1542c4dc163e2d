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
    """Subclasses set `model` and implement `from_model`; `visible` hides nodes from some callers.

    Each subclass registers for its model, so a resolver can return another domain's type for a
    row (`ModelNode.of(row)`) without importing that domain's GraphQL module."""

    model: ClassVar[type[Model]]
    _by_model: ClassVar[dict[type[Model], type[ModelNode]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "model" in cls.__dict__:
            ModelNode._by_model[cls.model] = cls

    @staticmethod
    def of(row: Model) -> Any:
        """The GraphQL type registered for the row's model, built from the row."""
        return ModelNode._by_model[type(row)].from_model(row)

    @classmethod
    def from_model(cls, row: Any) -> Self:
        raise NotImplementedError

    @classmethod
    def visible(cls, info: Info, row: Any) -> bool:
        return True

    @classmethod
    async def resolve_nodes(  # type: ignore[override]  # async and keyword-only, as strawberry calls it
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Self | None]:
        async def one(node_id: str) -> Self | None:
            key = _uuid_or_none(node_id)
            row = await info.context.loaders.get(cls.model, key) if key else None
            return cls.from_model(row) if row is not None and cls.visible(info, row) else None

        return list(await asyncio.gather(*(one(n) for n in node_ids)))
