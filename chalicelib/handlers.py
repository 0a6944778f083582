"""The two remote-storage operations, independent of Chalice and of the backend.

HTTP body -> codec (bytes to protobuf) -> write_v1 / write_v2 (protobuf to model) ->
store, and back for reads: codec -> read (queries) -> store -> the answer, SAMPLES or
streamed chunks. One ``RequestContext`` per request (its limits, deadline, read budget
and regex dialect) goes with it to the store.
"""
import logging
from typing import Dict, Mapping, NamedTuple, Optional, Tuple

from chalicelib.context import Limits, RequestContext
from chalicelib.errors import BadRequest, ResponseTooLarge
from chalicelib.model import WriteResult, sample_count
from chalicelib.protocol import codec, read as remote_read, streamed, write_v1, write_v2
from chalicelib.protocol.prompb import fastpath_pb2
from chalicelib.quoting import escape_control
from chalicelib.storage.base import Store
from chalicelib.telemetry.request import RequestTelemetry

LOG = logging.getLogger(__name__)
MAX_REASONS = 5  # reasons named in a 400 body


class Written(NamedTuple):
    """What a write stored, and the headers its answer carries."""

    result: WriteResult
    headers: Dict[str, str]  # X-Prometheus-Remote-Write-*-Written (remote write 2.0)


def write(body: bytes, headers: Mapping[str, str], store: Store, limits: Limits,
          telemetry: Optional[RequestTelemetry] = None) -> Written:
    """Handle a remote-write body (1.0 or 2.0, by its Content-Type): store every valid
    series (float and native histogram samples), then BadRequest naming what was refused
    (invalid series) or rejected (by the store), if anything was. Exemplars and metadata
    are not kept: counted and logged, and for 2.0 the answer's headers say so.
    ``telemetry`` counts the samples received, stored, rejected (by reason) and failed."""
    ctx = RequestContext(limits, telemetry=telemetry or RequestTelemetry("/write"))
    v2 = codec.write_message(headers) == codec.WRITE_V2_PROTO
    if v2:
        translated = write_v2.series_from_request(
            codec.decode_write_request_v2(body, limits.max_decoded_bytes), ctx.deadline)
    else:
        request = codec.decode_write_request(body, headers, limits.max_decoded_bytes)
        translated = write_v1.series_from_write_request(request, ctx.deadline)
    counts = ctx.telemetry
    counts.received = sample_count(translated.series) + translated.refused_samples
    counts.reject("invalid_series", translated.refused_samples)
    _dropped(translated.exemplars, translated.metadata, counts)
    try:
        result = store.write(translated.series, ctx) if translated.series else WriteResult(0)
    except Exception as exc:
        if getattr(exc, "status", 500) >= 500:  # Prometheus sends it all again
            counts.rejected.clear()
            counts.failed = counts.received
        raise
    counts.stored, counts.histograms = result.stored, result.histograms
    LOG.debug("write: %d series, %d samples stored (%d histograms, %d late, to the magnetic "
              "store), %d rejected, %d series refused", len(translated.series), result.stored,
              result.histograms, result.late, result.rejected, len(translated.refused))
    answer = {"X-Prometheus-Remote-Write-Samples-Written": str(result.stored - result.histograms),
              "X-Prometheus-Remote-Write-Histograms-Written": str(result.histograms),
              "X-Prometheus-Remote-Write-Exemplars-Written": "0"} if v2 else {}
    lost = result.rejected + translated.refused_samples
    if lost:
        refused = (f"; {len(translated.refused)} series refused" if translated.refused else "")
        reasons = [refusal.reason for refusal in translated.refused] + list(result.reasons)
        shown = "; ".join(_one_line(reason) for reason in reasons[:MAX_REASONS])
        more = (f"; and {len(reasons) - MAX_REASONS} more" if len(reasons) > MAX_REASONS
                else "")
        error = BadRequest(f"{lost} of {result.stored + lost} samples rejected "
                           f"({result.stored} stored{refused}): {shown}{more}")
        error.headers = answer
        raise error
    return Written(result, answer)


def _dropped(exemplars: int, metadata: int, counts: RequestTelemetry) -> None:
    """Count (and log) the exemplars and series metadata of a write: no store keeps them."""
    if metadata:
        counts.dropped["metadata"] += metadata
    if exemplars:
        counts.dropped["exemplars"] += exemplars
        LOG.info("not kept: %d exemplars (the connector stores float and native histogram "
                 "samples; set send_exemplars: false in remote_write to stop sending them)",
                 exemplars)


def _one_line(reason: str, limit: int = 400) -> str:
    reason = escape_control(reason)
    return reason if len(reason) <= limit else reason[:limit - 3] + "..."


def read(body: bytes, headers: Mapping[str, str], store: Store, limits: Limits,
         telemetry: Optional[RequestTelemetry] = None) -> Tuple[Dict[str, str], bytes]:
    """Handle a remote-read body; returns the answer's headers and body: a snappy-compressed
    ReadResponse (SAMPLES) or ChunkedReadResponse frames (STREAMED_XOR_CHUNKS), whichever
    the client prefers (``codec.read_response_type``).

    The backend checks the request's credentials before any matcher is compiled.
    Limits, each a 400 naming it: ``query_limit`` queries per request, then
    ``sample_limit`` samples and ``byte_limit`` bytes gathered (labels included,
    counted as they arrive, before the response is built), then ``max_response_bytes``
    of compressed body; all within the request's deadline (503 past it)."""
    ctx = RequestContext(limits, remote_read.dot_matches_newline(headers),
                         telemetry or RequestTelemetry("/read"))
    request = codec.decode_read_request(body, headers, limits.max_decoded_bytes)
    response_type = codec.read_response_type(request)
    if len(request.queries) > limits.query_limit:
        raise BadRequest(f"{len(request.queries)} queries in one read request, over the limit "
                         f"of {limits.query_limit} (READ_QUERY_LIMIT)")
    store.check_credentials(ctx)  # before any matcher is compiled: unknown keys cost nothing
    queries = remote_read.queries_from_read_request(request, ctx.dot_all, ctx.regexes)
    if response_type == codec.STREAMED_XOR_CHUNKS:
        frames = streamed.frames(queries, lambda query: store.read(query, ctx))
        return dict(codec.STREAMED_READ_HEADERS), streamed.join(frames,
                                                                limits.max_response_bytes)
    # Built one series at a time: each is encoded as soon as it is gathered.
    response = fastpath_pb2.ReadResponseSeriesAsBytes()
    for query in queries:
        add = response.results.add().timeseries.append
        for series in store.read(query, ctx):
            add(remote_read.encoded_series(series))
    LOG.debug("read: %d queries, %d samples", len(queries),
              limits.sample_limit - ctx.budget.samples_left)
    encoded = codec.encode_read_response(response)
    if len(encoded) > limits.max_response_bytes:
        raise ResponseTooLarge(
            f"response would be {len(encoded)} bytes, over the limit of "
            f"{limits.max_response_bytes} (MAX_RESPONSE_BYTES): narrow the matchers or the "
            "time range")
    return dict(codec.READ_RESPONSE_HEADERS), encoded
