"""Cutting a time slice's series into remote-write requests, sharded across senders.

Each request holds at most ``max_samples`` samples and about ``max_bytes`` of protobuf
before compression, so that its snappy body stays under what a deployed stage takes
(API Gateway: 10 MB; Lambda: 6 MB of event, where a binary body grows by 4/3 in base64)
and the connector can store it within its request deadline. A series is always sent by
the same shard, in time order, as Prometheus's own shards do: its float samples, then its
native histograms (remote write 1.0's ``TimeSeries.histograms``; a histogram counts as one
sample).
"""
import zlib
from typing import Iterator, List, Sequence

from chalicelib.model import Series
from chalicelib.protocol import histograms
from chalicelib.protocol.prompb import remote_pb2, types_pb2

MAX_SAMPLES = 10_000
MAX_BYTES = 3_000_000  # protobuf bytes; snappy's worst case adds a sixth: about 3.5 MB
SAMPLE_BYTES = 22  # a Sample's worst case on the wire: tags, a double, a 10-byte varint
HISTOGRAM_OVERHEAD = 4  # a Histogram's tag and length, beyond its own bytes (under 2 MiB)


def shard_of(series: Series, shards: int) -> int:
    """The shard that always sends this series."""
    key = "\xff".join(f"{name}\xfe{value}" for name, value in series.labels)
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % shards


def labels_bytes(series: Series) -> int:
    return sum(len(n.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass"))
               + 8 for n, v in series.labels) + 8


class Batch:
    """One remote-write request being filled."""

    def __init__(self) -> None:
        self.request = remote_pb2.WriteRequest()
        self.samples = 0
        self.bytes = 0

    def add(self, series: Series, start: int, end: int) -> None:
        ts = self.request.timeseries.add()
        ts.labels.extend(types_pb2.Label(name=n, value=v) for n, v in series.labels)
        ts.samples.extend(types_pb2.Sample(value=v, timestamp=t) for t, v in
                          zip(series.timestamps[start:end], series.values[start:end]))
        self.samples += end - start
        self.bytes += labels_bytes(series) + SAMPLE_BYTES * (end - start)

    def add_histograms(self, series: Series, messages: Sequence[types_pb2.Histogram],
                       size: int) -> None:
        """``messages`` of ``series``, ``size`` bytes of them."""
        ts = self.request.timeseries.add()
        ts.labels.extend(types_pb2.Label(name=n, value=v) for n, v in series.labels)
        ts.histograms.extend(messages)
        self.samples += len(messages)
        self.bytes += labels_bytes(series) + size


def batches(series: Sequence[Series], max_samples: int = MAX_SAMPLES,
            max_bytes: int = MAX_BYTES) -> Iterator[Batch]:
    """Requests holding these series' samples and histograms, in order, within both bounds
    (a series that does not fit is continued in the next request)."""
    batch = Batch()
    for item in series:
        start, total = 0, len(item.timestamps)
        overhead = labels_bytes(item)
        while start < total:
            room = min(max_samples - batch.samples,
                       (max_bytes - batch.bytes - overhead) // SAMPLE_BYTES)
            if room <= 0:
                if batch.samples:
                    yield batch
                    batch = Batch()
                    continue
                room = 1  # one sample with labels larger than max_bytes: the connector judges
            end = min(total, start + room)
            batch.add(item, start, end)
            start = end
        messages = [histograms.to_message(h) for h in item.histograms]
        sizes = [m.ByteSize() + HISTOGRAM_OVERHEAD for m in messages]
        start = 0
        while start < len(messages):
            end, size = start, 0
            room = max_bytes - batch.bytes - overhead
            while (end < len(messages) and batch.samples + end - start < max_samples
                   and size + sizes[end] <= room):
                size += sizes[end]
                end += 1
            if end == start:
                if batch.samples:
                    yield batch
                    batch = Batch()
                    continue
                end, size = start + 1, sizes[start]  # larger than max_bytes: the connector judges
            batch.add_histograms(item, messages[start:end], size)
            start = end
    if batch.samples:
        yield batch


def sharded(series: Sequence[Series], shards: int, **limits) -> List[List[Batch]]:
    """Each shard's requests for these series."""
    parts: List[List[Series]] = [[] for _ in range(shards)]
    for item in series:
        parts[shard_of(item, shards)].append(item)
    return [list(batches(part, **limits)) for part in parts]
