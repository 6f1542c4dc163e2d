"""Relay `Node` support for types backed by a tortoise model."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class Column:
    """A field that is one column of its row (the model attribute `name`), converted by `convert` when not
    null. Compiled reads (`app.api.compiled`) read it straight from the driver's record; any other reader
    of `row_fields` keeps a field out of them."""

    name: str
    convert: Callable[[Any], Any] | None = None

    def __call__(self, row: Any) -> Any:
        value = getattr(row, self.name)
        return value if value is None or self.convert is None else self.convert(value)


@dataclass(frozen=True, slots=True)
class Computed:
    """A field computed from columns of its row (model attributes `columns`) by `compute`: compiled
    reads compute it from the driver's record too."""

    columns: tuple[str, ...]
    compute: Callable[..., Any]

    def __call__(self, row: Any) -> Any:
        return self.compute(*(getattr(row, column) for column in self.columns))


class RowFields:
    """For a ModelNode whose every field is a function of its row (`row_fields`).

    `from_model` builds every field; `from_row` keeps the row and works each field out when it is
    first read. A dashboard lists 500 runs and shows four of their 27 fields: building all of them
    was a fifth of the page's CPU. Only for rows that no longer change while the node is read (the
    rows a request's loaders read for a list), since a field is read from the row when first asked."""

    row_fields: ClassVar[dict[str, Callable[[Any], Any]]]

    @classmethod
    def from_model(cls, row: Any) -> Self:
        return cls(**{name: value(row) for name, value in cls.row_fields.items()})

    @classmethod
    def from_row(cls, row: Any) -> Self:
        if "_rows_read" not in cls.__dict__:
            # Installed once strawberry has made the class a dataclass (class attributes named like its
            # fields would have been taken for their defaults); `from_model`'s nodes hold every field
            # themselves, which a non-data descriptor leaves alone.
            for name, value in cls.row_fields.items():
                setattr(cls, name, _RowField(name, value))
            cls._rows_read = True  # type: ignore[attr-defined]
        node = cls.__new__(cls)
        node.__dict__["_row"] = row
        return node


class _RowField:
    """A field of a `RowFields.from_row` node: read from the row when first asked, then kept."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: Callable[[Any], Any]) -> None:
        self.name, self.value = name, value

    def __get__(self, node: Any, owner: type | None = None) -> Any:
        if node is None:
            return self
        field = node.__dict__[self.name] = self.value(node.__dict__["_row"])
        return field
