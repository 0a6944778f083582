"""Builds the configured store once per process (lazily, as Chalice samples do)."""
import threading
from typing import Optional

from chalicelib.config import Settings
from chalicelib.storage.base import Store

_lock = threading.Lock()
_embedded: Optional[Store] = None


def embedded_store(settings: Settings) -> Store:
    """The process-wide embedded SQLite store in ``settings.data_dir``."""
    global _embedded
    with _lock:
        if _embedded is None:
            from chalicelib.storage.sqlite import SQLiteStore
            _embedded = SQLiteStore(settings.data_dir)
        return _embedded
