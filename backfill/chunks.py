"""Decoding of streamed remote-read answers: frames, XOR chunks and native histogram chunks.

The inverse of the connector's own encoder (``chalicelib.protocol.codec.frame`` and
``chalicelib.protocol.xor_chunks``), which the tests use to check it round trip; histogram
chunks (HISTOGRAM, FLOAT_HISTOGRAM) are read by ``chalicelib.protocol.histogram_chunks``.
Values are kept as their exact float64 bits (stale markers and other NaN payloads
included).
"""
import struct
from typing import BinaryIO, Iterator, List, Tuple

import google_crc32c

from chalicelib.model import Histogram
from chalicelib.protocol.histogram_chunks import decode_chunk
from chalicelib.protocol.prompb import remote_pb2

_U64 = (1 << 64) - 1
_DOD_SIZES = (0, 14, 17, 20, 64)  # bits of a delta of deltas after 0..4 leading ones


class FrameError(ValueError):
    """A streamed answer that is cut short or corrupt."""


def read_frames(stream: BinaryIO, max_frame_bytes: int = 64 << 20
                ) -> Iterator[remote_pb2.ChunkedReadResponse]:
    """The ChunkedReadResponse messages of a stream: uvarint length, CRC32C, message."""
    while True:
        length = shift = 0
        while True:
            byte = stream.read(1)
            if not byte:
                if shift:
                    raise FrameError("stream ends inside a frame's length")
                return
            length |= (byte[0] & 0x7F) << shift
            shift += 7
            if byte[0] < 0x80:
                break
        if length > max_frame_bytes:
            raise FrameError(f"frame of {length} bytes, over {max_frame_bytes}")
        checksum = _read_exactly(stream, 4)
        data = _read_exactly(stream, length)
        if google_crc32c.value(data) != int.from_bytes(checksum, "big"):
            raise FrameError("frame CRC32C mismatch")
        yield remote_pb2.ChunkedReadResponse.FromString(data)


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    parts, left = [], size
    while left:
        part = stream.read(left)
        if not part:
            raise FrameError("stream ends inside a frame")
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def decode_xor(data: bytes) -> Tuple[List[int], List[float]]:
    """Timestamps and values of one XOR chunk (values with their exact bits)."""
    total = int.from_bytes(data[:2], "big")
    if not total:
        return [], []
    width = (len(data) - 2) * 8
    stream = int.from_bytes(data[2:], "big")
    pos = 0

    def bits(count: int) -> int:
        nonlocal pos
        if pos + count > width:
            raise FrameError("XOR chunk ends early")
        pos += count
        return (stream >> (width - pos)) & ((1 << count) - 1)

    def uvarint() -> int:
        value = shift = 0
        while True:
            byte = bits(8)
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    zigzag = uvarint()
    t = (zigzag >> 1) ^ -(zigzag & 1)
    value = bits(64)
    times, patterns = [t], [value]
    delta = leading = trailing = 0
    for index in range(1, total):
        if index == 1:
            delta = uvarint()
        else:
            ones = 0
            while ones < 4 and bits(1):
                ones += 1
            size = _DOD_SIZES[ones]
            if size:
                dod = bits(size)
                if size == 64:
                    dod = dod - (1 << 64) if dod >> 63 else dod
                elif dod > 1 << (size - 1):
                    dod -= 1 << size
                delta += dod
        t += delta
        if bits(1):
            if bits(1):
                leading = bits(5)
                significant = bits(6) or 64
                trailing = 64 - leading - significant
            value ^= bits(64 - leading - trailing) << trailing
        times.append(t)
        patterns.append(value)
    values = list(struct.unpack(f">{total}d", struct.pack(f">{total}Q", *patterns)))
    return times, values


def decode_histograms(encoding: int, data: bytes) -> List[Histogram]:
    """The native histograms of a HISTOGRAM or FLOAT_HISTOGRAM chunk (FrameError if it is
    not one or is cut short)."""
    try:
        return decode_chunk(encoding, data)
    except ValueError as err:
        raise FrameError(str(err)) from None
