"""One contract, every backend: the same writes must read back the same way."""
import struct

import pytest

from chalicelib.context import encoded_bytes
from chalicelib.errors import BackendUnavailable, ResponseTooLarge
from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series
from chalicelib.protocol.write_v1 import validate_labels
from tests.support import context
from tests.support.matcher_cases import SERIES, all_cases, case_id

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
PROMETHEUS_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0]  # Go's math.NaN()
SPECIAL = [PROMETHEUS_NAN, STALE_NAN, float("inf"), float("-inf"), 1e-300, 0.1 + 0.2, -0.0,
           5e-324, 1.7976931348623157e308, 123456789.123456789]
CASES = list(all_cases())


def bits(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def series(labels: dict, samples) -> Series:
    return Series(validate_labels(tuple(sorted(labels.items()))),
                  [t for t, _ in samples], [v for _, v in samples])


def query(start, end, *matchers) -> Query:
    return Query(start, end, tuple(Matcher.of(*m) for m in matchers))


def read_one(store, start, end, *matchers):
    return list(store.read(query(start, end, *matchers), context(10_000)))


def test_values_come_back_bit_for_bit(store):
    store.write([series({"__name__": "v"}, [(1000 + i, v) for i, v in enumerate(SPECIAL)])], context())
    [result] = read_one(store, 0, 10_000, (0, "__name__", "v"))
    assert [bits(v) for v in result.values] == [bits(v) for v in SPECIAL]
    assert list(result.timestamps) == [1000 + i for i in range(len(SPECIAL))]


def test_writes_are_idempotent(store):
    batch = [series({"__name__": "m", "a": "1"}, [(1, 1.0), (2, 2.0)])]
    store.write(batch, context())
    store.write(batch, context())
    [result] = read_one(store, 0, 10, (0, "__name__", "m"))
    assert list(result.timestamps) == [1, 2]


def test_range_is_inclusive_in_milliseconds(store):
    store.write([series({"__name__": "m"}, [(t, float(t)) for t in (999, 1000, 1001, 1999,
                                                                     2000, 2001)])], context())
    [result] = read_one(store, 1000, 2000, (0, "__name__", "m"))
    assert list(result.timestamps) == [1000, 1001, 1999, 2000]


def test_series_sorted_by_labels_and_samples_by_time(store):
    store.write([series({"__name__": "m", "b": "2"}, [(5, 1.0), (3, 1.0)]),
                 series({"__name__": "m", "a": "9"}, [(4, 1.0)]),
                 series({"__name__": "m", "b": "10"}, [(1, 1.0)])], context())
    result = read_one(store, 0, 10, (0, "__name__", "m"))
    assert [s.labels for s in result] == [
        (("__name__", "m"), ("a", "9")), (("__name__", "m"), ("b", "10")),
        (("__name__", "m"), ("b", "2"))]
    assert list(result[2].timestamps) == [3, 5]


def test_series_without_samples_in_range_are_left_out(store):
    store.write([series({"__name__": "m", "a": "old"}, [(1, 1.0)]),
                 series({"__name__": "m", "a": "new"}, [(100, 1.0)])], context())
    result = read_one(store, 50, 150, (0, "__name__", "m"))
    assert [dict(s.labels)["a"] for s in result] == ["new"]


def test_sample_limit(store):
    store.write([series({"__name__": "m"}, [(t, 1.0) for t in range(20)])], context())
    with pytest.raises(ResponseTooLarge, match="more than 19 samples"):
        list(store.read(query(0, 100, (0, "__name__", "m")), context(19)))
    assert len(list(store.read(query(0, 100, (0, "__name__", "m")), context(20)))[0].timestamps) == 20


def test_labels_survive_any_utf8(store):
    labels = {"__name__": "m", "v": "quote\" back\\slash\nnewline ü 日本 ' ; -- %_"}
    store.write([series(labels, [(1, 1.0)])], context())
    [result] = read_one(store, 0, 10, (0, "v", labels["v"]))
    assert dict(result.labels) == labels


@pytest.mark.parametrize("matchers,expected", CASES, ids=[case_id(m) for m, _ in CASES])
def test_matcher_table(store, matchers, expected):
    store.write([series(labels, [(1000, float(i))]) for i, labels in enumerate(SERIES.values())], context())
    selected = {key for key, labels in SERIES.items()
                for s in read_one(store, 0, 2000, *matchers) if dict(s.labels) == labels}
    assert selected == expected


def test_label_names_sorting_before_the_metric_name_are_kept_and_matched(store):
    """Upper-case names sort before ``__name__`` ('A' < '_'): labels stay sorted with
    them first, and the metric name is still found and matched."""
    store.write([series({"__name__": "m", "A": "1", "y": "2"}, [(1, 1.0)]),
                 series({"__name__": "m", "b": "x"}, [(2, 2.0)]),
                 series({"__name__": "other", "Z": "q"}, [(3, 3.0)])], context())
    result = read_one(store, 0, 10, (0, "__name__", "m"))
    assert [s.labels for s in result] == [(("A", "1"), ("__name__", "m"), ("y", "2")),
                                          (("__name__", "m"), ("b", "x"))]
    assert [list(s.values) for s in result] == [[1.0], [2.0]]
    [only] = read_one(store, 0, 10, (0, "__name__", "m"), (0, "A", "1"))
    assert only.labels == (("A", "1"), ("__name__", "m"), ("y", "2"))
    [other] = read_one(store, 0, 10, (2, "__name__", "m|other"), (1, "Z", ""))
    assert other.labels == (("Z", "q"), ("__name__", "other"))
    assert read_one(store, 0, 10, (0, "__name__", "M")) == []


def test_the_read_budget_is_charged_across_the_queries_of_a_request(store):
    """Samples and bytes (labels included) are charged to the one budget of the request:
    a second query gets what the first left, to the sample and the byte."""
    store.write([series({"__name__": "b", "i": str(i)}, [(1, 1.0), (2, 2.0)]) for i in range(3)],
                context())
    everything = query(0, 10, (0, "__name__", "b"))
    answer = list(store.read(everything, context()))
    size = encoded_bytes(answer)
    ctx = context(sample_limit=12, byte_limit=2 * size)
    assert len(list(store.read(everything, ctx))) == 3
    assert len(list(store.read(everything, ctx))) == 3  # exactly 12 samples, 2 x size bytes
    assert (ctx.budget.samples_left, ctx.budget.bytes_left) == (0, 0)
    with pytest.raises(ResponseTooLarge, match=r"more than 11 samples \(READ_SAMPLE_LIMIT\)"):
        ctx = context(sample_limit=11)
        list(store.read(everything, ctx))
        list(store.read(everything, ctx))
    with pytest.raises(ResponseTooLarge, match=r"more than \d+ bytes .*\(READ_BYTE_LIMIT\)"):
        ctx = context(byte_limit=2 * size - 1)
        list(store.read(everything, ctx))
        list(store.read(everything, ctx))


def test_nothing_starts_past_the_request_deadline(store):
    """A write or a read whose request deadline has passed is a 503 (Prometheus retries),
    and the write stores nothing."""
    store.write([series({"__name__": "d"}, [(1, 1.0)])], context())
    late = context(deadline_seconds=-1.0)
    with pytest.raises(BackendUnavailable, match="deadline") as raised:
        store.write([series({"__name__": "d"}, [(2, 2.0)])], late)
    assert raised.value.status == 503
    with pytest.raises(BackendUnavailable, match="deadline"):
        list(store.read(query(0, 10, (0, "__name__", "d")), late))
    [result] = read_one(store, 0, 10, (0, "__name__", "d"))
    assert list(result.timestamps) == [1]


@pytest.mark.parametrize("name", ["value", "value_bits", "time", "measurement", "field", "tag",
                                  "_field", "_measurement", "measure_name", "measure_value",
                                  "ts_x", "select", "where", "key", "name", "__name"])
def test_a_label_any_backend_treats_specially_is_stored_and_matched_like_any(store, name):
    """Names that InfluxQL, SQL or Timestream give a meaning are ordinary labels here."""
    store.write([series({"__name__": "special", name: "v"}, [(1, 1.0)]),
                 series({"__name__": "special", name: "w"}, [(1, 2.0)]),
                 series({"__name__": "special"}, [(1, 3.0)]),
                 # a stale marker: InfluxDB then also has a field named value_bits
                 series({"__name__": "special", "marker": "x"}, [(20, STALE_NAN)])], context())
    for matcher, values in [((0, name, "v"), [1.0]), ((1, name, "v"), [2.0, 3.0]),
                            ((2, name, "v|w"), [1.0, 2.0]), ((3, name, "w"), [1.0, 3.0]),
                            ((0, name, ""), [3.0]), ((1, name, ""), [1.0, 2.0])]:
        found = read_one(store, 0, 10, (0, "__name__", "special"), matcher)
        assert sorted(v for s in found for v in s.values) == values, matcher
        assert all(dict(s.labels).get(name, "") in ("v", "w", "") for s in found)


def test_counters_add_up_received_is_stored_plus_rejected_by_reason(store):
    """Through the write handler: every sample received is counted once, as stored or as
    rejected with a reason from the fixed set; the store counts its own calls."""
    import time

    from chalicelib import handlers
    from chalicelib.context import Limits
    from chalicelib.errors import BadRequest
    from chalicelib.protocol import codec
    from chalicelib.telemetry.request import REJECT_REASONS, RequestTelemetry
    from harness.remote import HEADERS, write_request
    now = int(time.time() * 1000)
    body = codec.encode_message(write_request(
        ({"__name__": "counted", "k": "v"}, [(now - 1000, 1.0), (now, 2.0)]),
        ({"k": "no name"}, [(now, 1.0), (now + 1, 2.0), (now + 2, 3.0)]),   # invalid series
        ({"__name__": "ahead"}, [(now + 86_400_000, 1.0)])))  # a day ahead: some refuse it
    telemetry = RequestTelemetry("/write")
    with pytest.raises(BadRequest, match="samples rejected"):  # the invalid series
        handlers.write(body, HEADERS, store, Limits(), telemetry)
    assert telemetry.received == 6
    assert telemetry.received == telemetry.stored + sum(telemetry.rejected.values())
    assert telemetry.failed == 0
    assert telemetry.rejected["invalid_series"] == 3
    assert set(telemetry.rejected) <= set(REJECT_REASONS)
    assert telemetry.stored in (2, 3)  # whether the backend takes a time a day ahead
    assert telemetry.total("calls") >= 1 and telemetry.total("failures") == 0
