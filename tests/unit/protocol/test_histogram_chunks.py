"""Histogram chunks: known bytes written bit by bit from the format, where the head cuts
chunks and what their headers say, and round trips through the decoder (property tests).
The bytes are compared with the real Prometheus's in
tests/system/test_histogram_chunks_prometheus.py."""
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.model import RESET_GAUGE, RESET_NO, RESET_UNKNOWN, RESET_YES, Histogram
from chalicelib.protocol import histogram_chunks
from chalicelib.protocol.histogram_chunks import (CHUNK_RANGE_MS, FLOAT_HISTOGRAM, HISTOGRAM,
                                                  Chunk, decode_chunk, series_chunks)
from chalicelib.protocol.xor_chunks import BitWriter
from tests.support.histogram_cases import (ACTIONS, DEFAULT_THRESHOLD, STALE, bits, essence,
                                           hist, indices_of, random_steps, stale, walk)

UNKNOWN, NOT_RESET, RESET, GAUGE = 0x00, 0x40, 0x80, 0xC0
B = 1_700_000_000_000 // 7_200_000 * 7_200_000  # a chunk range boundary (ranges of 2 h)
T1000 = "11110 001111101000"  # 1000 as a varbit int: 12 bits
ZT = "01110100"  # the default zero threshold, 2^-128: 0.5 * 2^-127, stored as -127 + 243


def from_bits(*groups: str) -> bytes:
    """Bytes from groups of bits (spaces for reading), zero-padded to a whole byte."""
    text = "".join(groups).replace(" ", "")
    text += "0" * (-len(text) % 8)
    return int(text, 2).to_bytes(len(text) // 8, "big") if text else b""


def f64(value: float) -> str:
    return f"{bits(value):064b}"


def only(histograms) -> Chunk:
    chunks = list(series_chunks(histograms))
    assert len(chunks) == 1, [(c.min_time_ms, c.data.hex()) for c in chunks]
    return chunks[0]


def samples(chunk: Chunk) -> list:
    return decode_chunk(chunk.encoding, chunk.data)


def plain(h: Histogram) -> Histogram:
    """The histogram with its sum as bits (NaNs compare equal then)."""
    return h._replace(sum=bits(h.sum))


def layout(chunks) -> list:
    """(samples, header) of each chunk."""
    return [(len(samples(c)), c.data[2]) for c in chunks]


# Known bytes -----------------------------------------------------------------------------

def test_known_bytes_of_one_integer_histogram():
    h = hist(0, {0: 1, 1: 3}, {-2: 1}, zero=5, schema=3)  # count 10, sum 2.5
    assert only([h]) == Chunk(HISTOGRAM, 0, 0, bytes.fromhex("0001" "00") + from_bits(
        ZT, "10 011",  # schema 3
        "10 001", "10 010", "0",  # one positive span: length 2, offset 0
        "10 001", "10 001", "10 110",  # one negative span: length 1, offset -2
        "0", "110 001010", "10 101", f64(2.5),  # t 0, count 10, zero count 5 (unsigned), sum
        "10 001", "10 010", "10 001"))  # bucket deltas 1, 2; 1
    assert samples(only([h])) == [h]


def test_known_bytes_of_later_integer_samples():
    hs = [hist(1000, {0: 1}, total=1.0), hist(2000, {0: 3}, zero=1, total=3.0),
          hist(3500, {0: 4}, zero=1, total=2.0)]
    assert only(hs).data == bytes.fromhex("0003" "00") + from_bits(
        ZT, "0", "10 001", "10 001", "0", "0",
        T1000, "10 001", "0", f64(1.0), "10 001",
        # t dod 1000; count dod 3, zero count dod 1; sum 3.0: XOR 0x7ff8..., a new window
        # (1 leading zero, 12 meaningful bits); the bucket's dod 2
        T1000, "10 011", "10 001", "11 00001 001100 111111111111", "10 010",
        # t dod 500; count dod 1 - 3; zero count dod 0 - 1; sum 2.0: XOR 0x0008... fits
        # the window (10 + its 12 bits); the bucket's dod 1 - 2
        "11110 000111110100", "10 110", "10 111", "10 000000000001", "10 111")
    assert samples(only(hs)) == [hs[0], *(h._replace(reset_hint=RESET_NO) for h in hs[1:])]


def test_known_bytes_of_a_float_chunk_recoded_for_a_new_bucket():
    hs = [hist(0, {0: 1.5}, is_float=True, extra=1, total=1.0),  # count 2.5
          hist(1000, {0: 1.5, 1: 0.5}, is_float=True, extra=1, total=3.0),  # a new bucket
          hist(2000, {0: 1.5, 1: 0.5}, is_float=True, extra=1, total=3.0)]
    assert only(hs) == Chunk(FLOAT_HISTOGRAM, 0, 2000, bytes.fromhex("0003" "00") + from_bits(
        ZT, "0", "10 001", "10 010", "0", "0",  # the layout of the last sample
        "0", f64(2.5), f64(0.0), f64(1.0), f64(1.5), f64(0.0),  # its new bucket at 0
        T1000, "11 01100 000010 11", "0",  # count: XOR 0x000c...; zero count unchanged
        "11 00001 001100 111111111111", "0", "11 00010 001001 111111111",  # sum; buckets
        "0", "0", "0", "0", "0", "0"))  # nothing changed, the time delta neither
    assert samples(only(hs))[0] == hs[0]._replace(positive_spans=((0, 2),),
                                                  positive=(1.5, 0.0))


def test_known_bytes_of_a_stale_marker_after_integer_samples():
    hs = [hist(0, {0: 5}, zero=2, total=1.0), stale(1000)]
    assert only(hs).data == bytes.fromhex("0002" "00") + from_bits(
        ZT, "0", "10 001", "10 001", "0", "0",
        "0", "10 111", "10 010", f64(1.0), "110 000101",
        # count and zero count dods are written as 0 (not -7, -2); no buckets
        T1000, "0", "0", "11 00001 111110", "1" + "0" * 60 + "1")
    assert plain(samples(only(hs))[1]) == plain(Histogram(1000, 0, STALE, 0, 0.0, 0))
    assert type(samples(only(hs))[1].count) is int


def test_known_bytes_of_a_stale_marker_after_float_samples():
    hs = [hist(0, {0: 1.5}, is_float=True, extra=1, total=1.0), stale(1000, True)]
    assert only(hs).data == bytes.fromhex("0002" "00") + from_bits(
        ZT, "0", "10 001", "10 001", "0", "0",
        "0", f64(2.5), f64(0.0), f64(1.0), f64(1.5),
        # the count goes to 0 (XOR with 2.5), whatever the marker counted; no buckets
        T1000, "11 00001 001101 1000000000001", "0", "11 00001 111110", "1" + "0" * 60 + "1")
    assert plain(samples(only(hs))[1]) == plain(Histogram(1000, 0.0, STALE, 0, 0.0, 0.0,
                                                          is_float=True))
    assert type(samples(only(hs))[1].count) is float


def test_known_bytes_of_a_chunk_starting_with_a_stale_marker():
    marker = stale(4, hint=RESET_GAUGE)._replace(positive_spans=((0, 1),), positive=(3,))
    assert only([marker]).data == bytes.fromhex("0001" "c0") + from_bits(
        "00000000", "0", "0", "0",  # an empty layout: threshold 0, schema 0, no spans
        "10 100", "0", "0", f64(STALE))  # t 4, count and zero count 0
    assert only([stale(4, True)]).data == bytes.fromhex("0001" "00") + from_bits(
        "00000000", "0", "0", "0", "10 100", f64(0.0), f64(0.0), f64(STALE)) + b"\x00"
    assert [plain(h) for h in samples(only([marker]))] == [
        plain(Histogram(4, 0, STALE, 0, 0.0, 0))]


def test_counts_and_buckets_wrap_as_go_integers():
    # A gauge at 0, 1000, 2000 whose counts go 0, 2^64 - 1, 0 (Go's int64 deltas -1 and 1:
    # dods -1 and 2) and whose one bucket goes 0, 2^63 - 1, -2 (deltas 2^63 - 1 and 2^63 - 1
    # as int64: dods 2^63 - 1 and 0).
    hs = [Histogram(t, c, 0.0, 0, 0.0, c, ((0, 1),), (b,), reset_hint=RESET_GAUGE)
          for t, c, b in ((0, 0, 0), (1000, 2 ** 64 - 1, 2 ** 63 - 1), (2000, 0, -2))]
    assert only(hs).data == bytes.fromhex("0003" "c0") + from_bits(
        "00000000", "0", "10 001", "10 001", "0", "0",
        "0", "0", "0", f64(0.0), "0",
        T1000, "10 111", "10 111", "0", "11111111" + f"{2 ** 63 - 1:064b}",
        "0", "10 010", "10 010", "0", "0")
    assert [(h.count, h.zero_count, h.positive) for h in samples(only(hs))] == \
        [(0, 0, (0,)), (2 ** 64 - 1, 2 ** 64 - 1, (2 ** 63 - 1,)), (0, 0, (-2,))]


def test_bucket_counts_are_summed_as_go_int64s():
    # Bucket deltas 2^63 - 1 and 2: the second bucket's count wraps to -2^63 + 1. Its
    # delta is still written as 2; and a next sample whose second bucket is 0 is no reset
    # (0 is not below -2^63 + 1).
    first = Histogram(0, 10, 0.0, 0, 0.0, 0, ((0, 2),), (2 ** 63 - 1, 2))
    assert only([first]).data == bytes.fromhex("0001" "00") + from_bits(
        "00000000", "0", "10 001", "10 010", "0", "0",
        "0", "110 001010", "0", f64(0.0), "11111111" + f"{2 ** 63 - 1:064b}", "10 010")
    second = first._replace(timestamp=1000, count=11, positive=(2 ** 63 - 1, -(2 ** 63 - 1)))
    assert layout(series_chunks([first, second])) == [(2, UNKNOWN)]


#: Chunks whose bit streams end on a whole byte, right after whole bytes were written:
#: an integer histogram whose last bucket takes 8 + 56 bits (152 bits in all), a float one
#: with no buckets (t = 4 in 5 bits: 208 bits).
WHOLE = [Histogram(0, 0, 1.0, 0, 0.0, 0, ((0, 1),), (2 ** 24 + 1,)),
         Histogram(4, 0.0, 1.0, 0, 0.0, 0.0, is_float=True)]


def test_known_bytes_of_many_long_spans():
    # 5 spans of 5 buckets, each empty: counts and lengths of 5 are unsigned varbits
    # (3 bits); a signed 5 would take 6.
    h = Histogram(0, 0, 0.0, 0, 0.0, 0, ((0, 5),) + ((1, 5),) * 4, (0,) * 25)
    assert only([h]).data == bytes.fromhex("0001" "00") + from_bits(
        "00000000", "0", "10 101", "10 101 0", "10 101 10 001" * 4, "0",
        "0", "0", "0", f64(0.0), "0" * 25)
    assert samples(only([h])) == [h]


def test_a_sum_changing_in_all_64_bits():
    # -0.0 then 5e-324: the XOR 0x8000000000000001 has 64 meaningful bits (written as 0).
    for is_float in (False, True):
        hs = [hist(0, total=-0.0, is_float=is_float), hist(1, total=5e-324, is_float=is_float),
              hist(2, total=-0.0, is_float=is_float)]
        assert [bits(h.sum) for h in samples(only(hs))] == [1 << 63, 1, 1 << 63]


def test_a_window_reused_before_one_was_opened_is_read_as_prometheus_reads_it():
    # Prometheus's writer opens a window with its first XOR; its reader would take a reused
    # window as 0 leading and 0 trailing zeros (64 bits). So does this one.
    ints = bytes.fromhex("0002" "00") + from_bits(
        "00000000", "0", "0", "0", "0", "0", "0", f64(1.0),
        "10 001", "0", "0", "10", f"{0x4000000000000001:064b}")
    assert [bits(h.sum) for h in decode_chunk(HISTOGRAM, ints)] == \
        [bits(1.0), 0x7FF0000000000001]
    floats = bytes.fromhex("0002" "00") + from_bits(
        "00000000", "0", "0", "0", "0", f64(1.0), f64(2.0), f64(3.0),
        "10 001", "10", f"{0x4000000000000001:064b}", "10", f"{bits(2.0):064b}", "0")
    assert [(bits(h.count), h.zero_count, h.sum)
            for h in decode_chunk(FLOAT_HISTOGRAM, floats)] == \
        [(bits(1.0), 2.0, 3.0), (0x7FF0000000000001, 0.0, 3.0)]


def test_a_chunk_ending_on_whole_bytes_ends_with_an_empty_byte_as_in_prometheus():
    assert only(WHOLE[:1]).data == bytes.fromhex("0001" "00") + from_bits(
        "00000000", "0", "10 001", "10 001", "0", "0", "0", "0", "0", f64(1.0),
        varbit(2 ** 24 + 1, "11111110", 56)) + b"\x00"
    assert only(WHOLE[1:]).data == bytes.fromhex("0001" "00") + from_bits(
        "00000000", "0", "0", "0", "10 100", f64(0.0), f64(0.0), f64(1.0)) + b"\x00"


# Varbit numbers, thresholds, custom bounds ---------------------------------------------------

SIGNED = [(0, "0", 0), (1, "10", 3), (4, "10", 3), (-3, "10", 3), (5, "110", 6),
          (-4, "110", 6), (32, "110", 6), (-31, "110", 6), (33, "1110", 9), (-32, "1110", 9),
          (256, "1110", 9), (-255, "1110", 9), (257, "11110", 12), (-256, "11110", 12),
          (2048, "11110", 12), (-2047, "11110", 12), (2049, "111110", 18),
          (-2048, "111110", 18), (131072, "111110", 18), (-131071, "111110", 18),
          (131073, "1111110", 25), (-131072, "1111110", 25), (2 ** 24, "1111110", 25),
          (-(2 ** 24 - 1), "1111110", 25), (2 ** 24 + 1, "11111110", 56),
          (-(2 ** 24), "11111110", 56), (2 ** 55, "11111110", 56),
          (-(2 ** 55 - 1), "11111110", 56), (2 ** 55 + 1, "11111111", 64),
          (-(2 ** 55), "11111111", 64), (2 ** 63 - 1, "11111111", 64),
          (-(2 ** 63), "11111111", 64)]
UNSIGNED = [(0, "0", 0), (1, "10", 3), (7, "10", 3), (8, "110", 6), (63, "110", 6),
            (64, "1110", 9), (511, "1110", 9), (512, "11110", 12), (4095, "11110", 12),
            (4096, "111110", 18), (2 ** 18 - 1, "111110", 18), (2 ** 18, "1111110", 25),
            (2 ** 25 - 1, "1111110", 25), (2 ** 25, "11111110", 56),
            (2 ** 56 - 1, "11111110", 56), (2 ** 56, "11111111", 64),
            (2 ** 64 - 1, "11111111", 64)]


def varbit(value: int, prefix: str, width: int) -> str:
    return prefix + (f"{value & ((1 << width) - 1):0{width}b}" if width else "")


@pytest.mark.parametrize("signed, table", [(True, SIGNED), (False, UNSIGNED)])
def test_varbit_numbers_at_the_bounds_of_every_size(signed, table):
    for value, prefix, width in table:
        written = BitWriter()
        histogram_chunks._put_varbit(written, value, signed)
        written.write(0b1, 1)  # a marker: what follows is not read as part of the number
        expected = from_bits(varbit(value, prefix, width), "1")
        assert written.to_bytes().rstrip(b"\x00") == expected.rstrip(b"\x00"), value
        reader = histogram_chunks._BitReader(expected + b"\x00")
        assert (reader.varbit(signed), reader.read(1)) == (value, 1), value


THRESHOLDS = [(0.0, "00000000"), (-0.0, "00000000"), (2.0 ** -128, ZT),
              (2.0 ** -243, "00000001"), (2.0 ** 10, "11111110"), (0.5, "11110011"),
              (2.0 ** 11, None), (2.0 ** -244, None), (3.0, None), (0.001, None), (-0.5, None),
              (0.75, None), (float("inf"), None), (float("nan"), None)]


@pytest.mark.parametrize("threshold, byte", THRESHOLDS)
def test_zero_thresholds_take_one_byte_when_a_power_of_two_in_range(threshold, byte):
    h = Histogram(0, 0, 0.0, 0, threshold, 0)
    stored = byte or "11111111" + f64(threshold)
    assert only([h]).data == bytes.fromhex("0001" "00") + from_bits(stored, "000000", f64(0.0))
    decoded = samples(only([h]))[0].zero_threshold
    assert bits(decoded) == bits(abs(threshold) if threshold == 0 else threshold)


BOUNDS = [(0.0, varbit(1, "10", 3)), (0.001, varbit(2, "10", 3)),
          (1.0, varbit(1001, "11110", 12)), (33554.43, varbit(2 ** 25 - 1, "1111110", 25)),
          (33554.431, None), (33554.429, varbit(33554430, "1111110", 25)), (-0.001, None),
          (0.0005, None), (float("inf"), None), (float("nan"), None), (-0.0, varbit(1, "10", 3))]


@pytest.mark.parametrize("bound, stored", BOUNDS)
def test_custom_bounds_as_prometheus_3_stores_them(bound, stored):
    written = BitWriter()
    histogram_chunks._put_custom_bound(written, bound)
    written.write(0b1, 1)
    expected = from_bits(stored or "0" + f64(bound), "1")
    assert written.to_bytes() == expected
    reader = histogram_chunks._BitReader(expected)
    assert bits(reader.custom_bound()) == bits(abs(bound) if stored else bound)


def nhcb(t: int, counts, bounds=(0.5, 1.0, 2.5), **kw) -> Histogram:
    # int("-53"): an equal schema, never the same object
    return hist(t, dict(enumerate(counts)), schema=int("-53"), custom_values=bounds, **kw)


def test_custom_bucket_histograms_keep_their_bounds_and_cut_when_they_change():
    same = tuple(float(str(b)) for b in (0.5, 1.0, 2.5))  # equal, not the same objects
    hs = [nhcb(0, [1, 2]), nhcb(1000, [1, 3], bounds=same),
          nhcb(2000, [1, 3], bounds=(0.5, 1.0)),
          nhcb(3000, [1, 4], bounds=(0.5, 1.5)), nhcb(4000, [1, 4], bounds=(0.5, 1.5)),
          nhcb(5000, [1, 4], bounds=(0.5, 2.0), hint=RESET_GAUGE),
          nhcb(6000, [1, 4], bounds=(0.5, 2.5), hint=RESET_GAUGE),
          nhcb(7000, [1, 4], bounds=(0.5, 2.5), hint=RESET_GAUGE),
          nhcb(8000, [1, 4], bounds=(0.5, 2.5)),
          nhcb(9000, [1, 4], bounds=(0.5, 2.5, 4.0)),  # one more
          nhcb(10_000, [1, 4], bounds=(0.5, 2.0, 4.0))]  # one lower
    chunks = list(series_chunks(hs))
    assert layout(chunks) == [(2, UNKNOWN), (1, RESET), (2, RESET), (1, GAUGE), (2, GAUGE),
                              (1, UNKNOWN), (1, RESET), (1, RESET)]
    assert [essence(h) for c in chunks for h in samples(c)] == [essence(h) for h in hs]
    assert chunks[0].data.startswith(bytes.fromhex("0002" "00") + from_bits(
        ZT, varbit(-53, "1110", 9), "10 001", "10 010", "0", "0",
        "10 011", varbit(501, "1110", 9), varbit(1001, "11110", 12), varbit(2501, "11110", 12),
        "0")[:-1])
    many = [nhcb(t, [1, 2, 3], bounds=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0)) for t in (0, 1)]
    assert [essence(h) for h in samples(only(many))] == [essence(h) for h in many]
    assert only(many).data.startswith(bytes.fromhex("0002" "00") + from_bits(
        ZT, varbit(-53, "1110", 9), "10 001", "10 011", "0", "0", "10 111",  # 7 bounds
        varbit(251, "1110", 9))[:-1])
    # other schemas (below -53 too) have no bounds: none written, none compared
    low = [hist(5, {0: 1}, schema=-60, custom_values=(1.0,)),
           hist(6, {0: 1}, schema=-60, custom_values=(2.0,))]
    assert [essence(h) for h in samples(only(low))] == \
        [essence(h._replace(custom_values=())) for h in low]
    # bounds belong to schema -53 only: others' are dropped, and never cut a chunk
    exponential = [hist(0, {0: 1}, custom_values=(1.0,)), hist(1, {0: 1}, custom_values=(2.0,))]
    assert [h.custom_values for h in samples(only(exponential))] == [(), ()]


# Where chunks are cut, and their headers --------------------------------------------------

def test_about_120_samples_a_chunk_as_the_head_predicts_them():
    # From a range boundary, one a second: after 30 samples the head predicts the range
    # (2 h) holds 62 chunks more and ends this one at 116.129 s.
    hs = [hist(B + i * 1000, {0: i}) for i in range(300)]
    chunks = list(series_chunks(hs))
    assert layout(chunks) == [(117, UNKNOWN), (117, NOT_RESET), (66, NOT_RESET)]
    assert [(c.min_time_ms - B, c.max_time_ms - B) for c in chunks] == \
        [(0, 116_000), (117_000, 233_000), (234_000, 299_000)]
    assert histogram_chunks.SAMPLES_PER_CHUNK == 120
    assert CHUNK_RANGE_MS == 7_200_000  # Prometheus's default --storage.tsdb.min-block-duration


def test_chunk_ends_predicted_at_the_31st_sample():
    def sizes(start, interval, count):
        hs = [hist(start + i * interval, {0: i}) for i in range(count)]
        return [len(samples(c)) for c in series_chunks(hs)]

    # One a millisecond: 7 200 000 // (30 * 4) = 60 000 chunks of 120 ms (from 1 ms after
    # the boundary, 59 999 chunks: the first ends at 120.002 ms, rounded down).
    assert sizes(B, 1, 300) == [120, 120, 60]
    assert sizes(B + 1, 1, 300)[0] == 120
    # 25 s apart: the range holds 7 200 000 // (725 001 * 4) = 2 chunks: 144 samples each.
    assert sizes(B, 25_000, 200) == [144, 56]
    # 35 s before the range's end, one a second: not even one chunk more: cut at the end.
    assert sizes(B - 35_000, 1000, 40) == [35, 5]


def test_at_most_240_samples_when_they_come_faster_than_predicted():
    # 31 samples 45 s apart: the prediction keeps the range's end; then 10 a second.
    hs = [hist(B + i * 45_000, {0: i}) for i in range(31)]
    hs += [hist(B + 30 * 45_000 + i * 100, {0: 30 + i}) for i in range(1, 300)]
    assert layout(series_chunks(hs)) == [(240, UNKNOWN), (90, NOT_RESET)]
    hs[240] = hs[240]._replace(count=0, positive=(0,))  # a reset where the head cuts anyway
    assert layout(series_chunks(hs)) == [(240, UNKNOWN), (90, RESET)]


def test_a_range_boundary_cuts_even_a_young_chunk():
    hs = [hist(B + i * 1000, {0: 1}) for i in range(-3, 4)]  # the fourth at the boundary
    assert [(c.min_time_ms - B, len(samples(c))) for c in series_chunks(hs)] == \
        [(-3000, 3), (0, 4)]
    hour = [hist(B + 3_600_000 + i * 1000, {0: 1}) for i in range(-3, 4)]  # ranges are 2 h
    assert layout(series_chunks(hour)) == [(7, UNKNOWN)]
    wider = 2 * CHUNK_RANGE_MS  # B is a boundary of these ranges, or in the middle of one
    assert len(list(series_chunks(hs, chunk_range_ms=wider))) == (2 if B % wider == 0 else 1)


def test_before_1970_ranges_end_as_go_divides():
    # Go rounds -5000 / 2h to 0: the range ends at 2h, not at 0.
    hs = [hist(i * 1000, {0: 1}) for i in range(-5, 6)]
    assert layout(series_chunks(hs)) == [(11, UNKNOWN)]
    around_zero = [hist(t, {0: 1}) for t in (-1, 0, 1)]  # -1 / 2h: 0 in Go, -1 in Python
    assert layout(series_chunks(around_zero)) == [(3, UNKNOWN)]
    a_range_before = [hist(t, {0: 1}) for t in (-CHUNK_RANGE_MS, -1000, 0)]
    assert layout(series_chunks(a_range_before)) == [(2, UNKNOWN), (1, NOT_RESET)]
    assert layout(series_chunks(hs, chunk_range_ms=4000)) == [(5, UNKNOWN), (4, NOT_RESET),
                                                              (2, NOT_RESET)]


def test_at_the_end_of_int64_each_sample_is_a_chunk():
    # The range's end overflows Go's int64 (negative): every sample is past it.
    top = 2 ** 63 - 1
    hs = [hist(top - 2000, {0: 1}), hist(top - 1000, {0: 1}), hist(top, {0: 1})]
    chunks = list(series_chunks(hs))
    assert layout(chunks) == [(1, UNKNOWN), (1, NOT_RESET), (1, NOT_RESET)]
    assert [c.max_time_ms for c in chunks] == [top - 2000, top - 1000, top]


def test_samples_at_or_before_the_last_one_are_dropped():
    hs = [hist(1000, {0: 1}), hist(2000, {0: 2}), hist(2000, {0: 9}), hist(1500, {0: 3}),
          hist(3000, {0: 4})]
    assert [h.timestamp for h in samples(only(hs))] == [1000, 2000, 3000]
    assert samples(only(hs))[1].positive == (2,)


@pytest.mark.parametrize("name, positive, negative, zero, extra, hint", [
    ("count down", {0: 5}, {3: 2}, 1, -1, RESET_UNKNOWN),
    ("zero count down", {0: 5}, {3: 2}, 0, 5, RESET_UNKNOWN),
    ("positive bucket down", {0: 4}, {3: 2}, 1, 2, RESET_UNKNOWN),
    ("negative bucket down", {0: 5}, {3: 1}, 1, 1, RESET_UNKNOWN),
    ("positive bucket gone", {1: 5}, {3: 2}, 1, 0, RESET_UNKNOWN),
    ("negative bucket gone", {0: 5}, {4: 2}, 1, 0, RESET_UNKNOWN),
    ("said so", {0: 5}, {3: 2}, 1, 5, RESET_YES)])
@pytest.mark.parametrize("is_float", [False, True])
def test_counter_resets_cut_a_chunk_with_the_reset_header(name, positive, negative, zero,
                                                          extra, hint, is_float):
    hs = [hist(0, {0: 5}, {3: 2}, zero=1, is_float=is_float),  # count 8
          hist(1000, positive, negative, zero=zero, extra=extra, hint=hint, is_float=is_float)]
    assert layout(series_chunks(hs)) == [(1, UNKNOWN), (1, RESET)], name


@pytest.mark.parametrize("is_float", [False, True])
def test_what_stays_in_a_chunk(is_float):
    extra = 1 if is_float else 0
    threshold = float(str(DEFAULT_THRESHOLD))  # equal, not the same object
    hs = [hist(0, {0: 5}, {3: 2}, zero=1, extra=extra, is_float=is_float),
          hist(1000, {0: 5}, {3: 2}, zero=1, extra=extra, is_float=is_float,
               threshold=threshold),  # the same
          hist(2000, {0: 5, 1: 1}, {3: 2}, zero=1, extra=extra, is_float=is_float),  # new
          hist(3000, {0: 5, 1: 1}, {3: 2, 5: 1}, zero=1, extra=extra, is_float=is_float),
          hist(4000, {0: 5, 1: 1}, {3: 2, 5: 1}, zero=1, extra=extra + 2, is_float=is_float,
               hint=RESET_NO),
          stale(5000, is_float), stale(6000, is_float)]
    both = hist(4500, {0: 5, 1: 1, 7: 1}, {3: 2, 5: 1, 6: 1}, zero=1, extra=extra + 2,
                is_float=is_float)  # new buckets on both sides at once
    assert samples(only(hs[:5] + [both]))[0].positive_spans == ((0, 2), (5, 1))
    split = hist(4500, {0: 5, 1: 1}, {3: 2, 5: 1}, zero=1, extra=extra + 2, is_float=is_float,
                 positive_spans=((0, 1), (0, 1)))  # the same buckets, other spans: no recode
    assert samples(only(hs[:5] + [split]))[0].positive_spans == ((0, 2),)
    chunk = only(hs)
    assert chunk.encoding == (FLOAT_HISTOGRAM if is_float else HISTOGRAM)
    assert [essence(h) for h in samples(chunk)] == [essence(h) for h in hs]
    decoded = samples(chunk)
    assert decoded[0].positive_spans == ((0, 2),) and decoded[0].negative_spans == \
        ((3, 1), (1, 1))
    assert [h.reset_hint for h in decoded] == [RESET_UNKNOWN] + [RESET_NO] * 4 + [
        RESET_UNKNOWN] * 2


@pytest.mark.parametrize("is_float", [False, True])
def test_what_cuts_a_chunk_without_a_reset(is_float):
    extra = 1 if is_float else 0

    def h(t, **kw):
        return hist(t, {0: 1}, extra=extra, is_float=is_float, **kw)

    hs = [h(0), h(1000, schema=1), h(2000, schema=1, threshold=0.5), stale(3000, is_float),
          h(4000, schema=1, threshold=0.5), h(5000, schema=1, threshold=0.5, hint=RESET_GAUGE),
          h(6000, schema=1, threshold=0.5), stale(7000, is_float)]
    assert layout(series_chunks(hs)) == [(1, UNKNOWN), (1, UNKNOWN), (2, UNKNOWN),
                                         (1, UNKNOWN), (1, GAUGE), (2, UNKNOWN)]


def test_unknown_reset_hints_are_no_gauges():
    hs = [hist(0, {0: 1}, hint=7), hist(1, {0: 2}, hint=4), hist(2, {0: 1}, hint=5)]
    assert layout(series_chunks(hs)) == [(2, UNKNOWN), (1, RESET)]


def test_a_change_of_kind_cuts_and_says_nothing_of_resets():
    hs = [hist(0, {0: 1}), hist(1000, {0: 2}, is_float=True, extra=1), hist(2000, {0: 3}),
          hist(3000, {0: 4}), hist(4000, {0: 1}, is_float=True, extra=1, hint=RESET_YES),
          hist(5000, {0: 1}, is_float=True, extra=1, hint=RESET_GAUGE)]
    chunks = list(series_chunks(hs))
    assert [c.encoding for c in chunks] == [HISTOGRAM, FLOAT_HISTOGRAM, HISTOGRAM,
                                            FLOAT_HISTOGRAM, FLOAT_HISTOGRAM]
    assert layout(chunks) == [(1, UNKNOWN), (1, UNKNOWN), (2, UNKNOWN), (1, RESET),
                              (1, GAUGE)]


@pytest.mark.parametrize("is_float", [False, True])
def test_gauge_histograms_take_the_union_of_their_buckets(is_float):
    kw = {"is_float": is_float, "hint": RESET_GAUGE, "extra": 1}
    hs = [hist(0, {0: 3, 1: 1}, {2: 1}, **kw),
          hist(1000, {0: 1, 3: 4}, {2: 1}, **kw),  # bucket 1 missing, bucket 3 new
          hist(2000, {1: 1}, **kw),  # fewer buckets: takes the chunk's, at 0
          hist(3000, {0: 1, 1: 1, 3: 1, 7: 1}, {-1: 1, 2: 1}, **kw,
               positive_spans=((0, 1), (0, 1), (1, 1), (3, 1))),  # new ones only: its spans
          hist(4000, {0: 1}, **kw), stale(5000, is_float, RESET_GAUGE),
          hist(6000, {0: 1}, **kw)]
    chunks = list(series_chunks(hs))
    assert layout(chunks) == [(6, GAUGE), (1, GAUGE)]
    decoded = samples(chunks[0])
    assert [essence(h) for h in decoded] == [essence(h) for h in hs[:6]]
    assert decoded[0].positive_spans == ((0, 1), (0, 1), (1, 1), (3, 1))  # the sample's
    assert decoded[0].negative_spans == ((-1, 1), (2, 1))
    assert [h.reset_hint for h in decoded[:5]] == [RESET_GAUGE] * 5
    before_the_last_recode = samples(list(series_chunks(hs[:3]))[0])
    assert before_the_last_recode[0].positive_spans == ((0, 2), (1, 1))  # merged: fewest
    assert before_the_last_recode[2].negative_spans == ((2, 1),)


def test_merged_spans_of_high_bucket_indices():
    hs = [hist(0, {300: 1, 302: 1}, hint=RESET_GAUGE), hist(1, {303: 1}, hint=RESET_GAUGE)]
    assert samples(only(hs))[0].positive_spans == ((300, 1), (1, 2))


def test_gauge_histograms_cut_on_schema_and_threshold_changes():
    hs = [hist(0, {0: 1}, hint=RESET_GAUGE), hist(1000, {0: 1}, schema=2, hint=RESET_GAUGE),
          hist(2000, {0: 1}, schema=2, threshold=0.0, hint=RESET_GAUGE),
          hist(3000, {0: 1}, schema=2, threshold=0.0, hint=RESET_GAUGE)]
    assert layout(series_chunks(hs)) == [(1, GAUGE), (1, GAUGE), (2, GAUGE)]


def test_a_gauge_histogram_cut_by_size_keeps_its_own_buckets():
    hs = [hist(B + i * 45_000, {0: 1, 1: i}, hint=RESET_GAUGE) for i in range(31)]
    hs += [hist(B + 30 * 45_000 + i * 100, {0: 1, 1: 1}, hint=RESET_GAUGE)
           for i in range(1, 210)]
    hs.append(hist(hs[-1].timestamp + 100, {5: 1}, hint=RESET_GAUGE))  # the 241st
    chunks = list(series_chunks(hs))
    assert layout(chunks) == [(240, GAUGE), (1, GAUGE)]
    assert samples(chunks[1])[0].positive_spans == ((5, 1),)


def test_a_stale_marker_ends_a_gauge_chunk_unless_a_gauge_one():
    hs = [hist(0, {0: 1}, hint=RESET_GAUGE), stale(1000, hint=RESET_GAUGE), stale(2000),
          stale(3000)]
    assert layout(series_chunks(hs)) == [(2, GAUGE), (2, UNKNOWN)]


def test_a_counter_after_a_gauge_or_a_stale_marker_starts_unknown():
    hs = [hist(0, {0: 1}, hint=RESET_GAUGE), hist(1000, {0: 1}), hist(2000, {0: 2}),
          stale(3000), hist(4000, {0: 9})]
    assert layout(series_chunks(hs)) == [(1, GAUGE), (3, UNKNOWN), (1, UNKNOWN)]


# The decoder -------------------------------------------------------------------------------

def test_the_decoder_refuses_what_is_no_histogram_chunk():
    with pytest.raises(ValueError, match="not a histogram chunk"):
        decode_chunk(1, b"\x00\x01\x00")
    with pytest.raises(ValueError, match="shorter than its header"):
        decode_chunk(HISTOGRAM, b"\x00\x01")
    data = only([hist(0, {0: 1}), hist(1000, {0: 2})]).data
    for end in range(3, len(data) - 1):
        with pytest.raises(ValueError, match="ends early"):
            decode_chunk(HISTOGRAM, data[:end])
    assert decode_chunk(HISTOGRAM, b"\x00\x00\x00") == []
    assert decode_chunk(FLOAT_HISTOGRAM, b"\x00\x00\x00") == []


def test_the_decoder_needs_no_padding():
    # Prometheus's chunks may end with an empty byte; the decoder reads to the very end
    # without it.
    for h in WHOLE:
        data = only([h]).data
        assert decode_chunk(data and only([h]).encoding, data[:-1]) == [h]


@pytest.mark.parametrize("header, first, later", [
    (UNKNOWN, RESET_UNKNOWN, RESET_NO), (NOT_RESET, RESET_UNKNOWN, RESET_NO),
    (RESET, RESET_YES, RESET_NO), (GAUGE, RESET_GAUGE, RESET_GAUGE)])
def test_the_decoder_gives_the_reset_hints_prometheus_gives(header, first, later):
    hs = [hist(0, {0: 1}), hist(1000, {0: 2}), stale(2000)]
    data = bytearray(only(hs).data)
    data[2] = header | 0x3F  # the other six bits say nothing
    assert [h.reset_hint for h in decode_chunk(HISTOGRAM, bytes(data))] == \
        [first, later, RESET_UNKNOWN]


# Round trips ---------------------------------------------------------------------------

def check(histograms, chunks) -> None:
    """The chunks hold the histograms in order (those at or before an earlier one left
    out), one kind each, with the reset hints Prometheus reads."""
    kept, last = [], None
    for h in histograms:
        if last is None or h.timestamp > last:
            kept.append(h)
            last = h.timestamp
    decoded = [samples(c) for c in chunks]
    assert [essence(h) for part in decoded for h in part] == [essence(h) for h in kept]
    for chunk, part in zip(chunks, decoded):
        assert (chunk.min_time_ms, chunk.max_time_ms) == (part[0].timestamp,
                                                          part[-1].timestamp)
        assert {h.is_float for h in part} == {chunk.encoding == FLOAT_HISTOGRAM}
        assert 1 <= len(part) <= 240
        assert int.from_bytes(chunk.data[:2], "big") == len(part)
        live = [h.reset_hint for h in part if bits(h.sum) != 0x7FF0000000000002]
        assert set(live[1:]) <= {RESET_NO, RESET_GAUGE}
    assert [c.min_time_ms for c in chunks] == sorted(c.min_time_ms for c in chunks)


STEPS = st.lists(st.tuples(st.integers(0, len(ACTIONS) - 1), st.integers(-3, 40)),
                 max_size=300)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS, st.booleans(), st.sampled_from([1, 1000, 15_000, 3_600_000]))
def test_walks_round_trip(steps, float_first, interval):
    hs = walk(steps, start=B - 600_000, interval=interval, float_first=float_first)
    check(hs, list(series_chunks(hs)))


SPANS = st.lists(st.tuples(st.integers(-3, 3), st.integers(1, 4)), max_size=4).map(
    lambda spans: tuple((o if n == 0 else abs(o), length)
                        for n, (o, length) in enumerate(spans)))
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [0.0, -0.0, STALE, 5e-324])
INT64 = st.integers(-(2 ** 63), 2 ** 63 - 1)
UINT64 = st.integers(0, 2 ** 64 - 1)


@st.composite
def histograms(draw, t: int) -> Histogram:
    is_float = draw(st.booleans())
    p_spans, n_spans = draw(SPANS), draw(SPANS)
    numbers = FLOATS if is_float else INT64
    schema = draw(st.sampled_from([-4, 0, 3, 8, -53]))
    return Histogram(
        t, draw(FLOATS if is_float else UINT64), draw(FLOATS), schema,
        draw(st.sampled_from([0.0, DEFAULT_THRESHOLD, 0.001, 2.0 ** 10, 1e-300]) | FLOATS),
        draw(FLOATS if is_float else UINT64), p_spans,
        tuple(draw(numbers) for _ in indices_of(p_spans)), n_spans,
        tuple(draw(numbers) for _ in indices_of(n_spans)),
        draw(st.sampled_from([RESET_UNKNOWN, RESET_YES, RESET_NO, RESET_GAUGE])), is_float,
        tuple(sorted(draw(st.lists(st.floats(0, 1e6), max_size=3, unique=True))))
        if schema == -53 else ())


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_histograms_round_trip(data):
    hs = [data.draw(histograms(t)) for t in sorted(data.draw(st.sets(
        st.integers(-(2 ** 40), 2 ** 40), min_size=1, max_size=6)))]
    check(hs, list(series_chunks(hs)))
    alone = samples(list(series_chunks(hs[:1]))[0])[0]  # as given, spans too
    if bits(hs[0].sum) != 0x7FF0000000000002:
        assert exact(alone._replace(reset_hint=hs[0].reset_hint)) == exact(hs[0]._replace(
            zero_threshold=hs[0].zero_threshold or 0.0))


def exact(h: Histogram) -> tuple:
    """Every field, floats as their bits."""
    def norm(value):
        if isinstance(value, float):
            return ("f", bits(value))
        if isinstance(value, tuple):
            return tuple(norm(v) for v in value)
        return value
    return tuple(norm(v) for v in h)


@pytest.mark.parametrize("seed", range(6))
def test_long_random_walks_round_trip(seed):
    rng = random.Random(seed)
    mostly_growth = [400 if action == "grow" else 1 for action in ACTIONS]
    hs = walk(random_steps(rng, 800, mostly_growth), start=B - 300_000 + seed,
              interval=(100, 1000)[seed % 2], float_first=seed > 2)
    chunks = list(series_chunks(hs))
    check(hs, chunks)
    assert max(len(samples(c)) for c in chunks) > 110
