"""Caches bounded by the bytes their entries are estimated to hold."""
import sys
from collections import OrderedDict
from threading import Lock
from typing import Any, Callable, Dict, Hashable, Iterable, Optional


class BoundedCache:
    """Keeps entries while their sizes add up to at most ``max_bytes``; an entry
    larger than a quarter of that is not kept at all. Thread-safe."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: "OrderedDict[Hashable, tuple]" = OrderedDict()
        self._lock = Lock()

    def get(self, key: Hashable) -> Optional[Any]:
        """The value under ``key`` (now most recently used), or None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: Any, size: int) -> None:
        """Keep ``value`` under ``key``, evicting the least recently used as needed."""
        if size > self.max_bytes // 4:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.bytes -= old[1]
            self._entries[key] = (value, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self.bytes -= evicted

    def __len__(self) -> int:
        return len(self._entries)


def strings_bytes(strings: Iterable[str]) -> int:
    """The memory the strings hold, each string object counted once (a value that is also
    another label's, or a name shared by every series of a request, is one object)."""
    return sum(map(sys.getsizeof, {id(text): text for text in strings}.values()))


class ClearedWhenFull:
    """A dict whose entries' sizes add up to at most ``max_bytes``: emptied, in place, when
    the next entry would pass that; an entry larger than ``max_bytes // 1024`` is not kept.

    Made for the label-set caches of the write path: a sender repeats its series request
    after request, so an emptied cache refills from the next requests, and a hit is one
    dict lookup (``get``), with no recency bookkeeping or lock. Threads racing on ``put``
    can only make ``bytes`` too high, never an entry wrong."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: Dict[Hashable, Any] = {}
        self.get = self._entries.get  # the value under a key, or None

    def put(self, key: Hashable, value: Any, size: int) -> None:
        """Keep ``value`` under ``key`` (a key not held yet), emptying the cache first if
        ``size`` more bytes would pass the bound."""
        if size > self.max_bytes // 1024:
            return
        if self.bytes + size > self.max_bytes:
            self._entries.clear()
            self.bytes = 0
        self._entries[key] = value
        self.bytes += size

    def __len__(self) -> int:
        return len(self._entries)


class LeastRecentlyUsed:
    """At most ``max_entries`` values by key; the least recently used is evicted first
    (and handed to ``on_evict``). Thread-safe; ``make`` runs outside the lock, so a slow
    constructor never blocks the other keys."""

    def __init__(self, max_entries: int,
                 on_evict: Callable[[Any], None] = lambda value: None) -> None:
        self.max_entries = max_entries
        self.on_evict = on_evict
        self._entries: "OrderedDict[Hashable, Any]" = OrderedDict()
        self._lock = Lock()

    def get_or_make(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The value under ``key``, made by ``make()`` the first time."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
                return value
        value = make()
        evicted = []
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > self.max_entries:
                evicted.append(self._entries.popitem(last=False)[1])
        for old in evicted:
            self.on_evict(old)
        return value

    def __len__(self) -> int:
        return len(self._entries)
