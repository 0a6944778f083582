"""Float samples as Prometheus XOR ("Gorilla") chunks, the encoding of streamed remote read.

Written from Prometheus's chunk format documentation (tsdb/docs/format/chunks.md,
"XOR chunk data") and the bit layouts it points to (tsdb/chunkenc/xor.go), v3.14.0:

- ``num_samples`` (uint16, big-endian), then ``ts_0`` (signed varint) and ``v_0``
  (the 64 bits of the float);
- ``ts_1 - ts_0`` (uvarint) and ``v_1`` XOR-encoded against ``v_0``;
- from the third sample on, the delta of deltas of the timestamps: ``0`` for 0;
  ``10`` + 14 bits, ``110`` + 17 bits, ``1110`` + 20 bits when it fits that many
  bits (two's complement, range ``-(2^(n-1) - 1) .. 2^(n-1)``), else ``1111`` + 64 bits;
  then the value, XOR-encoded against the previous one;
- a value XOR: ``0`` if unchanged; else ``1``, then ``0`` + the meaningful bits if
  they fit the previous window of leading/trailing zero bits, or ``1`` + leading
  zeros (5 bits, at most 31) + number of meaningful bits (6 bits, 64 written as 0)
  + the meaningful bits. The first XOR always opens a new window.
- the bit stream is padded with zero bits to a whole byte (plus the one empty byte
  Prometheus's bit stream leaves after whole bytes that end the chunk, see BitWriter).

Every sample's exact float64 bits are kept (NaN payloads such as stale markers too).
"""
import struct
from typing import Iterator, NamedTuple, Sequence

#: Prometheus cuts its chunks at 120 samples; readers expect no more.
MAX_SAMPLES_PER_CHUNK = 120
_U64 = (1 << 64) - 1


class Chunk(NamedTuple):
    """One XOR chunk of a series: its first and last timestamps and its bytes."""

    min_time_ms: int
    max_time_ms: int
    data: bytes


def series_chunks(timestamps: Sequence[int], values: Sequence[float],
                  max_samples: int = MAX_SAMPLES_PER_CHUNK) -> Iterator[Chunk]:
    """The chunks of one series (samples sorted by time), ``max_samples`` each at most."""
    for start in range(0, len(timestamps), max_samples):
        ts = timestamps[start:start + max_samples]
        yield Chunk(ts[0], ts[-1], xor_chunk(ts, values[start:start + max_samples]))


def xor_chunk(timestamps: Sequence[int], values: Sequence[float]) -> bytes:
    """One XOR chunk holding these samples (1 to 65535, sorted by time)."""
    if not timestamps or len(timestamps) > 0xFFFF:
        raise ValueError("an XOR chunk holds 1 to 65535 samples")
    bits = BitWriter()
    bits.write_bytes(struct.pack(">H", len(timestamps)))
    # Not read before the first sample sets them:
    previous_bits = leading = trailing = 0  # pragma: no mutate
    previous_t = delta = 0  # pragma: no mutate
    for index, (t, value) in enumerate(zip(timestamps, values, strict=True)):  # one value each
        value_bits = int.from_bytes(struct.pack(">d", value), "big")
        if not index:
            bits.write_bytes(_varint(t))
            bits.write(value_bits, 64)
        else:
            new_delta = (t - previous_t) & _U64
            if index < 2:  # the second sample: a plain delta
                bits.write_bytes(_uvarint(new_delta))
                leading = 0xFF  # pragma: no mutate (no window yet: any value above 31 says so)
            else:
                _write_dod(bits, signed64(new_delta - delta))
            delta = new_delta
            leading, trailing = write_xor(bits, value_bits ^ previous_bits, leading, trailing)
        previous_t, previous_bits = t, value_bits
    return bits.to_bytes()


def _write_dod(bits: "BitWriter", dod: int) -> None:
    if dod == 0:
        bits.write(0b0, 1)
        return
    for prefix, prefix_bits, size in ((0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)):
        if -((1 << (size - 1)) - 1) <= dod <= 1 << (size - 1):
            bits.write(prefix, prefix_bits)
            bits.write(dod & ((1 << size) - 1), size)
            return
    bits.write(0b1111, 4)
    bits.write(dod & _U64, 64)


def write_xor(bits: "BitWriter", xor: int, leading: int, trailing: int) -> tuple:
    """Write one value XOR; returns the (leading, trailing) window now in use (a
    ``leading`` above 31, such as 0xFF, says no window is open yet). Histogram chunks
    XOR-encode their sums (and float counts) the same way."""
    if not xor:
        bits.write(0b0, 1)
        return leading, trailing
    new_leading = min(64 - xor.bit_length(), 31)
    new_trailing = (xor ^ (xor - 1)).bit_length() - 1  # the lowest 1 bit and the 0s below
    if new_leading >= leading and new_trailing >= trailing:  # fits the window in use
        bits.write(0b10, 2)
        bits.write(xor >> trailing, 64 - leading - trailing)
        return leading, trailing
    significant = 64 - new_leading - new_trailing
    bits.write(0b11, 2)
    bits.write(new_leading, 5)
    bits.write(significant & 0x3F, 6)  # 64 does not fit: written as 0
    bits.write(xor >> new_trailing, significant)
    return new_leading, new_trailing


def signed64(value: int) -> int:
    """``value`` as Go's int64 conversion reads it (the low 64 bits, two's complement)."""
    return int.from_bytes((value & _U64).to_bytes(8, "big"), "big", signed=True)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value | 0x80) & 0xFF)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint(value: int) -> bytes:
    """Go's binary.PutVarint: zig-zag (0, -1, 1, -2 ... as 0, 1, 2, 3 ...), then uvarint."""
    return _uvarint(value * 2 if value >= 0 else -value * 2 - 1)


class BitWriter:
    """A big-endian bit stream (most significant bit first), zero-padded to bytes; the
    XOR and histogram chunk encoders share it.

    Byte for byte what Prometheus's bstream produces: when the stream ends on a byte
    boundary right after whole bytes were written, Prometheus's bstream already holds
    the next (empty) byte, so the chunk ends with one zero byte more. Readers ignore it;
    writing it too keeps the chunks identical to Prometheus's."""

    def __init__(self) -> None:
        self._out = bytearray()
        self._pending = 0  # the last, incomplete bits (fewer than 8 after each write)
        self._count = 0
        self._empty_tail = False  # pragma: no mutate (the header, written first, sets it)

    def write(self, value: int, width: int) -> None:
        pending = (self._pending << width) | value
        count = self._count + width
        whole = count >> 3
        if whole:
            count -= whole << 3
            self._out += (pending >> count).to_bytes(whole, "big")
            pending &= (1 << count) - 1
        self._pending, self._count = pending, count
        self._empty_tail = not count and not width % 8

    def write_bytes(self, data: bytes) -> None:
        """Whole bytes; only ever written on a byte boundary (the header, ``ts_0`` and
        the first delta all follow whole bytes)."""
        self._out += data
        self._empty_tail = bool(data)

    def to_bytes(self) -> bytes:
        if self._count:
            return bytes(self._out) + bytes([self._pending << (8 - self._count)])
        return bytes(self._out) + (b"\x00" if self._empty_tail else b"")
