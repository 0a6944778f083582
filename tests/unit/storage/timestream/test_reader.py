"""The Query API as the reader uses it (on the emulation, which enforces Timestream's query
rules): pages, one deadline, cancellation, idempotent retries, error mapping."""
import logging
import time

import pytest

from chalicelib.errors import (BackendError, BackendUnavailable,
                               ResponseTooLarge)
from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series
from chalicelib.storage.timestream import client as timestream_client
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


def test_no_call_starts_unless_it_can_finish_before_the_deadline(env, caplog):
    write_series(env, 1)
    call = env.store.reader.runner.call_seconds
    with caplog.at_level(logging.INFO, logger=LOGGER):
        with pytest.raises(BackendUnavailable, match="deadline"):
            read(env, (0, "__name__", "m"), deadline=Deadline(call - 0.5))
    assert env.queries.calls == []
    assert caplog.text == ""  # no query started: none to cancel


def test_a_call_starts_when_exactly_its_timeouts_remain(env):
    write_series(env, 1)
    call = env.store.reader.runner.call_seconds
    assert len(read(env, (0, "__name__", "m"), deadline=Countdown(call))) == 1


def test_a_read_of_exactly_the_sample_limit_is_answered(env):
    write_series(env, 3, samples=2)
    assert len(read(env, (0, "__name__", "m"), limit=6)) == 3
    with pytest.raises(ResponseTooLarge, match="more than 5 samples"):
        read(env, (0, "__name__", "m"), limit=5)


def test_one_deadline_for_every_query_of_a_request(env, monkeypatch):
    write_series(env, 1)
    ctx = context(10, deadline_seconds=25.0)
    assert len(env.store.read(Query(0, 2 ** 62, (Matcher.of(0, "__name__", "m"),)), ctx)) == 1
    ctx.deadline.end = time.monotonic() + 11  # the request has been running a while
    with pytest.raises(BackendUnavailable, match="deadline"):
        env.store.read(Query(0, 2 ** 62, (Matcher.of(0, "__name__", "m"),)), ctx)


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


@pytest.mark.parametrize("deadline", [8, 13, 25, 27])
def test_client_timeouts_fit_api_gateway_and_timestream(deadline):
    """Two query calls fit the request deadline (SAM: TimeoutInMillis - 2 s, at most 27 s)."""
    read_timeout = timestream_query.query_read_timeout(deadline)
    call = timestream_client.CONNECT_TIMEOUT_SECONDS + read_timeout
    assert TimestreamQueryRunner(None, read_timeout).call_seconds == call
    assert 2 * call <= deadline and read_timeout <= 10 < 29 < 60
    assert timestream_query.query_read_timeout(25) == 10


def test_the_query_read_timeout_is_never_under_a_second():
    assert timestream_query.query_read_timeout(4) == 1.0


def test_the_query_client_gets_the_timeout_for_the_stage_deadline(monkeypatch):
    from chalicelib.caches import LeastRecentlyUsed
    from chalicelib.config import Settings
    from chalicelib.storage import timestream as backend
    monkeypatch.setattr(backend, "_STORES", LeastRecentlyUsed(32))  # none cached by other tests
    store = backend.store_for(Settings(backend="timestream", region="us-east-1",
                                      endpoint_url="http://127.0.0.1:1",
                                      request_deadline_seconds=13), None)
    assert store.reader.runner.client.meta.config.read_timeout == 4.5
    assert store.reader.runner.call_seconds == 6.5


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
    """A deadline whose remaining seconds are given call by call: remaining() answers these, one per call (the last for ever): each page is checked
    before its call, and each attempt is given the time left."""

    def __init__(self, *remaining):
        self.values = list(remaining)

    def remaining(self):
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


def test_a_query_abandoned_at_the_deadline_is_cancelled(env):
    write_series(env, 10)
    with pytest.raises(BackendUnavailable, match="deadline"):
        read(env, (0, "__name__", "m"), deadline=Countdown(30, 30, 30, 30, 30, 30, 5))
    [started] = [c for c in selects(env)]  # the SELECT's first call, then no time left
    assert env.queries.cancelled == [env.queries.executions[-1]]
    assert "NextToken" not in started


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
