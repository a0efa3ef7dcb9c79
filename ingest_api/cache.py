"""A least-recently-used cache bounded by the bytes of what it holds (Arrow tables), shared by
the request threads."""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class ByteLru(Generic[V]):
    """`get(key, make, size)`: the cached value, or `make()` stored under `key` (the least
    recently used values leave once `size` of all exceeds `capacity`). A value bigger than the
    whole capacity is returned without being kept. Two threads asking for one missing key may
    both make it; the second keeps its own (they are equal)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self.bytes = 0
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Hashable, make: Callable[[], V], size: Callable[[V], int]) -> V:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
                self.hits += 1
                return found[0]
            self.misses += 1
        value = make()
        nbytes = size(value)
        if nbytes > self.capacity:
            return value
        with self.lock:
            old = self.items.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self.items[key] = (value, nbytes)
            self.bytes += nbytes
            while self.bytes > self.capacity and self.items:
                _, (_, dropped) = self.items.popitem(last=False)
                self.bytes -= dropped
        return value

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
            self.bytes = 0
