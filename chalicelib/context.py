"""What one remote read may still gather, charged as samples and bytes are gathered.

Bytes are those of the encoded protobuf response before compression, labels
included: ``series_bytes`` per series and ``SAMPLE_BYTES`` per sample (an upper
estimate of a ``prometheus.Sample``: tag, length, 9-byte double, varint time).
Memory follows them: a read stops as soon as either limit is passed, before the
response is built, whatever the shape of the data (one huge series, huge labels,
many queries).
"""
from itertools import chain
from typing import Iterable, Sequence

from chalicelib.errors import ResponseTooLarge, too_many_samples
from chalicelib.model import Labels, Series

SAMPLE_BYTES = 18


def series_bytes(labels: Labels) -> int:
    """Encoded size of a series' labels (and its framing), an upper estimate."""
    # The UTF-8 length of every name and value, in one encode of their concatenation.
    return 6 + 8 * len(labels) + len("".join(chain.from_iterable(labels)).encode("utf-8"))


def encoded_bytes(series: Iterable[Series]) -> int:
    """Encoded size of whole series, labels and samples."""
    return sum(series_bytes(s.labels) + SAMPLE_BYTES * len(s.timestamps) for s in series)


class ReadBudget:
    """Samples and bytes one read request may still gather (not thread-safe: one per request)."""

    def __init__(self, sample_limit: int, byte_limit: int) -> None:
        self.sample_limit = sample_limit
        self.byte_limit = byte_limit
        self.samples_left = sample_limit
        self.bytes_left = byte_limit

    def take(self, samples: int, nbytes: int) -> None:
        """Charge what was just gathered; ResponseTooLarge once a limit is passed."""
        self.samples_left -= samples
        self.bytes_left -= nbytes
        if self.samples_left < 0:
            raise too_many_samples(self.sample_limit)
        if self.bytes_left < 0:
            raise ResponseTooLarge(
                f"query selects more than {self.byte_limit} bytes of series and samples "
                "(READ_BYTE_LIMIT): narrow the matchers or the time range")

    def take_series(self, series: Sequence[Series]) -> None:
        """Charge whole series gathered by a store that does not charge as it goes."""
        self.take(sum(len(s.timestamps) for s in series), encoded_bytes(series))
