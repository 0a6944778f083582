"""Amazon Timestream for InfluxDB (and any InfluxDB) backend, over the v1 API.

InfluxDB 1.x serves ``/write`` (line protocol) and ``/query`` (InfluxQL); 2.x and
3.x serve the same endpoints for a database/retention-policy mapped to a bucket
(DBRP). Writes: series -> line protocol (``line_protocol``; native histograms as points
of the same series with a ``histogram`` string field), gzip, batches of at most
``batch_lines`` lines and ``max_body_bytes`` bytes (under the server's max-body-size; a line
that can never fit, or a histogram over InfluxDB's string limit, is refused, never sent),
each retried on transient failures (``retry``) until the request deadline, then 503. A
"partial write" (1.x: 400, 2.x: 422) means InfluxDB stored the rest and dropped
``dropped=N`` points it can never store: counted as rejected, naming the series when the
answer names a field and measurement. Reads: query -> InfluxQL (``influxql``), chunked JSON
streamed and charged to the request's read budget (float and histogram samples alike).
Every call of one request shares its deadline.
"""
import gzip
import logging
import re
from typing import Dict, List, Optional, Sequence, Tuple

from chalicelib.config import Settings
from chalicelib.context import SAMPLE_BYTES, RequestContext, histogram_bytes, series_bytes
from chalicelib.errors import BackendError, BadRequest, ConnectorError, Forbidden, Unauthorized
from chalicelib.matchers import matches_all
from chalicelib.model import (Histogram, Labels, Query, Series, WriteResult, describe,
                              metric_name)
from chalicelib.retry import Transient, with_retries
from chalicelib.storage.histogram_text import loads
from chalicelib.storage.influxdb.client import InfluxClient, http_error
from chalicelib.storage.influxdb.line_protocol import (BITS_FIELD, FLOAT_FIELDS,
                                                       HISTOGRAM_FIELD, HISTOGRAM_FIELDS,
                                                       NAME_TAG, VALUE_FIELD, LineEncoder,
                                                       batches, decode, stored_measurement,
                                                       value_from_fields)
from chalicelib.storage.influxdb.influxql import identifier, select_statement

LOG = logging.getLogger(__name__)

BATCH_LINES = 5000
CREATE_DATABASE_TIMEOUT_SECONDS = 4.0
WRITE_TIMEOUT_SECONDS = 10.0
QUERY_TIMEOUT_SECONDS = 20.0
MIN_ATTEMPT_SECONDS = 0.5  # a retry starts only if at least this much time is left
REASON_CHARS = 300
NAMED_SERIES = 3  # a refusal names at most this many series, and counts the others
_DROPPED = re.compile(r"dropped=(\d+)")
_COLUMNS = ("time", VALUE_FIELD, BITS_FIELD, HISTOGRAM_FIELD)


def too_long(line: bytes, max_bytes: int) -> str:
    """Why a line is refused without being sent: it alone is over ``max_bytes``."""
    series = line.partition(b" ")[0].decode("utf-8", "replace")  # measurement and tags
    return (f"InfluxDB cannot take a {len(line)}-byte line, over INFLUXDB_MAX_BODY_BYTES "
            f"({max_bytes}): {series[:REASON_CHARS]}")


def dropped_points(text: str, lines: int) -> int:
    """How many points of a batch a 400 answer says were not stored: the lines it could
    not parse plus the points it dropped (InfluxDB 1.x: ``partial write: unable to parse
    '…': …`` and ``… dropped=N``); all of them if it says neither."""
    counted = sum(int(n) for n in _DROPPED.findall(text)) + text.count("unable to parse")
    return min(lines, counted) if counted else lines


def _go_quoted(text: str) -> str:
    """``text`` as Go's ``%q`` writes it, without the quotes (stored names hold no control
    character: those are stored encoded)."""
    escaped = []
    for char in text:
        if char in '"\\':
            escaped.append("\\" + char)
        elif char.isprintable():
            escaped.append(char)
        else:
            escaped.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000
                           else f"\\U{ord(char):08x}")
    return "".join(escaped)


def refused_series(refusal: str, series: Sequence[Series]) -> List[Labels]:
    """The series of a batch that InfluxDB's answer refuses by field and measurement
    (``input field "histogram" on measurement "m" is type string, already exists as type
    float``, ``… is too long, 2000000 > 1048576``; 1.x quotes names as they are, 2.x as Go's
    ``%q``): those of that measurement whose samples are written with that field."""
    named = []
    for item in series:
        stored = stored_measurement(metric_name(item.labels))
        fields = (FLOAT_FIELDS if item.timestamps else ()) + \
            (HISTOGRAM_FIELDS if item.histograms else ())
        if any(f'input field "{field}" on measurement "{measurement}" is ' in refusal
               for field in fields for measurement in (stored, _go_quoted(stored))):
            named.append(item.labels)
    return named


def naming(labels: List[Labels]) -> str:
    """`` (a{…}, b{…} and 2 more series)`` for a reason; "" without series."""
    if not labels:
        return ""
    text = ", ".join(describe(item) for item in labels[:NAMED_SERIES])
    if len(labels) > NAMED_SERIES:
        text += f" and {len(labels) - NAMED_SERIES} more series"
    return f" ({text})"


class InfluxDBStore:
    """Store on an InfluxDB reached through ``client``."""

    def __init__(self, client: InfluxClient, batch_lines: int = BATCH_LINES,
                 max_body_bytes: int = Settings.influxdb_max_body_bytes,
                 create_database: bool = True) -> None:
        self.client = client
        self._credentials_checked = False
        self.batch_lines = batch_lines
        self.max_body_bytes = max_body_bytes
        self.encoder = LineEncoder()
        # Still to create: tried now, and again before each write while InfluxDB cannot be
        # reached (a connector started before its InfluxDB must not answer "database not
        # found" until a restart).
        self._create_pending = create_database and not client.retention_policy
        self._create_database(CREATE_DATABASE_TIMEOUT_SECONDS)

    def _create_database(self, timeout: float) -> None:
        """CREATE DATABASE (idempotent in 1.x) when the credentials allow; else carry on."""
        if not self._create_pending:
            return
        statement = f"CREATE DATABASE {identifier(self.client.database)}"
        try:
            for result in self.client.query(statement, timeout):
                if "error" in result:
                    LOG.info("could not create database: %s", result["error"])
        except Transient as exc:  # unreachable: try again before the next write
            LOG.info("could not create database %s: %s", self.client.database, exc)
            return
        except ConnectorError as exc:
            LOG.info("could not create database %s: %s", self.client.database, exc)
        self._create_pending = False

    def write(self, series: List[Series], ctx: RequestContext) -> WriteResult:
        """Store every sample within the request's deadline; samples InfluxDB drops for
        good are counted as rejected. Of a batch InfluxDB stored in part, the histograms
        stored are counted as if it dropped histograms first (a lower bound)."""
        if ctx.deadline.remaining() >= CREATE_DATABASE_TIMEOUT_SECONDS + MIN_ATTEMPT_SECONDS:
            self._create_database(CREATE_DATABASE_TIMEOUT_SECONDS)  # if still pending
        total = rejected = histograms = 0
        reasons: List[str] = []
        stats = ctx.telemetry.calls("influxdb", "write")
        for batch in batches(series, self.encoder, self.batch_lines, self.max_body_bytes):
            if batch.refused:  # histograms over InfluxDB's string limit, never sent
                total += len(batch.refused)
                rejected += len(batch.refused)
                ctx.telemetry.reject("limits", len(batch.refused))
                reasons.extend(batch.refused)
            if not batch.lines:  # only ever the last batch: break would do the same
                continue  # pragma: no mutate
            total += len(batch.lines)
            histograms += batch.histograms
            lines = b"\n".join(batch.lines)
            if len(lines) > self.max_body_bytes:  # one line, too long to send
                (line,) = batch.lines
                rejected += 1
                histograms -= batch.histograms
                ctx.telemetry.reject("limits", 1)
                reasons.append(too_long(line, self.max_body_bytes))
                continue
            # Equivalent mutants only: every level decompresses to the same lines (1: fastest).
            body = gzip.compress(lines, compresslevel=1)  # pragma: no mutate
            ctx.deadline.check(MIN_ATTEMPT_SECONDS, "InfluxDB write")
            refusal = with_retries(lambda timeout: self._write_once(body, timeout),
                                   ctx.deadline, "InfluxDB write", WRITE_TIMEOUT_SECONDS,
                                   MIN_ATTEMPT_SECONDS, stats)
            if refusal is not None:
                dropped = dropped_points(refusal, len(batch.lines))
                rejected += dropped
                histograms -= min(dropped, batch.histograms)
                ctx.telemetry.reject("limits" if refusal.startswith("HTTP 413")
                                     else "backend_refused", dropped)
                named = naming(refused_series(refusal, batch.series))
                reasons.append(f"InfluxDB did not store {dropped} of {len(batch.lines)} "
                               f"points{named}: {refusal[:REASON_CHARS]}")
        if rejected:
            LOG.warning("InfluxDB rejected %d of %d samples: %s", rejected, total, reasons[0])
        return WriteResult(total - rejected, rejected, tuple(reasons), histograms=histograms)

    def _write_once(self, body: bytes, timeout: float) -> Optional[str]:
        """None when InfluxDB stored the batch; its answer when it refused points for good."""
        status, text = self.client.write(body, timeout)
        if status < 300:
            return None
        if status in (400, 422):  # 2.x answers a partial write with 422
            return text
        if status == 413:  # the server's max-body-size is below max_body_bytes
            return (f"HTTP 413 ({text}): the request was larger than InfluxDB's max-body-size; "
                    "set INFLUXDB_MAX_BODY_BYTES below it")
        raise http_error(status, text, "write", self.client.credentials)

    def check_credentials(self, ctx: RequestContext) -> None:
        """Once per credential, ``SHOW MEASUREMENTS LIMIT 1``: InfluxDB refuses credentials it
        does not know (401/403) before any matcher is compiled."""
        if self._credentials_checked:
            return
        stats = ctx.telemetry.calls("influxdb", "query")
        stats.call()
        try:
            ctx.deadline.check(MIN_ATTEMPT_SECONDS, "InfluxDB credentials check")
            for result in self.client.query("SHOW MEASUREMENTS LIMIT 1",
                                            min(QUERY_TIMEOUT_SECONDS, ctx.deadline.remaining())):
                if "error" in result:
                    return  # e.g. no database yet: the read meets it and answers it
        except (Unauthorized, Forbidden):
            stats.failed()
            raise
        except (ConnectorError, Transient) as exc:
            stats.failed(getattr(exc, "throttled", False))
            return  # the read meets it again and answers it
        self._credentials_checked = True

    def read(self, query: Query, ctx: RequestContext) -> List[Series]:
        """Series selected by ``query`` with samples in range, sorted by labels."""
        statement = select_statement(query, self.client.retention_policy, self.client.database)
        size = len(statement.encode("utf-8"))
        if size > self.max_body_bytes:  # InfluxDB would reset the upload: no use sending it
            raise BadRequest(f"the query's matchers make a {size}-byte InfluxQL statement, over "
                             f"INFLUXDB_MAX_BODY_BYTES ({self.max_body_bytes}): use shorter "
                             "matcher values")
        ctx.deadline.check(MIN_ATTEMPT_SECONDS, "InfluxDB query")
        return with_retries(lambda timeout: self._read_once(query, statement, ctx, timeout),
                            ctx.deadline, "InfluxDB query", QUERY_TIMEOUT_SECONDS,
                            MIN_ATTEMPT_SECONDS, ctx.telemetry.calls("influxdb", "query"))

    def _read_once(self, query: Query, statement: str, ctx: RequestContext,
                   timeout: float) -> List[Series]:
        """One attempt; what it charged to the budget is given back if it fails."""
        with ctx.budget.refunded_on_failure() as budget:
            return self._gather(query, statement, ctx, budget, timeout)

    def _gather(self, query: Query, statement: str, ctx: RequestContext, budget,
                timeout: float) -> List[Series]:
        found: Dict[Tuple, Tuple[Optional[Labels], List[int], List[float], List[Histogram]]] = {}
        for result in self.client.query(statement, timeout):
            # each chunk is bounded by the timeout, the whole answer by the deadline
            ctx.deadline.ensure("the InfluxDB query")
            if "error" in result:
                raise BackendError(f"InfluxDB refused the query: {result['error']}")
            for item in result.get("series", []):
                tags = sorted((item.get("tags") or {}).items())
                key = (item.get("name", ""), tuple(tags))
                entry = found.get(key)
                if entry is None:
                    entry = found[key] = (self._labels(item.get("name", ""), tags, query),
                                          [], [], [])
                    if entry[0] is not None:
                        budget.take(0, series_bytes(entry[0]))
                samples, nbytes = _add_rows(item, entry[1], entry[2], entry[3])
                budget.take(samples, nbytes)
        result = [Series(labels, timestamps, values, histograms)
                  for labels, timestamps, values, histograms in found.values()
                  if labels is not None and (timestamps or histograms)]
        result.sort(key=lambda item: item.labels)
        return result

    @staticmethod
    def _labels(measurement: str, tags: List[Tuple[str, str]], query: Query) -> Optional[Labels]:
        """Decoded labels of a result series; None if they do not match the query. InfluxDB
        matched the stored text: encoded values only approximately (regexes cannot see
        inside them), and a series written without a ``__name__`` tag is named by its
        measurement here, so every series is checked against the decoded labels."""
        labels = {decode(key): decode(value) for key, value in tags if value}
        labels.setdefault(NAME_TAG, decode(measurement))
        if not matches_all(query.matchers, labels):
            return None
        return tuple(sorted(labels.items()))


def _add_rows(item: dict, timestamps: List[int], values: List[float],
              histograms: List[Histogram]) -> Tuple[int, int]:
    """Add the samples of one chunk of a result series (at most CHUNK_SIZE rows, in time
    order): a float sample from ``value``/``value_bits``, a native histogram from
    ``histogram`` (a point may hold both); fields that hold neither (written by others)
    are skipped. Returns the samples added and their encoded bytes."""
    columns = item.get("columns", [])
    at = {name: columns.index(name) for name in _COLUMNS if name in columns}
    floats, before, nbytes = len(timestamps), len(histograms), 0
    for row in item.get("values", []):
        timestamp = int(row[at["time"]])
        value = value_from_fields(row[at[VALUE_FIELD]] if VALUE_FIELD in at else None,
                                  row[at[BITS_FIELD]] if BITS_FIELD in at else None)
        if value is not None:
            timestamps.append(timestamp)
            values.append(value)
        text = row[at[HISTOGRAM_FIELD]] if HISTOGRAM_FIELD in at else None
        if isinstance(text, str):
            try:
                histogram = loads(text, timestamp)
            except ValueError:
                continue  # not a histogram this connector wrote
            histograms.append(histogram)
            nbytes += histogram_bytes(histogram)
    floats = len(timestamps) - floats
    return floats + len(histograms) - before, SAMPLE_BYTES * floats + nbytes
