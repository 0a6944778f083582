"""Reads from Amazon Timestream for LiveAnalytics.

query -> SHOW MEASURES (which measures, and the dimensions of each: fresh on every read,
so a label another writer added is readable as soon as Timestream lists it) ->
SELECTs returning one row per series and hour (``sql``), one per 100 measures and per
time slice (native histograms' measures in statements of their own) -> paged Query
calls, up to READ_CONCURRENCY at once -> series. Round trips grow with the number of
series, not samples.

Every call of one request shares the request's deadline, and may use all of it: a query
is as slow as Timestream makes it (a first page after seconds, more per 1 MB page). What
is still running at the deadline is abandoned with a 503 that says the query was slow,
and cancelled (CancelQuery) once its QueryId is known; the retries of one call reuse one
ClientToken, so Timestream runs (and bills) the query once.
"""
import datetime
import functools
import logging
import threading
import uuid
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import closing
from operator import attrgetter, itemgetter
from typing import Callable, Dict, Iterator, List, Optional, Set, Tuple, TypeVar

from botocore.exceptions import ClientError

from chalicelib.context import (SAMPLE_BYTES, Deadline, RequestContext, histogram_bytes,
                                series_bytes)
from chalicelib.errors import BackendError, BackendUnavailable
from chalicelib.model import Histogram, Labels, Query, Series, describe
from chalicelib.storage.histogram_text import loads
from chalicelib.storage.timestream.client import with_retries
from chalicelib.storage.timestream.records import (decode_value, histogram_metric,
                                                   labels_from_row)
from chalicelib.storage.timestream.sql import BIN_WIDTHS, MAX_TIME_MS, MIN_TIME_MS, \
    SAMPLES_COLUMN, Measure, SelectStatement, measures_statement, select_statements
from chalicelib.telemetry.request import CallStats

LOG = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ROWS = 1000  # the most Timestream returns per page
# Query calls one read request runs at once (statements, time slices): each is a query
# Timestream runs on the account's compute units (MaxQueryTCU, "Timestream compute units").
READ_CONCURRENCY = 4
# A read is cut into time slices of whole hours, one query each, when it spans at most
# this long; wider reads (e.g. "everything", as some clients ask) stay one query, since
# every slice is a query billed on its own.
SLICE_HOURS_AT_MOST = 7 * 24
HOUR_MS = 3_600_000
# A retry starts only if this much of the deadline is left after its pause.
MIN_QUERY_ATTEMPT_SECONDS = 1.0


def slow_query() -> BackendUnavailable:
    """The 503 of a read that Timestream had not answered by the deadline."""
    return BackendUnavailable(
        "the Timestream query was still running at the request deadline "
        "(REQUEST_DEADLINE_SECONDS): Timestream is slow to answer this read; narrow the time "
        "range or the matchers, or retry later")


class RowTooLarge(Exception):
    """A result row of the query is over Timestream's 1 MB ("max page response size")."""


class QueryRun:
    """The queries of one read request in flight: stopped at the deadline or at the first
    failure, each cancelled once its QueryId is known."""

    def __init__(self, runner: "TimestreamQueryRunner", stats: Optional[CallStats] = None) -> None:
        self.runner = runner
        self.stats = stats  # the request's Query calls
        self.stopped = False
        self._running: Set[str] = set()
        self._lock = threading.Lock()

    def started(self, query_id: str) -> None:
        with self._lock:
            self._running.add(query_id)

    def finished(self, query_id: str) -> bool:
        """Forget ``query_id``; False if ``stop`` already cancelled it."""
        with self._lock:
            if query_id in self._running:
                self._running.discard(query_id)
                return True
            return False

    def stop(self) -> None:
        """No further page is asked for; every query known to run is cancelled."""
        with self._lock:
            self.stopped = True
            running, self._running = self._running, set()
        for query_id in running:
            self.runner.cancel(query_id)


class TimestreamQueryRunner:
    """Runs statements on Timestream: pages, retries, deadline, cancellation, and up to
    READ_CONCURRENCY queries of one read at once."""

    def __init__(self, query_client, executor: Optional[ThreadPoolExecutor] = None) -> None:
        self.client = query_client
        self.executor = executor or ThreadPoolExecutor(
            max_workers=READ_CONCURRENCY, thread_name_prefix="timestream-query")

    def run_all(self, tasks: List[Callable[[QueryRun], T]], deadline: Deadline,
                stats: Optional[CallStats] = None) -> List[T]:
        """Run ``tasks`` (each paging its queries through ``pages``) concurrently and return
        their results in order. At the deadline: a 503 saying the query was slow; at the
        first failure: that failure. Either way the queries still running are cancelled.
        ``stats`` counts the Query calls."""
        run = QueryRun(self, stats)
        futures = [self.executor.submit(task, run) for task in tasks]
        done, pending = wait(futures, timeout=max(0.0, deadline.remaining()),
                             return_when=FIRST_EXCEPTION)
        failed = [f for f in futures if f in done and f.exception() is not None]
        if failed or pending:
            run.stop()
            for future in pending:
                future.cancel()  # not started yet: never starts
            if failed:
                raise failed[0].exception()
            raise slow_query()
        return [f.result() for f in futures]

    def pages(self, sql: str, deadline: Deadline, run: QueryRun) -> Iterator[dict]:
        """The Query responses of ``sql``, first to last. Stopping early (an error, the
        deadline, a consumer that stops reading) cancels the query."""
        token: Optional[str] = None
        query_id: Optional[str] = None
        finished = False
        try:
            while True:
                if run.stopped or deadline.remaining() <= 0:
                    raise slow_query()
                kwargs = {"QueryString": sql, "MaxRows": MAX_ROWS,
                          "ClientToken": uuid.uuid4().hex}  # one per call, kept by retries
                if token:
                    kwargs["NextToken"] = token
                page = with_retries(lambda: self._call(kwargs), deadline, "Timestream query",
                                    MIN_QUERY_ATTEMPT_SECONDS, run.stats)
                if query_id is None and page.get("QueryId"):
                    query_id = page["QueryId"]
                    run.started(query_id)
                token = page.get("NextToken")
                finished = not token
                yield page
                if finished:
                    return
        finally:
            if query_id is not None and run.finished(query_id) and not finished:
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

    def measures(self, sql: str, deadline: Deadline,
                 stats: Optional[CallStats] = None) -> List[Measure]:
        """The rows of a SHOW MEASURES statement (``stats``: counts its calls)."""
        def task(run: QueryRun) -> List[Measure]:
            result = []
            with closing(self.pages(sql, deadline, run)) as pages:
                for page in pages:
                    result.extend(measures_of(page))
            return result
        return self.run_all([task], deadline, stats)[0]


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


def time_slices(start_ms: int, end_ms: int) -> List[Tuple[int, int]]:
    """``[start_ms, end_ms]`` cut at whole hours into at most READ_CONCURRENCY inclusive
    slices (one when it spans over SLICE_HOURS_AT_MOST): each series' hourly rows fall
    whole into one slice."""
    hours = end_ms // HOUR_MS - start_ms // HOUR_MS + 1
    if hours <= 1 or hours > SLICE_HOURS_AT_MOST:
        return [(start_ms, end_ms)]
    count = min(READ_CONCURRENCY, hours)
    first_hour = start_ms // HOUR_MS
    cuts = [(first_hour + hours * i // count) * HOUR_MS for i in range(1, count)]
    edges = [start_ms] + cuts + [end_ms + 1]
    return [(a, b - 1) for a, b in zip(edges, edges[1:])]


class _Labels:
    """Which series' labels a read has charged to its budget (once each, whichever of its
    concurrent queries finds the series first)."""

    def __init__(self) -> None:
        self.charged: Set[Labels] = set()
        self.lock = threading.Lock()

    def first_sight(self, labels: Labels) -> bool:
        with self.lock:
            if labels in self.charged:
                return False
            self.charged.add(labels)
            return True

    def forget(self, labels: Iterator[Labels]) -> None:
        with self.lock:
            self.charged.difference_update(labels)


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
        stats = ctx.telemetry.calls("timestream", "Query")
        measures = self.runner.measures(
            measures_statement(query, self.database, self.table), deadline, stats)
        seen = _Labels()
        tasks = [functools.partial(self._gather_slice, sliced, index, statement, measures, ctx,
                                   seen)
                 for sliced in self._slices(query)
                 for index, statement in enumerate(select_statements(
                     sliced, self.database, self.table, measures))]
        # per series: its float points and its native histograms
        grouped: Dict[Labels, Tuple[List[Tuple[int, float]], List[Histogram]]] = {}
        for histograms, found in self.runner.run_all(tasks, deadline, stats):
            for labels, points in found.items():
                grouped.setdefault(labels, ([], []))[histograms].extend(points)
        return [self._series(labels, points, histograms)
                for labels, (points, histograms) in sorted(grouped.items())]

    @staticmethod
    def _slices(query: Query) -> List[Query]:
        start, end = max(int(query.start_ms), MIN_TIME_MS), min(int(query.end_ms), MAX_TIME_MS)
        if start > end:
            return []
        return [query._replace(start_ms=a, end_ms=b) for a, b in time_slices(start, end)]

    def _gather_slice(self, query: Query, index: int, statement: SelectStatement,
                      measures: List[Measure], ctx: RequestContext, seen: _Labels,
                      run: QueryRun) -> Tuple[bool, Dict[Labels, list]]:
        """Whether ``statement`` (number ``index`` of ``query``'s) reads native histograms,
        and its samples by series, read again in narrower bins while a row is over 1 MB."""
        for narrower in BIN_WIDTHS[1:] + (None,):
            try:
                return statement.histograms, self._gather(statement, ctx, seen, run)
            except RowTooLarge:
                if narrower is None:
                    raise BackendError("a series has more samples than one Timestream result "
                                       f"row holds (1 MB) even per {BIN_WIDTHS[-1]}") from None
                LOG.info("a result row is over 1 MB: reading again by %s", narrower)
                statement = select_statements(query, self.database, self.table, measures,
                                              narrower)[index]
        raise AssertionError("unreachable")  # pragma: no cover

    def _gather(self, statement: SelectStatement, ctx: RequestContext, seen: _Labels,
                run: QueryRun) -> Dict[Labels, list]:
        """The samples of ``statement`` by series (points, or native histograms), charged to
        the request's budget as they arrive; all of it given back if it fails (RowTooLarge
        is read again)."""
        LOG.debug("query: %s", statement.sql)
        found: Dict[Labels, list] = {}
        keys: Dict[tuple, Labels] = {}
        first_seen: List[Labels] = []
        try:
            with ctx.budget.refunded_on_failure() as budget, \
                    closing(self.runner.pages(statement.sql, ctx.deadline, run)) as pages:
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
                            metric = (histogram_metric(key[0]) if statement.histograms
                                      else key[0])
                            labels = keys[key] = labels_from_row(
                                metric, dict(zip(statement.dimensions, key[1:])))
                            if seen.first_sight(labels):
                                first_seen.append(labels)
                                budget.take(0, series_bytes(labels))
                        points = data[samples_at].get("TimeSeriesValue", [])
                        if statement.histograms:
                            samples = [_histogram(p, labels) for p in points]
                            budget.take(len(samples), sum(map(histogram_bytes, samples)))
                        else:
                            budget.take(len(points), SAMPLE_BYTES * len(points))
                            samples = [(timestamp_ms(p["Time"]),
                                        decode_value(p["Value"]["ScalarValue"]))
                                       for p in points]
                        found.setdefault(labels, []).extend(samples)
        except BaseException:
            seen.forget(iter(first_seen))
            raise
        return found

    @staticmethod
    def _series(labels: Labels, points: List[Tuple[int, float]],
                histograms: List[Histogram]) -> Series:
        points.sort(key=itemgetter(0))  # CREATE_TIME_SERIES documents no order
        histograms.sort(key=attrgetter("timestamp"))
        timestamps = [t for t, _ in points]
        for times in (timestamps, [h.timestamp for h in histograms]):
            for earlier, later in zip(times, times[1:]):
                if earlier == later:
                    raise BackendUnavailable(
                        f"Timestream returned two samples at {earlier} for {describe(labels)}: "
                        "a dimension another writer added is not visible yet (schema "
                        "propagation), so two series look alike; retry in a moment")
        return Series(labels, timestamps, [v for _, v in points], histograms)


def _histogram(point: dict, labels: Labels) -> Histogram:
    """The native histogram of one point of a histogram statement's time series."""
    try:
        return loads(point["Value"]["ScalarValue"], timestamp_ms(point["Time"]))
    except ValueError as exc:
        raise BackendError(f"Timestream holds a value of {describe(labels)} that this "
                           f"connector did not write as a native histogram ({exc})") from None
