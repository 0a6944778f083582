"""Value objects that flow between the codec, the handlers and the stores."""
from typing import Iterable, List, NamedTuple, Sequence, Tuple, Union

from chalicelib.matchers import Matcher
from chalicelib.quoting import escape

#: A series' labels: (name, value) pairs sorted by name, ``__name__`` included.
Labels = Tuple[Tuple[str, str], ...]


#: A run of buckets: (offset, length), the offset counted from the end of the previous
#: span (from bucket index 0 for the first).
Span = Tuple[int, int]

#: Prometheus's ``reset_hint`` values (the same numbers in remote write 1.0 and 2.0).
RESET_UNKNOWN, RESET_YES, RESET_NO, RESET_GAUGE = 0, 1, 2, 3


class Histogram(NamedTuple):
    """One native histogram sample, as remote write carries it (see the native histograms
    specification). An integer histogram (``is_float`` False) has int counts and its
    buckets as deltas (each bucket's count minus the previous bucket's, the first against
    0); a float histogram has float counts and each bucket's absolute count. A histogram
    whose ``sum`` is the stale NaN is a stale marker."""

    timestamp: int
    count: Union[int, float]
    sum: float
    schema: int
    zero_threshold: float
    zero_count: Union[int, float]
    positive_spans: Tuple[Span, ...] = ()
    positive: Tuple[Union[int, float], ...] = ()
    negative_spans: Tuple[Span, ...] = ()
    negative: Tuple[Union[int, float], ...] = ()
    reset_hint: int = RESET_UNKNOWN
    is_float: bool = False
    custom_values: Tuple[float, ...] = ()  # bucket bounds of schema -53 (custom buckets)


class Series(NamedTuple):
    """One time series and its samples, timestamps in milliseconds: float samples
    (``timestamps``/``values``) and native histogram samples, each sorted by time."""

    labels: Labels
    timestamps: Sequence[int]
    values: Sequence[float]
    histograms: Sequence[Histogram] = ()


class Query(NamedTuple):
    """One remote-read query: an inclusive millisecond range and matchers."""

    start_ms: int
    end_ms: int
    matchers: Tuple[Matcher, ...]


class WriteResult(NamedTuple):
    """What a store did with a write: samples stored (float and histogram samples;
    ``histograms``: of them, the histogram samples) and samples it refused; ``late``: of
    the stored, those Timestream took into its magnetic store, whose conflicts it reports
    only later, to S3."""

    stored: int
    rejected: int = 0
    reasons: Tuple[str, ...] = ()
    late: int = 0
    histograms: int = 0


def metric_name(labels: Labels) -> str:
    """The value of ``__name__`` ("" if absent)."""
    for name, value in labels:
        if name == "__name__":
            return value
    return ""


def sample_count(series: List[Series]) -> int:
    """Total samples across ``series``, float and histogram samples."""
    return sum(len(s.timestamps) + len(s.histograms) for s in series)


def histogram_count(series: List[Series]) -> int:
    """Histogram samples across ``series``."""
    return sum(len(s.histograms) for s in series)


def describe(labels: Iterable) -> str:
    """Render labels like PromQL, e.g. ``up{job="x"}``, for messages and logs: control
    characters escaped, each name and value and the whole cut short."""
    pairs = list(labels)
    name = next((v for n, v in pairs if n == "__name__"), "")
    rest = ",".join(f'{escape(n, 60)}="{escape(v, 100)}"' for n, v in pairs if n != "__name__")
    text = f"{escape(name, 100)}{{{rest}}}"
    return text if len(text) <= 300 else text[:297] + "..."
