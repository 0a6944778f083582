"""Amazon Timestream for InfluxDB (and any InfluxDB) backend, built from ``Settings``.

A store (its HTTP client) per credential, cached in a bounded LRU keyed by a digest of
the credentials. The credentials are Prometheus's basic_auth (AUTH_MODE=basic), else the
connector's own: a Secrets Manager secret (kept 5 minutes, fetched again as soon as
InfluxDB refuses it), else the environment.
"""
from typing import Mapping

from chalicelib.caches import LeastRecentlyUsed
from chalicelib.config import Settings
from chalicelib.storage.influxdb import credentials as influxdb_credentials
from chalicelib.storage.influxdb.client import InfluxClient
from chalicelib.storage.influxdb.credentials import InfluxCredentials
from chalicelib.storage.influxdb.store import InfluxDBStore

MAX_CACHED_CREDENTIALS = 32
_STORES = LeastRecentlyUsed(MAX_CACHED_CREDENTIALS)
_SECRETS = influxdb_credentials.SecretCache()


def credentials_for(settings: Settings, headers: Mapping[str, str]) -> InfluxCredentials:
    """Prometheus's basic_auth (AUTH_MODE=basic), else the connector's own credentials:
    the Secrets Manager secret (``credentials.SecretCache``), else the environment."""
    if settings.auth_mode == "basic":
        return influxdb_credentials.from_request(headers)
    if settings.influxdb_secret_arn:
        return _SECRETS.get(settings.influxdb_secret_arn, lambda: _secrets_client(settings))
    return influxdb_credentials.from_environment(
        settings.influxdb_token, settings.influxdb_username, settings.influxdb_password)


def _secrets_client(settings: Settings):
    import boto3
    from botocore.config import Config
    return boto3.session.Session(region_name=settings.region).client(
        "secretsmanager", config=Config(connect_timeout=2, read_timeout=5,
                                        retries={"max_attempts": 3, "mode": "standard"}))


def store_for_request(settings: Settings, headers: Mapping[str, str]) -> InfluxDBStore:
    """The InfluxDB store for the request's credentials."""
    credentials = credentials_for(settings, headers)
    key = "\0".join([credentials.cache_key(), settings.influxdb_url, settings.influxdb_database,
                     settings.influxdb_retention_policy])
    return _STORES.get_or_make(key, lambda: InfluxDBStore(InfluxClient(
        settings.influxdb_url, settings.influxdb_database, settings.influxdb_retention_policy,
        credentials, on_refused=lambda: _forget_secret(settings)),
        max_body_bytes=settings.influxdb_max_body_bytes))


def _forget_secret(settings: Settings) -> None:
    """InfluxDB refused the connector's credentials: a secret is fetched again next time
    (it may have been rotated)."""
    if settings.influxdb_secret_arn and settings.auth_mode != "basic":
        _SECRETS.forget(settings.influxdb_secret_arn)
