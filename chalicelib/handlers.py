"""The two remote-storage operations, independent of Chalice and of the backend.

HTTP body -> codec (bytes to protobuf) -> translate (protobuf to model) -> store,
and back for reads.
"""
import logging
import sys
from typing import Dict, Iterable, Mapping, NamedTuple, Optional, Tuple

from chalicelib.protocol import codec

from chalicelib.protocol import read as dialect

from chalicelib.protocol import streamed

from chalicelib.protocol import write_v1 as translate

from chalicelib.protocol import write_v2 as translate_v2
from chalicelib.errors import BadRequest, ResponseTooLarge, too_many_samples
from chalicelib.context import ReadBudget
from chalicelib.model import Query, Series, WriteResult
from chalicelib.protocol.prompb import fastpath_pb2
from chalicelib.storage.base import Store
from chalicelib.quoting import escape_control

LOG = logging.getLogger(__name__)
MAX_REASONS = 5  # reasons named in a 400 body


class Written(NamedTuple):
    """What a write stored, and the headers its answer carries."""

    result: WriteResult
    headers: Dict[str, str]  # X-Prometheus-Remote-Write-*-Written (remote write 2.0)


def write(body: bytes, headers: Mapping[str, str], store: Store,
          max_decoded_bytes: int) -> Written:
    """Handle a remote-write body (1.0 or 2.0, by its Content-Type): store every valid
    series, then BadRequest naming what was refused (invalid series), rejected (by the
    store) or not stored (2.0 native histograms and exemplars), if anything was."""
    histograms = exemplars = 0
    v2 = codec.write_message(headers) == codec.WRITE_V2_PROTO
    if v2:
        translated, histograms, exemplars = translate_v2.series_from_request(
            codec.decode_write_request_v2(body, max_decoded_bytes))
    else:
        request = codec.decode_write_request(body, headers, max_decoded_bytes)
        translated = translate.series_from_write_request(request)
    result = store.write(translated.series) if translated.series else WriteResult(0)
    LOG.debug("write: %d series, %d samples stored, %d rejected, %d series refused",
              len(translated.series), result.stored, result.rejected, len(translated.refused))
    answer = {"X-Prometheus-Remote-Write-Samples-Written": str(result.stored),
              "X-Prometheus-Remote-Write-Histograms-Written": "0",
              "X-Prometheus-Remote-Write-Exemplars-Written": "0"} if v2 else {}
    unstored = _not_stored(histograms, exemplars)
    lost = result.rejected + translated.refused_samples
    if lost or unstored:
        message = f"{result.stored} samples stored"
        if lost:
            refused = (f"; {len(translated.refused)} series refused" if translated.refused
                       else "")
            reasons = [refusal.reason for refusal in translated.refused] + list(result.reasons)
            shown = "; ".join(_one_line(reason) for reason in reasons[:MAX_REASONS])
            more = (f"; and {len(reasons) - MAX_REASONS} more" if len(reasons) > MAX_REASONS
                    else "")
            message = (f"{lost} of {result.stored + lost} samples rejected "
                       f"({result.stored} stored{refused}): {shown}{more}")
        error = BadRequest(f"{message}; {unstored}" if unstored else message)
        error.headers = answer
        raise error
    return Written(result, answer)


def _not_stored(histograms: int, exemplars: int) -> str:
    """Why a 2.0 request's native histograms and exemplars were not written ("" if none)."""
    if not histograms and not exemplars:
        return ""
    LOG.warning("not stored: %d native histogram samples, %d exemplars (float samples only)",
                histograms, exemplars)
    return (f"{histograms} native histogram samples and {exemplars} exemplars not written: "
            "this connector stores float samples only (set send_native_histograms and "
            "send_exemplars to false in remote_write)")


def _one_line(reason: str, limit: int = 400) -> str:
    reason = escape_control(reason)
    return reason if len(reason) <= limit else reason[:limit - 3] + "..."


def read(body: bytes, headers: Mapping[str, str], store: Store, max_decoded_bytes: int,
         sample_limit: int, max_response_bytes: int, byte_limit: Optional[int] = None,
         query_limit: int = 64) -> Tuple[Dict[str, str], bytes]:
    """Handle a remote-read body; returns the answer's headers and body: a snappy-compressed
    ReadResponse (SAMPLES) or ChunkedReadResponse frames (STREAMED_XOR_CHUNKS), whichever
    the client prefers (``codec.read_response_type``).

    Limits, each a 400 naming it: ``query_limit`` queries per request, then
    ``sample_limit`` samples and ``byte_limit`` bytes gathered (labels included,
    counted as they arrive, before the response is built; default: no more than
    the sample limit allows), then ``max_response_bytes`` of compressed body."""
    request = codec.decode_read_request(body, headers, max_decoded_bytes)
    response_type = codec.read_response_type(request)
    if len(request.queries) > query_limit:
        raise BadRequest(f"{len(request.queries)} queries in one read request, over the limit "
                         f"of {query_limit} (READ_QUERY_LIMIT)")
    queries = translate.queries_from_read_request(request,
                                                  dialect.dot_matches_newline(headers))
    budget = ReadBudget(sample_limit, byte_limit or sys.maxsize)
    if response_type == codec.STREAMED_XOR_CHUNKS:
        frames = streamed.frames(queries, lambda query: _gather(store, query, budget))
        return dict(codec.STREAMED_READ_HEADERS), streamed.join(frames, max_response_bytes)
    # Built one series at a time: each is encoded as soon as it is gathered.
    response = fastpath_pb2.ReadResponseSeriesAsBytes()
    for query in queries:
        add = response.results.add().timeseries.append
        for series in _gather(store, query, budget):
            add(translate.encoded_series(series))
    LOG.debug("read: %d queries, %d samples", len(queries), sample_limit - budget.samples_left)
    encoded = codec.encode_read_response(response)
    if len(encoded) > max_response_bytes:
        raise ResponseTooLarge(
            f"response would be {len(encoded)} bytes, over the limit of {max_response_bytes} "
            "(MAX_RESPONSE_BYTES): narrow the matchers or the time range")
    return dict(codec.READ_RESPONSE_HEADERS), encoded


def _gather(store: Store, query: Query, budget: ReadBudget) -> Iterable[Series]:
    """One query's series: charged to ``budget`` as they are gathered by a store that
    can (``read_within``), else as soon as the store hands them over."""
    read_within = getattr(store, "read_within", None)
    if read_within is not None:
        return read_within(query, budget)
    try:
        series = store.read(query, max(budget.samples_left, 0))
    except ResponseTooLarge:  # named after what is left: name the request's limit
        raise too_many_samples(budget.sample_limit) from None
    budget.take_series(series)
    return series
