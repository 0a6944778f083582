"""Native histograms in HISTOGRAM and FLOAT_HISTOGRAM chunks, cut as Prometheus's head cuts them.

Written from Prometheus v2.42.0's sources: the formats from tsdb/chunkenc/histogram.go,
float_histogram.go, histogram_meta.go, varbit.go, bstream.go and xor.go; the cutting from
tsdb/head_append.go (memSeries.appendHistogram, appendFloatHistogram, appendPreprocessor)
and tsdb/db.go (rangeForTimestamp). 2.42's streamed remote read serves the head's chunks
as they are, but for a series' open chunk, which it re-encodes (tsdb/querier.go): that
copy loses its header (set to 00), and the read fails on an open gauge histogram chunk.
Here every chunk is the head's own, header included.

Format: ``num_samples`` (uint16, big-endian); a header byte whose top two bits say why the
chunk was cut (00 unknown, 01 not a counter reset, 10 a counter reset, 11 a gauge
histogram); then a bit stream (see ``BitWriter`` in xor_chunks) holding

- the layout: the zero threshold (one byte: 0 for 0, 243 + the exponent for a power of two
  from 2^-243 to 2^10, else 255 and the float64), the schema (varbit int), then the
  positive and the negative spans (varbit uint count; each span's length, varbit uint,
  and offset, varbit int);
- the first sample: ``t`` (varbit int); count and zero count (varbit uints, or float64s in
  a float chunk); the sum (float64); each bucket of the layout (integer chunks: the
  bucket's delta to the previous bucket, varbit int; float chunks: its count, float64);
- every later sample: the delta of deltas of ``t``; integer chunks: deltas of deltas of the
  count, the zero count, then the sum XOR-encoded, then each bucket delta's delta of
  deltas; float chunks: count, zero count, sum and each bucket XOR-encoded (each field
  keeping its own window).

Varbit integers are ``0`` for 0, else ``10``, ``110`` ... ``11111110`` + 3, 6, 9, 12, 18, 25
or 56 bits (signed: two's complement, ``-(2^(n-1) - 1) .. 2^(n-1)``; unsigned: below 2^n),
or ``11111111`` + 64 bits. A stale marker (sum = the stale NaN, bits 0x7ff0000000000002)
is stored empty: no buckets, counts 0 (integer chunks write their deltas of deltas as 0);
as a chunk's first sample it writes an empty layout.

Cutting, for samples appended in time order (a sample at or before the last one is dropped,
as the head drops it): a new chunk when the series changes between integer and float
histograms; when the chunk reaches the time the head predicts from its first 30 samples
(so that chunks of the 2-hour range hold about 120 samples each; at the range's end at the
latest) or holds 240; on a counter reset (a count, the zero count or a bucket going down,
a bucket disappearing, or the sample's reset hint saying so); when the schema or the zero
threshold changes; after a stale marker for any sample that is not one; and between gauge
and counter histograms (reset hint GAUGE). New buckets in a counter histogram recode the
open chunk into the new sample's spans (earlier samples get 0 in them); a gauge histogram
recodes both ways (the chunk and the sample take the union of their buckets). The header
of a chunk says gauge, counter reset, "not a counter reset" when the sample could have
been appended to the previous chunk of its kind, else unknown.

Custom buckets (schema -53) did not exist in 2.42: they are written as Prometheus 3 writes
them (the custom bounds after the spans: varbit uint count, each bound as varbit uint
``bound * 1000 + 1`` when whole, from 0 to 33554.43, else a 0 bit and the float64) and a
change of bounds is a counter reset, as in Prometheus 3.

Prometheus 3 differs (its v3.14.0 sources): histogram chunks are cut by size (about 1 KiB,
2 KiB at most, at least 10 samples) rather than at 120 samples; buckets that disappear
while empty no longer cut a chunk (the sample takes them back at 0); a schema or zero
threshold change still cuts with an unknown header, and a change of custom bounds is a
counter reset; chunks may also carry start timestamps (new encodings). Its readers read
these 2.42 chunks unchanged.
"""
import math
import struct
from typing import Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

from chalicelib.model import (RESET_GAUGE, RESET_NO, RESET_UNKNOWN, RESET_YES, Histogram,
                              Span)
from chalicelib.protocol.prompb import types_pb2
from chalicelib.protocol.xor_chunks import BitWriter, signed64, write_xor

HISTOGRAM, FLOAT_HISTOGRAM = types_pb2.Chunk.HISTOGRAM, types_pb2.Chunk.FLOAT_HISTOGRAM
#: The head's chunk range: ``--storage.tsdb.min-block-duration``, 2 hours by default.
CHUNK_RANGE_MS = 2 * 3_600_000
#: The head aims at this many samples per chunk and cuts at twice as many at the latest;
#: it predicts where the chunk ends when it holds a quarter of them.
SAMPLES_PER_CHUNK = 120
_PREDICTED_AT = 30
STALE_NAN_BITS = 0x7FF0000000000002
CUSTOM_BUCKETS_SCHEMA = -53
#: The chunk header's top two bits.
UNKNOWN_RESET, NOT_RESET, COUNTER_RESET, GAUGE = 0x00, 0x40, 0x80, 0xC0

_U64 = (1 << 64) - 1
_VARBIT_SIZES = (3, 6, 9, 12, 18, 25, 56)  # after 1 to 7 one bits and a zero bit
Number = Union[int, float]


class Chunk(NamedTuple):
    """One histogram chunk: its encoding (HISTOGRAM or FLOAT_HISTOGRAM), its first and
    last timestamps and its bytes."""

    encoding: int
    min_time_ms: int
    max_time_ms: int
    data: bytes


class _Sample(NamedTuple):
    """A histogram as the head holds it: bucket counts by bucket index (integer
    histograms: absolute counts, as Go's int64 sums of the deltas give them)."""

    t: int
    stale: bool
    schema: int
    zero_threshold: float
    count: Number
    zero_count: Number
    sum_bits: int
    positive_spans: Tuple[Span, ...]
    negative_spans: Tuple[Span, ...]
    positive: Dict[int, Number]
    negative: Dict[int, Number]
    custom_values: Tuple[float, ...]


def series_chunks(histograms: Sequence[Histogram],
                  chunk_range_ms: int = CHUNK_RANGE_MS) -> Iterator[Chunk]:
    """The chunks Prometheus 2.42's head makes of one series' histograms (sorted by time)."""
    head: Optional[_Head] = None
    for histogram in histograms:
        if head is not None and histogram.timestamp <= head.samples[-1].t:
            continue
        sample = _sample(histogram)
        gauge = histogram.reset_hint == RESET_GAUGE
        created = head is None or head.is_float != histogram.is_float
        app = None if created else head  # the appender of the chunk, if of the same kind
        if created:
            if head is not None:
                yield head.chunk()
            head = _Head(sample.t, histogram.is_float, gauge, chunk_range_ms)
        count = len(head.samples)
        if count == _PREDICTED_AT:
            head.next_at = _chunk_end(head.min_time, head.samples[-1].t, head.next_at)
        if sample.t >= head.next_at or count >= 2 * SAMPLES_PER_CHUNK:
            if head.samples:
                yield head.chunk()
            head = _Head(sample.t, histogram.is_float, gauge, chunk_range_ms)
            created = True
        verdict = _CUT  # what the sample does to the chunk of its kind
        if gauge:
            if app is not None:
                verdict, merged = app.appendable_gauge(sample)
                if merged is not None and not created:
                    sample = sample._replace(positive_spans=merged[0], negative_spans=merged[1])
        elif histogram.reset_hint == RESET_YES:
            verdict = _RESET
        elif app is not None:
            verdict = app.appendable(sample)
        if not created and verdict in (_CUT, _RESET):
            yield head.chunk()
            head = _Head(sample.t, histogram.is_float, gauge, chunk_range_ms)
            created = True
        elif verdict is _RECODE:  # into the sample's spans
            head.positive_spans, head.negative_spans = (sample.positive_spans,
                                                        sample.negative_spans)
        if created:
            head.header = GAUGE if gauge else _HEADERS[verdict]
        head.append(sample)
    if head is not None:
        yield head.chunk()


#: What a sample does to the open chunk of its kind: cut a new chunk, cut one for a
#: counter reset, join it, or join it once recoded for the sample's new buckets.
_CUT, _RESET, _APPEND, _RECODE = "cut", "reset", "append", "recode"
#: The header of a chunk cut for a counter histogram, by what the sample would have done to
#: the previous chunk of its kind.
_HEADERS = {_CUT: UNKNOWN_RESET, _RESET: COUNTER_RESET, _APPEND: NOT_RESET,
            _RECODE: NOT_RESET}


class _Head:
    """A series' open chunk, and what the head's appender knows of it."""

    def __init__(self, t: int, is_float: bool, gauge: bool, chunk_range_ms: int) -> None:
        self.is_float = is_float
        self.gauge = gauge  # a gauge histogram chunk (header GAUGE): its first sample is one
        self.header = UNKNOWN_RESET
        self.min_time = t
        self.next_at = _range_for(t, chunk_range_ms)
        self.samples: List[_Sample] = []
        self.first: Optional[_Sample] = None  # the layout: schema, zero threshold, bounds
        self.positive_spans: Tuple[Span, ...] = ()
        self.negative_spans: Tuple[Span, ...] = ()

    def append(self, sample: _Sample) -> None:
        if self.first is None:  # the first sample sets the layout
            self.first = sample
            self.positive_spans, self.negative_spans = (sample.positive_spans,
                                                        sample.negative_spans)
        self.samples.append(sample)

    def appendable(self, sample: _Sample) -> str:
        """The verdict on a counter histogram."""
        if self.gauge:
            return _CUT
        if sample.stale:
            return _APPEND
        last = self.samples[-1]
        if last.stale:
            return _CUT
        if sample.count < last.count:
            return _RESET
        if not self._same_layout(sample):
            return _CUT
        if not _same_bounds(sample.custom_values, self.first.custom_values):
            return _RESET
        if sample.zero_count < last.zero_count:
            return _RESET
        verdict = _APPEND
        for spans, new_spans, old, new in (
                (self.positive_spans, sample.positive_spans, last.positive, sample.positive),
                (self.negative_spans, sample.negative_spans, last.negative, sample.negative)):
            had, has = _indices(spans), set(_indices(new_spans))
            if not has.issuperset(had):  # a bucket disappeared
                return _RESET
            if any(new[index] < old[index] for index in had):
                return _RESET
            if has - set(had):
                verdict = _RECODE
        return verdict

    def appendable_gauge(self, sample: _Sample) -> Tuple[str, Optional[tuple]]:
        """The verdict on a gauge histogram, and the merged (positive, negative) spans when
        the sample lacks buckets of the chunk."""
        if not self.gauge:
            return _CUT, None
        if sample.stale:
            return _APPEND, None
        if self.samples[-1].stale or not self._same_layout(sample) or not _same_bounds(
                sample.custom_values, self.first.custom_values):
            return _CUT, None
        verdict, lacking, merged = _APPEND, False, []
        for spans, new_spans in ((self.positive_spans, sample.positive_spans),
                                 (self.negative_spans, sample.negative_spans)):
            had, has = set(_indices(spans)), set(_indices(new_spans))
            if has - had:
                verdict = _RECODE
            lacking = lacking or bool(had - has)
            merged.append(_spans_of(sorted(had | has)))
        return verdict, tuple(merged) if lacking else None

    def _same_layout(self, sample: _Sample) -> bool:
        return (sample.schema == self.first.schema
                and sample.zero_threshold == self.first.zero_threshold)

    def chunk(self) -> Chunk:
        bits = BitWriter()
        _put_layout(bits, self.first, self.positive_spans, self.negative_spans)
        positive, negative = _indices(self.positive_spans), _indices(self.negative_spans)
        if self.is_float:
            _put_float_samples(bits, self.samples, positive, negative)
        else:
            _put_int_samples(bits, self.samples, positive, negative)
        data = struct.pack(">HB", len(self.samples), self.header) + bits.to_bytes()
        return Chunk(FLOAT_HISTOGRAM if self.is_float else HISTOGRAM, self.samples[0].t,
                     self.samples[-1].t, data)


def _sample(histogram: Histogram) -> _Sample:
    sum_bits = _bits(histogram.sum)
    if sum_bits == STALE_NAN_BITS:  # stored empty
        return _Sample(histogram.timestamp, True, 0, 0.0, 0, 0, sum_bits, (), (), {}, {}, ())
    positive, negative = histogram.positive, histogram.negative
    if not histogram.is_float:
        positive, negative = _absolute(positive), _absolute(negative)
    return _Sample(
        histogram.timestamp, False, histogram.schema, histogram.zero_threshold,
        histogram.count, histogram.zero_count, sum_bits,
        tuple(histogram.positive_spans), tuple(histogram.negative_spans),
        dict(zip(_indices(histogram.positive_spans), positive)),
        dict(zip(_indices(histogram.negative_spans), negative)),
        tuple(histogram.custom_values) if histogram.schema == CUSTOM_BUCKETS_SCHEMA else ())


def _absolute(deltas: Sequence[int]) -> List[int]:
    counts, total = [], 0
    for delta in deltas:
        total = signed64(total + delta)
        counts.append(total)
    return counts


def _indices(spans: Sequence[Span]) -> List[int]:
    """The bucket indices spans cover, in order."""
    indices: List[int] = []
    index = 0
    for offset, length in spans:
        index += offset
        indices.extend(range(index, index + length))
        index += length
    return indices


def _spans_of(indices: Sequence[int]) -> Tuple[Span, ...]:
    """The fewest spans covering these (sorted) indices."""
    spans: List[List[int]] = []
    following = 0  # the index after the last span
    for index in indices:
        if spans and index == following:
            spans[-1][1] += 1
        else:
            spans.append([index - following, 1])
        following = index + 1
    return tuple((offset, length) for offset, length in spans)


def _same_bounds(one: Sequence[float], other: Sequence[float]) -> bool:
    return len(one) == len(other) and all(a == b for a, b in zip(one, other))


def _go_div(a: int, b: int) -> int:
    """Go's integer division by ``b`` > 0 (rounds toward zero)."""
    return -(-a // b) if a < 0 else a // b


def _range_for(t: int, width: int) -> int:
    """rangeForTimestamp: the end of the chunk range holding ``t``."""
    return signed64(_go_div(t, width) * width + width)


def _chunk_end(start: int, current: int, end: int) -> int:
    """computeChunkEndTime: with the chunk a quarter full at ``current``, the time that
    splits what is left of the range into chunks of equal size (``end`` is at most a
    range after ``start``: nothing here overflows Go's int64)."""
    chunks = (end - start) // ((current - start + 1) * 4)
    if chunks <= 1:
        return end
    return start + (end - start) // chunks


def _bits(value: float) -> int:
    (bits,) = struct.unpack(">Q", struct.pack(">d", value))
    return bits


def _float(bits: int) -> float:
    (value,) = struct.unpack(">d", struct.pack(">Q", bits))
    return value


def _put_varbit(bits: BitWriter, value: int, signed: bool) -> None:
    """putVarbitInt (``signed``) or putVarbitUint."""
    if value == 0:
        bits.write(0b0, 1)
        return
    for ones, size in enumerate(_VARBIT_SIZES, 1):
        fits = (-((1 << (size - 1)) - 1) <= value <= 1 << (size - 1) if signed
                else value < 1 << size)
        if fits:
            bits.write(((1 << ones) - 1) << 1, ones + 1)
            bits.write(value & ((1 << size) - 1), size)
            return
    bits.write(0xFF, 8)
    bits.write(value & _U64, 64)


def _put_layout(bits: BitWriter, first: _Sample, positive_spans: Sequence[Span],
                negative_spans: Sequence[Span]) -> None:
    threshold = first.zero_threshold
    fraction, exponent = math.frexp(threshold)
    if threshold == 0:
        bits.write(0, 8)
    elif fraction == 0.5 and -242 <= exponent <= 11:
        bits.write(exponent + 243, 8)
    else:
        bits.write(255, 8)
        bits.write(_bits(threshold), 64)
    _put_varbit(bits, first.schema, True)
    for spans in (positive_spans, negative_spans):
        _put_varbit(bits, len(spans), False)
        for offset, length in spans:
            _put_varbit(bits, length, False)
            _put_varbit(bits, offset, True)
    if first.schema == CUSTOM_BUCKETS_SCHEMA:
        _put_varbit(bits, len(first.custom_values), False)
        for bound in first.custom_values:
            _put_custom_bound(bits, bound)


def _put_custom_bound(bits: BitWriter, bound: float) -> None:
    """Prometheus 3's putCustomBound: whole thousandths from 0 to 33554.43 as a varbit uint
    (plus one), anything else as a 0 bit and the float64."""
    scaled = bound * 1000  # rounded below as Go rounds: only ties differ, never whole
    if 0 <= scaled <= 33554430 and round(scaled) / 1000 == bound:
        _put_varbit(bits, round(scaled) + 1, False)
        return
    bits.write(0b0, 1)
    bits.write(_bits(bound), 64)


def _put_int_samples(bits: BitWriter, samples: Sequence[_Sample], positive: Sequence[int],
                     negative: Sequence[int]) -> None:
    previous = samples[0]
    window = (0xFF, 0)  # pragma: no mutate (no window yet: any leading above 31 says so)
    t_delta = count_delta = zero_delta = 0
    last_buckets = _deltas(previous, positive, negative)
    bucket_deltas = [0] * len(last_buckets)
    _put_varbit(bits, previous.t, True)
    _put_varbit(bits, previous.count, False)
    _put_varbit(bits, previous.zero_count, False)
    bits.write(previous.sum_bits, 64)
    for bucket in last_buckets:
        _put_varbit(bits, bucket, True)
    for sample in samples[1:]:  # (time deltas stay within a chunk range: no overflow)
        new_t_delta = sample.t - previous.t
        new_count_delta = sample.count - previous.count  # (Go's int64: the dods wrap)
        new_zero_delta = sample.zero_count - previous.zero_count
        _put_varbit(bits, new_t_delta - t_delta, True)
        if sample.stale:  # written as unchanged deltas (varbit 0s)
            bits.write(0b00, 2)
        else:
            _put_varbit(bits, signed64(new_count_delta - count_delta), True)
            _put_varbit(bits, signed64(new_zero_delta - zero_delta), True)
        window = write_xor(bits, sample.sum_bits ^ previous.sum_bits, *window)
        if not sample.stale:
            buckets = _deltas(sample, positive, negative)
            for index, bucket in enumerate(buckets):
                delta = bucket - last_buckets[index]
                _put_varbit(bits, signed64(delta - bucket_deltas[index]), True)
                bucket_deltas[index] = delta
            last_buckets = buckets
        t_delta, count_delta, zero_delta = new_t_delta, new_count_delta, new_zero_delta
        previous = sample


def _deltas(sample: _Sample, positive: Sequence[int], negative: Sequence[int]) -> List[int]:
    """The sample's buckets in the chunk's layout, each as its delta to the previous bucket
    of its side (new buckets at 0)."""
    out = []
    for counts, indices in ((sample.positive, positive), (sample.negative, negative)):
        last = 0
        for index in indices:
            count = counts.get(index, 0)
            out.append(signed64(count - last))
            last = count
    return out


def _put_float_samples(bits: BitWriter, samples: Sequence[_Sample], positive: Sequence[int],
                       negative: Sequence[int]) -> None:
    first = samples[0]
    _put_varbit(bits, first.t, True)
    values = [_bits(first.count), _bits(first.zero_count), first.sum_bits] + _counts(
        first, positive, negative)
    for value in values:
        bits.write(value, 64)
    windows = [(0xFF, 0)] * len(values)  # pragma: no mutate (no window yet, as above)
    previous_t, t_delta = first.t, 0
    for sample in samples[1:]:
        new_t_delta = sample.t - previous_t
        _put_varbit(bits, new_t_delta - t_delta, True)
        fields = [_bits(sample.count), _bits(sample.zero_count), sample.sum_bits] + _counts(
            sample, positive, negative)
        for index, value in enumerate(fields):  # a stale marker: no buckets
            windows[index] = write_xor(bits, value ^ values[index], *windows[index])
            values[index] = value
        previous_t, t_delta = sample.t, new_t_delta


def _counts(sample: _Sample, positive: Sequence[int], negative: Sequence[int]) -> List[int]:
    """The float64 bits of the sample's bucket counts in the chunk's layout (new buckets
    at 0); a stale marker has none."""
    if sample.stale:
        return []
    return [_bits(counts.get(index, 0))
            for counts, indices in ((sample.positive, positive), (sample.negative, negative))
            for index in indices]


def decode_chunk(encoding: int, data: bytes) -> List[Histogram]:
    """The histograms of a HISTOGRAM or FLOAT_HISTOGRAM chunk, as Prometheus's iterator reads
    them: buckets in the chunk's layout, reset hints from the header (the first sample:
    GAUGE, YES or UNKNOWN; later ones: GAUGE or NO), stale markers empty. ValueError if the
    chunk is not one."""
    if encoding not in (HISTOGRAM, FLOAT_HISTOGRAM):
        raise ValueError(f"chunk encoding {encoding} is not a histogram chunk")
    if len(data) < 3:
        raise ValueError("histogram chunk shorter than its header")
    total = int.from_bytes(data[:2], "big")
    header = data[2] & 0xC0
    reader = _BitReader(data[3:])
    if not total:
        return []
    threshold = reader.read(8)
    if threshold > 254:  # 255: the float64 follows
        zero_threshold = _float(reader.read(64))
    else:
        zero_threshold = math.ldexp(0.5, threshold - 243) if threshold else 0.0
    schema = reader.varbit(True)
    positive_spans, negative_spans = reader.spans(), reader.spans()
    bounds: Tuple[float, ...] = ()
    if schema == CUSTOM_BUCKETS_SCHEMA:
        bounds = tuple(reader.custom_bound() for _ in range(reader.varbit(False)))
    sizes = (sum(length for _, length in positive_spans),
             sum(length for _, length in negative_spans))
    is_float = encoding == FLOAT_HISTOGRAM
    hints = (_FIRST_HINTS.get(header, RESET_UNKNOWN), _LATER_HINTS.get(header, RESET_NO))
    out = []
    for index, (t, count, zero_count, sum_bits, positive, negative) in enumerate(
            (_read_floats if is_float else _read_ints)(reader, total, *sizes)):
        value = _float(sum_bits)
        if sum_bits == STALE_NAN_BITS:
            zero = 0.0 if is_float else 0
            out.append(Histogram(t, zero, value, 0, 0.0, zero, is_float=is_float))
            continue
        out.append(Histogram(t, count, value, schema, zero_threshold, zero_count,
                             positive_spans, tuple(positive), negative_spans, tuple(negative),
                             hints[bool(index)], is_float, bounds))
    return out


#: The reset hint Prometheus's iterator gives a chunk's first sample, and its later ones, by
#: the chunk's header (otherwise UNKNOWN, then NO).
_FIRST_HINTS = {GAUGE: RESET_GAUGE, COUNTER_RESET: RESET_YES}
_LATER_HINTS = {GAUGE: RESET_GAUGE}


def _read_ints(reader: "_BitReader", total: int, positive: int, negative: int) -> Iterator:
    """(t, count, zero count, sum bits, positive deltas, negative deltas) of each sample
    of an integer histogram chunk."""
    t = reader.varbit(True)
    count, zero_count = reader.varbit(False), reader.varbit(False)
    sum_bits = reader.read(64)
    buckets = [reader.varbit(True) for _ in range(positive + negative)]
    yield t, count, zero_count, sum_bits, buckets[:positive], buckets[positive:]
    t_delta = count_delta = zero_delta = 0
    bucket_deltas = [0] * len(buckets)
    window = [0, 0]
    for _ in range(total - 1):
        t_delta += reader.varbit(True)
        t += t_delta
        count_delta += reader.varbit(True)  # (Go's int64 and uint64 wrap: so do the sums)
        count = (count + count_delta) & _U64
        zero_delta += reader.varbit(True)
        zero_count = (zero_count + zero_delta) & _U64
        sum_bits = reader.xor(sum_bits, window)
        if sum_bits != STALE_NAN_BITS:
            for index in range(len(buckets)):
                bucket_deltas[index] += reader.varbit(True)
                buckets[index] = signed64(buckets[index] + bucket_deltas[index])
        yield t, count, zero_count, sum_bits, buckets[:positive], buckets[positive:]


def _read_floats(reader: "_BitReader", total: int, positive: int, negative: int) -> Iterator:
    """(t, count, zero count, sum bits, positive counts, negative counts) of each sample
    of a float histogram chunk."""
    t = reader.varbit(True)
    fields = [reader.read(64) for _ in range(3 + positive + negative)]
    windows = [[0, 0] for _ in fields]
    t_delta = 0
    for index in range(total):
        if index:
            t_delta += reader.varbit(True)
            t += t_delta
            for field in range(3):
                fields[field] = reader.xor(fields[field], windows[field])
            if fields[2] != STALE_NAN_BITS:
                for field in range(3, len(fields)):
                    fields[field] = reader.xor(fields[field], windows[field])
        counts = [_float(bits) for bits in fields]
        yield (t, counts[0], counts[1], fields[2], counts[3:3 + positive],
               counts[3 + positive:])


class _BitReader:
    """Reads a big-endian bit stream, most significant bit first."""

    def __init__(self, data: bytes) -> None:
        self._stream = int.from_bytes(data, "big")
        self._left = len(data) * 8

    def read(self, width: int) -> int:
        if width > self._left:
            raise ValueError("histogram chunk ends early")
        self._left -= width
        return (self._stream >> self._left) & ((1 << width) - 1)

    def varbit(self, signed: bool) -> int:
        """readVarbitInt (``signed``) or readVarbitUint."""
        ones = 0
        for _ in range(8):
            if not self.read(1):
                break
            ones += 1
        if not ones:
            return 0
        if ones == 8:
            value = self.read(64)
            return signed64(value) if signed else value
        size = _VARBIT_SIZES[ones - 1]
        value = self.read(size)
        if signed and value > 1 << (size - 1):
            value -= 1 << size
        return value

    def spans(self) -> Tuple[Span, ...]:
        spans = []
        for _ in range(self.varbit(False)):
            length = self.varbit(False)
            spans.append((self.varbit(True), length))
        return tuple(spans)

    def custom_bound(self) -> float:
        scaled = self.varbit(False)
        return (scaled - 1) / 1000 if scaled else _float(self.read(64))

    def xor(self, previous: int, window: List[int]) -> int:
        """The next XOR-encoded float64 (bits) after ``previous``; ``window`` is the
        field's [leading zeros, trailing zeros], updated when a new one is read."""
        if not self.read(1):
            return previous
        if self.read(1):
            leading = self.read(5)
            significant = self.read(6) or 64
            window[:] = [leading, 64 - leading - significant]
        leading, trailing = window
        return previous ^ (self.read(64 - leading - trailing) << trailing)
