"""Which store serves a request: the backend ``Settings`` names, with the request's
credentials where that backend takes them from Prometheus.

Each backend builds itself from ``Settings`` (its clients, pools and per-credential
caches inside its own package); this module only chooses. The embedded store is one
per data directory.
"""
import threading
from typing import Dict, Mapping

from chalicelib.config import Settings
from chalicelib.storage.base import Store
from chalicelib.storage.sqlite import SQLiteStore

_lock = threading.Lock()
_embedded: Dict[str, Store] = {}


def store_for_request(settings: Settings, headers: Mapping[str, str],
                      writing: bool = False) -> Store:
    """The store a request writes to (``writing``) or reads from. Timestream: missing or
    malformed credentials are Unauthorized (401) for a read, CredentialsFailed (5xx, so
    Prometheus keeps the samples) for a write."""
    if settings.backend == "timestream":
        from chalicelib.storage import timestream
        return timestream.store_for_request(settings, headers, writing)
    if settings.backend == "influxdb":
        from chalicelib.storage import influxdb
        return influxdb.store_for_request(settings, headers)
    return embedded_store(settings)


def embedded_store(settings: Settings) -> Store:
    """The process-wide embedded SQLite store for ``settings.data_dir``."""
    with _lock:
        store = _embedded.get(settings.data_dir)
        if store is None:
            store = _embedded[settings.data_dir] = SQLiteStore(settings.data_dir)
        return store
