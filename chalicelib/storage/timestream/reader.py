"""Reads from Amazon Timestream for LiveAnalytics.

query -> SHOW MEASURES (which measures, and the dimensions of each: fresh on every read,
so a label another writer added is readable as soon as Timestream lists it) ->
SELECTs returning one row per series and hour (``sql``) -> paged Query calls
-> series. Round trips grow with the number of series, not samples.

Each call of one request shares the request's deadline: a Query call starts only if it can
finish before it (connect + read timeout), a query abandoned before its last page is
cancelled (CancelQuery), and the retries of one call reuse one ClientToken, so Timestream
runs (and bills) the query once.
"""
import datetime
import functools
import logging
import uuid
from contextlib import closing
from operator import itemgetter
from typing import Dict, Iterator, List, Optional, Tuple

from botocore.exceptions import ClientError

from chalicelib.context import SAMPLE_BYTES, Deadline, ReadBudget, RequestContext, series_bytes
from chalicelib.errors import BackendError, BackendUnavailable
from chalicelib.model import Labels, Query, Series, describe
from chalicelib.storage.timestream.client import CONNECT_TIMEOUT_SECONDS, with_retries
from chalicelib.storage.timestream.records import decode_value, labels_from_row
from chalicelib.storage.timestream.sql import BIN_WIDTHS, SAMPLES_COLUMN, Measure, \
    SelectStatement, measures_statement, select_statements

LOG = logging.getLogger(__name__)

# The query client's read timeout (``timestream.build`` builds the client): at most 10 s, and short enough that
# two calls (connect + read timeout each) fit in the request deadline, which itself is under
# API Gateway's 29 s; Timestream stops a query after 60 s on its side. A call starts only if
# connect + read timeout fits before the deadline.
QUERY_READ_TIMEOUT_SECONDS = 10


MAX_ROWS = 1000  # the most Timestream returns per page


def query_read_timeout(deadline_seconds: float) -> float:
    """The query client's read timeout for a request deadline (REQUEST_DEADLINE_SECONDS)."""
    return max(1.0, min(QUERY_READ_TIMEOUT_SECONDS,
                        deadline_seconds / 2 - CONNECT_TIMEOUT_SECONDS))


class RowTooLarge(Exception):
    """A result row of the query is over Timestream's 1 MB ("max page response size")."""


class TimestreamQueryRunner:
    """Runs statements on Timestream: pages, retries, deadline, cancellation."""

    def __init__(self, query_client,
                 read_timeout: float = QUERY_READ_TIMEOUT_SECONDS) -> None:
        self.client = query_client
        self.call_seconds = CONNECT_TIMEOUT_SECONDS + read_timeout  # the client's timeouts

    def pages(self, sql: str, deadline: Deadline) -> Iterator[dict]:
        """The Query responses of ``sql``, first to last. Stopping early (an error, the
        deadline, a consumer that stops reading) cancels the query."""
        token: Optional[str] = None
        query_id: Optional[str] = None
        finished = False
        try:
            while True:
                if deadline.remaining() < self.call_seconds:
                    raise BackendUnavailable(
                        "the Timestream query did not finish within the request deadline "
                        "(REQUEST_DEADLINE_SECONDS): narrow the time range or the matchers")
                kwargs = {"QueryString": sql, "MaxRows": MAX_ROWS,
                          "ClientToken": uuid.uuid4().hex}  # one per call, kept by retries
                if token:
                    kwargs["NextToken"] = token
                page = with_retries(lambda: self._call(kwargs), deadline, "Timestream query",
                                    self.call_seconds)
                query_id = page.get("QueryId", query_id)
                token = page.get("NextToken")
                finished = not token
                yield page
                if finished:
                    return
        finally:
            if not finished and query_id:
                self.cancel(query_id)

    def _call(self, kwargs: dict) -> dict:
        try:
            return self.client.query(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            message = error.get("Message", "")
            if error.get("Code") == "ValidationException" and "max page response size" in message:
                raise RowTooLarge(message) from None
            if error.get("Code") == "ValidationException" and "does not exist" in message \
                    and "Column" in message:
                raise BackendUnavailable(
                    f"Timestream does not show a column it listed yet ({message}): a label "
                    "another writer just added is still propagating; retry") from None
            raise

    def cancel(self, query_id: str) -> None:
        """Best effort: stop a query whose answer is no longer wanted."""
        try:
            self.client.cancel_query(QueryId=query_id)
        except Exception as exc:  # noqa: BLE001 -- the answer is already decided
            LOG.info("could not cancel Timestream query %s: %s", query_id, exc)

    def measures(self, sql: str, deadline: Deadline) -> List[Measure]:
        """The rows of a SHOW MEASURES statement."""
        result = []
        with closing(self.pages(sql, deadline)) as pages:
            for page in pages:
                result.extend(measures_of(page))
        return result


def measures_of(page: dict) -> List[Measure]:
    """The measures in one page of SHOW MEASURES: columns ``measure_name``, ``data_type``
    and ``dimensions``, an array of rows (``dimension_name``, ``data_type``). An answer of
    another shape is a BackendError naming its columns (no AWS page documents this one)."""
    try:
        return _measures_of(page)
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:
        columns = [c.get("Name") if isinstance(c, dict) else c
                   for c in page.get("ColumnInfo", [])]
        raise BackendError(
            f"Timestream's SHOW MEASURES answer has a shape this connector does not know "
            f"(columns {columns}; {type(exc).__name__}: {exc}): expected measure_name, "
            "data_type and dimensions (an array of dimension_name, data_type)") from None


def _measures_of(page: dict) -> List[Measure]:
    columns = page.get("ColumnInfo", [])
    names = [c["Name"] for c in columns]
    result = []
    if not page.get("Rows"):
        return result
    fields = columns[names.index("dimensions")]["Type"]["ArrayColumnInfo"]["Type"]
    at = [f["Name"] for f in fields["RowColumnInfo"]].index("dimension_name")
    for row in page["Rows"]:
        data = dict(zip(names, row["Data"]))
        dims = frozenset(item["RowValue"]["Data"][at]["ScalarValue"]
                         for item in data["dimensions"].get("ArrayValue", []))
        result.append(Measure(data["measure_name"]["ScalarValue"],
                              data["data_type"]["ScalarValue"].lower(), dims))
    return result


_EPOCH = datetime.date(1970, 1, 1)


@functools.lru_cache(maxsize=4096)  # pragma: no mutate (the cache's size: speed, not answers)
def _day_ms(day: str) -> int:
    return (datetime.date.fromisoformat(day) - _EPOCH).days * 86_400_000


def timestamp_ms(text: str) -> int:
    """Milliseconds since the epoch of a Timestream TIMESTAMP (``2019-12-04
    19:00:01.000000000``, UTC)."""
    millis = text[20:23]
    return (_day_ms(text[:10]) + int(text[11:13]) * 3_600_000 + int(text[14:16]) * 60_000
            + int(text[17:19]) * 1000 + (int(millis.ljust(3, "0")) if millis else 0))


class TimestreamReader:
    """Answers remote-read queries from one Timestream table."""

    def __init__(self, runner: TimestreamQueryRunner, database: str, table: str) -> None:
        self.runner = runner
        self.database = database
        self.table = table

    def read(self, query: Query, ctx: RequestContext) -> List[Series]:
        """Series matching ``query``, sorted by labels, samples by time, charged to the
        request's budget as they arrive; BackendUnavailable if Timestream answers one series
        with two samples at one time (a dimension it does not show yet merged two series:
        retry once it has propagated)."""
        deadline = ctx.deadline
        measures = self.runner.measures(
            measures_statement(query, self.database, self.table), deadline)
        grouped: Dict[Labels, List[Tuple[int, float]]] = {}
        statements = select_statements(query, self.database, self.table, measures)
        for index, statement in enumerate(statements):
            for narrower in BIN_WIDTHS[1:] + (None,):
                try:
                    self._gather(statement, deadline, grouped, ctx.budget)
                    break
                except RowTooLarge:
                    if narrower is None:
                        raise BackendError("a series has more samples than one Timestream result "
                                           f"row holds (1 MB) even per {BIN_WIDTHS[-1]}") from None
                    LOG.info("a result row is over 1 MB: reading again by %s", narrower)
                    statement = select_statements(query, self.database, self.table, measures,
                                                  narrower)[index]
        return [self._series(labels, points) for labels, points in sorted(grouped.items())]

    def _gather(self, statement: SelectStatement, deadline: Deadline,
                grouped: Dict[Labels, List[Tuple[int, float]]], budget: ReadBudget) -> None:
        """Add the points of ``statement`` to ``grouped``, charging ``budget``. Nothing is
        added or charged if it fails (RowTooLarge)."""
        LOG.debug("query: %s", statement.sql)
        found: Dict[Labels, List[Tuple[int, float]]] = {}
        keys: Dict[tuple, Labels] = {}
        with budget.refunded_on_failure(), closing(self.runner.pages(statement.sql,
                                                                     deadline)) as pages:
            for page in pages:
                if not page.get("Rows"):
                    continue  # a page may hold only a NextToken (and no ColumnInfo)
                names = [c["Name"] for c in page["ColumnInfo"]]
                samples_at = names.index(SAMPLES_COLUMN)
                for row in page["Rows"]:
                    data = row["Data"]
                    key = tuple(d.get("ScalarValue") for d in data[:samples_at])
                    labels = keys.get(key)
                    if labels is None:
                        labels = keys[key] = labels_from_row(
                            key[0], dict(zip(statement.dimensions, key[1:])))
                        if labels not in grouped and labels not in found:
                            budget.take(0, series_bytes(labels))
                    points = data[samples_at].get("TimeSeriesValue", [])
                    budget.take(len(points), SAMPLE_BYTES * len(points))
                    found.setdefault(labels, []).extend(
                        (timestamp_ms(p["Time"]), decode_value(p["Value"]["ScalarValue"]))
                        for p in points)
        for labels, points in found.items():
            grouped.setdefault(labels, []).extend(points)

    @staticmethod
    def _series(labels: Labels, points: List[Tuple[int, float]]) -> Series:
        points.sort(key=itemgetter(0))  # CREATE_TIME_SERIES documents no order
        timestamps = [t for t, _ in points]
        for earlier, later in zip(timestamps, timestamps[1:]):
            if earlier == later:
                raise BackendUnavailable(
                    f"Timestream returned two samples at {earlier} for {describe(labels)}: "
                    "a dimension another writer added is not visible yet (schema "
                    "propagation), so two series look alike; retry in a moment")
        return Series(labels, timestamps, [v for _, v in points])

