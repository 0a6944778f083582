"""Value objects that flow between the codec, the handlers and the stores."""
from typing import Iterable, List, NamedTuple, Sequence, Tuple

from chalicelib.matchers import Matcher
from chalicelib.quoting import escape

#: A series' labels: (name, value) pairs sorted by name, ``__name__`` included.
Labels = Tuple[Tuple[str, str], ...]


class Series(NamedTuple):
    """One time series and its samples, timestamps in milliseconds."""

    labels: Labels
    timestamps: Sequence[int]
    values: Sequence[float]


class Query(NamedTuple):
    """One remote-read query: an inclusive millisecond range and matchers."""

    start_ms: int
    end_ms: int
    matchers: Tuple[Matcher, ...]


class WriteResult(NamedTuple):
    """What a store did with a write: samples stored and samples it refused; ``late``: of
    the stored, those Timestream took into its magnetic store, whose conflicts it reports
    only later, to S3."""

    stored: int
    rejected: int = 0
    reasons: Tuple[str, ...] = ()
    late: int = 0


def metric_name(labels: Labels) -> str:
    """The value of ``__name__`` ("" if absent)."""
    for name, value in labels:
        if name == "__name__":
            return value
    return ""


def sample_count(series: List[Series]) -> int:
    """Total samples across ``series``."""
    return sum(len(s.timestamps) for s in series)


def describe(labels: Iterable) -> str:
    """Render labels like PromQL, e.g. ``up{job="x"}``, for messages and logs: control
    characters escaped, each name and value and the whole cut short."""
    pairs = list(labels)
    name = next((v for n, v in pairs if n == "__name__"), "")
    rest = ",".join(f'{escape(n, 60)}="{escape(v, 100)}"' for n, v in pairs if n != "__name__")
    text = f"{escape(name, 100)}{{{rest}}}"
    return text if len(text) <= 300 else text[:297] + "..."
