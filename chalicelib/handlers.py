"""The two remote-storage operations, independent of Chalice and of the backend.

HTTP body -> codec (bytes to protobuf) -> translate (protobuf to model) -> store,
and back for reads.
"""
import logging
from typing import Mapping

from chalicelib import codec, translate
from chalicelib.errors import BadRequest, ResponseTooLarge
from chalicelib.model import WriteResult, sample_count
from chalicelib.prompb import remote_pb2
from chalicelib.storage.base import Store

LOG = logging.getLogger(__name__)


def write(body: bytes, headers: Mapping[str, str], store: Store,
          max_decoded_bytes: int) -> WriteResult:
    """Handle a remote-write body; BadRequest if any sample could not be stored."""
    request = codec.decode_write_request(body, headers, max_decoded_bytes)
    series = translate.series_from_write_request(request)
    result = store.write(series)
    LOG.debug("write: %d series, %d samples stored, %d rejected",
              len(series), result.stored, result.rejected)
    if result.rejected:
        reasons = "; ".join(result.reasons[:5])
        raise BadRequest(f"{result.rejected} of {result.stored + result.rejected} samples "
                         f"rejected ({result.stored} stored): {reasons}")
    return result


def read(body: bytes, headers: Mapping[str, str], store: Store, max_decoded_bytes: int,
         sample_limit: int, max_response_bytes: int) -> bytes:
    """Handle a remote-read body; returns the snappy-compressed ReadResponse."""
    request = codec.decode_read_request(body, headers, max_decoded_bytes)
    queries = translate.queries_from_read_request(request)
    response = remote_pb2.ReadResponse()
    remaining = sample_limit
    for query in queries:
        series = store.read(query, remaining)
        remaining -= sample_count(series)
        response.results.append(translate.query_result(series))
    LOG.debug("read: %d queries, %d samples", len(queries), sample_limit - remaining)
    encoded = codec.encode_read_response(response)
    if len(encoded) > max_response_bytes:
        raise ResponseTooLarge(
            f"response would be {len(encoded)} bytes, over the limit of {max_response_bytes} "
            "(MAX_RESPONSE_BYTES): narrow the matchers or the time range")
    return encoded

