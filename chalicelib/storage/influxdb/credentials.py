"""Credentials the connector presents to InfluxDB, and where they come from.

- ``AUTH_MODE=role`` (the default with ``STORAGE_BACKEND=influxdb``): the connector's
  own credentials: the AWS Secrets Manager secret named by ``INFLUXDB_SECRET_ARN``
  (kept SECRET_MAX_AGE_SECONDS, and fetched again as soon as InfluxDB refuses it: a
  rotated password is picked up without a cold start), else ``INFLUXDB_TOKEN``, else
  ``INFLUXDB_USERNAME``/``INFLUXDB_PASSWORD``, else none (an InfluxDB without auth).
- ``AUTH_MODE=basic``: Prometheus's ``basic_auth`` is passed through to InfluxDB
  (username and password; for InfluxDB 2.x/3.x tokens, any username and the token
  as password, as their v1-compatible API accepts), so InfluxDB decides who may write.

The secret has the shape Timestream for InfluxDB documents ("How Amazon Timestream for
InfluxDB uses secrets"): ``{"engine": "timestream-influxdb", "username": ...,
"password": ..., "dbIdentifier": ...}`` for a user, or with a ``"token"`` for a token.
Secrets are never logged: ``InfluxCredentials.__repr__`` hides them.
"""
import base64
import hashlib
import json
import threading
import time
from typing import Dict, Mapping, NamedTuple, Tuple

from chalicelib.auth import credentials_from_headers
from chalicelib.errors import BackendError, Unauthorized


class InfluxCredentials(NamedTuple):
    """A token, or a username and password (both may be empty: no authentication)."""

    username: str = ""
    password: str = ""
    token: str = ""
    origin: str = "no credentials"

    def __repr__(self) -> str:
        return f"InfluxCredentials(username={self.username!r}, origin={self.origin!r}, ***)"

    def headers(self) -> Dict[str, str]:
        """The Authorization header InfluxDB's v1 API (1.x, 2.x, 3.x) accepts."""
        if self.token:
            return {"Authorization": f"Token {self.token}"}
        if self.username or self.password:
            pair = f"{self.username}:{self.password}".encode("utf-8")
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        return {}

    def cache_key(self) -> str:
        """A digest identifying these credentials without holding them in clear."""
        material = "\0".join([self.username, self.password, self.token, self.origin])
        return hashlib.sha256(material.encode("utf-8")).hexdigest()


def from_secret_string(text: str, arn: str) -> InfluxCredentials:
    """Credentials from the JSON of a Timestream for InfluxDB secret."""
    try:
        secret = json.loads(text)
    except ValueError:
        secret = None
    if not isinstance(secret, dict):
        raise BackendError(f"secret {arn} is not a JSON object: store "
                           '{"username": ..., "password": ...} or {"token": ...}')
    origin = f"secret {arn}"
    if secret.get("token"):
        return InfluxCredentials(token=str(secret["token"]), origin=origin)
    if secret.get("username") and secret.get("password"):
        return InfluxCredentials(str(secret["username"]), str(secret["password"]), origin=origin)
    raise BackendError(f"secret {arn} holds neither a token nor a username and password "
                       f"(keys: {sorted(secret)})")


#: How long a fetched secret is used before it is fetched again (a rotation takes effect
#: within this long even if InfluxDB still takes the old password meanwhile).
SECRET_MAX_AGE_SECONDS = 300.0


class SecretCache:
    """Secrets by ARN, each kept SECRET_MAX_AGE_SECONDS or until ``forget``; a failed fetch
    is not cached."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: Dict[str, Tuple[float, InfluxCredentials]] = {}

    def get(self, arn: str, client_factory) -> InfluxCredentials:
        """The secret's credentials, fetched if not kept or kept too long."""
        with self._lock:
            fetched, cached = self._secrets.get(arn, (0.0, None))
        if cached is not None and time.monotonic() - fetched < SECRET_MAX_AGE_SECONDS:
            return cached
        credentials = fetch_secret(arn, client_factory())
        with self._lock:
            self._secrets[arn] = (time.monotonic(), credentials)
        return credentials

    def forget(self, arn: str) -> None:
        """Fetch ``arn`` again on next use (InfluxDB refused what it held)."""
        with self._lock:
            self._secrets.pop(arn, None)


def fetch_secret(arn: str, client) -> InfluxCredentials:
    """Read the secret with a boto3 ``secretsmanager`` client; BackendError with the cause."""
    from botocore.exceptions import BotoCoreError, ClientError
    try:
        response = client.get_secret_value(SecretId=arn)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ResourceNotFoundException":
            raise BackendError(f"secret {arn} does not exist: set INFLUXDB_SECRET_ARN "
                               "(InfluxSecretArn) to the ARN of the InfluxDB secret") from None
        if code in ("AccessDeniedException", "AccessDenied"):
            raise BackendError(f"not allowed to read secret {arn}: the function's role needs "
                               "secretsmanager:GetSecretValue on it (make policies)") from None
        raise BackendError(f"reading secret {arn} failed ({code})") from None
    except BotoCoreError as exc:
        raise BackendError(f"reading secret {arn} failed: {type(exc).__name__}") from None
    return from_secret_string(response.get("SecretString") or "", arn)


def from_environment(token: str, username: str, password: str) -> InfluxCredentials:
    """Credentials from INFLUXDB_TOKEN or INFLUXDB_USERNAME/INFLUXDB_PASSWORD."""
    if token:
        return InfluxCredentials(token=token, origin="INFLUXDB_TOKEN")
    if username or password:
        return InfluxCredentials(username, password,
                                 origin="INFLUXDB_USERNAME/INFLUXDB_PASSWORD")
    return InfluxCredentials()


def from_request(headers: Mapping[str, str]) -> InfluxCredentials:
    """Prometheus's basic_auth, passed through (AUTH_MODE=basic)."""
    try:
        sent = credentials_from_headers(headers)
    except Unauthorized:
        raise Unauthorized("missing credentials: configure basic_auth in Prometheus with the "
                           "InfluxDB username and password (or any username and an InfluxDB "
                           "token as password)") from None
    return InfluxCredentials(sent.access_key_id, sent.secret_access_key,
                             origin="Prometheus basic_auth")
