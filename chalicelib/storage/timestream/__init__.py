"""Amazon Timestream for LiveAnalytics backend, built from ``Settings``.

A store (its boto3 clients and its pool of write threads) per credential, cached in a
bounded LRU keyed by a digest of the credentials, never by the secret itself.
"""
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping, Optional

from chalicelib.auth import Credentials, credentials_from_headers
from chalicelib.caches import LeastRecentlyUsed
from chalicelib.config import Settings
from chalicelib.errors import CredentialsFailed, Unauthorized
from chalicelib.storage.timestream.store import TimestreamStore

MAX_CACHED_CREDENTIALS = 32
_STORES = LeastRecentlyUsed(MAX_CACHED_CREDENTIALS, on_evict=lambda store: store.close())


def store_for_request(settings: Settings, headers: Mapping[str, str],
                      writing: bool = False) -> TimestreamStore:
    """The store for the request's credentials (AUTH_MODE=basic), else the Lambda's role.
    Missing or malformed credentials: Unauthorized (401) for a read, CredentialsFailed
    (5xx, so Prometheus keeps the samples) for a write."""
    credentials = None
    if settings.auth_mode == "basic":
        try:
            credentials = credentials_from_headers(headers)
        except Unauthorized as exc:
            if writing:
                raise CredentialsFailed(str(exc)) from None
            raise
    return store_for(settings, credentials)


def store_for(settings: Settings, credentials: Optional[Credentials]) -> TimestreamStore:
    """A Timestream store using ``credentials`` (None: the Lambda's own role)."""
    key = "\0".join([credentials.cache_key() if credentials else "role", settings.database,
                     settings.table, settings.region or "", settings.endpoint_url or "",
                     settings.write_endpoint_url or "", settings.query_endpoint_url or ""])
    return _STORES.get_or_make(key, lambda: build(settings, credentials))


def build(settings: Settings, credentials: Optional[Credentials]) -> TimestreamStore:
    """A new store: a boto3 session for ``credentials``, its write and query clients, and
    its own pool of write threads."""
    import boto3

    from chalicelib.storage.timestream.client import WRITE_READ_TIMEOUT_SECONDS, client_config
    from chalicelib.storage.timestream.reader import (READ_CONCURRENCY, TimestreamQueryRunner,
                                                      TimestreamReader)

    session = boto3.session.Session(
        aws_access_key_id=credentials.access_key_id if credentials else None,
        aws_secret_access_key=credentials.secret_access_key if credentials else None,
        aws_session_token=credentials.session_token if credentials else None,
        region_name=settings.region)

    def client(name: str, endpoint_url: Optional[str], read_timeout: float):
        # No endpoint: boto3 discovers the account's cell (DescribeEndpoints).
        return session.client(name, endpoint_url=endpoint_url or settings.endpoint_url,
                              config=client_config(settings.write_concurrency, read_timeout))

    write_client = client("timestream-write", settings.write_endpoint_url,
                          WRITE_READ_TIMEOUT_SECONDS)
    # A query may take all of the request's deadline (the reader abandons it there): no
    # shorter read timeout cuts a slow first page short.
    query_client = client("timestream-query", settings.query_endpoint_url,
                          settings.request_deadline_seconds)
    # Pools per credential: calls that hang or fail with one key never hold the threads
    # another key's requests need.
    executor = ThreadPoolExecutor(max_workers=settings.write_concurrency,
                                  thread_name_prefix="timestream-write")
    runner = TimestreamQueryRunner(query_client, ThreadPoolExecutor(
        max_workers=READ_CONCURRENCY, thread_name_prefix="timestream-query"))
    reader = TimestreamReader(runner, settings.database, settings.table)
    return TimestreamStore(write_client, reader, settings.database, settings.table,
                           executor=executor)
