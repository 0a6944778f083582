"""HTTP client for InfluxDB's v1 API (``/write``, ``/query``), standard library only.

Every request carries the connector's credentials; failures worth retrying
(connection errors, timeouts, 429, 5xx) raise ``retry.Transient``, which the store
retries with backoff inside the request deadline before answering 503. Other
statuses map to connector errors with a message that says what to fix.
"""
import http.client
import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Dict, Iterator, Tuple

from chalicelib.errors import BackendError, BadRequest, Forbidden, Unauthorized
from chalicelib.retry import Transient
from chalicelib.storage.influxdb.credentials import InfluxCredentials

LOG = logging.getLogger(__name__)

CHUNK_SIZE = 10_000            # points per chunk of a /query answer
TRANSIENT_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError,
                    socket.timeout, TimeoutError, OSError)


def _json_int(text: str):
    # Go writes the float -0 as "-0"; json would read it as the integer 0.
    return int(text) or (-0.0 if text.startswith("-") else 0)


def _error_text(body: bytes) -> str:
    """InfluxDB's reason: 1.x answers ``{"error": …}``, 2.x ``{"code": …, "message": …}``."""
    text = body.decode("utf-8", "replace").strip()
    try:
        answer = json.loads(text)
        text = answer.get("error", answer.get("message", text))
    except (ValueError, AttributeError):
        pass
    return text


def _results(line: bytes) -> list:
    """The result objects of one line of a /query answer; BackendError if the line is not
    InfluxDB's JSON (INFLUXDB_URL reaches some other HTTP server)."""
    try:
        return json.loads(line, parse_int=_json_int).get("results", [])
    except (ValueError, AttributeError):
        quoted = line.decode("utf-8", "replace").strip()[:100]
        raise BackendError(f"InfluxDB's query answer is not InfluxDB JSON ({quoted!r}): check "
                           "that INFLUXDB_URL is InfluxDB's HTTP API") from None


class InfluxClient:
    """The two v1 endpoints, with the connector's credentials on every request."""

    def __init__(self, url: str, database: str, retention_policy: str = "",
                 credentials: InfluxCredentials = InfluxCredentials(),
                 on_refused: Callable[[], None] = lambda: None) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self.credentials = credentials
        self.on_refused = on_refused  # InfluxDB answered 401/403 to these credentials

    def _open(self, path: str, params: Dict[str, str], body: bytes, headers: Dict[str, str],
              timeout: float):
        """(status, response) — the response is open for reading; raises Transient."""
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={**headers, **self.credentials.headers()})
        try:
            response = urllib.request.urlopen(request, timeout=timeout)
            return response.status, response
        except urllib.error.HTTPError as err:
            if err.code in (401, 403):
                self.on_refused()
            return err.code, err
        except TRANSIENT_ERRORS as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Transient(f"{type(exc).__name__}: {reason}") from None

    def write(self, body: bytes, timeout: float) -> Tuple[int, str]:
        """POST gzip-compressed line protocol; (status, InfluxDB's answer: "" or an error)."""
        params = {"db": self.database, "precision": "ms"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        status, response = self._open("/write", params, body, {
            "Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip"}, timeout)
        with response:
            try:
                text = _error_text(response.read())
            except TRANSIENT_ERRORS as exc:
                raise Transient(f"{type(exc).__name__} reading the answer") from None
        return status, text

    def query(self, statement: str, timeout: float) -> Iterator[dict]:
        """Run InfluxQL; yields each JSON result object (one per chunk)."""
        params = {"db": self.database, "epoch": "ms", "chunked": "true",
                  "chunk_size": str(CHUNK_SIZE)}
        body = urllib.parse.urlencode({"q": statement}).encode("ascii")
        status, response = self._open("/query", params, body, {
            "Content-Type": "application/x-www-form-urlencoded"}, timeout)
        with response:
            if status >= 300:
                raise http_error(status, _error_text(response.read()), "query",
                                 self.credentials)
            try:
                for line in response:
                    if line.strip():
                        yield from _results(line)
            except TRANSIENT_ERRORS as exc:
                raise Transient(f"{type(exc).__name__} reading the answer") from None


def http_error(status: int, text: str, what: str,
               credentials: InfluxCredentials) -> Exception:
    """The exception an InfluxDB error status maps to (Transient if worth retrying)."""
    text = text[:300]
    if status == 429 or status >= 500:
        return Transient(f"HTTP {status}: {text}", throttled=status == 429)
    if status in (401, 403):
        if credentials.origin == "Prometheus basic_auth":
            cls = {401: Unauthorized, 403: Forbidden}[status]
            return cls(f"InfluxDB refused the credentials in Prometheus's basic_auth for {what} "
                       f"(HTTP {status}: {text})")
        return BackendError(f"InfluxDB refused the connector's credentials ({credentials.origin}) "
                            f"for {what} (HTTP {status}: {text}): check the username/password "
                            "or token")
    if status == 404:
        return BackendError(f"InfluxDB: {text} (HTTP 404): create the database or set "
                            "INFLUXDB_DATABASE (for InfluxDB 2.x/3.x, a DBRP mapping)")
    if status == 400 and what == "query":  # a statement InfluxDB cannot run: the matchers'
        return BadRequest(f"InfluxDB refused the query (HTTP 400): {text}")
    return BackendError(f"InfluxDB refused the {what} (HTTP {status}): {text}")
