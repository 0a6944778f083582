"""What travels with one request through every layer: its limits, its deadline, what a
read may still gather, and what the client means by a regex.

``handlers`` builds one ``RequestContext`` per request and every store call takes it,
so a request holding many queries still answers within REQUEST_DEADLINE_SECONDS and
within one read budget, whichever backend serves it.

Read budget: bytes are those of the encoded protobuf response before compression, labels
included: ``series_bytes`` per series and ``SAMPLE_BYTES`` per sample (an upper estimate
of a ``prometheus.Sample``: tag, length, 9-byte double, varint time) and ``histogram_bytes``
per native histogram sample. Memory follows them:
a read stops as soon as either limit is passed, before the response is built, whatever
the shape of the data (one huge series, huge labels, many queries).
"""
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from typing import Iterable, Iterator, NamedTuple

from chalicelib.config import Settings
from chalicelib.errors import BackendUnavailable, ResponseTooLarge, too_many_samples
from chalicelib.matchers import RegexBudget
from chalicelib.model import Histogram, Labels, Series
from chalicelib.telemetry.request import RequestTelemetry

SAMPLE_BYTES = 18
#: An upper estimate of a ``prometheus.Histogram`` without its spans and buckets: tag and
#: length, two varints of 10 bytes (count, zero count), three doubles of 9, schema, reset
#: hint, a varint time; then per span (two varints, tag, length) and per bucket or bound.
HISTOGRAM_BYTES, SPAN_BYTES, BUCKET_BYTES = 64, 14, 10
_DEFAULTS = Settings()


def series_bytes(labels: Labels) -> int:
    """Encoded size of a series' labels (and its framing), an upper estimate."""
    # The UTF-8 length of every name and value, in one encode of their concatenation.
    return 6 + 8 * len(labels) + len("".join(chain.from_iterable(labels)).encode("utf-8"))


def histogram_bytes(histogram: Histogram) -> int:
    """Encoded size of one native histogram sample, an upper estimate."""
    return (HISTOGRAM_BYTES
            + SPAN_BYTES * (len(histogram.positive_spans) + len(histogram.negative_spans))
            + BUCKET_BYTES * (len(histogram.positive) + len(histogram.negative)
                              + len(histogram.custom_values)))


def encoded_bytes(series: Iterable[Series]) -> int:
    """Encoded size of whole series, labels and samples (float and histogram)."""
    return sum(series_bytes(s.labels) + SAMPLE_BYTES * len(s.timestamps)
               + sum(map(histogram_bytes, s.histograms)) for s in series)


class Deadline:
    """The time by which a request must be answered (inside the Lambda timeout)."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.end - time.monotonic()

    def check(self, call_seconds: float, what: str) -> None:
        """BackendUnavailable (503) unless a call of ``call_seconds`` (the client's timeouts)
        can finish before the deadline: no call starts that cannot finish in time."""
        if self.remaining() < call_seconds:
            raise BackendUnavailable(f"{what} not started: it might not finish within the "
                                     "request deadline; retry later")

    def ensure(self, what: str) -> None:
        """BackendUnavailable (503) once the deadline has passed: work that runs in the
        connector's own process stops there."""
        if self.remaining() <= 0:
            raise BackendUnavailable(f"{what} did not finish within the request deadline "
                                     "(REQUEST_DEADLINE_SECONDS): narrow the matchers or the "
                                     "time range, or retry later")


class ReadBudget:
    """Samples and bytes one read request may still gather; shared by the threads of one
    request (a read that runs several queries at once charges one budget)."""

    def __init__(self, sample_limit: int, byte_limit: int) -> None:
        self.sample_limit = sample_limit
        self.byte_limit = byte_limit
        self.samples_left = sample_limit
        self.bytes_left = byte_limit
        self._lock = threading.Lock()

    def take(self, samples: int, nbytes: int) -> None:
        """Charge what was just gathered; ResponseTooLarge once a limit is passed."""
        with self._lock:
            self.samples_left -= samples
            self.bytes_left -= nbytes
            samples_left, bytes_left = self.samples_left, self.bytes_left
        if samples_left < 0:
            raise too_many_samples(self.sample_limit)
        if bytes_left < 0:
            raise ResponseTooLarge(
                f"query selects more than {self.byte_limit} bytes of series and samples "
                "(READ_BYTE_LIMIT): narrow the matchers or the time range")

    def give_back(self, samples: int, nbytes: int) -> None:
        """Return what an abandoned attempt charged."""
        with self._lock:
            self.samples_left += samples
            self.bytes_left += nbytes

    @contextmanager
    def refunded_on_failure(self) -> Iterator["ReadBudget"]:
        """A view of this budget whose charges are given back if the block fails: an
        attempt that is retried (or done again another way) is charged once, whatever
        other threads of the request charge meanwhile."""
        scope = _Scope(self)
        try:
            yield scope
        except BaseException:
            self.give_back(scope.samples, scope.nbytes)
            raise


class _Scope:
    """The charges made through one ``refunded_on_failure`` block."""

    def __init__(self, budget: ReadBudget) -> None:
        self.budget = budget
        self.samples = 0
        self.nbytes = 0

    def take(self, samples: int, nbytes: int) -> None:
        self.samples += samples
        self.nbytes += nbytes
        self.budget.take(samples, nbytes)


class Limits(NamedTuple):
    """The limits of one request (``Settings``: each names its environment variable);
    by default those of ``Settings()``."""

    deadline_seconds: float = _DEFAULTS.request_deadline_seconds  # REQUEST_DEADLINE_SECONDS
    sample_limit: int = _DEFAULTS.read_sample_limit                # READ_SAMPLE_LIMIT
    byte_limit: int = _DEFAULTS.read_byte_limit                    # READ_BYTE_LIMIT
    max_decoded_bytes: int = _DEFAULTS.max_decoded_bytes           # MAX_DECODED_BYTES
    max_response_bytes: int = _DEFAULTS.max_response_bytes         # MAX_RESPONSE_BYTES
    query_limit: int = _DEFAULTS.read_query_limit                  # READ_QUERY_LIMIT

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        """The limits ``settings`` configure."""
        return cls(settings.request_deadline_seconds, settings.read_sample_limit,
                   settings.read_byte_limit, settings.max_decoded_bytes,
                   settings.max_response_bytes, settings.read_query_limit)


@dataclass
class RequestContext:
    """One request: its limits, its deadline (started when the context is made), its read
    budget, its regexes' budget, whether ``.`` in its regexes matches a newline (the
    client's dialect), and what it did (``telemetry``, published once it is answered)."""

    limits: Limits = Limits()
    dot_all: bool = True
    telemetry: RequestTelemetry = field(default_factory=lambda: RequestTelemetry(""))
    deadline: Deadline = field(init=False)
    budget: ReadBudget = field(init=False)
    regexes: RegexBudget = field(init=False)

    def __post_init__(self) -> None:
        self.deadline = Deadline(self.limits.deadline_seconds)
        self.budget = ReadBudget(self.limits.sample_limit, self.limits.byte_limit)
        self.regexes = RegexBudget()
