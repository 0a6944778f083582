"""Streamed remote read (STREAMED_XOR_CHUNKS): ChunkedReadResponse frames.

As Prometheus's own server writes them (storage/remote/codec.go,
StreamChunkedReadResponses): one series per frame, its float samples in XOR chunks of at
most 120 samples and its native histograms in HISTOGRAM / FLOAT_HISTOGRAM chunks (cut as
Prometheus's head cuts them, see histogram_chunks), in time order, a new chunk wherever
the series changes between floats and histograms (as Prometheus's head cuts one when the
encoding changes); a series split over several frames when its chunks pass the frame
size (1 MiB, Prometheus's default ``--storage.remote.read-max-bytes-in-frame``),
``query_index`` naming the query. Frames are produced one series at a time by a
generator, and each query is read from the store only when its turn comes, so what is
held at once is one query's series, not the whole answer. Behind API Gateway + Lambda
the answer is buffered anyway: ``join`` collects the frames up to the byte limit.
"""
import bisect
import itertools
from typing import Callable, Iterable, Iterator, List, Sequence

from chalicelib.protocol import codec, histogram_chunks, xor_chunks
from chalicelib.errors import ResponseTooLarge
from chalicelib.model import Query, Series
from chalicelib.protocol.prompb import remote_pb2, types_pb2

MAX_FRAME_BYTES = 1_048_576


def frames(queries: Sequence[Query], read: Callable[[Query], List[Series]],
           max_frame_bytes: int = MAX_FRAME_BYTES) -> Iterator[bytes]:
    """The frames answering ``queries`` in order; ``read`` answers one query (with the
    request's limits), called only when that query's turn comes."""
    for index, query in enumerate(queries):
        for series in read(query):
            yield from series_frames(index, series, max_frame_bytes)


def series_frames(query_index: int, series: Series, max_frame_bytes: int) -> Iterator[bytes]:
    """One series as frames: chunks are added to a frame until it passes the size."""
    labels = [types_pb2.Label(name=name, value=value) for name, value in series.labels]
    budget = max_frame_bytes - sum(label.ByteSize() for label in labels)
    pending: List[types_pb2.Chunk] = []
    left = budget
    for chunk in series_chunks(series):
        pending.append(chunk)
        left -= chunk.ByteSize()
        if left <= 0:
            yield _frame(query_index, labels, pending)
            pending, left = [], budget
    if pending:
        yield _frame(query_index, labels, pending)


def series_chunks(series: Series) -> Iterator[types_pb2.Chunk]:
    """A series' chunks in time order: each run of float samples (up to the next histogram)
    in XOR chunks, each run of histograms (up to the next float sample) in histogram chunks;
    a float sample and a histogram at the same time: the float sample first."""
    times, values = series.timestamps, series.values
    done = 0  # float samples sent
    for floats, run in itertools.groupby(
            series.histograms, key=lambda h: bisect.bisect_right(times, h.timestamp)):
        yield from _xor_chunks(times[done:floats], values[done:floats])
        for chunk in histogram_chunks.series_chunks(list(run)):
            yield types_pb2.Chunk(min_time_ms=chunk.min_time_ms, max_time_ms=chunk.max_time_ms,
                                  type=chunk.encoding, data=chunk.data)
        done = floats
    yield from _xor_chunks(times[done:], values[done:])


def _xor_chunks(times: Sequence[int], values: Sequence[float]) -> Iterator[types_pb2.Chunk]:
    for chunk in xor_chunks.series_chunks(times, values):
        yield types_pb2.Chunk(min_time_ms=chunk.min_time_ms, max_time_ms=chunk.max_time_ms,
                              type=types_pb2.Chunk.XOR, data=chunk.data)


def _frame(query_index: int, labels: List[types_pb2.Label],
           chunks: List[types_pb2.Chunk]) -> bytes:
    response = remote_pb2.ChunkedReadResponse(query_index=query_index)
    response.chunked_series.add(labels=labels, chunks=chunks)
    return codec.frame(response.SerializeToString())


def join(parts: Iterable[bytes], max_bytes: int) -> bytes:
    """The frames as one body (what a buffered response needs), at most ``max_bytes``."""
    body = bytearray()
    for part in parts:
        body += part
        if len(body) > max_bytes:
            raise ResponseTooLarge(
                f"response would be over the limit of {max_bytes} bytes "
                "(MAX_RESPONSE_BYTES): narrow the matchers or the time range")
    return bytes(body)
