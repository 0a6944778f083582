"""Histogram chunks compared byte for byte with the real Prometheus's (2.42, Debian).

A Prometheus with native histograms and its remote-write receiver is sent series that go
through every case that cuts or recodes a histogram chunk; its own streamed remote read
then answers with its head's chunks. The connector's encoder, given the same samples, must
make the very same chunks (bytes, types, first and last timestamps, in the same order),
and its decoder must read Prometheus's chunks back to the samples that were written.

Each series but those in OPEN ends with a float sample, which makes Prometheus close its
last histogram chunk: 2.42's read path re-encodes a series' open chunk and loses its header
on the way (tsdb/querier.go looks for a *HistogramChunk, but the head hands out a
safeChunk), and fails on an open gauge histogram chunk. The OPEN series show that loss.
"""
import random

import pytest

from backfill.batches import batches
from backfill.source import Source
from chalicelib.model import RESET_GAUGE, RESET_NO, RESET_YES, Series
from chalicelib.protocol import codec, histograms, streamed
from chalicelib.protocol.histogram_chunks import decode_chunk, series_chunks
from chalicelib.protocol.prompb import remote_pb2, types_pb2
from harness.remote import read_request
from tests.support.histogram_cases import (NAN, essence, hist,
                                           random_steps, stale, walk)
from tests.support.prometheus import send, start_receiver
from tests.support.streamed_reader import read_frames

CHUNK_RANGE = 7_200_000
#: Series whose last histogram chunk stays open (Prometheus serves it with header 0).
OPEN = ("h_long", "h_resets")
#: A chunk range boundary; every sample lies within 55 minutes (the head takes samples
#: up to an hour older than its newest), from half an hour before it.
BOUNDARY = 1_700_000_000_000 // CHUNK_RANGE * CHUNK_RANGE
START = BOUNDARY - 30 * 60_000
END = BOUNDARY + 25 * 60_000


def counter(start: int, count: int, interval: int = 1000, is_float: bool = False,
            first: int = 0, **kw):
    """A growing counter histogram: buckets 0 and 1, more observations each time."""
    return [hist(start + (i - first) * interval, {0: i, 1: 2 * i + 1}, zero=i // 3,
                 is_float=is_float, extra=1 if is_float else 0, **kw)
            for i in range(first, first + count)]


def cases() -> dict:
    """Series name -> its histograms, each case a way Prometheus cuts or recodes chunks."""
    t = START
    out = {
        # About 120 per chunk from the head's prediction, and a cut at the range's end.
        "h_long": counter(t, 420, 5000),
        "h_long_float": counter(t + 7, 420, 5000, is_float=True),
        # 31 slow samples (no earlier end predicted), then fast ones: cut at 240.
        "h_cap": counter(t, 31, 45_000) + counter(t + 31 * 45_000, 300, 100, first=31),
        "h_empty": [hist(t + i * 1000) for i in range(5)]
        + [hist(t + 5000 + i * 1000, zero=i, extra=i) for i in range(5)],
        "h_negative": [hist(t + i * 1000, {-5: i}, {-300: i + 1, -299: 1, 40: i * 300},
                            zero=7, extra=3) for i in range(10)],
        "h_new_buckets": [hist(t, {0: 1}), hist(t + 1000, {0: 2, 3: 1}),
                          hist(t + 2000, {-2: 1, 0: 2, 3: 1}, {1: 1}),
                          hist(t + 3000, {-2: 1, 0: 3, 3: 1, 4: 1, 5: 1, 9: 2}, {0: 1, 1: 1}),
                          hist(t + 4000, {-2: 2, 0: 3, 3: 1, 4: 1, 5: 1, 9: 2}, {0: 1, 1: 1})],
        "h_float_new_buckets": [
            hist(t, {0: 1.5}, is_float=True, extra=1),
            hist(t + 1000, {0: 2, 3: 0.25}, is_float=True, extra=1),
            hist(t + 2000, {-2: 1, 0: 2, 3: 0.25}, {1: 1}, is_float=True, extra=1),
            hist(t + 3000, {-2: 1, 0: 2, 3: 0.5}, {1: 1.5}, is_float=True, extra=1)],
        "h_resets": [hist(t, {0: 5, 1: 5}, zero=3), hist(t + 1000, {0: 6, 1: 5}, zero=3),
                     hist(t + 2000, {0: 6, 1: 5}, zero=2),  # zero count down
                     hist(t + 3000, {0: 6, 1: 4}, zero=2),  # a bucket down
                     hist(t + 4000, {0: 6}, zero=2, extra=9),  # a bucket gone
                     hist(t + 5000, {0: 7}, zero=2, extra=9),
                     hist(t + 6000, {0: 1}, zero=0),  # the count down
                     hist(t + 7000, {0: 2}, zero=0, hint=RESET_YES),  # said so
                     hist(t + 8000, {0: 3}, zero=0, hint=RESET_NO),
                     hist(t + 9000, {0: 4}, zero=0)],
        "h_schema": [hist(t, {0: 1}), hist(t + 1000, {0: 2}, schema=3),
                     hist(t + 2000, {0: 3}, schema=3), hist(t + 3000, {0: 4}, schema=-4),
                     hist(t + 4000, {0: 5}, schema=-4, threshold=0.001),
                     hist(t + 5000, {0: 6}, schema=-4, threshold=0.0),
                     hist(t + 6000, {0: 7}, schema=-4, threshold=2.0 ** -243),
                     hist(t + 7000, {0: 8}, schema=8, threshold=1024.0)],
        "h_stale": counter(t, 4) + [stale(t + 4000), stale(t + 5000)]
        + counter(t + 6000, 3) + [stale(t + 9000)],
        "h_float_stale": counter(t, 4, is_float=True) + [stale(t + 4000, True),
                                                        stale(t + 5000, True)]
        + counter(t + 6000, 3, is_float=True),
        "h_switch": counter(t, 3) + counter(t + 3000, 3, is_float=True) + counter(t + 6000, 2)
        + counter(t + 8000, 2, is_float=True) + [stale(t + 10_000)],
        "h_gauge": [hist(t, {0: 3, 1: 1}, {2: 1}, hint=RESET_GAUGE),
                    hist(t + 1000, {0: 1, 2: 4}, {2: 1}, hint=RESET_GAUGE),  # both ways
                    hist(t + 2000, {1: 1}, hint=RESET_GAUGE),  # fewer buckets
                    hist(t + 3000, {0: 1, 1: 1, 2: 1, 7: 1}, {-1: 1}, hint=RESET_GAUGE),
                    hist(t + 4000, {0: 2}, hint=RESET_GAUGE, schema=2),  # schema change
                    hist(t + 5000, {0: 1}, hint=RESET_GAUGE, schema=2),
                    hist(t + 6000, {0: 1}, schema=2),  # a counter again
                    hist(t + 7000, {0: 1}, hint=RESET_GAUGE, schema=2),
                    stale(t + 8000, hint=RESET_GAUGE)],
        "h_float_gauge": [hist(t, {0: 3, 1: 1}, {2: 1}, is_float=True, extra=1, hint=RESET_GAUGE),
                          hist(t + 1000, {0: 1, 2: 4}, is_float=True, extra=1, hint=RESET_GAUGE),
                          hist(t + 2000, {1: 0.5}, is_float=True, extra=1, hint=RESET_GAUGE),
                          stale(t + 3000, True)],
        "h_spans_as_given": [hist(t + i * 1000, {0: i, 1: i, 2: 1},
                                  positive_spans=((0, 1), (0, 2))) for i in range(4)],
        "h_sums": [hist(t + i * 1000, {0: i}, total=v) for i, v in enumerate(
            [0.0, -0.0, NAN, float("inf"), float("-inf"), 1e-300, 5e-324, 0.1, 0.1, 1e300])],
    }
    rng = random.Random(42)
    for n in range(8):
        steps = random_steps(rng, 220)
        series = walk(steps, start=START + n, interval=rng.choice([1000, 2000, 7000]),
                      float_first=bool(n % 2))
        out[f"h_walk_{n}"] = [h for h in series if h.timestamp < END]
    return out


def mixed() -> Series:
    """Floats and histograms in one series: each run in its own chunks."""
    t = BOUNDARY + 60_000
    floats = [(t + i * 1000, float(i)) for i in range(20)] + [
        (t + 40_000 + i * 1000, 0.5 * i) for i in range(10)]
    hists = counter(t + 20_000, 20) + counter(t + 50_000, 5, is_float=True)
    return Series((("__name__", "h_mixed"),), [s[0] for s in floats], [s[1] for s in floats],
                  hists)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus with native histograms and its remote-write receiver."""
    proc, url = start_receiver(tmp_path_factory.mktemp("prometheus-histograms"),
                               flags=("--enable-feature=native-histograms",))
    try:
        yield url
    finally:
        proc.stop()


def runs(series: Series) -> list:
    """The series' samples in runs of one kind (float samples, integer or float
    histograms): Prometheus commits a request's floats, then its integer histograms, then
    its float histograms, so each run goes in a request of its own."""
    items = sorted([(t, 0, v) for t, v in zip(series.timestamps, series.values)]
                   + [(h.timestamp, 2 if h.is_float else 1, h) for h in series.histograms],
                   key=lambda item: (item[0], item[1]))
    out = []
    for t, kind, item in items:
        if not out or out[-1][0] != kind:
            out.append((kind, []))
        out[-1][1].append(item if kind else (t, item))
    return out


def write(url: str, all_series) -> None:
    pending = [(s, runs(s)) for s in all_series]
    for round_ in range(max(len(r) for _, r in pending)):
        request = remote_pb2.WriteRequest()
        for s, series_runs in pending:
            if round_ < len(series_runs):
                kind, items = series_runs[round_]
                ts = request.timeseries.add()
                ts.labels.extend(types_pb2.Label(name=n, value=v) for n, v in s.labels)
                if kind:
                    ts.histograms.extend(histograms.to_message(h) for h in items)
                else:
                    ts.samples.extend(types_pb2.Sample(timestamp=t, value=v) for t, v in items)
        send(url + "/api/v1/write", codec.encode_message(request))


def streamed_read(url: str) -> dict:
    """Series name -> its ChunkedSeries messages, from Prometheus's streamed read."""
    request = read_request((START, END, [(types_pb2.LabelMatcher.RE, "__name__", "h_.*")]))
    request.accepted_response_types.append(remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS)
    body = send(url + "/api/v1/read", codec.encode_message(request))
    out: dict = {}
    for frame in read_frames(body):
        for chunked in frame.chunked_series:
            name = {label.name: label.value for label in chunked.labels}["__name__"]
            out.setdefault(name, []).append(chunked)
    return out


@pytest.fixture(scope="module")
def served(prometheus):
    """What was written, and what Prometheus's streamed read answers."""
    written = cases()
    write(prometheus, [Series((("__name__", name),), [] if name in OPEN else
                              [hs[-1].timestamp + 1], [] if name in OPEN else [1.0], hs)
                       for name, hs in written.items()] + [mixed()])
    return written, streamed_read(prometheus)


def test_chunks_equal_those_prometheus_encodes(served):
    written, answer = served
    assert sorted(answer) == sorted([*written, "h_mixed"])
    checked = {types_pb2.Chunk.HISTOGRAM: 0, types_pb2.Chunk.FLOAT_HISTOGRAM: 0}
    headers = set()
    for name, hs in written.items():
        theirs = histogram_chunks_of(answer[name])
        ours = list(series_chunks(hs))
        assert [(c.type, c.min_time_ms, c.max_time_ms) for c in theirs] == \
            [(c.encoding, c.min_time_ms, c.max_time_ms) for c in ours], name
        if name in OPEN:  # see test_prometheus_serves_an_open_chunk_without_its_header
            theirs, ours = theirs[:-1], ours[:-1]
        for their, our in zip(theirs, ours):
            assert their.data == our.data, (name, their.min_time_ms, their.data.hex(),
                                            our.data.hex())
            checked[their.type] += 1
            headers.add((their.type, their.data[2]))
    assert min(checked.values()) >= 20
    assert {header for _, header in headers} == {0x00, 0x40, 0x80, 0xC0}  # all four


def histogram_chunks_of(chunked_series) -> list:
    return [c for chunked in chunked_series for c in chunked.chunks
            if c.type != types_pb2.Chunk.XOR]


def test_prometheus_serves_an_open_chunk_without_its_header(served):
    written, answer = served
    for name in OPEN:
        theirs = histogram_chunks_of(answer[name])[-1]
        ours = list(series_chunks(written[name]))[-1]
        assert theirs.data[2] == 0 and ours.data[2] != 0
        assert theirs.data[:2] + theirs.data[3:] == ours.data[:2] + ours.data[3:]


def test_cases_cut_where_expected(served):
    """The cases do what they are named for (Prometheus's chunks, not only ours)."""
    written, answer = served

    def sizes(name):
        return [len(decode_chunk(c.type, c.data)) for c in histogram_chunks_of(answer[name])]

    assert sizes("h_cap")[:2] == [240, 91] and max(sizes("h_long")) <= 120
    assert 110 <= sizes("h_long")[0] <= 120
    first_after_boundary = [c.min_time_ms for c in histogram_chunks_of(answer["h_long"])
                            if c.min_time_ms >= BOUNDARY][0]
    assert first_after_boundary == BOUNDARY  # the range's end cuts
    assert sizes("h_new_buckets") == [5] and sizes("h_resets") == [2, 1, 1, 2, 1, 3]
    assert sizes("h_stale") == [6, 4] and sizes("h_switch") == [3, 3, 2, 2, 1]


def test_prometheus_chunks_decode_to_what_was_written(served):
    written, answer = served
    for name, hs in written.items():
        chunks = histogram_chunks_of(answer[name])
        decoded = [h for c in chunks for h in decode_chunk(c.type, c.data)]
        assert [essence(h) for h in decoded] == [essence(h) for h in hs], name
        for chunk in chunks:
            hints = [h.reset_hint for h in decode_chunk(chunk.type, chunk.data)
                     if essence(h)[2:] != ("stale",)]
            assert set(hints[1:]) <= {RESET_NO, RESET_GAUGE}, name


def test_a_mixed_series_is_streamed_as_prometheus_streams_it(served):
    _, answer = served
    theirs = answer["h_mixed"]
    body = b"".join(streamed.series_frames(0, mixed(), streamed.MAX_FRAME_BYTES))
    ours = [chunked for frame in read_frames(body) for chunked in frame.chunked_series]
    assert ours == theirs
    assert [c.type for c in ours[0].chunks] == [1, 2, 1, 3]


def test_backfill_reads_prometheus_histograms_and_sends_them(served, prometheus):
    """`make backfill`'s source reads Prometheus's histogram chunks, and its requests carry
    them as remote write 1.0 histograms."""
    written, _ = served
    everything = Source(prometheus, [(types_pb2.LabelMatcher.RE, "__name__", "h_.*")])
    sent = {}
    for batch in batches(everything.read(START, END), max_samples=500, max_bytes=60_000):
        assert batch.samples <= 500 and batch.request.ByteSize() <= 60_000
        for ts in batch.request.timeseries:
            sent.setdefault(ts.labels[0].value, []).extend(
                histograms.from_message(h) for h in ts.histograms)
    assert {name: [essence(h) for h in sent[name]] for name in written} == \
        {name: [essence(h) for h in hs] for name, hs in written.items()}


def test_backfill_slices_cut_histogram_chunks(prometheus, served):
    """A chunk across a slice's bounds gives each slice its own samples. (Prometheus 2.42
    re-encodes such a chunk to trim it, which fails for gauge histograms: not read here.)"""
    written, _ = served
    names = ("h_long", "h_long_float", "h_cap", "h_resets")
    source = Source(prometheus, [(types_pb2.LabelMatcher.RE, "__name__", "|".join(names))])
    middle = BOUNDARY - 123_456
    got: dict = {}
    for part in (source.read(START, middle), source.read(middle + 1, END)):
        for series in part:
            got.setdefault(series.labels[0][1], []).extend(series.histograms)
    assert {name: [essence(h) for h in got[name]] for name in names} == \
        {name: [essence(h) for h in written[name]] for name in names}
    assert any(h.timestamp > middle for h in got["h_long"])
