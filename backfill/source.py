"""Reading the source Prometheus's history through its remote-read API, one time slice
at a time: streamed chunks when the source offers them (XOR chunks of float samples,
HISTOGRAM and FLOAT_HISTOGRAM chunks of native histograms), else a SAMPLES answer."""
import base64
import urllib.error
import urllib.request
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from backfill.chunks import decode_histograms, decode_xor, read_frames
from backfill.selector import Matcher
from chalicelib.model import Histogram, Series
from chalicelib.protocol import codec, histograms
from chalicelib.protocol.prompb import remote_pb2, types_pb2

STREAMED_CONTENT_TYPE = "application/x-streamed-protobuf"
MAX_SAMPLES_BODY = 1 << 30  # the largest decoded SAMPLES answer read
CHUNK_TYPES = (types_pb2.Chunk.XOR, types_pb2.Chunk.HISTOGRAM, types_pb2.Chunk.FLOAT_HISTOGRAM)


class SourceError(RuntimeError):
    """The source answered something other than history."""


class Source:
    """One Prometheus (or any remote-read server) at ``base_url`` (``/api/v1/read``)."""

    def __init__(self, base_url: str, matchers: Sequence[Matcher], timeout: float = 300,
                 user: Optional[str] = None, password: Optional[str] = None,
                 read_path: str = "/api/v1/read") -> None:
        self.url = base_url.rstrip("/") + read_path
        self.matchers = list(matchers)
        self.timeout = timeout
        self.headers = {"Content-Type": codec.PROTOBUF, "Content-Encoding": codec.SNAPPY,
                        "X-Prometheus-Remote-Read-Version": "0.1.0",
                        "User-Agent": "prometheus-connector-backfill"}
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"

    def read(self, start_ms: int, end_ms: int) -> List[Series]:
        """Every matching series with its samples and native histograms in ``[start_ms,
        end_ms]`` (inclusive), sorted by labels; each sorted by time, values with their
        exact bits."""
        request = remote_pb2.ReadRequest(accepted_response_types=[
            codec.STREAMED_XOR_CHUNKS, codec.SAMPLES])
        query = request.queries.add(start_timestamp_ms=start_ms, end_timestamp_ms=end_ms)
        for kind, name, value in self.matchers:
            query.matchers.add(type=kind, name=name, value=value)
        http = urllib.request.Request(self.url, data=codec.encode_message(request),
                                      headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(http, timeout=self.timeout) as response:
                if response.headers.get("Content-Type", "").startswith(STREAMED_CONTENT_TYPE):
                    pairs = _streamed(response, start_ms, end_ms)
                else:
                    pairs = _samples(response.read())
                collected: Dict[Tuple[Tuple[str, str], ...], Tuple[list, list, list]] = {}
                for labels, times, values, hists in pairs:
                    held = collected.setdefault(labels, ([], [], []))
                    held[0].extend(times)
                    held[1].extend(values)
                    held[2].extend(hists)
        except urllib.error.HTTPError as err:
            reason = err.read()[:500].decode("utf-8", "replace").strip()
            raise SourceError(f"{self.url} answered {err.code}: {reason}") from None
        except (urllib.error.URLError, OSError) as err:
            raise SourceError(f"cannot read {self.url}: {err}") from None
        return [_sorted(labels, times, values, hists)
                for labels, (times, values, hists) in sorted(collected.items())]


def _sorted(labels, times: list, values: list, hists: list) -> Series:
    if any(b <= a for a, b in zip(times, times[1:])):  # chunks may overlap: keep one each
        merged = dict(zip(times, values))
        times = sorted(merged)
        values = [merged[t] for t in times]
    if any(b.timestamp <= a.timestamp for a, b in zip(hists, hists[1:])):
        by_time = {h.timestamp: h for h in hists}
        hists = [by_time[t] for t in sorted(by_time)]
    return Series(labels, times, values, hists)


def _streamed(response, start_ms: int, end_ms: int) -> Iterator[tuple]:
    """(labels, timestamps, values, histograms) per frame; whole chunks come back, so the
    samples outside the slice are left out (they belong to the next or previous slice)."""
    for message in read_frames(response):
        for series in message.chunked_series:
            labels = tuple((label.name, label.value) for label in series.labels)
            times: List[int] = []
            values: List[float] = []
            hists: List[Histogram] = []
            for chunk in series.chunks:
                if chunk.type not in CHUNK_TYPES:
                    raise SourceError(f"a chunk of unknown type {chunk.type} in series "
                                      + _name(labels))
                if chunk.max_time_ms < start_ms or chunk.min_time_ms > end_ms:
                    continue
                if chunk.type != types_pb2.Chunk.XOR:
                    hists.extend(h for h in decode_histograms(chunk.type, chunk.data)
                                 if start_ms <= h.timestamp <= end_ms)
                    continue
                chunk_times, chunk_values = decode_xor(chunk.data)
                if chunk.min_time_ms >= start_ms and chunk.max_time_ms <= end_ms:
                    times.extend(chunk_times)
                    values.extend(chunk_values)
                    continue
                for t, v in zip(chunk_times, chunk_values):
                    if start_ms <= t <= end_ms:
                        times.append(t)
                        values.append(v)
            if times or hists:
                yield labels, times, values, hists


def _samples(body: bytes) -> Iterator[tuple]:
    response = remote_pb2.ReadResponse.FromString(codec.decompress(body, MAX_SAMPLES_BODY))
    for result in response.results:
        for series in result.timeseries:
            labels = tuple((label.name, label.value) for label in series.labels)
            try:
                hists = [histograms.from_message(h) for h in series.histograms]
            except ValueError as err:
                raise SourceError(f"a histogram of series {_name(labels)}: {err}") from None
            if series.samples or hists:
                yield (labels, [s.timestamp for s in series.samples],
                       [s.value for s in series.samples], hists)


def _name(labels) -> str:
    return "{" + ", ".join(f"{n}={v!r}" for n, v in labels) + "}"
