"""What one request did, counted as it happens and published once it is answered.

A ``RequestTelemetry`` travels in the request's context: the handlers count samples, the
stores count their backend calls (``calls``: one ``CallStats`` per operation, handed to
``retry.with_retries``). Every label it carries comes from a fixed set (routes, backends,
operations, rejection reasons), never from the request's data.
"""
import threading
from collections import Counter
from typing import Dict, Tuple

#: Why samples were rejected: a small fixed set, never a label name or value.
REJECT_REASONS = (
    "invalid_series",   # labels Prometheus itself would refuse (empty name, no __name__...)
    "limits",           # labels or lines over the backend's limits (sizes, counts)
    "out_of_bounds",    # a time the backend does not take (too old, too far ahead)
    "duplicate",        # another value already stored for that series and time
    "value",            # a value the backend cannot hold
    "backend_refused",  # anything else the backend refused
)

#: What a write carried that no store keeps (counted, never dropped without a trace).
DROPPED_KINDS = ("exemplars", "metadata")


class CallStats:
    """The calls of one backend operation in one request; thread-safe."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.calls = self.retries = self.throttles = self.failures = 0

    def call(self) -> None:
        """One attempt made."""
        with self._lock:
            self.calls += 1

    def retried(self, throttled: bool) -> None:
        """An attempt failed and is retried (``throttled``: the backend said slow down)."""
        with self._lock:
            self.retries += 1
            self.throttles += throttled

    def failed(self, throttled: bool = False) -> None:
        """The operation failed for good (no attempt left, or a refusal)."""
        with self._lock:
            self.failures += 1
            self.throttles += throttled


class RequestTelemetry:
    """The counts of one request (``route``: "/write" or "/read")."""

    def __init__(self, route: str) -> None:
        self.route = route
        self.received = 0   # samples decoded from the request (float and histogram)
        self.stored = 0     # samples the backend acknowledged
        self.histograms = 0  # of the stored, native histogram samples
        self.dropped: Counter = Counter()  # exemplars and metadata, by DROPPED_KINDS
        self.failed = 0     # samples of a request answered 5xx (Prometheus sends them again)
        self.rejected: Counter = Counter()  # samples refused for good, by REJECT_REASONS
        self.write_units = 0  # Timestream's metered 1 KiB write units
        self.late = 0       # samples written to Timestream's magnetic store
        self.backend = ""
        self._lock = threading.Lock()
        self._calls: Dict[Tuple[str, str], CallStats] = {}

    def calls(self, backend: str, operation: str) -> CallStats:
        """The counts of ``operation`` on ``backend`` (fixed names) for this request."""
        with self._lock:
            self.backend = backend
            stats = self._calls.get((backend, operation))
            if stats is None:
                stats = self._calls[(backend, operation)] = CallStats(self._lock)
            return stats

    def reject(self, reason: str, samples: int) -> None:
        """Count ``samples`` refused for ``reason`` (one of REJECT_REASONS)."""
        if reason not in REJECT_REASONS:
            reason = "backend_refused"
        with self._lock:
            self.rejected[reason] += samples

    def add_write_units(self, units: int) -> None:
        with self._lock:
            self.write_units += units

    def operations(self) -> Dict[Tuple[str, str], CallStats]:
        """Every operation called, by (backend, operation)."""
        with self._lock:
            return dict(self._calls)

    def total(self, field: str) -> int:
        """``field`` ("calls", "retries", "throttles", "failures") summed over operations."""
        return sum(getattr(stats, field) for stats in self.operations().values())
