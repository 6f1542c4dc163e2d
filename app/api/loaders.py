"""Per-request DataLoaders: one SQL query per relation per request, whatever the page size."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

from strawberry.dataloader import DataLoader
from tortoise import connections
from tortoise.models import Model

from app.api.errors import NotFound
from app.api.ids import decode_id
from app.api.pagination import Connection, Keyset
from app.api.rows import hydrate_all
from app.api.windows import Window

M = TypeVar("M", bound=Model)
K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


class ByIdLoader(DataLoader[Any, M | None], Generic[M]):
    def __init__(self, model: type[M]) -> None:
        self.model = model
        # Not a bound method: the loader would reference itself, a cycle that keeps its rows alive
        # until the collector's next full pass instead of freeing them with the request.
        super().__init__(load_fn=partial(_load_by_id, model))


async def _load_by_id(model: type[M], keys: Sequence[Any]) -> list[M | None]:
    # Plain SQL: building a queryset with 50 ids costs more than the query.
    ids = [str(k) for k in keys]
    meta = model._meta
    _, records = await connections.get("default").execute_query(
        f"SELECT * FROM {meta.db_table} WHERE {meta.db_pk_column} = ANY($1::uuid[])", [ids])
    by_id = {str(getattr(row, meta.pk_attr)): row for row in hydrate_all(model, records)}
    return [by_id.get(k) for k in ids]


class Loaders:
    """Lazily creates one loader per model for the lifetime of a request."""

    def __init__(self) -> None:
        self._by_id: dict[type[Model], ByIdLoader[Any]] = {}
        self._batches: dict[Hashable, DataLoader[Any, Any]] = {}

    def by_id(self, model: type[M]) -> ByIdLoader[M]:
        loader = self._by_id.get(model)
        if loader is None:
            loader = self._by_id[model] = ByIdLoader(model)
        return loader

    def batch(self, key: Hashable, load: Callable[[list[K]], Awaitable[list[V]]]) -> DataLoader[K, V]:
        """The request's loader for `key` (a field and its arguments): one call of `load` per batch of parents."""
        loader = self._batches.get(key)
        if loader is None:
            loader = self._batches[key] = DataLoader(load_fn=load)
        return loader

    async def page(self, window: Window, keyset: Keyset, parent: Any,
                   convert: Callable[[Any], T] | Callable[[Any], Awaitable[T]]) -> Connection[T]:
        """`parent`'s page of a nested list, read with every other parent's in one statement."""
        loader: DataLoader[str, Connection[T]] = self.batch(
            (window, keyset, convert), lambda parents: window.pages(parents, keyset, convert))
        return await loader.load(str(parent))

    async def children(self, model: type[M], column: str, parent: Any, *order: str) -> list[M]:
        """Every row of `model` whose `column` names `parent`, in `order`: one statement for all parents
        (lists without pages, e.g. `User.apiKeys`, `Job.timeline`)."""

        async def load(parents: list[str]) -> list[list[M]]:
            by_parent: dict[str, list[M]] = defaultdict(list)
            for row in await model.filter(**{f"{column}__in": parents}).order_by(column, *order):
                by_parent[str(getattr(row, column))].append(row)
            return [by_parent[p] for p in parents]

        loader: DataLoader[str, list[M]] = self.batch((model, column, order), load)
        return await loader.load(str(parent))

    async def get(self, model: type[M], id_: Any) -> M | None:
        return await self.by_id(model).load(str(id_))

    async def node(self, model: type[M], global_id: Any, type_name: str) -> M:
        """The row behind a global id of `type_name`: BAD_USER_INPUT if malformed, NOT_FOUND if absent."""
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
