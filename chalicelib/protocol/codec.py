"""Wire format of Prometheus remote read/write (1.0 and 2.0): snappy block + protobuf.

Knows nothing of storage: bytes and headers in, protobuf messages out (and back).
"""
from typing import Mapping, Sequence

import google_crc32c
import snappy
from google.protobuf.message import DecodeError

from chalicelib.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from chalicelib.protocol.prompb import fastpath_pb2, remote_pb2, write_v2_pb2

PROTOBUF = "application/x-protobuf"
SNAPPY = "snappy"
WRITE_V1_PROTO = "prometheus.WriteRequest"
WRITE_V2_PROTO = "io.prometheus.write.v2.Request"
WRITE_PROTOS = (WRITE_V1_PROTO, WRITE_V2_PROTO)  # remote write 1.0 (the default), 2.0
READ_RESPONSE_HEADERS = {"Content-Type": PROTOBUF, "Content-Encoding": SNAPPY}
# A streamed (STREAMED_XOR_CHUNKS) read answer: frames, not snappy-compressed.
STREAMED_READ_HEADERS = {
    "Content-Type": "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"}
SAMPLES = remote_pb2.ReadRequest.SAMPLES
STREAMED_XOR_CHUNKS = remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS
_RESPONSE_TYPE_NAMES = {value: name for name, value
                        in remote_pb2.ReadRequest.ResponseType.items()}


def supported_types(protos: Sequence[str]) -> str:
    """The Content-Type values naming ``protos`` (the first is also the default)."""
    return ", ".join([PROTOBUF] + [f"{PROTOBUF};proto={proto}" for proto in protos])


def negotiate(headers: Mapping[str, str], protos: Sequence[str]) -> str:
    """The message a body holds, from its headers; 415 if we cannot read it.

    It must be snappy-compressed ``application/x-protobuf``; the ``;proto=``
    parameter names the message (one of ``protos``; absent means ``protos[0]``),
    so a message of another version is refused rather than misparsed.
    """
    headers = {name.lower(): value for name, value in headers.items()}
    content_type = headers.get("content-type", "")
    media_type, _, params = content_type.partition(";")
    proto = protos[0]
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "proto":
            proto = value.strip().strip('"')
    if media_type.strip().lower() != PROTOBUF or proto not in protos:
        raise UnsupportedMediaType(f"unsupported Content-Type {content_type!r}: "
                                   f"supported: {supported_types(protos)}")
    encoding = headers.get("content-encoding", "")
    if encoding.strip().lower() != SNAPPY:
        raise UnsupportedMediaType(
            f"unsupported Content-Encoding {encoding!r}: expected {SNAPPY}")
    return proto


def check_content_headers(headers: Mapping[str, str], proto: str) -> None:
    """Refuse (415) a body that is not snappy-compressed protobuf ``proto``."""
    negotiate(headers, (proto,))


def write_message(headers: Mapping[str, str]) -> str:
    """Which remote-write message a /write body holds: WRITE_V1_PROTO or WRITE_V2_PROTO."""
    return negotiate(headers, WRITE_PROTOS)


def decoded_length(body: bytes) -> int:
    """Length a snappy block declares for its decoded data: its preamble, a uvarint of
    at most 5 bytes below 2**32 (as the snappy format allows)."""
    length = 0
    for index, byte in enumerate(body[:5]):
        length |= (byte & 0x7F) << 7 * index
        if byte < 0x80 and length < 1 << 32:
            return length
    raise BadRequest("body is not snappy block format: bad length preamble")


def decompress(body: bytes, max_decoded_bytes: int) -> bytes:
    """Snappy-block-decode ``body``, refusing (413) before allocating if too large."""
    if not body:
        raise BadRequest("empty body: expected a snappy-compressed protobuf message")
    length = decoded_length(body)
    if length > max_decoded_bytes:
        raise PayloadTooLarge(
            f"decoded body would be {length} bytes, over the limit of {max_decoded_bytes}")
    try:
        # The decoder refuses a body whose data differs from its declared length.
        return snappy.uncompress(body)
    except Exception:  # the backend raises its own error types, without a message
        raise BadRequest(f"body is not valid snappy block data: {why_not_snappy(body, length)}"
                         ) from None


#: How bodies that are not snappy block data usually start.
_NOT_SNAPPY = (
    (b"\xff\x06\x00\x00sNaPpY", "it is snappy *framed* (stream) format; remote read/write "
                                "use the snappy block format"),
    (b"\x1f\x8b", "it is gzip-compressed; remote read/write use snappy block format"),
    (b"(\xb5/\xfd", "it is zstd-compressed; remote read/write use snappy block format"),
    (b"{", "it looks like JSON text, not snappy-compressed protobuf"),
)


def why_not_snappy(body: bytes, length: int) -> str:
    """A one-line guess at what is wrong with a body the snappy decoder refused."""
    for start, reason in _NOT_SNAPPY:
        if body.startswith(start):
            return reason
    return (f"corrupt or truncated ({len(body)} bytes that declare {length} decoded bytes; "
            "is it uncompressed protobuf?)")


def decode_write_request(body: bytes, headers: Mapping[str, str], max_decoded_bytes: int
                         ) -> fastpath_pb2.WriteRequestLabelsAsBytes:
    """Parse a remote-write 1.0 request body, each label left encoded (see fastpath.proto)."""
    check_content_headers(headers, WRITE_V1_PROTO)
    return _parse(fastpath_pb2.WriteRequestLabelsAsBytes(), decompress(body, max_decoded_bytes),
                  "WriteRequest")


def decode_write_request_v2(body: bytes, max_decoded_bytes: int) -> write_v2_pb2.Request:
    """Parse a remote-write 2.0 body (headers already negotiated with ``write_message``)."""
    return _parse(write_v2_pb2.Request(), decompress(body, max_decoded_bytes),
                  "io.prometheus.write.v2.Request")


def decode_read_request(body: bytes, headers: Mapping[str, str],
                        max_decoded_bytes: int) -> remote_pb2.ReadRequest:
    """Parse a remote-read request body (``read_response_type`` picks the answer's type)."""
    check_content_headers(headers, "prometheus.ReadRequest")
    return _parse(remote_pb2.ReadRequest(), decompress(body, max_decoded_bytes), "ReadRequest")


def read_response_type(request: remote_pb2.ReadRequest) -> int:
    """The first response type in the client's ``accepted_response_types`` we serve
    (none listed means SAMPLES); BadRequest if it lists none we serve. Values this
    connector does not know are skipped, as Prometheus's own server does."""
    accepted = list(request.accepted_response_types) or [SAMPLES]
    for response_type in accepted:
        if response_type in (SAMPLES, STREAMED_XOR_CHUNKS):
            return response_type
    names = ", ".join(_RESPONSE_TYPE_NAMES.get(t, str(t)) for t in accepted)
    raise BadRequest(f"unsupported accepted_response_types [{names}]: "
                     "this server answers SAMPLES and STREAMED_XOR_CHUNKS")


def frame(message: bytes) -> bytes:
    """One frame of a streamed read response, as Prometheus's ChunkedWriter writes it:
    uvarint length, CRC32C (Castagnoli) of the message as a big-endian uint32, message."""
    length = len(message)
    prefix = bytearray()
    while length >= 0x80:
        prefix.append((length & 0x7F) | 0x80)
        length >>= 7
    prefix.append(length)
    return bytes(prefix) + google_crc32c.value(message).to_bytes(4, "big") + message


def encode_read_response(response: remote_pb2.ReadResponse) -> bytes:
    """Serialise and snappy-compress a SAMPLES read response."""
    return snappy.compress(response.SerializeToString())


def encode_message(message) -> bytes:
    """Serialise and snappy-compress any message (what a client sends)."""
    return snappy.compress(message.SerializeToString())


def _parse(message, data: bytes, name: str):
    try:
        message.ParseFromString(data)
    except (DecodeError, ValueError) as exc:
        raise BadRequest(f"body is not a valid protobuf {name}: {exc}") from None
    return message
