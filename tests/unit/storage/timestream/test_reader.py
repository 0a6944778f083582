"""The Query API as the reader uses it (on the emulation, which enforces Timestream's query
rules): pages, one deadline, cancellation, idempotent retries, error mapping."""
import logging
import time

import pytest

from chalicelib.errors import (BackendError, BackendUnavailable,
                               ResponseTooLarge)
from chalicelib.matchers import Matcher
from chalicelib.context import SAMPLE_BYTES
from chalicelib.model import Histogram, Query, Series
from chalicelib.storage.timestream import reader as timestream_query
from chalicelib.storage.timestream.reader import (TimestreamQueryRunner,
                                                  timestamp_ms)
from chalicelib.storage.timestream.store import Deadline
from harness.timestream.env import NOW_MS
from tests.support import context

LOGGER = "chalicelib.storage.timestream.reader"

def write_series(env, count, samples=1, name="m"):
    env.store.write([Series((("__name__", name), ("i", str(i))),
                            [NOW_MS - 1000 * k for k in range(samples)], [1.0] * samples)
                     for i in range(count)], context())


def read(env, *matchers, limit=10 ** 6, deadline=None):
    """Read with a deadline far enough that a loaded test machine cannot reach it."""
    query = Query(0, 2 ** 62, tuple(Matcher.of(*m) for m in matchers))
    return list(env.store.read(query, context(limit, deadline=deadline or Deadline(600))))


def selects(env):
    return [c for c in env.queries.calls
            if c["Operation"] == "Query" and c["QueryString"].startswith("SELECT")]


def test_pages_are_followed_through_pages_holding_only_a_next_token(env):
    write_series(env, 2500)
    assert len(read(env, (0, "__name__", "m"))) == 2500
    pages = selects(env)
    assert [("NextToken" in c) for c in pages] == [False, True, True, True]  # 0, 1000, 1000, 500
    assert all(c["MaxRows"] == 1000 for c in pages)


def test_round_trips_grow_with_series_not_samples(env):
    write_series(env, 10, samples=600)  # 10 minutes at 1 s
    [answer] = {len(s.timestamps) for s in read(env, (0, "__name__", "m"))}
    assert answer == 600
    assert len(selects(env)) == 2  # the empty first page, then 10 rows


def test_retries_reuse_the_client_token_so_the_query_runs_once(env):
    write_series(env, 3)
    env.queries.faults = [("lost", None), (400, "ThrottlingException"),
                          (500, "InternalServerException")]
    assert len(read(env, (0, "__name__", "m"))) == 3
    first = [c for c in env.queries.calls if c["QueryString"].startswith("SHOW")
             and "NextToken" not in c]
    assert len(first) == 4 and len({c["ClientToken"] for c in first}) == 1
    assert len(env.queries.executions) == 2  # SHOW MEASURES once, SELECT once
    tokens = [c["ClientToken"] for c in env.queries.calls]
    assert len(set(tokens)) == len(tokens) - 3  # a fresh token per call, not per attempt


def test_persistent_throttling_is_503(env):
    write_series(env, 1)
    env.queries.faults = [(400, "ThrottlingException")] * 100_000
    with pytest.raises(BackendUnavailable, match="ThrottlingException"):
        read(env, (0, "__name__", "m"), deadline=Deadline(13.5))


def test_no_call_starts_once_the_deadline_has_passed(env, caplog):
    write_series(env, 1)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        with pytest.raises(BackendUnavailable, match="still running at the request deadline"):
            read(env, (0, "__name__", "m"), deadline=Countdown(0))
    assert env.queries.calls == []
    assert caplog.text == ""  # no query started: none to cancel


@pytest.mark.parametrize("remaining", [0, -0.5])
def test_no_page_is_asked_for_at_or_past_the_deadline(env, remaining):
    runner = env.store.reader.runner
    with pytest.raises(BackendUnavailable, match="still running at the request deadline"):
        list(runner.pages("SELECT 1", Countdown(remaining), timestream_query.QueryRun(runner)))
    assert env.queries.calls == []


def test_a_read_of_exactly_the_sample_limit_is_answered(env):
    write_series(env, 3, samples=2)
    assert len(read(env, (0, "__name__", "m"), limit=6)) == 3
    with pytest.raises(ResponseTooLarge, match="more than 5 samples"):
        read(env, (0, "__name__", "m"), limit=5)


def test_one_deadline_for_every_query_of_a_request(env):
    write_series(env, 1)
    ctx = context(10, deadline_seconds=25.0)
    assert len(env.store.read(Query(0, 2 ** 62, (Matcher.of(0, "__name__", "m"),)), ctx)) == 1
    ctx.deadline.end = time.monotonic() - 0.001  # the request's earlier queries took it all
    with pytest.raises(BackendUnavailable, match="deadline"):
        env.store.read(Query(0, 2 ** 62, (Matcher.of(0, "__name__", "m"),)), ctx)
    assert len(env.queries.executions) == 2  # the first read's: none started for the second


def test_a_query_abandoned_before_its_last_page_is_cancelled(env):
    write_series(env, 2500)
    with pytest.raises(Exception, match="sample"):
        read(env, (0, "__name__", "m"), limit=1500)
    assert len(env.queries.cancelled) == 1
    [cancel] = [c for c in env.queries.calls if c["Operation"] == "CancelQuery"]
    assert cancel["QueryId"] == env.queries.cancelled[0]


def test_a_finished_query_is_not_cancelled(env, caplog):
    write_series(env, 10)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        read(env, (0, "__name__", "m"))
    assert env.queries.cancelled == []
    [logged] = [r for r in caplog.records if r.getMessage().startswith("query: SELECT")]
    assert logged.levelno == logging.DEBUG


def test_a_cancel_that_fails_is_logged_and_the_read_keeps_its_own_error(env, caplog):
    write_series(env, 2500)
    # SHOW MEASURES: 2 calls; SELECT: the empty first page, 1000 rows, 1000 rows (over the
    # limit); then the CancelQuery call fails.
    env.queries.faults = [None] * 5 + [(500, "InternalServerException")]
    with caplog.at_level(logging.INFO, logger=LOGGER):
        with pytest.raises(ResponseTooLarge):
            read(env, (0, "__name__", "m"), limit=1500)
    assert [c["Operation"] for c in env.queries.calls][-1] == "CancelQuery"
    assert env.queries.cancelled == []
    [logged] = caplog.records
    assert logged.levelno == logging.INFO
    assert logged.getMessage().startswith("could not cancel Timestream query")


def test_a_column_listed_but_unknown_to_the_query_engine_is_503(env):
    env.store.write([Series((("__name__", "m"), ("pod", "p1")), [NOW_MS], [1.0])], context())
    env.queries.unqueryable = {"pod"}
    with pytest.raises(BackendUnavailable, match="Column 'pod' does not exist"):
        read(env, (0, "__name__", "m"))


@pytest.mark.parametrize("message", [
    "injected", "line 1:15: Table 'db.t' does not exist", "line 1:8: Column 'x' is ambiguous"])
def test_other_validation_errors_are_500_with_timestreams_message(env, message):
    write_series(env, 1)
    env.queries.faults = [None, None, (400, "ValidationException", message)]  # the SELECT
    with pytest.raises(BackendError) as raised:
        read(env, (0, "__name__", "m"))
    assert raised.value.status == 500
    assert str(raised.value) == ("Timestream refused the request to Timestream query "
                                 f"(ValidationException): {message}")


def test_the_query_client_may_wait_the_whole_stage_deadline(monkeypatch):
    """A slow first page is waited for, not cut short by a read timeout under the deadline."""
    from chalicelib.caches import LeastRecentlyUsed
    from chalicelib.config import Settings
    from chalicelib.storage import timestream as backend
    monkeypatch.setattr(backend, "_STORES", LeastRecentlyUsed(32))  # none cached by other tests
    store = backend.store_for(Settings(backend="timestream", region="us-east-1",
                                      endpoint_url="http://127.0.0.1:1",
                                      request_deadline_seconds=13), None)
    assert store.reader.runner.client.meta.config.read_timeout == 13
    assert store.reader.runner.executor._max_workers == timestream_query.READ_CONCURRENCY == 4
    store.close()


@pytest.mark.parametrize("text,ms", [
    ("1970-01-01 00:00:00.000000000", 0),
    ("2027-01-15 08:00:00.123000000", 1_800_000_000_123),
    ("2019-12-04 19:00:01.5", 1_575_486_001_500),
    ("2019-12-04 19:00:01", 1_575_486_001_000),
    ("2019-12-04 19:47:31.250000000", 1_575_488_851_250),
])
def test_timestamps_read_back_in_milliseconds(text, ms):
    assert timestamp_ms(text) == ms


def test_runner_needs_nothing_but_a_client():
    assert TimestreamQueryRunner(object()).client is not None


def test_rows_over_one_megabyte_are_read_again_in_narrower_bins(env, caplog):
    """A series scraped 10 times a second: 36 000 samples an hour is over 1 MB in one row."""
    base = 1_800_000_000_000 - 1_800_000_000_000 % 3_600_000
    records = [{"MeasureName": "fast", "MeasureValueType": "DOUBLE", "MeasureValue": "1.5",
                "Time": str(base + 100 * i), "TimeUnit": "MILLISECONDS",
                "Dimensions": [{"Name": "job", "Value": "x"}]} for i in range(20_000)]
    env.wires[0].calls.append({"Records": records})
    with caplog.at_level(logging.INFO, logger=LOGGER):
        [series] = read(env, (0, "__name__", "fast"))
    assert series.timestamps == [base + 100 * i for i in range(20_000)]
    sqls = [c["QueryString"] for c in selects(env) if "NextToken" not in c]
    assert [s.endswith("bin(time, 1h)") for s in sqls] == [True, False]
    assert sqls[1].endswith("bin(time, 1m)")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] \
        == [(logging.INFO, "a result row is over 1 MB: reading again by 1m")]


def test_a_series_over_one_megabyte_a_minute_is_a_500_saying_so(env):
    """500 samples a second: 20 000 samples in 40 s are over 1 MB even in a one-minute row."""
    base = 1_800_000_000_000 - 1_800_000_000_000 % 60_000
    records = [{"MeasureName": "faster", "MeasureValueType": "DOUBLE", "MeasureValue": "1.5",
                "Time": str(base + 2 * i), "TimeUnit": "MILLISECONDS",
                "Dimensions": [{"Name": "job", "Value": "x"}]} for i in range(20_000)]
    env.wires[0].calls.append({"Records": records})
    with pytest.raises(BackendError, match="more samples than one Timestream result row holds "
                                           r"\(1 MB\) even per 1m") as raised:
        read(env, (0, "__name__", "faster"))
    assert raised.value.status == 500


class Countdown:
    """A deadline already passed."""

    def __init__(self, remaining):
        self.value = remaining

    def remaining(self):
        return self.value


def wait_until(condition, seconds=30):
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end
        time.sleep(0.05)


def test_a_slow_query_may_use_the_whole_deadline(env):
    """3 s to the first page, 0.5 s a further page: more than half of a 6 s deadline."""
    write_series(env, 2500)
    env.queries.first_page_seconds, env.queries.page_seconds = 2.0, 0.3
    started = time.monotonic()
    assert len(read(env, (0, "__name__", "m"), deadline=Deadline(8))) == 2500
    # SHOW MEASURES 2 + 0.3, SELECT 2 + 3 x 0.3: past any per-call budget under the deadline
    assert time.monotonic() - started >= 5.2


def test_a_query_still_running_at_the_deadline_is_a_503_saying_it_is_slow_then_cancelled(env):
    write_series(env, 10)
    env.queries.first_page_seconds = 3.0
    started = time.monotonic()
    with pytest.raises(BackendUnavailable) as raised:
        read(env, (0, "__name__", "m"), deadline=Deadline(1))
    assert 1 <= time.monotonic() - started < 2.5  # answered at the deadline, not after the call
    assert raised.value.status == 503
    assert str(raised.value).startswith("the Timestream query was still running at the request "
                                        "deadline (REQUEST_DEADLINE_SECONDS): Timestream is slow")
    assert "network" not in str(raised.value)
    # The call in flight returns its QueryId later: the query is cancelled then.
    wait_until(lambda: env.queries.cancelled)
    assert env.queries.cancelled == env.queries.executions


def test_a_query_abandoned_at_the_deadline_between_pages_is_cancelled_at_once(env):
    write_series(env, 2500)
    env.queries.page_seconds = 0.6
    with pytest.raises(BackendUnavailable, match="still running"):
        read(env, (0, "__name__", "m"), deadline=Deadline(2.0))
    wait_until(lambda: env.queries.cancelled)
    assert env.queries.cancelled == [env.queries.executions[-1]]
    # no page of the cancelled query is asked for after its cancellation
    time.sleep(1)
    operations = [c["Operation"] for c in env.queries.calls]
    assert "Query" not in operations[operations.index("CancelQuery"):]


def test_a_call_slower_than_the_read_timeout_is_retried_then_503_naming_the_slowness():
    import boto3
    from botocore.config import Config

    from chalicelib.errors import BackendUnavailable as Unavailable
    client = boto3.client("timestream-query", region_name="us-east-1",
                          endpoint_url="https://query.timestream.emulated",
                          config=Config(read_timeout=0.3, retries={"total_max_attempts": 1}))
    from harness.timestream.query_service import QueryService
    from harness.timestream.env import DATABASE, TABLE, install_sql_functions
    service = QueryService(DATABASE, TABLE, lambda: [], install_sql_functions)
    service.attach(client)
    service.first_page_seconds = 1.0
    runner = TimestreamQueryRunner(client)
    with pytest.raises(Unavailable) as raised:
        runner.measures(f'SHOW MEASURES FROM "{DATABASE}"."{TABLE}"', Deadline(2.5))
    assert "Timestream did not answer Timestream query in time" in str(raised.value) \
        or "still running" in str(raised.value)
    assert "network" not in str(raised.value)
    assert len(service.calls) >= 2  # retried with the same ClientToken
    assert len({c["ClientToken"] for c in service.calls}) == 1


def test_show_measures_rows_are_read_by_column_and_field_name():
    """The result shape of SHOW MEASURES, with the row fields in another order."""
    from chalicelib.storage.timestream.reader import measures_of
    from chalicelib.storage.timestream.sql import Measure
    fields = [{"Name": "data_type", "Type": {"ScalarType": "VARCHAR"}},
              {"Name": "dimension_name", "Type": {"ScalarType": "VARCHAR"}}]
    page = {"ColumnInfo": [
        {"Name": "dimensions", "Type": {"ArrayColumnInfo": {"Type": {"RowColumnInfo": fields}}}},
        {"Name": "data_type", "Type": {"ScalarType": "VARCHAR"}},
        {"Name": "measure_name", "Type": {"ScalarType": "VARCHAR"}}],
        "Rows": [{"Data": [{"ArrayValue": [{"RowValue": {"Data": [{"ScalarValue": "varchar"},
                                                                  {"ScalarValue": "job"}]}}]},
                           {"ScalarValue": "DOUBLE"}, {"ScalarValue": "up"}]},
                 {"Data": [{"NullValue": True}, {"ScalarValue": "bigint"}, {"ScalarValue": "n"}]}]}
    assert measures_of(page) == [Measure("up", "double", frozenset({"job"})),
                                 Measure("n", "bigint", frozenset())]
    assert measures_of({"QueryId": "q", "Rows": [], "ColumnInfo": [], "NextToken": "t"}) == []


@pytest.mark.parametrize("columns,row", [
    ([{"Name": "measure", "Type": {"ScalarType": "VARCHAR"}}], [{"ScalarValue": "up"}]),
    ([{"Name": "measure_name", "Type": {"ScalarType": "VARCHAR"}},
      {"Name": "data_type", "Type": {"ScalarType": "VARCHAR"}},
      {"Name": "dimensions", "Type": {"ScalarType": "VARCHAR"}}],
     [{"ScalarValue": "up"}, {"ScalarValue": "double"}, {"ScalarValue": "job"}]),
])
def test_a_show_measures_answer_of_another_shape_is_a_500_naming_its_columns(columns, row):
    from chalicelib.storage.timestream.reader import measures_of
    with pytest.raises(BackendError) as raised:
        measures_of({"ColumnInfo": columns, "Rows": [{"Data": row}]})
    message = str(raised.value)
    assert message.startswith("Timestream's SHOW MEASURES answer has a shape this connector does "
                              f"not know (columns {[c['Name'] for c in columns]}; ")
    assert message.endswith("expected measure_name, data_type and dimensions (an array of "
                            "dimension_name, data_type)")
    assert raised.value.status == 500


HOUR = 3_600_000


@pytest.mark.parametrize("start,end,slices", [
    (0, HOUR - 1, [(0, HOUR - 1)]),
    (10 * HOUR + 5, 10 * HOUR + 7, [(10 * HOUR + 5, 10 * HOUR + 7)]),
    (10 * HOUR + 1380_000, 11 * HOUR + 1380_000,
     [(10 * HOUR + 1380_000, 11 * HOUR - 1), (11 * HOUR, 11 * HOUR + 1380_000)]),
    (0, 6 * HOUR - 1, [(0, HOUR - 1), (HOUR, 3 * HOUR - 1), (3 * HOUR, 4 * HOUR - 1),
                       (4 * HOUR, 6 * HOUR - 1)]),
    (0, 168 * HOUR - 1, [(0, 42 * HOUR - 1), (42 * HOUR, 84 * HOUR - 1),
                         (84 * HOUR, 126 * HOUR - 1), (126 * HOUR, 168 * HOUR - 1)]),
    (0, 168 * HOUR, [(0, 168 * HOUR)]),  # 169 hours: one query
])
def test_reads_are_cut_in_whole_hours_into_at_most_four_slices(start, end, slices):
    assert timestream_query.time_slices(start, end) == slices


def write_hours(env, series=3, hours=3):
    """``series`` series with a sample every 10 minutes over ``hours`` hours to NOW_MS."""
    times = list(range(NOW_MS - hours * HOUR + 1, NOW_MS + 1, 600_000))
    env.store.write([Series((("__name__", "m"), ("i", str(i))), times, [float(i)] * len(times))
                     for i in range(series)], context())
    return times


def test_a_read_over_hours_runs_its_slices_at_once_and_joins_them_exactly(env):
    times = write_hours(env, hours=4)
    env.queries.first_page_seconds = 1.0
    started = time.monotonic()
    got = env.store.read(Query(times[0], times[-1], (Matcher.of(0, "__name__", "m"),)),
                         context(deadline=Deadline(600)))
    took = time.monotonic() - started
    assert [(s.labels, list(s.timestamps), list(s.values)) for s in got] == [
        ((("__name__", "m"), ("i", str(i))), times, [float(i)] * len(times)) for i in range(3)]
    assert len([c for c in selects(env) if "NextToken" not in c]) == 4
    assert took < 1.0 + 4 * 1.0  # SHOW MEASURES, then four 1-s starts side by side, not in turn


def test_a_read_of_one_millisecond_finds_the_sample_at_it(env):
    write_series(env, 1, samples=3)
    instant = NOW_MS - 1000
    [found] = env.store.read(Query(instant, instant, (Matcher.of(0, "__name__", "m"),)),
                             context(deadline=Deadline(600)))
    assert list(found.timestamps) == [instant]
    assert env.store.read(Query(instant + 1, instant, (Matcher.of(0, "__name__", "m"),)),
                          context(deadline=Deadline(600))) == []  # an empty range


def test_labels_of_a_series_found_in_several_slices_are_charged_once(env):
    from chalicelib.context import SAMPLE_BYTES, series_bytes
    times = write_hours(env, series=2, hours=3)
    query = Query(times[0], times[-1], (Matcher.of(0, "__name__", "m"),))
    exact = 2 * series_bytes((("__name__", "m"), ("i", "0"))) + 2 * len(times) * SAMPLE_BYTES
    assert len(env.store.read(query, context(byte_limit=exact))) == 2
    with pytest.raises(ResponseTooLarge):
        env.store.read(query, context(byte_limit=exact - 1))


def test_a_failing_slice_stops_the_others_and_the_read_answers_its_error(env):
    write_hours(env, series=1500, hours=3)
    with pytest.raises(ResponseTooLarge):
        read_range = Query(NOW_MS - 3 * HOUR + 1, NOW_MS, (Matcher.of(0, "__name__", "m"),))
        env.store.read(read_range, context(2000, deadline=Deadline(600)))
    wait_until(lambda: len(env.queries.cancelled) >= 1)


# -- native histograms --------------------------------------------------------------------

H = Histogram(0, 17, 27.5, 3, 2.938735877055719e-39, 2, positive_spans=((-2, 2), (1, 3)),
              positive=(1, 2, -1, 0, 3), negative_spans=((0, 1),), negative=(2,))


def write_histograms(env, count, samples=1, name="h", floats=0):
    env.store.write([Series((("__name__", name), ("i", str(i))),
                            [NOW_MS - 500 - 1000 * k for k in range(floats)], [1.0] * floats,
                            [H._replace(timestamp=NOW_MS - 1000 * k, zero_count=k)
                             for k in range(samples)])
                     for i in range(count)], context())


def test_histograms_come_back_sorted_by_time_beside_the_float_samples(env):
    write_histograms(env, 2, samples=5, floats=3)
    found = read(env, (0, "__name__", "h"))
    assert [dict(s.labels)["i"] for s in found] == ["0", "1"]
    for series in found:
        assert [h.timestamp for h in series.histograms] == [NOW_MS - 1000 * k
                                                            for k in (4, 3, 2, 1, 0)]
        assert [h.zero_count for h in series.histograms] == [4, 3, 2, 1, 0]
        assert series.timestamps == [NOW_MS - 500 - 1000 * k for k in (2, 1, 0)]
    assert sorted(c["QueryString"].count('"__histogram"') for c in selects(env)
                  if "NextToken" not in c) == [0, 2]  # the floats' statement, the histograms'


def test_no_histogram_statement_runs_unless_a_histogram_measure_is_listed(env):
    write_series(env, 2)
    write_histograms(env, 1, name="other")
    assert len(read(env, (0, "__name__", "m"))) == 2
    sqls = [c["QueryString"] for c in selects(env) if "NextToken" not in c]
    assert len(sqls) == 1 and "__histogram" not in sqls[0]
    env.queries.calls.clear()
    [found] = read(env, (0, "__name__", "other"))
    assert found.timestamps == [] and len(found.histograms) == 1
    sqls = [c["QueryString"] for c in selects(env) if "NextToken" not in c]
    assert len(sqls) == 1 and '"__histogram"' in sqls[0]


def test_histogram_samples_and_bytes_are_charged_to_the_read_budget(env):
    from chalicelib.context import histogram_bytes, series_bytes
    write_histograms(env, 1, samples=4, floats=2)
    query = Query(0, 2 ** 62, (Matcher.of(0, "__name__", "h"),))
    labels = (("__name__", "h"), ("i", "0"))
    stored = [H._replace(timestamp=NOW_MS - 1000 * k, zero_count=k) for k in range(4)]
    exact = series_bytes(labels) + 2 * SAMPLE_BYTES + sum(map(histogram_bytes, stored))
    assert len(env.store.read(query, context(6, byte_limit=exact))) == 1
    with pytest.raises(ResponseTooLarge, match="more than 5 samples"):
        env.store.read(query, context(5, deadline=Deadline(600)))
    with pytest.raises(ResponseTooLarge):
        env.store.read(query, context(byte_limit=exact - 1, deadline=Deadline(600)))


def test_histograms_of_a_series_over_several_slices_are_joined(env):
    times = list(range(NOW_MS - 3 * HOUR + 1, NOW_MS + 1, 600_000))
    env.store.write([Series((("__name__", "h"),), [], [], [H._replace(timestamp=t)
                                                            for t in times])], context())
    [found] = env.store.read(Query(times[0], times[-1], (Matcher.of(0, "__name__", "h"),)),
                             context(deadline=Deadline(600)))
    assert [h.timestamp for h in found.histograms] == times
    assert len([c for c in selects(env) if "NextToken" not in c]) == 3  # 3 clock hours


def test_two_histograms_at_one_time_of_one_series_are_a_503(env):
    write_histograms(env, 2)
    env.queries.hidden = {"i"}  # two series look alike until "i" propagates
    with pytest.raises(BackendUnavailable, match="two samples at .* not visible yet"):
        read(env, (0, "__name__", "h"))


def test_histogram_rows_over_one_megabyte_are_read_again_in_narrower_bins(env, caplog):
    base = NOW_MS - HOUR  # 45 minutes of histograms every 3 s
    big = H._replace(positive_spans=((0, 600),), positive=(1,) * 600)  # 1.4 kB of text
    env.store.write([Series((("__name__", "wide"),), [], [], [
        big._replace(timestamp=base + 3000 * i) for i in range(900)])], context())
    with caplog.at_level(logging.INFO, logger=LOGGER):
        [found] = read(env, (0, "__name__", "wide"))
    assert [h.timestamp for h in found.histograms] == [base + 3000 * i for i in range(900)]
    assert found.histograms[0].positive == (1,) * 600
    sqls = [c["QueryString"] for c in selects(env) if "NextToken" not in c]
    assert [s[-13:] for s in sqls] == ["bin(time, 1h)", "bin(time, 1m)"]
