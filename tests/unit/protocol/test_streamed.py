"""Streamed read frames of series holding float samples, native histograms or both: the
chunks of each in time order, a new chunk where the series changes between them, frames
cut at the frame size. (Compared with the real Prometheus's frames in
tests/system/test_histogram_chunks_prometheus.py.)"""
import io

from backfill.chunks import decode_xor, read_frames
from chalicelib.model import Query, Series
from chalicelib.protocol import histogram_chunks, xor_chunks
from chalicelib.protocol.histogram_chunks import decode_chunk
from chalicelib.protocol.prompb import types_pb2
from chalicelib.protocol.streamed import MAX_FRAME_BYTES, frames, series_chunks, series_frames
from tests.support.histogram_cases import essence, hist

XOR, HISTOGRAM, FLOAT_HISTOGRAM = (types_pb2.Chunk.XOR, types_pb2.Chunk.HISTOGRAM,
                                   types_pb2.Chunk.FLOAT_HISTOGRAM)
LABELS = (("__name__", "m"), ("job", "j"))


def chunks_of(series: Series) -> list:
    return [(c.type, c.min_time_ms, c.max_time_ms) for c in series_chunks(series)]


def test_floats_alone_are_xor_chunks_of_120():
    times = list(range(0, 250_000, 1000))
    series = Series(LABELS, times, [float(t) for t in times])
    assert chunks_of(series) == [(XOR, 0, 119_000), (XOR, 120_000, 239_000),
                                 (XOR, 240_000, 249_000)]
    assert [c.data for c in series_chunks(series)] == [
        c.data for c in xor_chunks.series_chunks(series.timestamps, series.values)]


def test_histograms_alone_are_the_heads_chunks():
    hs = [hist(i * 1000, {0: i}) for i in range(130)] + [
        hist(130_000 + i * 1000, {0: i}, is_float=True) for i in range(5)]
    got = list(series_chunks(Series(LABELS, [], [], hs)))
    expected = list(histogram_chunks.series_chunks(hs))
    assert [(c.type, c.min_time_ms, c.max_time_ms, c.data) for c in got] == \
        [(c.encoding, c.min_time_ms, c.max_time_ms, c.data) for c in expected]
    assert [c.type for c in got] == [HISTOGRAM, HISTOGRAM, FLOAT_HISTOGRAM]


def test_floats_and_histograms_each_in_their_runs_in_time_order():
    times = [0, 1000, 5000, 6000, 9000]
    hs = [hist(2000, {0: 1}), hist(3000, {0: 2}), hist(7000, {0: 3}, is_float=True),
          hist(8000, {0: 4}, is_float=True), hist(10_000, {0: 5})]
    series = Series(LABELS, times, [1.0, 2.0, 3.0, 4.0, 5.0], hs)
    assert chunks_of(series) == [(XOR, 0, 1000), (HISTOGRAM, 2000, 3000), (XOR, 5000, 6000),
                                 (FLOAT_HISTOGRAM, 7000, 8000), (XOR, 9000, 9000),
                                 (HISTOGRAM, 10_000, 10_000)]
    decoded_times, decoded_hists = [], []
    for chunk in series_chunks(series):
        if chunk.type == XOR:
            decoded_times += decode_xor(chunk.data)[0]
        else:
            decoded_hists += decode_chunk(chunk.type, chunk.data)
    assert decoded_times == times
    assert [essence(h) for h in decoded_hists] == [essence(h) for h in hs]
    # each run is chunked on its own: the histograms after floats start a fresh chunk
    assert list(series_chunks(series))[1].data == \
        list(histogram_chunks.series_chunks(hs[:2]))[0].data


def test_a_float_and_a_histogram_at_the_same_time_float_first():
    series = Series(LABELS, [1000, 2000], [1.0, 2.0], [hist(1000, {0: 1}), hist(2000, {0: 2})])
    assert chunks_of(series) == [(XOR, 1000, 1000), (HISTOGRAM, 1000, 1000),
                                 (XOR, 2000, 2000), (HISTOGRAM, 2000, 2000)]
    series = Series(LABELS, [3000], [1.0], [hist(1000, {0: 1}), hist(2000, {0: 2})])
    assert chunks_of(series) == [(HISTOGRAM, 1000, 2000), (XOR, 3000, 3000)]


def test_frames_are_cut_at_the_frame_size_with_histogram_chunks():
    hs = [hist(i * 1000, {b: i for b in range(20)}) for i in range(600)]
    series = Series(LABELS, [], [], hs)
    chunks = list(series_chunks(series))
    sizes = [c.ByteSize() for c in chunks]
    # room for two chunks and a byte: the third passes it and ends the frame
    budget = sizes[0] + sizes[1] + 1 + sum(len(n) + len(v) + 4 for n, v in LABELS)
    parts = list(series_frames(3, series, budget))
    messages = [m for part in parts for m in read_frames(io.BytesIO(part))]
    per_frame = [len(m.chunked_series[0].chunks) for m in messages]
    assert per_frame[0] == 3 and sum(per_frame) == len(chunks) and len(parts) > 1
    assert {m.query_index for m in messages} == {3}
    assert [c for m in messages for c in m.chunked_series[0].chunks] == chunks
    assert [tuple((l.name, l.value) for l in m.chunked_series[0].labels)
            for m in messages] == [LABELS] * len(messages)


def test_a_query_of_mixed_series_streams_every_series():
    series = [Series(LABELS, [0], [1.0], [hist(1000, {0: 1})]),
              Series((("__name__", "n"),), [], [], [hist(0, {0: 1}, is_float=True)]),
              Series((("__name__", "o"),), [], [], [])]
    body = b"".join(frames([Query(0, 9, ())], lambda query: series, MAX_FRAME_BYTES))
    messages = list(read_frames(io.BytesIO(body)))
    assert [[c.type for c in m.chunked_series[0].chunks] for m in messages] == \
        [[XOR, HISTOGRAM], [FLOAT_HISTOGRAM]]
