"""Builds stores once per process and hands them to the routes (as Chalice samples do)."""
import threading
from typing import Dict

from chalicelib.config import Settings
from chalicelib.storage.base import Store
from chalicelib.storage.sqlite import SQLiteStore

_lock = threading.Lock()
_embedded: Dict[str, Store] = {}


def embedded_store(settings: Settings) -> Store:
    """The process-wide embedded SQLite store for ``settings.data_dir``."""
    with _lock:
        store = _embedded.get(settings.data_dir)
        if store is None:
            store = _embedded[settings.data_dir] = SQLiteStore(settings.data_dir)
        return store
