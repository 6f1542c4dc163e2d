"""Per-request DataLoaders: one SQL query per relation per request, whatever the page size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from strawberry.dataloader import DataLoader
from tortoise.models import Model

M = TypeVar("M", bound=Model)


class ByIdLoader(DataLoader[Any, M | None], Generic[M]):
    def __init__(self, model: type[M]) -> None:
        self.model = model
        super().__init__(load_fn=self._load)

    async def _load(self, keys: Sequence[Any]) -> list[M | None]:
        rows = await self.model.filter(id__in=list(keys))
        by_id = {str(r.pk): r for r in rows}
        return [by_id.get(str(k)) for k in keys]


class Loaders:
    """Lazily creates one loader per model for the lifetime of a request."""

    def __init__(self) -> None:
        self._by_id: dict[type[Model], ByIdLoader[Any]] = {}

    def by_id(self, model: type[M]) -> ByIdLoader[M]:
        loader = self._by_id.get(model)
        if loader is None:
            loader = self._by_id[model] = ByIdLoader(model)
        return loader

    async def get(self, model: type[M], id_: Any) -> M | None:
        return await self.by_id(model).load(str(id_))

    async def node(self, model: type[M], global_id: Any, type_name: str) -> M:
        """The row behind a global id of `type_name`: BAD_USER_INPUT if malformed, NOT_FOUND if absent."""
        from app.api.errors import NotFound
        from app.api.ids import decode_id

        row = await self.get(model, decode_id(global_id, type_name))
        if row is None:
            raise NotFound(type_name)
        return row

    async def require(self, model: type[M], id_: Any) -> M:
        """A row a foreign key guarantees (RESTRICT on delete): missing means corrupt data."""
        row = await self.get(model, id_)
        if row is None:
            raise LookupError(f"{model.__name__} {id_} is missing")
        return row
