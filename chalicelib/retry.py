"""Retries of calls to a remote backend, inside the request deadline.

Every backend retries the same way: a failure worth retrying (``Transient``: throttling,
a 5xx, a timeout, a connection error) is retried with jittered exponential backoff while
another attempt still fits before the deadline; then BackendUnavailable (503), so
Prometheus keeps the samples and retries later. Each backend decides what is transient.
"""
import logging
import random
import threading
from time import sleep
from typing import Callable, Optional, TypeVar

from chalicelib.context import Deadline
from chalicelib.errors import BackendUnavailable
from chalicelib.telemetry.request import CallStats

LOG = logging.getLogger(__name__)
T = TypeVar("T")

MAX_BACKOFF_SECONDS = 2.0
FIRST_BACKOFF_SECONDS = 0.05


class Transient(Exception):
    """A failure worth retrying; the message says why. ``giving_up(attempts)``, if given,
    is the 503's message once no attempt is left (e.g. to say an endpoint is unreachable)."""

    def __init__(self, reason: str,
                 giving_up: Optional[Callable[[int], str]] = None,
                 throttled: bool = False) -> None:
        super().__init__(reason)
        self.giving_up = giving_up
        self.throttled = throttled  # the backend asked to slow down


def backoff_seconds(attempt: int) -> float:
    """The pause after failed attempt ``attempt`` (1, 2, ...): exponential from 50 ms,
    at most 2 s, jittered to between half and all of it."""
    return (min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** min(attempt - 1, 16))
            * (0.5 + random.random() / 2))


def with_retries(call: Callable[[float], T], deadline: Deadline, what: str,
                 attempt_seconds: float, min_attempt_seconds: float,
                 stats: Optional[CallStats] = None) -> T:
    """Run ``call(timeout)`` (``timeout``: ``attempt_seconds`` cut to the time left, at
    least ``min_attempt_seconds``), retrying ``Transient`` failures with backoff while an
    attempt of ``min_attempt_seconds`` still fits before the deadline after the pause;
    then BackendUnavailable (503) naming ``what`` and the last reason. ``stats`` counts the
    attempts, retries, throttles and the failure, if any."""
    stats = stats or CallStats(threading.Lock())
    attempt = 0
    while True:
        attempt += 1
        stats.call()
        try:
            return call(max(min_attempt_seconds, min(attempt_seconds, deadline.remaining())))
        except Transient as exc:
            failure = exc
        except BaseException:
            stats.failed()
            raise
        delay = backoff_seconds(attempt)
        if deadline.remaining() - delay < min_attempt_seconds:
            stats.failed(failure.throttled)
            if failure.giving_up is not None:
                raise BackendUnavailable(failure.giving_up(attempt)) from None
            raise BackendUnavailable(f"{what} still failing after {attempt} attempts "
                                     f"({failure}); retry later") from None
        stats.retried(failure.throttled)
        LOG.info("retrying %s after %s (attempt %d)", what, failure, attempt)
        sleep(delay)
