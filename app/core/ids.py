"""Global ids, `base64("Type:uuid")`: the form every id takes outside the process (the API's
Relay ids, ids inside event payloads), so a service can name an object the way clients do."""

from __future__ import annotations

import base64


def encode_id(type_name: str, pk: object) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()
