"""The streamed-read decoder against the connector's own encoder, bit for bit."""
import io
import math
import random
import struct

import pytest

from backfill.chunks import FrameError, decode_xor, read_frames
from chalicelib.model import Series
from chalicelib.protocol.streamed import series_frames
from chalicelib.protocol.xor_chunks import xor_chunk

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
