"""Write-request translation: valid series kept, invalid ones refused one by one."""

import pytest

from chalicelib.caches import ClearedWhenFull
from chalicelib.errors import BadRequest
from chalicelib.protocol import codec
from chalicelib.protocol import write_v1 as translate
from chalicelib.protocol.prompb import fastpath_pb2, types_pb2
from harness.remote import HEADERS, write_request
from tests.support import ESTIMATE_SLACK, memory_held_after


def translated(*series) -> translate.Translated:
    body = codec.encode_message(write_request(*series))
    return translate.series_from_write_request(codec.decode_write_request(body, HEADERS, 1 << 20))


def test_one_invalid_series_does_not_cost_the_valid_ones():
    good = [({"__name__": "ok", "i": str(i)}, [(1, 1.0), (2, 2.0)]) for i in range(10)]
    result = translated(good[0], ({"__name__": "bad", "": "x"}, [(1, 1.0)] * 3), *good[1:])
    assert [dict(s.labels)["i"] for s in result.series] == [str(i) for i in range(10)]
    assert len(result.refused) == 1 and result.refused_samples == 3
    assert "empty label name" in result.refused[0].reason
    assert 'bad{="x"}' in result.refused[0].reason


def test_refusals_are_not_cached_as_valid():
    bad = ({"job": "no metric name"}, [(1, 1.0)])
    for _ in range(2):
        result = translated(bad)
        assert (result.series, result.refused_samples) == ([], 1)


def test_label_cache_is_bounded_in_bytes():
    big = ({"__name__": "big", "v": "x" * 900_000}, [(1, 1.0)])
    for _ in range(3):
        assert len(translated(big).series) == 1
    assert translate.labels_cache_bytes() < translate.LABELS_CACHE_MAX_BYTES
    before = translate.labels_cache_bytes()
    translated(({"__name__": "big", "v": "y" * 900_000}, [(1, 1.0)]))
    assert translate.labels_cache_bytes() == before  # a 900 kB label set is not cached
    peak = 0
    for i in range(2000):  # ~40 kB each (estimated): 80 MB in all
        translated(({"__name__": "many", "v": "x" * 20_000 + str(i)}, [(1, 1.0)]))
        peak = max(peak, translate.labels_cache_bytes())
    assert translate.LABELS_CACHE_MAX_BYTES // 2 < peak <= translate.LABELS_CACHE_MAX_BYTES


def test_series_after_a_series_without_samples_are_kept():
    request = write_request(({"__name__": "first", "i": "0"}, [(1, 1.0)]))
    request.timeseries.insert(0, type(request.timeseries[0])())  # no labels, no samples
    request.timeseries[0].labels.add(name="__name__", value="empty")
    request.timeseries.add().labels.add(name="__name__", value="second")
    request.timeseries[-1].samples.add(timestamp=2, value=2.0)
    request.timeseries[-1].samples.add(timestamp=3, value=3.0)
    result = translate.series_from_write_request(codec.decode_write_request(
        codec.encode_message(request), HEADERS, 1 << 20))
    assert [(dict(s.labels)["__name__"], list(s.timestamps), list(s.values))
            for s in result.series] == [("first", [1], [1.0]), ("second", [2, 3], [2.0, 3.0])]
    assert result.refused == []


def test_labels_are_sorted_by_name_empty_values_dropped_upper_case_first():
    [series] = translated(({"job": "j", "__name__": "m", "Zone": "z", "Alpha": "a", "gone": ""},
                           [(1, 1.0)])).series
    assert series.labels == (("Alpha", "a"), ("Zone", "z"), ("__name__", "m"), ("job", "j"))


def test_native_histograms_are_translated_with_the_series_exemplars_and_metadata_counted():
    request = write_request(({"__name__": "m"}, [(1, 1.0)]))
    request.timeseries[0].histograms.add(timestamp=2, count_int=4, schema=1)
    request.timeseries[0].histograms.add(timestamp=1, count_float=3.5, sum=2.0)
    request.timeseries[0].exemplars.add(timestamp=1, value=0.5)
    request.metadata.add(metric_family_name="m", help="h")
    result = translate.series_from_write_request(codec.decode_write_request(
        codec.encode_message(request), HEADERS, 1 << 20))
    [series] = result.series
    assert list(series.timestamps) == [1]
    assert [(h.timestamp, h.count, h.is_float, h.schema) for h in series.histograms] == [
        (1, 3.5, True, 0), (2, 4, False, 1)]  # sorted by time
    assert (result.exemplars, result.metadata, result.refused) == (1, 1, [])


def test_a_series_with_an_invalid_histogram_is_refused_alone_naming_it():
    request = write_request(({"__name__": "bad", "k": "v"}, [(1, 1.0)]),
                            ({"__name__": "good"}, []))
    bad = request.timeseries[0].histograms.add(timestamp=7, count_int=1, positive_deltas=[1])
    request.timeseries[1].histograms.add(timestamp=7, count_int=0)
    result = translate.series_from_write_request(codec.decode_write_request(
        codec.encode_message(request), HEADERS, 1 << 20))
    assert [s.labels for s in result.series] == [(("__name__", "good"),)]
    assert list(result.series[0].timestamps) == []
    [refusal] = result.refused
    assert refusal == (f'invalid native histogram in series bad{{k="v"}} at 7: positive spans '
                       f"cover 0 buckets, but 1 are given", 2)
    assert bad.timestamp == 7


def test_a_histogram_that_is_not_protobuf_fails_the_whole_request():
    request = fastpath_pb2.WriteRequestLabelsAsBytes()
    series = request.timeseries.add()
    series.labels.append(types_pb2.Label(name="__name__", value="m").SerializeToString())
    series.histograms.append(b"\xff\xff")
    with pytest.raises(BadRequest, match="a native histogram is malformed"):
        translate.series_from_write_request(request)


def test_a_1_0_write_stores_histograms_and_answers_204_counting_exemplars(tmp_path):
    """Histograms are stored; exemplars are not, and are counted where the user sees them."""
    from chalicelib import handlers
    from chalicelib.context import Limits
    from chalicelib.storage.sqlite import SQLiteStore
    from chalicelib.telemetry.request import RequestTelemetry
    request = write_request(({"__name__": "m"}, [(1, 1.0), (2, 2.0)]))
    request.timeseries[0].histograms.add(timestamp=3, count_int=3)
    request.timeseries[0].exemplars.add(timestamp=1, value=0.5)
    store = SQLiteStore(str(tmp_path))
    telemetry = RequestTelemetry("/write")
    written = handlers.write(codec.encode_message(request), HEADERS, store, Limits(), telemetry)
    assert (written.result.stored, written.result.histograms, written.headers) == (3, 1, {})
    assert (telemetry.received, telemetry.stored, telemetry.histograms) == (3, 3, 1)
    assert telemetry.dropped == {"exemplars": 1}


@pytest.mark.parametrize("labels,value", [
    (1, "x"), (20, ""), (5, "x" * 200), (3, "x" * 3000),  # ASCII, short to long
    (5, "é" * 5), (5, "€" * 5), (5, "\U0001f600" * 5), (3, "\U0001f600" * 1000),
])
def test_label_cache_bytes_are_the_memory_it_holds_rounded_up(monkeypatch, labels, value):
    """What the cache's bound counts is at least what it really holds (and not far more)."""
    monkeypatch.setattr(translate, "_LABELS", ClearedWhenFull(translate.LABELS_CACHE_MAX_BYTES))
    requests = [codec.decode_write_request(codec.encode_message(write_request(
        ({"__name__": "metric", **{f"label{j}": f"{value}{i}" for j in range(labels)}},
         [(1, 1.0)]))), HEADERS, 1 << 20) for i in range(500)]
    def work():
        for request in requests:
            translate.series_from_write_request(request)

    held = memory_held_after(work)
    assert held <= translate.labels_cache_bytes() <= ESTIMATE_SLACK * held


NO_NAME = "series without a metric name (__name__): "


def test_long_names_and_values_are_cut_in_refusal_messages():
    [refusal] = translated(({"job": "v" * 101, "n" * 61: "x"}, [(1, 1.0)])).refused
    assert refusal.reason == NO_NAME + "{job=\"" + "v" * 100 + "...\"," + "n" * 60 + "...=\"x\"}"
    [refusal] = translated(({"__name__": "m" * 101, "": "x"}, [(1, 1.0)])).refused
    assert refusal.reason == "empty label name in series " + "m" * 100 + "...{=\"x\"}"
    [refusal] = translated(({"job": "v" * 100, "n" * 60: "x"}, [(1, 1.0)])).refused
    assert refusal.reason == NO_NAME + "{job=\"" + "v" * 100 + "\"," + "n" * 60 + "=\"x\"}"


@pytest.mark.parametrize("name", [b"\xffb", b"\xc3"])
def test_a_label_that_is_not_utf8_fails_the_whole_request_as_400(name):
    body = bytearray(write_request(({"__name__": "m"}, [(1, 1.0)]),
                                   ({"__name__": "m", "ab": "v"}, [(1, 1.0)])).SerializeToString())
    body[body.index(b"ab"):body.index(b"ab") + 2] = name.ljust(2, b"b")
    request = codec.decode_write_request(codec.snappy.compress(bytes(body)), HEADERS, 1 << 20)
    with pytest.raises(BadRequest, match="^body is not a valid protobuf WriteRequest: a label "
                                         "is malformed or not UTF-8$"):
        translate.series_from_write_request(request)


def test_a_refused_series_is_shown_with_its_name_first_then_its_labels_as_sent():
    [refusal] = translated(({"Alpha": "a", "__name__": "m", "job": "j", "": "x"},
                            [(1, 1.0)])).refused
    assert refusal.reason == 'empty label name in series m{="x",Alpha="a",job="j"}'


@pytest.mark.parametrize("names", [["instance", "job", "instance"], ["a", "a"], ["job", "job"]])
def test_a_series_naming_a_label_twice_is_refused(names):
    request = write_request(({"__name__": "ok"}, [(1, 1.0)]))
    ts = request.timeseries.add()
    ts.labels.add(name="__name__", value="m")
    for index, name in enumerate(names):
        ts.labels.add(name=name, value=str(index))
    ts.samples.add(timestamp=1, value=1.0)
    result = translate.series_from_write_request(codec.decode_write_request(
        codec.encode_message(request), HEADERS, 1 << 20))
    assert [s.labels for s in result.series] == [(("__name__", "ok"),)]
    shown = ",".join(f'{name}="{index}"' for index, name in enumerate(names))
    assert [r.reason for r in result.refused] == [
        f"duplicate label name {names[0]!r} in series m{{{shown}}}"]


class Looked:
    """A deadline that passes after ``looks`` looks, recording when it was looked at."""

    def __init__(self, looks):
        self.looks = looks
        self.at = []

    def ensure(self, what):
        from chalicelib.errors import BackendUnavailable
        self.at.append(what)
        if len(self.at) > self.looks:
            raise BackendUnavailable(f"{what} did not finish within the request deadline")


def test_translating_a_huge_request_stops_at_the_deadline(monkeypatch):
    """A small body of many tiny series costs at most the request's deadline."""
    from chalicelib.errors import BackendUnavailable
    monkeypatch.setattr(translate, "SERIES_PER_DEADLINE_CHECK", 3)
    body = codec.encode_message(write_request(*[({"__name__": "m", "i": str(i)}, [(1, 1.0)])
                                                for i in range(10)]))
    request = codec.decode_write_request(body, HEADERS, 1 << 20)
    deadline = Looked(4)  # series 0, 3, 6 and 9
    assert len(translate.series_from_write_request(request, deadline).series) == 10
    assert deadline.at == ["translating the write request"] * 4
    with pytest.raises(BackendUnavailable, match="translating the write request"):
        translate.series_from_write_request(request, Looked(3))


def test_write_v2_translation_stops_at_the_deadline_too(monkeypatch):
    from chalicelib.errors import BackendUnavailable
    from chalicelib.protocol import write_v2
    from harness.remote import V2
    monkeypatch.setattr(write_v2, "SERIES_PER_DEADLINE_CHECK", 2)
    builder = V2()
    for i in range(5):
        builder.series({"__name__": "m", "i": str(i)}, [(1, 1.0)])
    request = codec.decode_write_request_v2(builder.body(), 1 << 20)
    assert len(write_v2.series_from_request(request, Looked(3)).series) == 5
    with pytest.raises(BackendUnavailable, match="translating the write request"):
        write_v2.series_from_request(request, Looked(2))
