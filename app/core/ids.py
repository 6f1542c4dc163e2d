"""Global ids, `base64("Type:uuid")`: the form every id takes outside the process (the API's
Relay ids, ids inside event payloads), so a service can name an object the way clients do."""

from __future__ import annotations

import base64
import uuid


def encode_id(type_name: str, pk: object) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


def decode_id(value: str, *type_names: str) -> uuid.UUID | None:
    """The UUID inside a global id of one of `type_names` (any type when none), or None."""
    try:
        type_name, _, pk = base64.b64decode(value, validate=True).decode().partition(":")
        if type_names and type_name not in type_names:
            return None
        return uuid.UUID(pk)
    except ValueError:  # bad base64, bad UTF-8 or no UUID
        return None
