"""Helpers only tests use: request contexts, memory measurement, Prometheus fixtures."""
import gc
import sys
import tracemalloc
from typing import Callable

from chalicelib.context import Deadline, Limits, RequestContext


#: How far a cache's estimate of its memory may exceed what it holds. The estimates' constants
#: were measured on CPython 3.11 and 3.12; 3.13's objects are smaller (a str 8 bytes less).
ESTIMATE_SLACK = 1.3 if sys.version_info < (3, 13) else 1.4


def memory_held_after(work: Callable[[], object]) -> int:
    """Bytes still allocated once ``work()`` has run and its result is dropped: what the
    caches it filled hold (measured with tracemalloc, after garbage collection)."""
    gc.collect()
    tracemalloc.start()
    try:
        work()
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def context(sample_limit: int = 10 ** 9, byte_limit: int = 1 << 62,
            deadline_seconds: float = 60.0, deadline: Deadline = None, dot_all: bool = True) -> RequestContext:
    """A request context for calling a store directly: generous limits unless named,
    ``deadline`` (a ``Deadline``) instead of a new one if given."""
    ctx = RequestContext(Limits(deadline_seconds=deadline_seconds, sample_limit=sample_limit,
                                byte_limit=byte_limit), dot_all)
    if deadline is not None:
        ctx.deadline = deadline
    return ctx


class FakeDeadline:
    """A request deadline on a clock that only the (patched) backoff sleep advances."""

    def __init__(self, seconds: float) -> None:
        self.left = seconds

    def remaining(self) -> float:
        return self.left
