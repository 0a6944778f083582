"""Builds stores once and hands the right one to each request.

The embedded store is one per data directory. Timestream stores (and their boto3
clients) are cached per credential in a bounded, thread-safe LRU keyed by a digest
of the credentials, never by the secret itself.
"""
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Mapping, Optional

from chalicelib.auth import Credentials, credentials_from_headers
from chalicelib.config import Settings
from chalicelib.errors import CredentialsFailed, Unauthorized
from chalicelib.storage.base import Store
from chalicelib.storage.sqlite import SQLiteStore

MAX_CACHED_CREDENTIALS = 32

_lock = threading.Lock()
_embedded: Dict[str, Store] = {}
_timestream: "OrderedDict[str, Store]" = OrderedDict()


def store_for_request(settings: Settings, headers: Mapping[str, str],
                      writing: bool = False) -> Store:
    """The store a request writes to / reads from. Timestream: missing or malformed
    credentials are Unauthorized (401) for a read, CredentialsFailed (5xx, so Prometheus
    keeps the samples) for a write."""
    if settings.backend == "sqlite":
        return embedded_store(settings)
    if settings.backend == "influxdb":
        return influxdb_store(settings, headers)
    credentials = None
    if settings.auth_mode == "basic":
        try:
            credentials = credentials_from_headers(headers)
        except Unauthorized as exc:
            if writing:
                raise CredentialsFailed(str(exc)) from None
            raise
    return timestream_store(settings, credentials).for_request()


def embedded_store(settings: Settings) -> Store:
    """The process-wide embedded SQLite store for ``settings.data_dir``."""
    with _lock:
        store = _embedded.get(settings.data_dir)
        if store is None:
            store = _embedded[settings.data_dir] = SQLiteStore(settings.data_dir)
        return store


def timestream_store(settings: Settings, credentials: Optional[Credentials]) -> Store:
    """A Timestream store using ``credentials`` (None: the Lambda's own role)."""
    key = "\0".join([credentials.cache_key() if credentials else "role", settings.database,
                     settings.table, settings.region or "", settings.endpoint_url or ""])
    with _lock:
        store = _timestream.get(key)
        if store is not None:
            _timestream.move_to_end(key)
            return store
    store = _new_timestream_store(settings, credentials)
    with _lock:
        _timestream[key] = store
        while len(_timestream) > MAX_CACHED_CREDENTIALS:
            _, evicted = _timestream.popitem(last=False)
            evicted.executor.shutdown(wait=False)
    return store


def client_config(concurrency: int, read_timeout: float):
    """The botocore configuration of the Timestream clients: no botocore retries (the store
    retries within the request deadline), short timeouts, and no client-side parameter
    validation: it took about a third of boto3's CPU per WriteRecords call (`make bench`),
    and Timestream validates every request itself (a refused record is isolated and
    reported, see timestream.py)."""
    from botocore.config import Config

    from chalicelib.storage.timestream import store as timestream
    return Config(retries={"max_attempts": 1, "mode": "standard"},
                  max_pool_connections=concurrency * 2, parameter_validation=False,
                  connect_timeout=timestream.CONNECT_TIMEOUT_SECONDS, read_timeout=read_timeout)


def _new_timestream_store(settings: Settings, credentials: Optional[Credentials]) -> Store:
    import boto3

    from chalicelib.storage.timestream import store as timestream

    from chalicelib.storage.timestream import reader as timestream_query
    session = boto3.session.Session(
        aws_access_key_id=credentials.access_key_id if credentials else None,
        aws_secret_access_key=credentials.secret_access_key if credentials else None,
        aws_session_token=credentials.session_token if credentials else None,
        region_name=settings.region)

    def client(name: str, read_timeout: float):
        return session.client(name, endpoint_url=settings.endpoint_url,
                              config=client_config(settings.write_concurrency, read_timeout))

    write_client = client("timestream-write", timestream.WRITE_READ_TIMEOUT_SECONDS)
    query_timeout = timestream_query.query_read_timeout(settings.request_deadline_seconds)
    query_client = client("timestream-query", query_timeout)
    # One pool per credential: calls that hang or fail with one key never hold the
    # threads another key's writes need.
    executor = ThreadPoolExecutor(max_workers=settings.write_concurrency,
                                  thread_name_prefix="timestream-write")
    runner = timestream_query.TimestreamQueryRunner(query_client, query_timeout)
    reader = timestream_query.TimestreamReader(runner, settings.database, settings.table)
    return timestream.TimestreamStore(write_client, reader,
                                      settings.database, settings.table, executor=executor,
                                      deadline_seconds=settings.request_deadline_seconds)


# --- InfluxDB backend -------------------------------------------------------------------
_influxdb: "OrderedDict[str, Store]" = OrderedDict()
_secrets = None


def influxdb_credentials(settings: Settings, headers: Mapping[str, str]):
    """Prometheus's basic_auth (AUTH_MODE=basic), else the connector's own credentials:
    the Secrets Manager secret (fetched once per container), else the environment."""
    from chalicelib.storage.influxdb import credentials as influxdb_auth
    global _secrets
    if settings.auth_mode == "basic":
        return influxdb_auth.from_request(headers)
    if settings.influxdb_secret_arn:
        with _lock:
            if _secrets is None:
                _secrets = influxdb_auth.SecretCache()
        return _secrets.get(settings.influxdb_secret_arn, lambda: _secrets_client(settings))
    return influxdb_auth.from_environment(settings.influxdb_token, settings.influxdb_username,
                                          settings.influxdb_password)


def _secrets_client(settings: Settings):
    import boto3
    from botocore.config import Config
    return boto3.session.Session(region_name=settings.region).client(
        "secretsmanager", config=Config(connect_timeout=2, read_timeout=5,
                                        retries={"max_attempts": 3, "mode": "standard"}))


def influxdb_store(settings: Settings, headers: Mapping[str, str]) -> Store:
    """The InfluxDB store for the request's credentials (bounded LRU keyed by their digest)."""
    from chalicelib.storage.influxdb.store import InfluxDBStore
    from chalicelib.storage.influxdb.client import InfluxClient

    credentials = influxdb_credentials(settings, headers)
    key = "\0".join([credentials.cache_key(), settings.influxdb_url, settings.influxdb_database,
                     settings.influxdb_retention_policy])
    with _lock:
        store = _influxdb.get(key)
        if store is not None:
            _influxdb.move_to_end(key)
            return store
    client = InfluxClient(settings.influxdb_url, settings.influxdb_database,
                          settings.influxdb_retention_policy, credentials)
    store = InfluxDBStore(client, deadline_seconds=settings.request_deadline_seconds)
    with _lock:
        _influxdb[key] = store
        while len(_influxdb) > MAX_CACHED_CREDENTIALS:
            _influxdb.popitem(last=False)
    return store
