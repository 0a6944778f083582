"""Sending remote-write requests to the connector's ``/write``, as Prometheus does:
5xx, 429 and network failures are retried with exponential backoff (30 ms doubling to
5 s, ``Retry-After`` honoured on 429); any other 4xx stops the run with the connector's
reason, except a 400 that reports samples rejected after the rest were stored, which is
counted (with its reasons) and the run goes on."""
import base64
import collections
import json
import re
import threading
import time
import urllib.error
import urllib.request
from typing import Callable, Dict, Optional

from chalicelib.protocol import codec

HEADERS = {"Content-Type": codec.PROTOBUF, "Content-Encoding": codec.SNAPPY,
           "X-Prometheus-Remote-Write-Version": "0.1.0",
           "User-Agent": "prometheus-connector-backfill"}
MIN_BACKOFF, MAX_BACKOFF = 0.03, 5.0  # Prometheus's queue_config defaults
MAX_ATTEMPTS = 20
TIMEOUT_SECONDS = 30.0  # API Gateway ends an integration at 29 s
_REJECTED = re.compile(r"^(\d+) of (\d+) samples rejected \((\d+) stored[^)]*\): (.*)$", re.S)


class Stop(RuntimeError):
    """The connector refused a request for good (or kept failing): the run stops."""


class Outcome:
    """What the connector did with one request."""

    def __init__(self, stored: int, rejected: int = 0, reasons: str = "") -> None:
        self.stored, self.rejected, self.reasons = stored, rejected, reasons


class RateLimit:
    """At most ``per_second`` samples a second across every sender (None: no limit)."""

    def __init__(self, per_second: Optional[float]) -> None:
        self.per_second = per_second
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def take(self, samples: int) -> None:
        if not self.per_second:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + samples / self.per_second
        if start > now:
            time.sleep(start - now)


def _message(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
        if isinstance(parsed, dict) and "message" in parsed:
            return str(parsed["message"])
    except ValueError:
        pass
    return text[:2000]


class Sender:
    """POSTs to one connector; thread-safe, counts requests and retries."""

    def __init__(self, base_url: str, user: Optional[str] = None, password: Optional[str] = None,
                 session_token: Optional[str] = None, rate: Optional[float] = None,
                 sleep: Callable[[float], None] = time.sleep,
                 timeout: float = TIMEOUT_SECONDS) -> None:
        self.url = base_url.rstrip("/") + "/write"
        self.headers: Dict[str, str] = dict(HEADERS)
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        if session_token:
            self.headers["X-AWS-Session-Token"] = session_token
        self.rate = RateLimit(rate)
        self.sleep = sleep
        self.timeout = timeout
        self.requests = 0
        self.retries = 0
        self.failures: collections.Counter = collections.Counter()  # retried, by status
        self._lock = threading.Lock()

    def send(self, body: bytes, samples: int) -> Outcome:
        """Send one snappy-compressed WriteRequest holding ``samples`` samples."""
        self.rate.take(samples)
        backoff = MIN_BACKOFF
        for attempt in range(1, MAX_ATTEMPTS + 1):
            status, retry_after, reason = self._post(body)
            with self._lock:
                self.requests += 1
            if 200 <= status < 300:
                return Outcome(samples)
            if status == 400:
                rejected = _REJECTED.match(reason)
                if rejected:
                    return Outcome(int(rejected.group(3)), int(rejected.group(1)),
                                   rejected.group(4))
            if status not in (0, 429) and status < 500:
                raise Stop(f"the connector answered {status}: {reason}")
            with self._lock:
                self.retries += 1
                self.failures[status or "network"] += 1
            if attempt == MAX_ATTEMPTS:
                break
            self.sleep(max(backoff, retry_after or 0.0))
            backoff = min(backoff * 2, MAX_BACKOFF)
        raise Stop(f"gave up after {MAX_ATTEMPTS} attempts; last answer "
                   f"{status or 'none'}: {reason}")

    def _post(self, body: bytes):
        """(status, Retry-After seconds or None, reason); status 0 for a network failure."""
        request = urllib.request.Request(self.url, data=body, headers=self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
                return response.status, None, ""
        except urllib.error.HTTPError as err:
            retry_after = err.headers.get("Retry-After")
            try:
                seconds = float(retry_after) if retry_after else None
            except ValueError:
                seconds = None
            return err.code, seconds, _message(err.read())
        except (urllib.error.URLError, OSError) as err:
            return 0, None, str(getattr(err, "reason", err))
