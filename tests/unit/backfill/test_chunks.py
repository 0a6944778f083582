"""The streamed-read decoder against the connector's own encoder, bit for bit; what the
source makes of streamed and SAMPLES answers holding native histograms."""
import io
import math
import random
import struct

import pytest

from backfill import source
from backfill.chunks import FrameError, decode_histograms, decode_xor, read_frames
from chalicelib.model import Series
from chalicelib.protocol import codec, histograms
from chalicelib.protocol.prompb import remote_pb2, types_pb2
from chalicelib.protocol.streamed import series_frames
from chalicelib.protocol.xor_chunks import xor_chunk
from tests.support.histogram_cases import essence, hist, stale

STALE = struct.unpack(">d", struct.pack(">Q", 0x7FF0000000000002))[0]


def bits(values):
    return [struct.pack(">d", v) for v in values]


@pytest.mark.parametrize("seed", range(20))
def test_decoding_inverts_the_connectors_encoder(seed):
    rng = random.Random(seed)
    count = rng.randint(1, 300)
    t = rng.randint(-10 ** 12, 10 ** 13)
    times, values = [], []
    for _ in range(count):
        times.append(t)
        t += rng.choice([15_000, 15_001, 1, 0x7FFFF, 2 ** 33, rng.randint(1, 10 ** 6)])
        values.append(rng.choice([STALE, math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300,
                                  rng.random(), float(rng.randint(0, 100)), values[-1]
                                  if values else 1.0]))
    got_times, got_values = decode_xor(xor_chunk(times, values))
    assert got_times == times and bits(got_values) == bits(values)


def test_frames_round_trip_with_utf8_labels_and_are_checked():
    labels = (("__name__", "http.server.duration"), ("service.name", "ünï ✓"))
    series = Series(labels, list(range(0, 300_000, 1000)), [STALE] + [1.5] * 299)
    body = b"".join(series_frames(0, series, 1_048_576))
    frames = list(read_frames(io.BytesIO(body)))
    got = frames[0].chunked_series[0]
    assert tuple((l.name, l.value) for l in got.labels) == labels
    times = [t for chunk in got.chunks for t in decode_xor(chunk.data)[0]]
    assert times == series.timestamps
    assert bits([decode_xor(got.chunks[0].data)[1][0]]) == bits([STALE])
    with pytest.raises(FrameError):
        list(read_frames(io.BytesIO(body[:-1])))
    corrupt = bytearray(body)
    corrupt[-1] ^= 1
    with pytest.raises(FrameError):
        list(read_frames(io.BytesIO(bytes(corrupt))))


def test_histogram_chunks_are_read_back_from_streamed_frames():
    hs = [hist(i * 1000, {0: i, 3: 1}, {-1: 2}) for i in range(130)] + [stale(130_000)] + [
        hist(131_000 + i, {0: 0.5}, is_float=True, extra=1) for i in range(3)]
    series = Series((("__name__", "h"),), [500, 131_500], [1.0, STALE], hs)
    body = b"".join(series_frames(0, series, 1_048_576))
    chunks = [c for f in read_frames(io.BytesIO(body)) for c in f.chunked_series[0].chunks]
    got = [h for c in chunks if c.type != 1 for h in decode_histograms(c.type, c.data)]
    assert [essence(h) for h in got] == [essence(h) for h in hs]
    assert [c.type for c in chunks] == [2, 1, 2, 2, 3, 1]  # floats cut the histograms' runs
    with pytest.raises(FrameError, match="ends early"):
        decode_histograms(chunks[2].type, chunks[2].data[:6])
    with pytest.raises(FrameError, match="not a histogram chunk"):
        decode_histograms(1, chunks[0].data)


def test_the_source_reads_histograms_streamed_or_as_samples():
    labels = (("__name__", "h"),)
    hs = [hist(i * 1000, {0: i}) for i in range(10)]
    body = b"".join(series_frames(0, Series(labels, [2500], [1.0], hs), 1_048_576))
    got = list(source._streamed(io.BytesIO(body), 2000, 7000))
    assert [(l, t, v) for l, t, v, _ in got] == [(labels, [2500], [1.0])]
    assert [essence(h) for h in got[0][3]] == [essence(h) for h in hs[2:8]]
    assert list(source._streamed(io.BytesIO(body), 20_000, 30_000)) == []
    response = remote_pb2.ReadResponse()
    ts = response.results.add().timeseries.add(labels=[types_pb2.Label(name="__name__",
                                                                       value="h")])
    ts.histograms.extend(histograms.to_message(h) for h in hs[:3])
    got = list(source._samples(codec.encode_message(response)))
    assert [(l, t, v) for l, t, v, _ in got] == [(labels, [], [])]
    assert [essence(h) for h in got[0][3]] == [essence(h) for h in hs[:3]]
    ts.histograms[1].positive_deltas.append(1)  # more buckets than its spans hold
    with pytest.raises(source.SourceError, match="a histogram of series"):
        list(source._samples(codec.encode_message(response)))


def test_the_source_refuses_chunks_of_unknown_types():
    response = remote_pb2.ChunkedReadResponse()
    response.chunked_series.add(labels=[types_pb2.Label(name="__name__", value="x")]).chunks.add(
        type=4, min_time_ms=0, max_time_ms=1, data=b"\x00\x00\x00")
    body = codec.frame(response.SerializeToString())
    with pytest.raises(source.SourceError, match="unknown type 4"):
        list(source._streamed(io.BytesIO(body), 0, 10))


def test_overlapping_chunks_keep_one_histogram_each():
    hs = [hist(t, {0: 1}) for t in (1000, 2000, 2000, 3000, 1000)]
    series = source._sorted((("__name__", "h"),), [], [], hs)
    assert [h.timestamp for h in series.histograms] == [1000, 2000, 3000]
    assert source._sorted((), [1], [1.0], hs[:2]).histograms == hs[:2]
