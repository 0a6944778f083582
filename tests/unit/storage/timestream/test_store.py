"""The Timestream store on the AWS wire (moto): values, limits, rejections, table facts, the
request deadline; batching is in test_records, retries in test_client."""
import struct

import pytest

from chalicelib.caches import ClearedWhenFull
from chalicelib.errors import BackendError, BackendUnavailable
from chalicelib.matchers import Matcher
from chalicelib.model import RESET_GAUGE, RESET_NO, Histogram, Query, Series
from chalicelib.protocol.labels import validate_labels
from chalicelib.storage.histogram_text import dumps
from chalicelib.storage.timestream import client as timestream_client
from chalicelib.storage.timestream import metering, records
from chalicelib.storage.timestream import store as timestream
from harness.timestream.env import DATABASE, NOW_MS, TABLE, timestream_env
from harness.timestream.faults import FaultInjector
from tests.support import context

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def fresh_members(max_bytes=records.MEMBERS_CACHE_MAX_BYTES):
    """An empty series cache (the series written before are checked again)."""
    return ClearedWhenFull(max_bytes)


def series(labels, samples):
    return Series(validate_labels(tuple(sorted(labels.items()))),
                  [t for t, _ in samples], [v for _, v in samples])


def read_all(env, *matchers):
    query = Query(0, 2 ** 62, tuple(Matcher.of(*m) for m in matchers))
    return list(env.store.read(query, context(1_000_000)))


def test_values_are_sent_with_full_precision(env):
    values = [0.1 + 0.2, 1e-300, 123456789.12345679, 5e-324, -0.5]
    env.store.write([series({"__name__": "m"}, [(NOW_MS - i, v) for i, v in enumerate(values)])], context())
    sent = [float(r["MeasureValue"]) for r in env.wire.records()]
    assert sorted(sent) == sorted(values)
    assert "0.30000000000000004" in [r["MeasureValue"] for r in env.wire.records()]


GO_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0]  # Prometheus's NaN


def test_non_finite_values_are_double_markers_and_read_back_bit_for_bit(env):
    values = [GO_NAN, STALE_NAN, float("inf"), float("-inf")]
    env.store.write([series({"__name__": "m", "job": "x"},
                            [(NOW_MS - i, v) for i, v in enumerate(values)])], context())
    records = env.wire.records()
    assert all(r["Dimensions"] == [{"Name": "job", "Value": "x"}] for r in records)
    assert sorted(r["MeasureValue"] for r in records) == [
        "-1.7976931348623155e+308", "1.7976931348623151e+308", "1.7976931348623153e+308",
        "1.7976931348623155e+308"]
    [result] = read_all(env, (0, "__name__", "m"))
    assert dict(result.labels) == {"__name__": "m", "job": "x"}
    bits = [struct.pack("<d", v) for v in result.values]
    assert bits == [struct.pack("<d", v) for v in reversed(values)]


@pytest.mark.parametrize("bits", [0x7FF8000000000000, 0x7FF0000000000001, 0x7FF0000000000003,
                                  0xFFF0000000000002])
def test_any_nan_but_the_stale_marker_reads_back_as_prometheus_nan(env, bits):
    """Python's NaN, and payloads just below and above the stale marker's or with the sign
    bit set: all are Prometheus's NaN, none is a stale marker."""
    nan = struct.unpack("<d", struct.pack("<Q", bits))[0]
    env.store.write([series({"__name__": "m"}, [(NOW_MS, nan)])], context())
    [result] = read_all(env, (0, "__name__", "m"))
    assert struct.pack("<d", result.values[0]) == struct.pack("<d", GO_NAN)


def test_a_special_value_does_not_change_the_series_identity(env):
    """+Inf then -Inf at one timestamp is one record identity: the second conflicts."""
    env.store.write([series({"__name__": "data", "point": "d"}, [(NOW_MS, float("inf"))])], context())
    env.store.write([series({"__name__": "data", "point": "d"}, [(NOW_MS, float("-inf"))])], context())
    [result] = read_all(env, (0, "__name__", "data"))
    assert list(result.timestamps) == [NOW_MS] and result.values == [float("inf")]


@pytest.mark.parametrize("bits", [0x7FEFFFFFFFFFFFFE, 0xFFEFFFFFFFFFFFFE, 0x7FEFFFFFFFFFFFFD,
                                  0xFFEFFFFFFFFFFFFC])
def test_finite_values_in_the_marker_range_are_refused_with_a_reason(env, bits):
    value = struct.unpack("<d", struct.pack("<Q", bits))[0]
    result = env.store.write([series({"__name__": "m"}, [(NOW_MS, value), (NOW_MS - 1, 2.0)])], context())
    assert (result.stored, result.rejected) == (1, 1)
    assert "reserved for the +-Inf, NaN and stale markers" in result.reasons[0]


def test_the_largest_double_is_an_ordinary_value(env):
    biggest = struct.unpack("<d", struct.pack("<Q", 0x7FEFFFFFFFFFFFFF))[0]
    env.store.write([series({"__name__": "m"}, [(NOW_MS, biggest), (NOW_MS - 1, -biggest)])], context())
    [result] = read_all(env, (0, "__name__", "m"))
    assert result.values == [-biggest, biggest]


def test_a_series_without_labels_is_stored_under_a_name_dimension_and_reads_back(env):
    name = "cluster:http_requests:rate5m"
    result = env.store.write([series({"__name__": name}, [(NOW_MS, 1.5)]),
                              series({"__name__": name, "job": "a"}, [(NOW_MS, 2.5)])], context())
    assert result.rejected == 0
    dims = sorted(tuple((d["Name"], d["Value"]) for d in r["Dimensions"])
                  for r in env.wire.records())
    assert dims == [(("__name__", name),), (("job", "a"),)]
    answer = read_all(env, (0, "__name__", name))
    assert [(s.labels, s.values) for s in answer] == [
        ((("__name__", name),), [1.5]), ((("__name__", name), ("job", "a")), [2.5])]
    assert [s.labels for s in read_all(env, (0, "__name__", name), (0, "job", ""))] == [
        (("__name__", name),)]


def test_long_metric_names_are_written(env):
    name = "a_metric_name_that_is_definitely_longer_than_sixty_bytes_for_timestream_total"
    assert len(name) > 60
    assert env.store.write([series({"__name__": name}, [(NOW_MS, 1.0)])], context()).rejected == 0
    assert [s.labels for s in read_all(env, (0, "__name__", name))] == [(("__name__", name),)]


def test_reserved_label_names_are_escaped_and_read_back(env):
    labels = {"__name__": "m", "time": "t", "measure_name": "n", "measure_value": "v",
              "ts_x": "1", "measure_value_y": "2", "value": "plain"}
    env.store.write([series(labels, [(NOW_MS, 1.0)])], context())
    dims = {d["Name"] for r in env.wire.records() for d in r["Dimensions"]}
    assert dims == {"__time", "__measure_name", "__measure_value", "__ts_x",
                    "__measure_value_y", "value"}
    [result] = read_all(env, (0, "__name__", "m"), (0, "time", "t"))
    assert dict(result.labels) == labels


@pytest.mark.parametrize("labels,samples,reason", [
    ({"__name__": "m", "x" * 61: "v"}, [(NOW_MS, 1.0)], "longer than 60 bytes"),
    ({"__name__": "m" * 257}, [(NOW_MS, 1.0)], "longer than 256 bytes"),
    ({"__name__": "m", **{f"l{i}": "v" for i in range(129)}}, [(NOW_MS, 1.0)],
     "more than 128 labels"),
    ({"__name__": "m", "big": "v" * 2046}, [(NOW_MS, 1.0)], "2048-byte limit"),
    ({"__name__": "m", "ab": "é" * 1024}, [(NOW_MS, 1.0)], "labels take 2050 bytes"),
    ({"__name__": "é" * 129}, [(NOW_MS, 1.0)], "longer than 256 bytes"),
    ({"__name__": "m"}, [(NOW_MS + 15 * 60_000 + 1, 1.0)],
     "timestamp more than 15 minutes in the future"),  # the connector's check, not Timestream's
    ({"__name__": "m"}, [(NOW_MS - 6 * 3_600_000 - 1, 1.0)], "older than the table's retention"),
])
def test_samples_over_timestream_limits_are_rejected_and_counted(env, labels, samples, reason,
                                                                 caplog):
    good = series({"__name__": "ok"}, [(NOW_MS, 1.0)])
    result = env.store.write([good, series(labels, samples)], context())
    assert (result.stored, result.rejected) == (1, 1)
    assert reason in result.reasons[0]
    assert len(env.wire.records()) == 1  # the valid sample was written
    assert reason in caplog.text and "rejected 1 samples" in caplog.text


@pytest.mark.parametrize("labels,timestamp", [
    ({"__name__": "m", "x" * 60: "v"}, NOW_MS),
    ({"__name__": "m" * 256}, NOW_MS),
    ({"__name__": "é" * 128}, NOW_MS),
    ({"__name__": "m", **{f"l{i}": "v" for i in range(128)}}, NOW_MS),
    ({"__name__": "m", "big": "v" * 2045}, NOW_MS),
    ({"__name__": "m", "ab": "é" * 1023}, NOW_MS),
    ({"__name__": "m"}, NOW_MS + 15 * 60_000),
    ({"__name__": "m"}, NOW_MS - 6 * 3_600_000),
])
def test_samples_exactly_at_timestream_limits_are_stored(env, labels, timestamp):
    result = env.store.write([series(labels, [(timestamp, 1.0)])], context())
    assert (result.stored, result.rejected) == (1, 0), result.reasons
    [read] = read_all(env, (0, "__name__", labels["__name__"]))
    assert dict(read.labels) == labels and read.timestamps == [timestamp]


def test_magnetic_store_writes_accept_samples_as_old_as_the_magnetic_retention():
    with timestream_env(magnetic_writes=True, magnetic_days=30,
                        clock=lambda: NOW_MS / 1000) as env:
        oldest = NOW_MS - 30 * 86_400_000
        result = env.store.write([series({"__name__": "m"}, [(oldest, 1.0), (oldest - 1, 2.0)])], context())
        assert (result.stored, result.rejected) == (1, 1)
        assert "older than the table's retention for writes" in result.reasons[0]
        [read] = read_all(env, (0, "__name__", "m"))
        assert read.timestamps == [oldest]


@pytest.mark.parametrize("bucket", ["reports-bucket", None])
def test_late_samples_are_counted_and_their_conflicts_reported_only_to_s3(bucket, caplog):
    """Magnetic-store writes: a late sample that conflicts is not in the WriteRecords answer
    (Timestream reports it to the table's rejected-data location, if it has one)."""
    caplog.set_level("INFO", logger="chalicelib.storage.timestream.store")
    with timestream_env(magnetic_writes=True, magnetic_days=30, memory_hours=6,
                        clock=lambda: NOW_MS / 1000, rejected_data_bucket=bucket) as env:
        late, fresh = NOW_MS - 7 * 3_600_000, NOW_MS - 1000
        first = env.store.write([series({"__name__": "m"}, [(late, 1.0), (fresh, 1.0)])],
                                context())
        assert (first.stored, first.rejected, first.late) == (2, 0, 1)
        again = env.store.write([series({"__name__": "m"}, [(late, 2.0), (fresh, 2.0)])],
                                context())
        # the fresh conflict is answered; the late one is not, though it was not stored
        assert (again.stored, again.rejected, again.late) == (1, 1, 1)
        assert "duplicate sample" in again.reasons[0]
        [read] = read_all(env, (0, "__name__", "m"))
        assert read.values == [1.0, 1.0]
        assert len(env.rules.magnetic_reports) == (1 if bucket else 0)
    logged = [r for r in caplog.records if "magnetic store" in r.getMessage()]
    infos = [r.getMessage() for r in logged if r.levelname == "INFO"]
    assert infos[0].startswith("1 samples older than the memory store's retention were written "
                               "to the magnetic store; Timestream reports their conflicts ")
    warnings = [r.getMessage() for r in logged if r.levelname == "WARNING"]
    if bucket:
        assert infos[0].endswith("to s3://reports-bucket/late/") and warnings == []
    else:
        assert infos[0].endswith("nowhere (the table has no MagneticStoreRejectedDataLocation)")
        assert len(warnings) == 1  # once, not per request
        assert "drops the late samples it rejects (conflicts) without any report" in warnings[0]


def test_only_samples_older_than_the_memory_stores_retention_are_late():
    with timestream_env(magnetic_writes=True, magnetic_days=30, memory_hours=6,
                        clock=lambda: NOW_MS / 1000) as env:
        oldest_memory = NOW_MS - 6 * 3_600_000
        ctx = context()
        result = env.store.write([series({"__name__": "m"}, [
            (oldest_memory - 1, 1.0), (oldest_memory, 1.0), (NOW_MS - 1000, 1.0),
            (NOW_MS, 1.0)])], ctx)
        assert (result.stored, result.late) == (4, 1)
        assert ctx.telemetry.late == 1


def test_a_table_without_a_report_location_is_warned_about_once_per_process(monkeypatch,
                                                                          caplog):
    clock = [0.0]
    monkeypatch.setattr(timestream.time, "monotonic", lambda: clock[0])
    with timestream_env(magnetic_writes=True, clock=lambda: NOW_MS / 1000) as env:
        lookups = FaultInjector(env.write_client, "DescribeTable", [])
        for _ in range(3):  # a lookup each time: the facts are older than their TTL
            clock[0] += timestream.TABLE_FACTS_TTL_SECONDS + 1
            env.store.write([series({"__name__": "m"}, [(NOW_MS, 1.0)])], context())
        assert lookups.calls == 3
    warnings = [r for r in caplog.records if r.levelname == "WARNING"
                and "MagneticStoreRejectedDataLocation" in r.getMessage()]
    assert len(warnings) == 1


def test_without_magnetic_writes_no_sample_is_late(env):
    assert env.store.write([series({"__name__": "m"}, [(NOW_MS - 1000, 1.0)])],
                           context()).late == 0


def test_throttling_and_5xx_are_retried_and_nothing_is_lost(env):
    faults = FaultInjector(env.write_client, "WriteRecords",
                           [(400, "ThrottlingException"), (500, "InternalServerException"),
                            (503, "ServiceUnavailable")])
    batch = [series({"__name__": "m", "i": str(i)}, [(NOW_MS, float(i))]) for i in range(250)]
    assert env.store.write(batch, context()).stored == 250
    assert faults.calls == 3 + 3
    assert len(env.wire.records()) == 250


def test_persistent_throttling_becomes_503_after_the_other_batches_are_written(env):
    FaultInjector(env.write_client, "WriteRecords", [(400, "ThrottlingException")] * 10 ** 6)
    with pytest.raises(BackendUnavailable, match="ThrottlingException"):
        env.store.write([series({"__name__": "m"}, [(NOW_MS, 1.0)])], context(deadline_seconds=8.0))


def test_a_validation_exception_isolates_the_refused_record_and_stores_the_rest(env,
                                                                             monkeypatch):
    # A record the connector's own checks miss: Timestream refuses the whole call.
    monkeypatch.setattr(records, "check_series", lambda labels: None)
    monkeypatch.setattr(records, "_MEMBERS", fresh_members())  # series checked before: check again
    batch = [series({"__name__": "m", "i": str(i)}, [(NOW_MS, float(i))]) for i in range(99)]
    batch.insert(37, series({"__name__": "m", "x" * 61: "v"}, [(NOW_MS, 1.0)]))
    result = env.store.write(batch, context())
    assert (result.stored, result.rejected) == (99, 1)
    assert "Timestream refused the record: Dimension name" in result.reasons[0]
    assert "x" * 61 in result.reasons[0]
    assert len(env.wire.records()) == 99


def test_a_validation_exception_for_every_record_rejects_them_all(env, monkeypatch):
    monkeypatch.setattr(records, "check_series", lambda labels: None)
    monkeypatch.setattr(records, "_MEMBERS", fresh_members())  # series checked before: check again
    batch = [series({"__name__": "m", "x" * 61: str(i)}, [(NOW_MS, 1.0)]) for i in range(5)]
    result = env.store.write(batch, context())
    assert (result.stored, result.rejected) == (0, 5)


def test_conflicting_values_are_rejected_duplicates_and_identical_rewrites_are_fine(env,
                                                                                   caplog):
    first = [series({"__name__": "a", "job": "x"}, [(NOW_MS, 1.0), (NOW_MS - 1, 5.0)])]
    assert env.store.write(first, context()).rejected == 0
    assert env.store.write(first, context()).rejected == 0  # a retried write: accepted, not counted
    result = env.store.write([series({"__name__": "a", "job": "x"},
                                     [(NOW_MS, 2.0), (NOW_MS - 1, 5.0), (NOW_MS - 2, 7.0)])], context())
    assert (result.stored, result.rejected) == (2, 1)
    assert 'a{job="x"}: duplicate sample for timestamp' in result.reasons[0]
    assert "duplicate sample for timestamp" in caplog.text
    assert "more rejected series" not in caplog.text  # one: logged, no summary
    [read] = read_all(env, (0, "__name__", "a"))
    assert read.values == [7.0, 5.0, 1.0]


def test_the_write_units_of_the_records_timestream_took_are_counted(env):
    ctx = context()
    env.store.write([series({"__name__": "a", "job": "x"}, [(NOW_MS, 1.0)])], ctx)
    assert ctx.telemetry.write_units == 1  # one small record: one 1 KiB unit
    ctx = context()
    result = env.store.write([series({"__name__": "a", "job": "x"}, [(NOW_MS, 2.0)])], ctx)
    assert result.rejected == 1 and ctx.telemetry.write_units == 0  # nothing taken


def test_other_rejections_are_counted_with_timestreams_reason(env):
    rejected = [{"RecordIndex": 1, "Reason": "The record timestamp is outside the time range"}]
    FaultInjector(env.write_client, "WriteRecords", [(419, "RejectedRecordsException")],
                  extra={"RejectedRecords": rejected})
    result = env.store.write([series({"__name__": "a"}, [(NOW_MS, 1.0)]),
                              series({"__name__": "b"}, [(NOW_MS, 2.0)])], context())
    assert (result.stored, result.rejected, result.histograms) == (1, 1, 0)
    assert "b{}: Timestream rejected the record: The record timestamp is outside" \
        in result.reasons[0]


def test_a_matcher_on_a_label_that_is_no_column_does_not_fail(env):
    env.store.write([series({"__name__": "m", "job": "x"}, [(NOW_MS, 1.0)])], context())
    assert len(read_all(env, (0, "__name__", "m"), (0, "nosuchlabel", ""))) == 1
    assert len(read_all(env, (0, "__name__", "m"), (3, "nosuchlabel", "x"))) == 1
    assert read_all(env, (0, "__name__", "m"), (0, "nosuchlabel", "x")) == []
    assert read_all(env, (0, "__name__", "m"), (2, "nosuchlabel", ".+")) == []


def test_dimensions_written_by_this_process_are_queryable_at_once(env):
    env.store.write([series({"__name__": "m", "a": "1"}, [(NOW_MS, 1.0)])], context())
    assert len(read_all(env, (0, "a", "1"))) == 1
    env.store.write([series({"__name__": "m", "b": "2"}, [(NOW_MS, 1.0)])], context())
    assert len(read_all(env, (0, "b", "2"))) == 1


def test_retention_comes_from_the_table_not_a_setting():
    """A table keeping 12 h in memory takes a 7-h-old sample (a hand-set 6 h refused it)."""
    with timestream_env(memory_hours=12, clock=lambda: NOW_MS / 1000) as env:
        result = env.store.write([series({"__name__": "m"}, [(NOW_MS - 7 * 3_600_000, 1.0),
                                                             (NOW_MS - 13 * 3_600_000, 2.0)])], context())
        assert (result.stored, result.rejected) == (1, 1)
        assert "older than the table's retention for writes (its memory store's" \
            in result.reasons[0]


def test_table_facts_are_read_once_and_cached(env):
    calls = []
    env.write_client.meta.events.register("before-call.timestream-write.DescribeTable",
                                          lambda **kwargs: calls.append(1))
    for _ in range(3):
        env.store.write([series({"__name__": "m"}, [(NOW_MS, 1.0)])], context())
    assert len(calls) == 1


def test_without_describe_table_permission_timestream_judges_the_times(env, caplog):
    FaultInjector(env.write_client, "DescribeTable", [(400, "AccessDeniedException")])
    result = env.store.write([series({"__name__": "m"}, [(NOW_MS - 7 * 3_600_000, 1.0),
                                                         (NOW_MS, 2.0)])], context())
    assert (result.stored, result.rejected) == (1, 1)
    assert "Timestream rejected the record: The record timestamp is outside" in result.reasons[0]
    assert "timestream:DescribeTable" in caplog.text


def test_a_denied_table_lookup_is_a_failure_not_a_throttle(env):
    FaultInjector(env.write_client, "DescribeTable", [(400, "AccessDeniedException")])
    ctx = context()
    env.store.write([series({"__name__": "m"}, [(NOW_MS, 1.0)])], ctx)
    lookup = ctx.telemetry.calls("timestream", "DescribeTable")
    assert (lookup.calls, lookup.failures, lookup.throttles) == (1, 1, 0)


def test_closing_an_evicted_store_never_waits_for_its_calls_in_flight(env):
    """A request that evicts a store from the cache goes on while the store's last calls
    (another request's) finish."""
    import threading
    import time
    release = threading.Event()
    env.store.executor.submit(release.wait, 10)
    env.store.reader.runner.executor.submit(release.wait, 10)
    started = time.monotonic()
    env.store.close()
    took = time.monotonic() - started
    release.set()
    assert took < 5


def test_no_call_starts_unless_it_can_finish_before_the_one_request_deadline(env, monkeypatch):
    """400 calls of 1 s each would take 400 s: the request answers 503 once no further call
    fits, instead of running every call's first attempt."""
    from concurrent.futures import ThreadPoolExecutor
    clock = [0.0]
    env.store.executor = ThreadPoolExecutor(1)  # one call at a time: a deterministic clock
    monkeypatch.setattr(timestream.time, "monotonic", lambda: clock[0])
    started = []

    def slow_call(**kwargs):
        started.append(clock[0])
        clock[0] += 1.0  # each call takes one (fake) second
    env.write_client.meta.events.register("before-call.timestream-write.WriteRecords",
                                          slow_call)
    batch = [series({"__name__": "m", "i": str(i)}, [(NOW_MS, 1.0)]) for i in range(40_000)]
    env.store.table_facts(timestream.Deadline(25))
    with pytest.raises(BackendUnavailable, match="not started"):
        env.store.write(batch, context(deadline_seconds=25.0))
    env.store.executor.shutdown()
    # the last call that could finish: a call may take its connect and read timeouts
    assert max(started) == 25.0 - (timestream_client.CONNECT_TIMEOUT_SECONDS
                                   + timestream_client.WRITE_READ_TIMEOUT_SECONDS)


def test_the_tables_128_dimension_quota_is_reported_with_timestreams_reason(env):
    """ts-limits: 128 dimensions per table. Past it Timestream rejects the record; the rest
    is stored and the 400 says why (README, Troubleshooting)."""
    batch = [series({"__name__": "m", f"label_{i}": "v"}, [(NOW_MS, 1.0)]) for i in range(130)]
    result = env.store.write(batch, context())
    assert (result.stored, result.rejected) == (128, 2)
    assert all("limit of 128 dimensions" in reason for reason in result.reasons)
    assert len({d["Name"] for r in env.wire.records() for d in r["Dimensions"]}) == 128


def test_every_sample_of_a_series_is_judged_not_only_until_the_first_refused_one(env):
    """Refused samples first, interleaved: each is counted and every valid one is stored."""
    samples = [(NOW_MS + 16 * 60_000, 1.0), (NOW_MS - 7 * 3_600_000, 2.0), (NOW_MS, 3.0),
               (NOW_MS + 17 * 60_000, 4.0), (NOW_MS - 8 * 3_600_000, 5.0), (NOW_MS - 1, 6.0),
               (NOW_MS - 2, float(records.STALE_MARKER)), (NOW_MS - 3, 7.0)]
    result = env.store.write([series({"__name__": "m", "job": "x"}, samples)], context())
    assert (result.stored, result.rejected) == (3, 5)
    assert sorted(result.reasons) == sorted([
        'm{job="x"}: timestamp more than 15 minutes in the future',
        "m{job=\"x\"}: timestamp older than the table's retention for writes (its memory "
        "store's, or magnetic store's when magnetic store writes are enabled)",
        f'm{{job="x"}}: {records.RESERVED_VALUE_REASON}'])
    [read] = read_all(env, (0, "__name__", "m"))
    assert list(zip(read.timestamps, read.values)) == [(NOW_MS - 3, 7.0), (NOW_MS - 1, 6.0),
                                                       (NOW_MS, 3.0)]


def test_a_refused_series_does_not_stop_the_series_after_it(env):
    result = env.store.write([series({"__name__": "m", "x" * 61: "v"}, [(NOW_MS, 1.0),
                                                                        (NOW_MS - 1, 1.0)]),
                              series({"__name__": "m", "job": "a"}, [(NOW_MS, 2.0)])], context())
    assert (result.stored, result.rejected) == (1, 2)
    assert len(env.wire.records()) == 1


def targets(*jobs):
    """60 series for each job: too many for two jobs to share a call, so a call each."""
    return [series({"__name__": "m", "job": job, "k": f"{k:02}"}, [(NOW_MS, 1.0)])
            for job in jobs for k in range(60)]


def stored_jobs(env):
    return sorted({d["Value"] for r in env.wire.records() for d in r["Dimensions"]
                   if d["Name"] == "job"})


def answer_calls_of(env, marker: str, code: str, status: int = 400):
    """Answer every WriteRecords call whose records mention ``marker`` with ``code``."""
    from types import SimpleNamespace

    def refuse(params, **kwargs):
        if marker.encode() in params["body"]:
            parsed = {"Error": {"Code": code, "Message": f"injected {code}"},
                      "ResponseMetadata": {"HTTPStatusCode": status}}
            return SimpleNamespace(status_code=status, headers={}), parsed
        return None
    env.write_client.meta.events.register("before-call.timestream-write.WriteRecords", refuse)


def test_persistent_throttling_of_one_batch_is_503_after_the_other_batches_are_written(env):
    answer_calls_of(env, "throttled", "ThrottlingException")
    with pytest.raises(BackendUnavailable, match="ThrottlingException") as raised:
        env.store.write(targets("a-throttled", "b", "c"), context(deadline_seconds=8.0))
    assert raised.value.status == 503
    assert stored_jobs(env) == ["b", "c"]


def test_a_transient_failure_wins_over_a_permanent_one_so_prometheus_retries_soon(env):
    answer_calls_of(env, "throttled", "ThrottlingException")
    answer_calls_of(env, "refused", "InvalidEndpointException")
    with pytest.raises(BackendUnavailable, match="ThrottlingException"):
        env.store.write(targets("a-throttled", "b-refused", "c"), context(deadline_seconds=8.0))
    with pytest.raises(BackendUnavailable, match="ThrottlingException"):
        env.store.write(targets("a-refused", "b-throttled", "c"), context(deadline_seconds=8.0))
    assert stored_jobs(env) == ["c"]


def test_a_permanent_failure_of_one_batch_is_500_naming_the_code(env):
    answer_calls_of(env, "refused", "InvalidEndpointException")
    with pytest.raises(BackendError, match=r"Timestream refused the request to Timestream table "
                                           r"PrometheusDatabase.PrometheusMetricsTable "
                                           r"\(InvalidEndpointException\): injected InvalidEndpointException"):
        env.store.write(targets("a-refused", "b"), context())
    assert stored_jobs(env) == ["b"]


@pytest.mark.parametrize("count", [21, 45])
def test_the_first_20_rejected_series_are_logged_then_how_many_more(env, caplog, count):
    batch = [series({"__name__": "m", "i": f"{i:02}", "x" * 61: "v"}, [(NOW_MS, 1.0)])
             for i in range(count)]
    result = env.store.write(batch, context())
    assert (result.stored, result.rejected) == (0, count) and len(result.reasons) == count
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 21
    assert all(w.startswith("rejected 1 samples of m{i=") for w in warnings[:20])
    assert warnings[20] == f"... and {count - 20} more rejected series"


def test_exactly_20_rejected_series_are_all_logged_without_a_summary(env, caplog):
    batch = [series({"__name__": "m", "i": f"{i:02}", "x" * 61: "v"}, [(NOW_MS, 1.0)])
             for i in range(20)]
    env.store.write(batch, context())
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 20 and "more rejected series" not in caplog.text


def test_a_changed_retention_is_used_once_the_cached_table_facts_are_5_minutes_old(env,
                                                                                 monkeypatch):
    clock = [0.0]  # a fresh Lambda's clock: the first write reads the facts too
    monkeypatch.setattr(timestream.time, "monotonic", lambda: clock[0])
    old = [series({"__name__": "m"}, [(NOW_MS - 7 * 3_600_000, 1.0)])]
    assert env.store.write(old, context()).rejected == 1
    env.write_client.update_table(
        DatabaseName="PrometheusDatabase", TableName="PrometheusMetricsTable",
        RetentionProperties={"MemoryStoreRetentionPeriodInHours": 12,
                             "MagneticStoreRetentionPeriodInDays": 73000})
    env.rules.memory_hours = 12
    clock[0] = 299.5
    result = env.store.write(old, context())
    assert result.rejected == 1 and "older than the table's retention" in result.reasons[0]
    clock[0] = 300.0
    assert env.store.write(old, context()).rejected == 0
    assert len(env.wire.records()) == 1


def test_no_describe_table_starts_unless_the_write_would_still_fit_after_it(env):
    """With time for one call only, the write goes first: the optional lookup is skipped."""
    calls = FaultInjector(env.write_client, "DescribeTable", [])
    result = env.store.write([series({"__name__": "m"}, [(NOW_MS, 1.0)])],
                             context(deadline_seconds=2 * env.store.call_seconds - 0.5))
    assert result.stored == 1 and calls.calls == 0
    env.store.write([series({"__name__": "m"}, [(NOW_MS - 1, 1.0)])],
                    context(deadline_seconds=2 * env.store.call_seconds + 0.5))
    assert calls.calls == 1


def test_writes_go_on_under_a_throttled_describe_table_which_is_tried_once_a_minute(
        env, monkeypatch, caplog):
    """The account's 5 List/Describe calls a second are shared by every instance: throttled,
    the lookup is tried once, never retried, and not again for a minute; data is stored."""
    clock = [0.0]
    monkeypatch.setattr(timestream.time, "monotonic", lambda: clock[0])
    throttled = FaultInjector(env.write_client, "DescribeTable",
                              [(400, "ThrottlingException")] * 10 ** 6)
    for i in range(5):
        clock[0] += 11.0
        result = env.store.write([series({"__name__": "m"}, [(NOW_MS - i, 1.0)])], context())
        assert result.stored == 1
    assert throttled.calls == 1  # at 11 s; the next try is due at 71 s
    clock[0] = 70.9
    env.store.write([series({"__name__": "m"}, [(NOW_MS - 10, 1.0)])], context())
    assert throttled.calls == 1
    clock[0] = 71.0
    env.store.write([series({"__name__": "m"}, [(NOW_MS - 11, 1.0)])], context())
    assert throttled.calls == 2 and len(env.wire.records()) == 7
    assert "Timestream alone judges sample times; next try in 60 s" in caplog.text


@pytest.mark.parametrize("fault", [(500, "InternalServerException"), (403, "AccessDeniedException"),
                                   (404, "ResourceNotFoundException")])
def test_a_failing_describe_table_never_fails_the_write(env, fault):
    FaultInjector(env.write_client, "DescribeTable", [fault])
    assert env.store.write([series({"__name__": "m"}, [(NOW_MS, 1.0)])], context()).stored == 1


def test_a_refused_record_in_a_call_of_two_is_isolated(env, monkeypatch):
    monkeypatch.setattr(records, "check_series", lambda labels: None)
    monkeypatch.setattr(records, "_MEMBERS", fresh_members())  # series checked before: check again
    batch = [series({"__name__": "m", "job": "a"}, [(NOW_MS, 1.0)]),
             series({"__name__": "m", "job": "a", "x" * 61: "v"}, [(NOW_MS, 1.0)])]
    result = env.store.write(batch, context())
    assert (result.stored, result.rejected) == (1, 1)
    assert "Timestream refused the record: Dimension name" in result.reasons[0]


# Each case: a metric of one target whose own call (alone: CommonAttributes hold its name, the
# target and, for one scrape, the time) is metered exactly 1 KiB or 1 byte more, the bytes its
# records take in a call shared with other metrics (16 + name + labels but job and instance
# each), and the calls made with one more metric of that target.


def test_a_conflict_is_known_by_its_existing_version_whatever_the_reason_says(env):
    """RejectedRecord.ExistingVersion is AWS's documented signal; reason texts vary (e.g. "The
    record version 2 is lower than the existing version 3")."""
    rejected = [{"RecordIndex": 0, "ExistingVersion": 3,
                 "Reason": "The record version 2 is lower than the existing version 3."},
                {"RecordIndex": 1, "Reason": "A record already exists with the same time"}]
    FaultInjector(env.write_client, "WriteRecords", [(419, "RejectedRecordsException")],
                  extra={"RejectedRecords": rejected})
    result = env.store.write([series({"__name__": "a"}, [(NOW_MS, 1.0)]),
                              series({"__name__": "b"}, [(NOW_MS, 2.0)])], context())
    assert (result.stored, result.rejected) == (0, 2)
    assert result.reasons[0].startswith("a{}: duplicate sample for timestamp: Timestream holds "
                                        "a different value for this series and time (The record "
                                        "version 2 is lower")
    assert result.reasons[1].startswith("b{}: duplicate sample for timestamp")


def test_a_burst_of_writes_makes_one_describe_table_call_and_none_waits_for_it(env):
    """While one request looks the table up, the others write without waiting for it."""
    import threading
    from concurrent.futures import ThreadPoolExecutor
    calls, release = [], threading.Event()
    original = env.write_client.describe_table

    def slow_describe(**kwargs):
        calls.append(kwargs)
        assert release.wait(10), "the other writes waited for the lookup"
        return original(**kwargs)
    env.store.write_client.describe_table = slow_describe
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(env.store.write,
                            [series({"__name__": "m", "i": "0"}, [(NOW_MS, 1.0)])], context())
        while not calls:
            pass
        others = [env.store.write([series({"__name__": "m", "i": str(i)}, [(NOW_MS, 1.0)])],
                                  context()) for i in range(1, 6)]
        release.set()
        assert first.result().stored == 1
    assert [r.stored for r in others] == [1] * 5 and len(calls) == 1
    env.store.write([series({"__name__": "m", "i": "9"}, [(NOW_MS, 1.0)])], context())
    assert len(calls) == 1  # known now, for TABLE_FACTS_TTL_SECONDS


def test_credentials_are_checked_once_with_a_show_measures_that_lists_nothing(env):
    env.store.check_credentials(context())
    env.store.check_credentials(context())
    [check] = [c["QueryString"] for c in env.queries.calls if "NextToken" not in c]
    assert check == 'SHOW MEASURES FROM "PrometheusDatabase"."PrometheusMetricsTable" LIKE \'\''


@pytest.mark.parametrize("code,error", [("UnrecognizedClientException", "Unauthorized"),
                                        ("AccessDeniedException", "Forbidden")])
def test_refused_credentials_fail_the_check_every_time(env, code, error):
    from chalicelib import errors
    env.queries.faults = [(400, code)] * 2
    for _ in range(2):
        with pytest.raises(getattr(errors, error)):
            env.store.check_credentials(context())
    assert len(env.queries.calls) == 2


def test_a_check_that_fails_otherwise_lets_the_read_answer_and_is_tried_again(env):
    env.queries.faults = [(400, "ValidationException", "line 1: something else")]
    env.store.check_credentials(context())  # not the credentials: the read meets it
    env.store.check_credentials(context())
    assert len([c for c in env.queries.calls if "NextToken" not in c]) == 2


# -- native histograms --------------------------------------------------------------------

H = Histogram(0, 17, 27.5, 3, 2.938735877055719e-39, 2, positive_spans=((-2, 2), (1, 3)),
              positive=(1, 2, -1, 0, 3), negative_spans=((0, 1),), negative=(2,),
              reset_hint=RESET_NO)
FLOATING = Histogram(0, 7.25, -1.5, -2, 0.001, 0.25, positive_spans=((0, 2),),
                     positive=(1.5, 0.0), reset_hint=RESET_GAUGE, is_float=True)
STALE = Histogram(0, 0, STALE_NAN, 0, 0.0, 0)
BIG = H._replace(positive_spans=((0, 1000),), positive=(1,) * 1000)  # over 2 KB


def with_histograms(labels, histograms, samples=()):
    return Series(validate_labels(tuple(sorted(labels.items()))), [t for t, _ in samples],
                  [v for _, v in samples], list(histograms))


def at(histogram, *times):
    return [histogram._replace(timestamp=t) for t in times]


def test_histograms_are_stored_as_multi_records_readable_with_sql(env):
    written = at(H, NOW_MS - 2) + at(FLOATING, NOW_MS - 1) + at(STALE, NOW_MS)
    result = env.store.write([with_histograms({"__name__": "h", "job": "j"}, written,
                                              [(NOW_MS, 1.0)])], context())
    assert (result.stored, result.histograms, result.rejected) == (4, 3, 0)
    multi = sorted((r for r in env.wire.records() if r["MeasureValueType"] == "MULTI"),
                   key=lambda r: r["Time"])
    assert [(r["MeasureName"], r["Time"], r["Dimensions"]) for r in multi] == [
        ("h#histogram", str(h.timestamp), [{"Name": "job", "Value": "j"}]) for h in written]
    assert [{m["Name"]: m["Value"] for m in r["MeasureValues"]} for r in multi] == [
        {"__histogram": dumps(H), "__histogram_count": "17.0", "__histogram_sum": "27.5"},
        {"__histogram": dumps(FLOATING), "__histogram_count": "7.25",
         "__histogram_sum": "-1.5"},
        {"__histogram": dumps(STALE), "__histogram_count": "0.0"}]  # no DOUBLE for StaleNaN
    [found] = read_all(env, (0, "__name__", "h"))
    assert [(h.timestamp, dumps(h)) for h in found.histograms] == [
        (h.timestamp, dumps(h)) for h in written]
    assert (found.timestamps, found.values) == ([NOW_MS], [1.0])
    _, rows = env.queries.execute(  # what a SQL user sees
        f'SELECT time, "__histogram_count", "__histogram_sum" FROM "{DATABASE}"."{TABLE}" '
        "WHERE measure_name = 'h#histogram' ORDER BY time")
    assert [[d.get("ScalarValue") for d in row["Data"][1:]] for row in rows] == [
        ["17.0", "27.5"], ["7.25", "-1.5"], ["0.0", None]]


def test_label_names_like_the_histograms_measures_are_stored_as_any_label(env):
    labels = {"__name__": "h", "histogram": "a", "__histogram": "b", "count": "c", "sum": "d"}
    env.store.write([with_histograms(labels, at(H, NOW_MS), [(NOW_MS, 1.0)])], context())
    [found] = read_all(env, (0, "__histogram", "b"))
    assert dict(found.labels) == labels and len(found.histograms) == len(found.values) == 1


def test_a_histogram_too_large_for_a_record_is_refused_naming_the_series(env, caplog):
    result = env.store.write([with_histograms({"__name__": "h", "job": "j"},
                                              at(BIG, NOW_MS - 1) + at(H, NOW_MS),
                                              [(NOW_MS, 1.0)])], context())
    assert (result.stored, result.histograms, result.rejected) == (2, 1, 1)
    assert result.reasons[0].startswith('h{job="j"}: native histogram too large for Timestream')
    assert "over the 2048 bytes of values a multi-measure record holds" in caplog.text
    [found] = read_all(env, (0, "__name__", "h"))
    assert [h.timestamp for h in found.histograms] == [NOW_MS]


def test_histogram_conflicts_are_duplicates_and_identical_rewrites_are_fine(env):
    first = [with_histograms({"__name__": "h"}, at(H, NOW_MS - 1, NOW_MS))]
    assert env.store.write(first, context()).histograms == 2
    again = env.store.write(first, context())  # a retried write: accepted, not counted
    assert (again.stored, again.histograms, again.rejected) == (2, 2, 0)
    other = env.store.write([with_histograms({"__name__": "h"}, at(H, NOW_MS - 1) + at(
        H._replace(zero_count=3), NOW_MS))], context())
    assert (other.stored, other.histograms, other.rejected) == (1, 1, 1)
    assert "h{}: duplicate sample for timestamp" in other.reasons[0]
    [found] = read_all(env, (0, "__name__", "h"))
    assert [h.zero_count for h in found.histograms] == [2, 2]


def test_histograms_and_floats_of_one_series_at_one_time_are_two_records(env):
    result = env.store.write([with_histograms({"__name__": "h"}, at(H, NOW_MS),
                                              [(NOW_MS, 1.0)])], context())
    assert (result.stored, result.rejected) == (2, 0)
    [found] = read_all(env, (0, "__name__", "h"))
    assert (found.timestamps, [h.timestamp for h in found.histograms]) == ([NOW_MS], [NOW_MS])


def test_a_metric_name_another_type_holds_is_refused_with_timestreams_reason(env):
    env.store.write([series({"__name__": "x#histogram"}, [(NOW_MS, 1.0)])], context())
    result = env.store.write([with_histograms({"__name__": "x"}, at(H, NOW_MS))], context())
    assert (result.stored, result.histograms, result.rejected) == (0, 0, 1)
    assert result.reasons == ("x{}: Timestream rejected the record: Measure x#histogram was "
                              "ingested as DOUBLE, not MULTI.",)


def test_a_histogram_record_refused_as_a_whole_call_is_isolated_and_counted(env, monkeypatch):
    monkeypatch.setattr(records, "check_series", lambda labels: None)
    monkeypatch.setattr(records, "_MEMBERS", fresh_members())  # checked before: check again
    batch = [with_histograms({"__name__": "h", "i": str(i)}, at(H, NOW_MS)) for i in range(3)]
    batch.insert(1, with_histograms({"__name__": "h", "x" * 61: "v"}, at(H, NOW_MS)))
    result = env.store.write(batch, context())
    assert (result.stored, result.histograms, result.rejected) == (3, 3, 1)
    assert "Timestream refused the record: Dimension name" in result.reasons[0]


def test_histograms_rejected_by_timestream_are_not_counted_as_written(env):
    rejected = [{"RecordIndex": 0, "Reason": "Measure limit exceeded"}]
    FaultInjector(env.write_client, "WriteRecords", [(419, "RejectedRecordsException")],
                  extra={"RejectedRecords": rejected})
    result = env.store.write([with_histograms({"__name__": "h"}, at(H, NOW_MS, NOW_MS - 1))],
                             context())
    assert (result.stored, result.histograms, result.rejected) == (1, 1, 1)
    assert result.reasons == ("h{}: Timestream rejected the record: Measure limit exceeded",)


def test_the_write_units_of_histogram_calls_are_counted(env):
    ctx = context()
    env.store.write([with_histograms({"__name__": "h", "job": "j"},
                                     at(H, *range(NOW_MS - 9, NOW_MS + 1)))], ctx)
    [call] = env.wire.calls
    assert ctx.telemetry.write_units == metering.call_units(call["CommonAttributes"],
                                                            call["Records"]) == 3


def test_late_histograms_are_counted():
    with timestream_env(magnetic_writes=True, magnetic_days=30, memory_hours=6,
                        clock=lambda: NOW_MS / 1000) as env:
        late = NOW_MS - 7 * 3_600_000
        result = env.store.write([with_histograms({"__name__": "h"}, at(H, late, NOW_MS),
                                                  [(late, 1.0)])], context())
        assert (result.stored, result.histograms, result.late) == (3, 2, 2)


def test_a_histogram_series_over_the_limits_is_rejected_whole(env):
    result = env.store.write([with_histograms({"__name__": "h", "x" * 61: "v"},
                                              at(H, NOW_MS), [(NOW_MS, 1.0)])], context())
    assert (result.stored, result.histograms, result.rejected) == (0, 0, 2)


def test_a_float_sample_refused_beside_histograms_leaves_their_count_alone(env):
    result = env.store.write([with_histograms({"__name__": "h"}, at(H, NOW_MS - 1, NOW_MS),
                                              [(NOW_MS, 1.7976931348623153e308)])], context())
    assert (result.stored, result.histograms, result.rejected) == (2, 2, 1)
    assert "reserved for the +-Inf, NaN and stale markers" in result.reasons[0]
