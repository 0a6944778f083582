"""XOR chunks: decoded by a reader written from Prometheus's format documentation
(tests/support/streamed_reader.py), and compared byte for byte with the chunks the real
Prometheus (2.42, Debian) encodes for the same samples."""
import random
import struct
import time

import pytest

from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2
from chalicelib.protocol.xor_chunks import (MAX_SAMPLES_PER_CHUNK,
                                            series_chunks, xor_chunk)
from harness.remote import read_request, write_request
from tests.support.prometheus import send, start_receiver
from tests.support.streamed_reader import as_bits, decode_xor, read_frames

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
SPECIAL = [0.0, -0.0, 1.0, 1.0, 1.0, 2.0, 1e-300, 5e-324, 1.7976931348623157e308, -1.5,
           float("inf"), float("-inf"), float("nan"), STALE_NAN, 0.1 + 0.2, 123456789.123,
           -123456789.123, 2 ** 53, 2 ** 53 + 1, 42.0, 42.0, 1e10, 1e-10]
# Deltas of deltas at and around each bucket's bounds (-(2^(n-1) - 1) .. 2^(n-1)):
# 14, 17, 20 and 64 bits, in both directions.
BOUNDS = [0, 1, -1, 8191, 8192, 8193, 65535, 65536, 65537, 524287, 524288, 524289,
          10 ** 12]


def dod_timestamps(start: int, bounds=BOUNDS) -> list:
    """Timestamps whose deltas of deltas go +d then -d for each bound d."""
    timestamps, delta = [start, start + 1000], 1000
    for bound in bounds:
        for dod in (bound, -bound):
            delta += dod
            timestamps.append(timestamps[-1] + delta)
    return timestamps


def decoded(chunk: bytes):
    return decode_xor(chunk)


@pytest.mark.parametrize("count", [1, 2, 3, 119, 120])
def test_round_trip_exact_bits(count):
    rng = random.Random(count)
    timestamps = sorted(rng.sample(range(-10 ** 6, 10 ** 9), count))
    values = [rng.choice(SPECIAL + [rng.uniform(-1e6, 1e6)]) for _ in range(count)]
    assert decoded(xor_chunk(timestamps, values)) == \
        [(t, as_bits(v)) for t, v in zip(timestamps, values)]


def test_every_timestamp_bucket_and_value_window():
    timestamps = dod_timestamps(1_700_000_000_000)
    values = (SPECIAL * 2)[:len(timestamps)]
    assert decoded(xor_chunk(timestamps, values)) == \
        [(t, as_bits(v)) for t, v in zip(timestamps, values)]


def test_known_bytes():
    # 3 samples at 0, 1000, 2000 with values 0.0, 1110.0, 1110.0: header 0003; ts_0 0;
    # v_0 0.0; delta 1000 (e8 07); v_1 opens a window (11, leading 1, 11 significant bits);
    # dod 0 and an unchanged value are two 0 bits; zero padding.
    # 1110.0 = 0x4091580000000000: leading 1, trailing 43, 20 significant bits 0x8122b.
    assert xor_chunk([0, 1000, 2000], [0.0, 1110.0, 1110.0]).hex() == \
        "0003" "00" "0000000000000000" "e807" "c2a4091580"


def test_known_bytes_of_a_negative_delta_of_deltas():
    # 4 samples at 0, 1000, 2000, 2999, all 0.0: header 0004; ts_0 0; v_0 0.0; delta 1000;
    # then bits: unchanged value 0; dod 0 and value 0 00; dod -1 as 10 + 14 bits
    # 11111111111111 (two's complement) and value 0; padding: 0001 0111 1111 1111 1110 0000.
    assert xor_chunk([0, 1000, 2000, 2999], [0.0] * 4).hex() == \
        "0004" "00" "0000000000000000" "e807" "17ffe0"


def test_known_bytes_at_the_bounds_of_the_14_bit_bucket():
    # deltas 1000, 1000, 9192, 1001: dods 0, +8192 (the bucket's top, 2^13) and -8191 (its
    # bottom), all values 0.0. Bits: 0 | 0 0 | 10 10000000000000 0 | 10 10000000000001 0
    # (-8191 in 14-bit two's complement), padded.
    assert xor_chunk([0, 1000, 2000, 11192, 12193], [0.0] * 5).hex() == \
        "0005" "00" "0000000000000000" "e807" "14000a0010"


def test_known_bytes_of_a_value_reusing_a_wider_window():
    # values with bits 0, 0x00F0..., 0x00E0...: the first XOR (0x00F0...) opens a window:
    # 11, 8 leading zeros (01000), 4 significant bits (000100), 1111; the second XOR
    # (0x0010...: 11 leading, 52 trailing zeros) fits inside it: dod 0, then 10 + 0001.
    values = [struct.unpack(">d", struct.pack(">Q", b))[0]
              for b in (0, 0x00F0000000000000, 0x00E0000000000000)]
    assert xor_chunk([0, 1000, 2000], values).hex() == \
        "0003" "00" "0000000000000000" "e807" "d027a1"


def test_a_chunk_ending_on_whole_bytes_ends_with_an_empty_byte_as_in_prometheus():
    assert xor_chunk([5], [1.0]).hex() == "0001" "0a" "3ff0000000000000" "00"
    assert decoded(xor_chunk([5], [1.0])) == [(5, as_bits(1.0))]


def test_chunks_hold_at_most_120_samples():
    timestamps = list(range(0, 250_000, 1000))
    values = [float(i % 7) for i in range(len(timestamps))]
    chunks = list(series_chunks(timestamps, values))
    assert [len(decoded(c.data)) for c in chunks] == [120, 120, 10]
    assert MAX_SAMPLES_PER_CHUNK == 120
    assert [(c.min_time_ms, c.max_time_ms) for c in chunks] == \
        [(0, 119_000), (120_000, 239_000), (240_000, 249_000)]
    assert [s for c in chunks for s in decoded(c.data)] == \
        [(t, as_bits(v)) for t, v in zip(timestamps, values)]


def test_refuses_what_a_chunk_cannot_hold():
    for timestamps, values in (([], []), ([1, 2], [1.0]), ([1], [1.0, 2.0]),
                               (list(range(65536)), [0.0] * 65536)):
        with pytest.raises(ValueError):
            xor_chunk(timestamps, values)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A real Prometheus with its remote-write receiver: it encodes the chunks."""
    proc, url = start_receiver(tmp_path_factory.mktemp("prometheus-chunks"))
    try:
        yield url
    finally:
        proc.stop()


def test_chunks_equal_those_prometheus_encodes(prometheus):
    now = int(time.time() * 1000)
    rng = random.Random(7)
    start = now - 50 * 60_000
    series = {  # within Prometheus's head window; 2^63 ms jumps are for the unit tests
        "dods": (dod_timestamps(start, BOUNDS[:-1]), None),
        "long": (list(range(start, start + 400_000, 1000)), None),
        "jitter": (sorted(rng.sample(range(start, start + 1_500_000), 300)), None),
        "single": ([start + 5], None),  # ends on whole bytes: Prometheus's extra empty byte
        "pair": ([start, start + 7], None),
        "windows": ([start + 1000 * i for i in range(8)], None),  # the known-bytes values
    }
    written = {}
    for name, (timestamps, _) in series.items():
        values = [rng.choice(SPECIAL + [rng.uniform(-1e3, 1e3), float(i)])
                  for i in range(len(timestamps))]
        if name == "windows":
            values = [1.0, as_float(0x3FF0000000000001), -0.0, 5e-324, -0.0, 0.0,
                      as_float(0x00F0000000000000), as_float(0x0070000000000000)]
        written[name] = [(t, as_bits(v)) for t, v in zip(timestamps, values)]
        send(prometheus + "/api/v1/write",
             codec.encode_message(write_request(({"__name__": name}, list(zip(timestamps,
                                                                                values))))))
    request = read_request((start - 1, now, [(2, "__name__", "|".join(series))]))
    request.accepted_response_types.append(remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS)
    body = send(prometheus + "/api/v1/read", codec.encode_message(request))
    seen = {}
    chunks_checked = 0
    for frame in read_frames(body):
        for chunked in frame.chunked_series:
            name = {l.name: l.value for l in chunked.labels}["__name__"]
            for chunk in chunked.chunks:
                assert chunk.type == 1  # XOR
                samples = decode_xor(chunk.data)  # the test's reader reads Prometheus's bytes
                seen.setdefault(name, []).extend(samples)
                # ... and the connector's encoder writes exactly Prometheus's bytes
                ts = [t for t, _ in samples]
                values = [struct.unpack(">d", struct.pack(">Q", b))[0] for _, b in samples]
                assert xor_chunk(ts, values) == chunk.data, (name, chunk.min_time_ms)
                assert (chunk.min_time_ms, chunk.max_time_ms) == (ts[0], ts[-1])
                chunks_checked += 1
    assert seen == written
    assert chunks_checked >= 8


def from_bits(*groups: str) -> bytes:
    """Bytes from groups of bits (spaces are for reading), zero-padded to a whole byte."""
    bits = "".join(groups).replace(" ", "")
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def two_samples_in(count: int) -> bytes:
    """Header, ts_0 = 0, v_0 = 0.0 and delta 1000 (e8 07): the whole bytes every test
    chunk below starts with."""
    return bytes.fromhex(f"{count:04x}" "00" "0000000000000000" "e807")


def from_dods(dods) -> list:
    timestamps, delta = [0, 1000], 1000
    for dod in dods:
        delta += dod
        timestamps.append(timestamps[-1] + delta)
    return timestamps


def test_known_bytes_at_the_bounds_of_the_17_and_20_bit_buckets():
    # All values 0.0 (a 0 bit each). 17 bits hold -65535..65536, 20 bits -524287..524288.
    dods = [65536, -65535, 65537, -65536, 524288, -524287]
    assert xor_chunk(from_dods(dods), [0.0] * 8) == two_samples_in(8) + from_bits(
        "0",
        "110 10000000000000000 0", "110 10000000000000001 0",  # 65536; -65535 (2^17 - 65535)
        "1110 00010000000000000001 0", "1110 11110000000000000000 0",  # 65537; -65536
        "1110 10000000000000000000 0", "1110 10000000000000000001 0")  # 524288; -524287


def test_known_bytes_of_deltas_of_deltas_beyond_20_bits():
    # 64 bits, two's complement; odd values show every bit is kept.
    dods = [524289, -524289, 2 ** 40 + 1]
    assert xor_chunk(from_dods(dods), [0.0] * 5) == two_samples_in(5) + from_bits(
        "0",
        "1111", f"{524289:064b}", "0",
        "1111", f"{2 ** 64 - 524289:064b}", "0",
        "1111", f"{2 ** 40 + 1:064b}", "0")


def as_float(bits: int) -> float:
    return struct.unpack(">d", struct.pack(">Q", bits))[0]


def test_known_bytes_of_a_value_reusing_a_window_with_as_many_leading_zeros():
    # XORs 0x00F0... (8 leading, 52 trailing zeros: a new window, 4 bits) then 0x0080...
    # (8 leading, 55 trailing): it fits the window: 10 + the window's 4 bits, 1000.
    values = [0.0, as_float(0x00F0000000000000), as_float(0x0070000000000000)]
    assert xor_chunk([0, 1000, 2000], values) == two_samples_in(3) + from_bits(
        "11 01000 000100 1111", "0 10 1000")


def test_known_bytes_of_leading_zeros_beyond_31_and_of_64_meaningful_bits():
    # XOR 1: 63 leading zeros, written as 31 (5 bits hold no more), 33 meaningful bits.
    values = [1.0, as_float(0x3FF0000000000001)]
    assert xor_chunk([0, 1000], values) == bytes.fromhex(
        "0002" "00" "3ff0000000000000" "e807") + from_bits("11 11111 100001", "0" * 32 + "1")
    # XOR 0x8000000000000001: no leading or trailing zeros, 64 meaningful bits written as 0;
    # the next XOR (the same) fits that window. 144 bits: whole bytes, then the empty one.
    values = [-0.0, 5e-324, -0.0]
    assert xor_chunk([0, 1000, 2000], values) == bytes.fromhex(
        "0003" "00" "8000000000000000" "e807") + from_bits(
        "11 00000 000000", "1" + "0" * 62 + "1", "0 10", "1" + "0" * 62 + "1") + b"\x00"


def test_known_bytes_of_negative_and_extreme_timestamps():
    # ts_0 is a zig-zag varint: -1 -> 1, -65 -> 129 (81 01), 64 -> 128 (80 01), -64 -> 127;
    # whole bytes, then the empty one.
    assert xor_chunk([-1], [0.0]).hex() == "0001" "01" "0000000000000000" "00"
    assert xor_chunk([-65], [0.0]).hex() == "0001" "8101" "0000000000000000" "00"
    assert xor_chunk([64], [0.0]).hex() == "0001" "8001" "0000000000000000" "00"  # 128
    assert xor_chunk([-64], [0.0]).hex() == "0001" "7f" "0000000000000000" "00"  # 127
    # The widest int64 range: ts_0 -2^63 (zig-zag 2^64 - 1), delta 2^64 - 1 (10 bytes each);
    # the delta of deltas wraps as Go's int64 does: -1, in 14 bits.
    top = "ff" * 9 + "01"
    assert xor_chunk([-2 ** 63, -2 ** 63, 2 ** 63 - 1], [0.0] * 3) == bytes.fromhex(
        "0003" + top + "0000000000000000" + "00") + from_bits("0", "10 11111111111111 0")
    assert decoded(xor_chunk([-2 ** 63, 2 ** 63 - 1], [0.0, 0.0])) == \
        [(-2 ** 63, 0), (2 ** 63 - 1, 0)]


def test_a_chunk_of_65535_samples_is_written():
    # Every sample after the second: dod 0 and an unchanged value, two 0 bits.
    assert xor_chunk(list(range(65535)), [1.0] * 65535) == bytes.fromhex(
        "ffff" "00" "3ff0000000000000" "01") + from_bits("0", "00" * 65533)
