"""Values worked out once per parsed node (a plan, a compiled read, a check of a document).

Documents are parsed once and kept (`app.api.extensions.ParsedDocuments`), so a node object stands
for its text: its id is the key. The node is kept beside its value, so its id stays its own while
the entry lives; past `size` entries the cache starts again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

N = TypeVar("N")
V = TypeVar("V")


class NodeCache(Generic[N, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: dict[int, tuple[N, V]] = {}

    def get(self, node: N, make: Callable[[N], V]) -> V:
        cached = self._entries.get(id(node))
        if cached is not None and cached[0] is node:
            return cached[1]
        value = make(node)
        if len(self._entries) >= self.size:
            self._entries.clear()
        self._entries[id(node)] = (node, value)
        return value
