"""Every setting the connector reads, with its environment variable, resolved once.

Chalice's stage ``environment_variables`` end up in the process environment
(both on Lambda and under ``chalice local``), so this is the one place that
reads ``os.environ``. Explicit arguments beat the environment in tests.
"""
import os
from dataclasses import dataclass, field
from typing import Mapping, Optional

# Environment variable names.
STORAGE_BACKEND = "STORAGE_BACKEND"          # "sqlite" (embedded), "timestream", "influxdb"
DATA_DIR = "DATA_DIR"                        # embedded store directory
MAX_DECODED_BYTES = "MAX_DECODED_BYTES"      # cap on a decompressed request body
READ_SAMPLE_LIMIT = "READ_SAMPLE_LIMIT"      # cap on samples in one /read response
MAX_RESPONSE_BYTES = "MAX_RESPONSE_BYTES"    # cap on one /read response body
READ_BYTE_LIMIT = "READ_BYTE_LIMIT"          # cap on bytes (labels + samples) one /read gathers
READ_QUERY_LIMIT = "READ_QUERY_LIMIT"        # cap on queries in one /read request
LOG_LEVEL = "LOG_LEVEL"                      # info | debug | warn | error
DEFAULT_DATABASE = "DEFAULT_DATABASE"        # Timestream database
DEFAULT_TABLE = "DEFAULT_TABLE"              # Timestream table
# "basic" (IAM keys from Prometheus), "role" (the function's own credentials) or "sigv4" (the
# function's own credentials, behind API Gateway's AWS_IAM authorization: chalicelib/auth.py).
AUTH_MODE = "AUTH_MODE"
AWS_REGION = "AWS_REGION"
AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
TIMESTREAM_ENDPOINT_URL = "TIMESTREAM_ENDPOINT_URL"  # both APIs, e.g. a moto server; no discovery
# Timestream serves ingest and query on separate endpoints (ingest-cellN / query-cellN, and a
# VPC interface endpoint for each): each may be set on its own; it wins over the one above.
TIMESTREAM_WRITE_ENDPOINT_URL = "TIMESTREAM_WRITE_ENDPOINT_URL"
TIMESTREAM_QUERY_ENDPOINT_URL = "TIMESTREAM_QUERY_ENDPOINT_URL"
WRITE_CONCURRENCY = "WRITE_CONCURRENCY"      # parallel WriteRecords calls per credential
REQUEST_DEADLINE_SECONDS = "REQUEST_DEADLINE_SECONDS"  # finish before the Lambda timeout
# InfluxDB backend (STORAGE_BACKEND=influxdb). Not set in the `local` stage, so the shell's win.
INFLUXDB_URL = "INFLUXDB_URL"                # e.g. https://<id>.timestream-influxdb.<region>.on.aws:8086
INFLUXDB_DATABASE = "INFLUXDB_DATABASE"      # v1 database, or the 2.x/3.x bucket's DBRP database
INFLUXDB_RETENTION_POLICY = "INFLUXDB_RETENTION_POLICY"  # optional (default: the database's)
INFLUXDB_USERNAME = "INFLUXDB_USERNAME"
INFLUXDB_PASSWORD = "INFLUXDB_PASSWORD"
INFLUXDB_TOKEN = "INFLUXDB_TOKEN"
INFLUXDB_SECRET_ARN = "INFLUXDB_SECRET_ARN"  # Secrets Manager secret with a token or user/password
INFLUXDB_MAX_BODY_BYTES = "INFLUXDB_MAX_BODY_BYTES"  # line protocol per /write, under max-body-size

BACKENDS = ("sqlite", "timestream", "influxdb")
AUTH_MODES = ("basic", "role", "sigv4")
LOG_LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARNING", "warning": "WARNING",
              "error": "ERROR"}


@dataclass(frozen=True)
class Settings:
    """Resolved configuration of one running connector."""

    backend: str = "sqlite"
    data_dir: str = "./data"
    max_decoded_bytes: int = 32 * 1024 * 1024
    # Two concurrent reads at these limits fit in 512 MB (measured by `make bench`).
    read_sample_limit: int = 4_000_000
    # Lambda caps synchronous responses at 6 MB, and base64 makes a binary body 4/3 larger.
    max_response_bytes: int = 4_400_000
    # Bytes of series and samples one read may gather (encoded size, before compression);
    # with the sample limit, what bounds a read's memory (see `make bench`).
    read_byte_limit: int = 80 * 1024 * 1024
    read_query_limit: int = 64
    log_level: str = "INFO"
    database: str = "PrometheusDatabase"
    table: str = "PrometheusMetricsTable"
    auth_mode: str = "basic"
    region: Optional[str] = None
    endpoint_url: Optional[str] = None  # both APIs
    write_endpoint_url: Optional[str] = None
    query_endpoint_url: Optional[str] = None
    write_concurrency: int = 8
    request_deadline_seconds: float = 25.0
    influxdb_url: str = "http://127.0.0.1:8086"
    influxdb_database: str = "prometheus"
    influxdb_retention_policy: str = ""
    influxdb_username: str = field(default="", repr=False)
    influxdb_password: str = field(default="", repr=False)
    influxdb_token: str = field(default="", repr=False)
    influxdb_secret_arn: str = ""
    # influxd 1.x refuses bodies over its max-body-size (default 25 MB) by resetting the upload.
    influxdb_max_body_bytes: int = 10_000_000

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        """Read settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        defaults = cls()

        def get(name: str, default: str) -> str:
            value = env.get(name, "").strip()
            return value if value else default

        backend = get(STORAGE_BACKEND, defaults.backend).lower()
        if backend not in BACKENDS:
            raise ValueError(f"{STORAGE_BACKEND} must be one of {BACKENDS}, got {backend!r}")
        # InfluxDB: the connector's own credentials unless told to pass Prometheus's through.
        auth_mode = get(AUTH_MODE, "role" if backend == "influxdb" else defaults.auth_mode).lower()
        if auth_mode not in AUTH_MODES:
            raise ValueError(f"{AUTH_MODE} must be one of {AUTH_MODES}, got {auth_mode!r}")
        level = get(LOG_LEVEL, "info").lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"{LOG_LEVEL} must be one of info, debug, warn, error; got {level!r}")
        return cls(
            backend=backend,
            data_dir=get(DATA_DIR, defaults.data_dir),
            max_decoded_bytes=_positive_int(env, MAX_DECODED_BYTES, defaults.max_decoded_bytes),
            read_sample_limit=_positive_int(env, READ_SAMPLE_LIMIT, defaults.read_sample_limit),
            max_response_bytes=_positive_int(env, MAX_RESPONSE_BYTES, defaults.max_response_bytes),
            read_byte_limit=_positive_int(env, READ_BYTE_LIMIT, defaults.read_byte_limit),
            read_query_limit=_positive_int(env, READ_QUERY_LIMIT, defaults.read_query_limit),
            log_level=LOG_LEVELS[level],
            database=get(DEFAULT_DATABASE, defaults.database),
            table=get(DEFAULT_TABLE, defaults.table),
            auth_mode=auth_mode,
            region=get(AWS_REGION, get(AWS_DEFAULT_REGION, "")) or None,
            endpoint_url=get(TIMESTREAM_ENDPOINT_URL, "") or None,
            write_endpoint_url=get(TIMESTREAM_WRITE_ENDPOINT_URL, "") or None,
            query_endpoint_url=get(TIMESTREAM_QUERY_ENDPOINT_URL, "") or None,
            write_concurrency=_positive_int(env, WRITE_CONCURRENCY, defaults.write_concurrency),
            request_deadline_seconds=float(
                get(REQUEST_DEADLINE_SECONDS, str(defaults.request_deadline_seconds))),
            influxdb_url=get(INFLUXDB_URL, defaults.influxdb_url),
            influxdb_database=get(INFLUXDB_DATABASE, defaults.influxdb_database),
            influxdb_retention_policy=get(INFLUXDB_RETENTION_POLICY, ""),
            influxdb_username=get(INFLUXDB_USERNAME, ""),
            influxdb_password=env.get(INFLUXDB_PASSWORD, ""),
            influxdb_token=get(INFLUXDB_TOKEN, ""),
            influxdb_secret_arn=get(INFLUXDB_SECRET_ARN, ""),
            influxdb_max_body_bytes=_positive_int(env, INFLUXDB_MAX_BODY_BYTES,
                                                  defaults.influxdb_max_body_bytes),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value
