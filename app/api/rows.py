"""Model instances straight from asyncpg records, for read-only pages.

Tortoise's `_init_from_db` converts every UUID and timestamp column again although asyncpg already
returns `uuid.UUID` and aware UTC datetimes (the database runs in UTC, `use_tz`); on a page of 500
runs that is a tenth of the request. This copies the record into the instance and converts only
the columns the driver leaves raw (JSON text), so the instances behave like the ORM's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tortoise.fields import DatetimeField, UUIDField
from tortoise.models import Model

M = TypeVar("M", bound=Model)

# Columns asyncpg already returns as the Python values tortoise would make of them.
_DRIVER_NATIVE = (UUIDField, DatetimeField)


@dataclass(frozen=True)
class _Plan:
    renamed: tuple[tuple[str, str], ...]  # (column, attribute) copied as they are
    converted: tuple[tuple[str, str, Callable[[Any], Any]], ...]  # (column, attribute, conversion)
    flags: dict[str, Any]

    @classmethod
    def of(cls, model: type[Model]) -> _Plan:
        meta = model._meta
        as_is = _as_is(model)
        converted = [(key, attr, field.to_python_value) for key, attr, field in meta.db_complex_fields
                     if not isinstance(field, _DRIVER_NATIVE)]
        converted += [(key, attr, field.field_type) for key, attr, field in meta.db_default_fields]
        return cls(renamed=tuple((key, attr) for key, attr, _ in as_is if key != attr), converted=tuple(converted),
                   flags={"_partial": False, "_saved_in_db": True,
                          "_custom_generated_pk": meta.db_pk_column not in meta.generated_db_fields})


def _as_is(model: type[Model]) -> list[tuple[str, str, Any]]:
    meta = model._meta
    return [*meta.db_native_fields, *(f for f in meta.db_complex_fields if isinstance(f[2], _DRIVER_NATIVE))]


def native_columns(model: type[Model]) -> frozenset[str]:
    """Attributes read from a column of the same name whose record value is what the model holds."""
    return frozenset(attr for key, attr, _ in _as_is(model) if key == attr)


_plans: dict[type[Model], _Plan] = {}


def hydrate(model: type[M], record: Mapping[str, Any], missing: tuple[str, ...] = ()) -> M:
    """An instance of `model` from a row of its table (`SELECT *`, or without the `missing` columns,
    which are None on the instance)."""
    return hydrate_all(model, [record], missing)[0]


def hydrate_all(model: type[M], records: Sequence[Mapping[str, Any]], missing: tuple[str, ...] = ()) -> list[M]:
    """`hydrate` for the records of one statement: they share their columns, read once."""
    if not records:
        return []
    plan = _plans.get(model)
    if plan is None:
        plan = _plans[model] = _Plan.of(model)
    columns = tuple(records[0].keys())
    absent = dict.fromkeys(missing)
    renamed = plan.renamed
    converted = tuple(c for c in plan.converted if c[0] not in absent)  # absent columns stay None
    flags = plan.flags
    rows = []
    for record in records:
        row = model.__new__(model)
        values = row.__dict__
        values.update(zip(columns, record.values(), strict=True))  # faster than the mapping protocol
        if absent:
            values.update(absent)
        for key, attr in renamed:
            values[attr] = values.pop(key)
        for key, attr, to_python in converted:
            value = values.pop(key) if key != attr else values[key]
            values[attr] = None if value is None else to_python(value)
        values.update(flags)
        values["_await_when_save"] = {}
        rows.append(row)
    return rows
