"""One request's deadline, shared by every backend that calls a remote service."""
import time

from chalicelib.errors import BackendUnavailable


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
