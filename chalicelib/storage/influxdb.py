"""Amazon Timestream for InfluxDB (and any InfluxDB) backend, over the v1 API.

InfluxDB 1.x serves ``/write`` (line protocol) and ``/query`` (InfluxQL); 2.x and
3.x serve the same endpoints for a database/retention-policy mapped to a bucket
(DBRP). Writes: series -> line protocol (``influxdb_line``), gzip, batches of
``batch_lines`` lines, each retried on transient failures (connection errors,
timeouts, 429, 5xx) until the request deadline, then 503. A 400 "partial write"
means InfluxDB stored the rest and dropped ``dropped=N`` points it can never store:
counted as rejected. Reads: query -> InfluxQL (``influxql``), chunked JSON streamed
and counted against the sample limit.
"""
import gzip
import http.client
import json
import logging
import random
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

from chalicelib.errors import (BackendError, BackendUnavailable, ConnectorError, Forbidden,
                               Unauthorized, too_many_samples)
from chalicelib.matchers import matches_all
from chalicelib.model import Labels, Query, Series, WriteResult
from chalicelib.storage.influxdb_auth import InfluxCredentials
from chalicelib.storage.influxdb_line import (BITS_FIELD, NAME_TAG, VALUE_FIELD, LineEncoder,
                                              batches, decode, value_from_fields)
from chalicelib.storage.influxql import identifier, needs_exact_check, select_statement

LOG = logging.getLogger(__name__)
T = TypeVar("T")

BATCH_LINES = 5000
CONNECT_TIMEOUT_SECONDS = 2.0  # creating the database at start-up
MIN_ATTEMPT_SECONDS = 0.5      # a retry starts only if at least this much time is left
WRITE_TIMEOUT_SECONDS = 10.0
QUERY_TIMEOUT_SECONDS = 20.0
CHUNK_SIZE = 10_000
TRANSIENT_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError,
                    socket.timeout, TimeoutError, OSError)
_DROPPED = re.compile(r"dropped=(\d+)")


class Deadline:
    """The time by which a request must be answered (inside the Lambda timeout)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()


class Transient(Exception):
    """A failure worth retrying (the message says why)."""


def _json_int(text: str):
    # Go writes the float -0 as "-0"; json would read it as the integer 0.
    return -0.0 if text == "-0" else int(text)


def _error_text(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        text = json.loads(text).get("error", text)
    except (ValueError, AttributeError):
        pass
    return text[:300]


class InfluxClient:
    """The two v1 endpoints, with the connector's credentials on every request."""

    def __init__(self, url: str, database: str, retention_policy: str = "",
                 credentials: InfluxCredentials = InfluxCredentials()) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self.credentials = credentials

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
            return err.code, err
        except TRANSIENT_ERRORS as exc:
            reason = getattr(exc, "reason", None) or exc
            raise Transient(f"{type(exc).__name__}: {reason}") from None

    def write(self, body: bytes, timeout: float) -> Tuple[int, str]:
        """POST gzip-compressed line protocol; (status, error text)."""
        params = {"db": self.database, "precision": "ms"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        status, response = self._open("/write", params, body, {
            "Content-Type": "text/plain; charset=utf-8", "Content-Encoding": "gzip"}, timeout)
        with response:
            try:
                text = _error_text(response.read()) if status >= 300 else ""
            except TRANSIENT_ERRORS as exc:
                raise Transient(f"{type(exc).__name__} reading the answer") from None
        return status, text

    def query(self, statement: str, timeout: float, chunked: bool = True) -> Iterator[dict]:
        """Run InfluxQL; yields each JSON result object (one per chunk)."""
        params = {"db": self.database, "epoch": "ms"}
        if chunked:
            params.update(chunked="true", chunk_size=str(CHUNK_SIZE))
        body = urllib.parse.urlencode({"q": statement}).encode("ascii")
        status, response = self._open("/query", params, body, {
            "Content-Type": "application/x-www-form-urlencoded"}, timeout)
        with response:
            if status != 200:
                raise http_error(status, _error_text(response.read()), "query",
                                 self.credentials)
            try:
                for line in response:
                    if line.strip():
                        yield from json.loads(line, parse_int=_json_int).get("results", [])
            except TRANSIENT_ERRORS as exc:
                raise Transient(f"{type(exc).__name__} reading the answer") from None


def http_error(status: int, text: str, what: str,
               credentials: InfluxCredentials) -> Exception:
    """The exception an InfluxDB error status maps to (Transient if worth retrying)."""
    if status == 429 or status >= 500:
        return Transient(f"HTTP {status}: {text}")
    if status in (401, 403):
        if credentials.origin == "Prometheus basic_auth":
            cls = Unauthorized if status == 401 else Forbidden
            return cls(f"InfluxDB refused the credentials in Prometheus's basic_auth for {what} "
                       f"(HTTP {status}: {text})")
        return BackendError(f"InfluxDB refused the connector's credentials ({credentials.origin}) "
                            f"for {what} (HTTP {status}: {text}): check the username/password "
                            "or token")
    if status == 404:
        return BackendError(f"InfluxDB: {text} (HTTP 404): create the database or set "
                            "INFLUXDB_DATABASE (for InfluxDB 2.x/3.x, a DBRP mapping)")
    return BackendError(f"InfluxDB refused the {what} (HTTP {status}): {text}")


def with_retries(call: Callable[[float], T], deadline: Deadline, what: str,
                 timeout: float) -> T:
    """Run ``call(timeout)``, each attempt's timeout cut to the time left, retrying
    Transient failures with jittered exponential backoff while at least
    MIN_ATTEMPT_SECONDS would be left for another attempt; then BackendUnavailable (503)."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call(max(MIN_ATTEMPT_SECONDS, min(timeout, deadline.remaining())))
        except Transient as exc:
            reason = str(exc)
        delay = min(2.0, 0.05 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        if deadline.remaining() - delay < MIN_ATTEMPT_SECONDS:
            raise BackendUnavailable(f"InfluxDB {what} still failing after {attempt} "
                                     f"attempts ({reason}); retry later")
        LOG.info("retrying InfluxDB %s after %s (attempt %d)", what, reason, attempt)
        time.sleep(delay)


def dropped_points(text: str, lines: int) -> int:
    """How many points of a batch a 400 answer says were not stored."""
    counts = [int(n) for n in _DROPPED.findall(text)]
    if counts:
        return min(lines, sum(counts))
    return min(lines, max(1, text.count("unable to parse"))) if "unable to parse" in text \
        else lines


class InfluxDBStore:
    """Store on an InfluxDB reached through ``client``."""

    def __init__(self, client: InfluxClient, deadline_seconds: float = 25.0,
                 batch_lines: int = BATCH_LINES, create_database: bool = True) -> None:
        self.client = client
        self.deadline_seconds = deadline_seconds
        self.batch_lines = batch_lines
        self.encoder = LineEncoder()
        if create_database and not client.retention_policy:
            self._create_database()

    def _create_database(self) -> None:
        """CREATE DATABASE (idempotent in 1.x) when the credentials allow; else carry on."""
        statement = f"CREATE DATABASE {identifier(self.client.database)}"
        try:
            for result in self.client.query(statement, CONNECT_TIMEOUT_SECONDS * 2,
                                            chunked=False):
                if "error" in result:
                    LOG.info("could not create database: %s", result["error"])
        except (ConnectorError, Transient) as exc:
            LOG.info("could not create database %s: %s", self.client.database, exc)

    def write(self, series) -> WriteResult:
        """Store every sample; samples InfluxDB drops for good are counted as rejected."""
        deadline = Deadline(self.deadline_seconds)
        total = rejected = 0
        reasons: List[str] = []
        for batch in batches(series, self.encoder, self.batch_lines):
            total += len(batch)
            body = gzip.compress("\n".join(batch).encode("utf-8"), compresslevel=1)
            status, text = with_retries(lambda timeout: self._write_once(body, timeout),
                                        deadline, "write", WRITE_TIMEOUT_SECONDS)
            if status == 400:
                dropped = dropped_points(text, len(batch))
                rejected += dropped
                reasons.append(f"InfluxDB did not store {dropped} of {len(batch)} points: {text}")
        if rejected:
            LOG.warning("InfluxDB rejected %d of %d samples: %s", rejected, total, reasons[0])
        return WriteResult(total - rejected, rejected, tuple(reasons))

    def _write_once(self, body: bytes, timeout: float) -> Tuple[int, str]:
        status, text = self.client.write(body, timeout)
        if status < 300 or status == 400:
            return status, text
        raise http_error(status, text, "write", self.client.credentials)

    def read(self, query: Query, sample_limit: int) -> List[Series]:
        """Series selected by ``query`` with samples in range, sorted by labels."""
        statement = select_statement(query, self.client.retention_policy, self.client.database)
        deadline = Deadline(self.deadline_seconds)
        return with_retries(lambda timeout: self._read_once(query, statement, sample_limit,
                                                            timeout),
                            deadline, "query", QUERY_TIMEOUT_SECONDS)

    def _read_once(self, query: Query, statement: str, sample_limit: int,
                   timeout: float) -> List[Series]:
        found: Dict[Tuple, Tuple[Labels, List[int], List[float]]] = {}
        total = 0
        for result in self.client.query(statement, timeout):
            if "error" in result:
                raise BackendError(f"InfluxDB refused the query: {result['error']}")
            for item in result.get("series", []):
                tags = sorted((item.get("tags") or {}).items())
                key = (item.get("name", ""), tuple(tags))
                entry = found.get(key)
                if entry is None:
                    entry = found[key] = (self._labels(item.get("name", ""), tags, query),
                                          [], [])
                columns = item.get("columns", [])
                at = {name: columns.index(name) for name in ("time", VALUE_FIELD, BITS_FIELD)
                      if name in columns}
                for row in item.get("values", []):
                    value = value_from_fields(
                        row[at[VALUE_FIELD]] if VALUE_FIELD in at else None,
                        row[at[BITS_FIELD]] if BITS_FIELD in at else None)
                    if value is None:
                        continue
                    entry[1].append(int(row[at["time"]]))
                    entry[2].append(value)
                    total += 1
                    if total > sample_limit:
                        raise too_many_samples(sample_limit)
        result = [Series(labels, timestamps, values)
                  for labels, timestamps, values in found.values()
                  if labels is not None and timestamps]
        result.sort(key=lambda item: item.labels)
        return result

    @staticmethod
    def _labels(measurement: str, tags: List[Tuple[str, str]], query: Query) -> Optional[Labels]:
        """Decoded labels of a result series; None if an exact check rules it out."""
        labels = {decode(key): decode(value) for key, value in tags if value != ""}
        labels.setdefault(NAME_TAG, decode(measurement))
        if needs_exact_check(query.matchers, tags) and not matches_all(query.matchers, labels):
            return None
        return tuple(sorted(labels.items()))
