import struct

import pytest
import snappy

from chalicelib.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2, types_pb2
from harness.remote import HEADERS, read_request, write_request

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def bits(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def test_write_request_round_trip_keeps_labels_and_exact_values():
    values = [float("nan"), STALE_NAN, float("inf"), float("-inf"), 1e-300, 0.1 + 0.2, -0.0]
    request = write_request(({"__name__": "m", "v": 'q"\\\nü'}, list(enumerate(values))))
    decoded = codec.decode_write_request(codec.encode_message(request), HEADERS, 1 << 20)
    assert [bits(s.value) for s in decoded.timeseries[0].samples] == [bits(v) for v in values]
    assert types_pb2.Label.FromString(decoded.timeseries[0].labels[1]).value == 'q"\\\nü'


def test_read_response_round_trip():
    response = remote_pb2.ReadResponse()
    response.results.add().timeseries.add().samples.add(timestamp=5, value=STALE_NAN)
    decoded = remote_pb2.ReadResponse()
    decoded.ParseFromString(codec.decompress(codec.encode_read_response(response), 1 << 20))
    assert bits(decoded.results[0].timeseries[0].samples[0].value) == bits(STALE_NAN)


def test_metadata_only_request_decodes_to_no_series():
    request = remote_pb2.WriteRequest()
    request.metadata.add(metric_family_name="up", help="x")
    assert len(codec.decode_write_request(codec.encode_message(request), HEADERS, 1 << 20)
               .timeseries) == 0


@pytest.mark.parametrize("body,message", [
    (b"", "empty body"),
    (b"\xff\xff\xff\xff\xff\xff", "length preamble"),
    (b"not snappy at all", "snappy"),
    (snappy.compress(b"x" * 100)[:-10], "snappy"),
    (snappy.compress(b"\xff\xff\xff"), "protobuf"),
])
def test_bad_bodies_are_bad_requests(body, message):
    with pytest.raises(BadRequest, match=message):
        codec.decode_write_request(body, HEADERS, 1 << 20)


def test_truncated_protobuf_is_bad_request():
    full = write_request(({"__name__": "m"}, [(1, 1.0)])).SerializeToString()
    with pytest.raises(BadRequest, match="protobuf WriteRequest"):
        codec.decode_write_request(snappy.compress(full[:-3]), HEADERS, 1 << 20)


def test_bomb_header_is_refused_before_decompressing():
    # Declares 1 GiB of decoded data in a 6-byte body.
    body = bytes([0x80, 0x80, 0x80, 0x80, 0x04]) + b"\x00"
    with pytest.raises(PayloadTooLarge, match="1073741824 bytes, over the limit of 1048576"):
        codec.decode_write_request(body, HEADERS, 1 << 20)


def test_body_just_under_the_cap_is_accepted():
    request = write_request(({"__name__": "m", "pad": "x" * 1000}, [(1, 1.0)]))
    size = len(request.SerializeToString())
    codec.decode_write_request(codec.encode_message(request), HEADERS, size)
    with pytest.raises(PayloadTooLarge):
        codec.decode_write_request(codec.encode_message(request), HEADERS, size - 1)


@pytest.mark.parametrize("headers,message", [
    ({"Content-Type": "application/json", "Content-Encoding": "snappy"}, "Content-Type"),
    ({"Content-Encoding": "snappy"}, "Content-Type"),
    ({"Content-Type": "application/x-protobuf"}, "Content-Encoding"),
    ({"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, "Content-Encoding"),
    # values sorting after the expected ones are refused too
    ({"Content-Type": "text/plain", "Content-Encoding": "snappy"}, "'text/plain'"),
    ({"Content-Type": "application/x-protobuf", "Content-Encoding": "zstd"},
     "unsupported Content-Encoding 'zstd': expected snappy"),
    ({"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
      "Content-Encoding": "snappy"}, "supported: application/x-protobuf, "
                                     "application/x-protobuf;proto=prometheus.WriteRequest$"),
])
def test_unreadable_content_headers_are_415(headers, message):
    body = codec.encode_message(write_request())
    lowered = {k.lower(): v for k, v in headers.items()}
    with pytest.raises(UnsupportedMediaType, match=message):
        codec.decode_write_request(body, lowered, 1 << 20)


@pytest.mark.parametrize("headers", [
    {"content-type": "application/x-protobuf; proto=prometheus.WriteRequest",
     "content-encoding": "snappy"},
    {"Content-Type": " Application/X-Protobuf ", "Content-Encoding": " Snappy "},
])
def test_explicit_v1_proto_parameter_and_any_case_are_accepted(headers):
    request = write_request(({"__name__": "m", "a": "b"}, [(5, 2.5)]))
    decoded = codec.decode_write_request(codec.encode_message(request), headers, 1 << 20)
    assert [(tuple(ts.labels), [(s.timestamp, s.value) for s in ts.samples])
            for ts in decoded.timeseries] == [
        (tuple(label.SerializeToString() for label in request.timeseries[0].labels),
         [(5, 2.5)])]


@pytest.mark.parametrize("headers", [
    {"Content-Type": "application/json", "Content-Encoding": "snappy"},
    {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    {"Content-Type": "application/x-protobuf;proto=prometheus.WriteRequest",
     "Content-Encoding": "snappy"},
])
def test_read_request_with_other_content_headers_is_415(headers):
    body = codec.encode_message(read_request((0, 1, [(0, "__name__", "up")])))
    with pytest.raises(UnsupportedMediaType, match="unsupported Content-"):
        codec.decode_read_request(body, headers, 1 << 20)


@pytest.mark.parametrize("accepted,chosen", [
    ([], remote_pb2.ReadRequest.SAMPLES),
    ([0], remote_pb2.ReadRequest.SAMPLES),
    ([1], remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS),
    ([1, 0], remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS),  # Prometheus >= 2.55 asks so
    ([0, 1], remote_pb2.ReadRequest.SAMPLES),
    ([7, 1, 0], remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS),  # unknown values are skipped
])
def test_read_response_type_in_the_clients_order(accepted, chosen):
    request = read_request((0, 1, [(0, "__name__", "up")]))
    request.accepted_response_types.extend(accepted)
    decoded = codec.decode_read_request(codec.encode_message(request), HEADERS, 1 << 20)
    assert codec.read_response_type(decoded) == chosen


def test_only_unknown_response_types_is_400_not_500():
    request = read_request((0, 1, [(0, "__name__", "up")]))
    request.accepted_response_types.extend([7, 9])
    decoded = codec.decode_read_request(codec.encode_message(request), HEADERS, 1 << 20)
    with pytest.raises(BadRequest, match=r"\[7, 9\]: this server answers SAMPLES and "
                                         "STREAMED_XOR_CHUNKS"):
        codec.read_response_type(decoded)


def test_frame_is_uvarint_length_crc32c_big_endian_and_message():
    # the CRC-32C check value of "123456789" is 0xE3069283; RFC 3720 (B.4) gives
    # 0x8A9136AA for 32 zero bytes
    assert codec.frame(b"123456789") == b"\x09\xe3\x06\x92\x83123456789"
    assert codec.frame(bytes(32)) == b"\x20\x8a\x91\x36\xaa" + bytes(32)
    big = codec.frame(b"x" * 300)
    assert big[:2] == b"\xac\x02" and big[6:] == b"x" * 300


@pytest.mark.parametrize("length,uvarint", [
    (127, b"\x7f"), (128, b"\x80\x01"), (129, b"\x81\x01"), (255, b"\xff\x01"),
    (16383, b"\xff\x7f"), (16384, b"\x80\x80\x01"),
])
def test_frame_length_is_a_uvarint_at_every_byte_boundary(length, uvarint):
    message = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    framed = codec.frame(message)
    assert framed[:len(uvarint)] == uvarint and framed[len(uvarint) + 4:] == message


@pytest.mark.parametrize("content_type,message", [
    ("application/x-protobuf", codec.WRITE_V1_PROTO),
    ("application/x-protobuf;proto=prometheus.WriteRequest", codec.WRITE_V1_PROTO),
    ("Application/X-Protobuf; proto=\"prometheus.WriteRequest\"", codec.WRITE_V1_PROTO),
    ("application/x-protobuf;proto=io.prometheus.write.v2.Request", codec.WRITE_V2_PROTO),
    ("application/x-protobuf; charset=x; proto=io.prometheus.write.v2.Request",
     codec.WRITE_V2_PROTO),
    ("application/x-protobuf; version=2", codec.WRITE_V1_PROTO),  # other parameters: ignored
    ("application/x-protobuf; version=2; proto=io.prometheus.write.v2.Request",
     codec.WRITE_V2_PROTO),
])
def test_write_message_negotiated_by_content_type(content_type, message):
    headers = {"Content-Type": content_type, "Content-Encoding": "snappy"}
    assert codec.write_message(headers) == message


@pytest.mark.parametrize("content_type", [
    "application/x-protobuf;proto=io.prometheus.write.v3.Request",
    "application/x-protobuf;proto=prometheus.ReadRequest",
    "application/json", "", "application/x-protobuf;proto=",
])
def test_other_write_messages_are_415_listing_the_supported_types(content_type):
    with pytest.raises(UnsupportedMediaType) as info:
        codec.write_message({"Content-Type": content_type, "Content-Encoding": "snappy"})
    assert str(info.value).endswith(
        "supported: application/x-protobuf, application/x-protobuf;proto=prometheus.WriteRequest, "
        "application/x-protobuf;proto=io.prometheus.write.v2.Request")


@pytest.mark.parametrize("delta", [-1, 1])
def test_body_declaring_another_length_than_it_holds_is_400(delta):
    body = codec.encode_message(write_request(({"__name__": "m"}, [(1, 1.0)])))
    assert body[0] < 0x7F  # a one-byte length preamble
    forged = bytes([body[0] + delta]) + body[1:]
    with pytest.raises(BadRequest, match="not valid snappy block data"):
        codec.decode_write_request(forged, HEADERS, 1 << 20)


@pytest.mark.parametrize("preamble,error,message", [
    (b"\xff\xff\xff\xff\x0f", PayloadTooLarge, "would be 4294967295 bytes"),  # 2^32 - 1: read
    (b"\x80\x80\x80\x80\x10", BadRequest, "bad length preamble"),  # 2^32: over snappy's
    (b"\xff\xff\xff\xff\x7f", BadRequest, "bad length preamble"),  # 2^35 - 1
    (b"\x80\x80\x80\x80\x80\x00", BadRequest, "bad length preamble"),  # six bytes
    (b"\x80\x80\x80\x80\x80\x80\x00", BadRequest, "bad length preamble"),  # seven
])
def test_length_preamble_is_at_most_five_bytes_below_2_to_the_32(preamble, error, message):
    with pytest.raises(error, match=message):
        codec.decode_write_request(preamble + b"\x00" * 8, HEADERS, 1 << 20)
    with pytest.raises(BadRequest, match="bad length preamble"):  # cut short
        codec.decode_write_request(b"\x80\x80", HEADERS, 1 << 20)


@pytest.mark.parametrize("body,guess", [
    (b"\xff\x06\x00\x00sNaPpY\x01\x00", "it is snappy *framed* (stream) format; remote "
     "read/write use the snappy block format"),
    (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "it is gzip-compressed; remote read/write use "
     "snappy block format"),
    (b"(\xb5/\xfd\x00\x58\x00", "it is zstd-compressed; remote read/write use snappy block "
     "format"),
    (b'{"timeseries": []}', "it looks like JSON text, not snappy-compressed protobuf"),
    (b"\x05\x0a\x03", "corrupt or truncated (3 bytes that declare 5 decoded bytes; is it "
     "uncompressed protobuf?)"),
])
def test_a_body_that_is_not_snappy_block_data_is_400_saying_what_it_looks_like(body, guess):
    with pytest.raises(BadRequest) as raised:
        codec.decode_write_request(body, HEADERS, 1 << 20)
    assert str(raised.value) == f"body is not valid snappy block data: {guess}"


@pytest.mark.parametrize("size", [127, 128, 255, 16383, 16384, 2 ** 21 + 1])
def test_a_body_is_read_up_to_the_decoded_size_limit_whatever_its_length_preamble(size):
    message = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    body = snappy.compress(message)
    assert codec.decompress(body, size) == message
    with pytest.raises(PayloadTooLarge, match=f"would be {size} bytes, over the limit of "
                                              f"{size - 1}$"):
        codec.decompress(body, size - 1)
