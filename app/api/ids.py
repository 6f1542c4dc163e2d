"""Global ids (`base64("Type:uuid")`) in and out of the API."""

from __future__ import annotations

import uuid

import strawberry

from app.api.errors import BadInput
from app.core import ids


def decode_id(value: strawberry.ID | str, *type_names: str) -> uuid.UUID:
    """The UUID inside a global id of one of the expected types; BAD_USER_INPUT otherwise."""
    pk = ids.decode_id(str(value), *type_names)
    if pk is None:
        expected = " or ".join(type_names) or "an object"
        raise BadInput(f"Malformed id: expected the id of {expected}.")
    return pk


def encode_id(type_name: str, pk: object) -> strawberry.ID:
    return strawberry.ID(ids.encode_id(type_name, pk))
