"""A byte-bounded least-recently-used cache shared by a process's threads (resampling set-ups, MUCOG
tile indexes)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class ByteLRU:
    """Values with their sizes in bytes; beyond ``max_bytes`` the least recently used go first (the newest
    always stays, however large)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.items: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: tuple[Any, ...], default: Any = None) -> Any:
        with self.lock:
            item = self.items.get(key)
            if item is None:
                return default
            self.items.move_to_end(key)
            return item[0]

    def put(self, key: tuple[Any, ...], value: Any, nbytes: int, budget: int | None = None) -> None:
        """Keep ``value`` (a key already there keeps its value); ``budget``: the new ``max_bytes``."""
        with self.lock:
            if budget is not None:
                self.max_bytes = budget
            if key in self.items:
                return
            self.items[key] = (value, nbytes)
            self.bytes += nbytes
            while self.bytes > self.max_bytes and len(self.items) > 1:
                _, (_, n) = self.items.popitem(last=False)
                self.bytes -= n

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.bytes = 0
