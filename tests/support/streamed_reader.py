"""A reader of streamed remote-read answers, written for the tests from the documents
only (Prometheus's tsdb/docs/format/chunks.md, storage/remote/chunked.go's frame
description), independent of the connector's encoder: frames (uvarint length, CRC32C
big-endian, ChunkedReadResponse) and XOR chunks, decoded bit by bit."""
import struct
from typing import List, Tuple

from chalicelib.protocol.prompb import remote_pb2


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), bitwise: reflected polynomial 0x82F63B78."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def read_frames(body: bytes) -> List[remote_pb2.ChunkedReadResponse]:
    """Every frame of a body, its length and CRC checked."""
    frames, pos = [], 0
    while pos < len(body):
        length = shift = 0
        while True:
            byte = body[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        checksum = int.from_bytes(body[pos:pos + 4], "big")
        data = body[pos + 4:pos + 4 + length]
        assert len(data) == length, "frame shorter than its length"
        assert crc32c(data) == checksum, "frame CRC32C mismatch"
        frames.append(remote_pb2.ChunkedReadResponse.FromString(data))
        pos += 4 + length
    return frames


class Bits:
    def __init__(self, data: bytes) -> None:
        self.bits = "".join(f"{byte:08b}" for byte in data)
        self.pos = 0

    def read(self, count: int) -> int:
        assert self.pos + count <= len(self.bits), "read past the end of the chunk"
        value = int(self.bits[self.pos:self.pos + count], 2) if count else 0
        self.pos += count
        return value

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            byte = self.read(8)
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value


def decode_xor(data: bytes) -> List[Tuple[int, int]]:
    """(timestamp, 64-bit pattern of the value) of every sample of an XOR chunk."""
    bits = Bits(data)
    total = bits.read(16)
    samples: List[Tuple[int, int]] = []
    window = (0, 0)
    t = delta = 0
    value = 0
    for index in range(total):
        if index == 0:
            zigzag = bits.uvarint()
            t = (zigzag >> 1) ^ -(zigzag & 1)
            value = bits.read(64)
        else:
            if index == 1:
                delta = bits.uvarint()
            else:
                ones = 0
                while ones < 4 and bits.read(1) == 1:
                    ones += 1
                size = {0: 0, 1: 14, 2: 17, 3: 20, 4: 64}[ones]
                dod = bits.read(size)
                if size == 64:
                    dod = dod - (1 << 64) if dod >= 1 << 63 else dod
                elif size and dod > 1 << (size - 1):
                    dod -= 1 << size
                delta += dod
            t += delta
            if bits.read(1) == 1:
                if bits.read(1) == 1:
                    leading = bits.read(5)
                    significant = bits.read(6) or 64
                    window = (leading, 64 - leading - significant)
                leading, trailing = window
                value ^= bits.read(64 - leading - trailing) << trailing
        samples.append((t, value))
    # Padding: zero bits to a whole byte; Prometheus's bit stream may hold one more empty
    # byte (its writer appends the next byte after writing a whole one).
    rest = bits.bits[bits.pos:]
    assert len(rest) < 16 and set(rest) <= {"0"}, \
        f"chunk not padded with zeros: {len(rest)} bits left: {rest[:80]}"
    return samples


def as_bits(value: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", value))[0]
