"""Helpers for tests that run real processes: free ports, start/stop, HTTP clients."""
import gc
import json
import os
import signal
import socket
import subprocess
import time
import tracemalloc
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REMOTE_HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Wait until something accepts connections on ``port``; fail if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on port {port} within {timeout}s")


class Process:
    """A child process in its own session, stopped with its whole process group."""

    def __init__(self, args: Sequence[str], log_path: str, env: Optional[Dict[str, str]] = None,
                 cwd: str = ROOT) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(list(args), stdout=self._log, stderr=subprocess.STDOUT,
                                     env=env, cwd=cwd, start_new_session=True)

    def log(self) -> str:
        with open(self.log_path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")

    def stop(self) -> None:
        """Stop the process group: also what the process started in the background,
        even when the process itself has already exited."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        self._log.close()

    def __enter__(self) -> "Process":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def post(url: str, body: bytes, headers: Dict[str, str]) -> Tuple[int, Dict[str, str], bytes]:
    """POST and return (status, headers, body) for any status."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def remote_write(base_url: str, request: remote_pb2.WriteRequest) -> Tuple[int, bytes]:
    status, _, body = post(base_url + "/write", codec.encode_message(request), REMOTE_HEADERS)
    return status, body


def remote_read(base_url: str, request: remote_pb2.ReadRequest) -> remote_pb2.ReadResponse:
    status, headers, body = post(base_url + "/read", codec.encode_message(request), REMOTE_HEADERS)
    assert status == 200, (status, body)
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(body, 1 << 30))
    return response


def promql(base_url: str, query: str, at: float) -> List[dict]:
    """Evaluate ``query`` at time ``at`` through Prometheus's HTTP API; sorted result."""
    params = urllib.parse.urlencode({"query": query, "time": f"{at:.3f}"})
    with urllib.request.urlopen(f"{base_url}/api/v1/query?{params}", timeout=30) as response:
        payload = json.load(response)
    assert payload["status"] == "success", payload
    result = payload["data"]["result"]
    if isinstance(result, list):
        result.sort(key=lambda item: json.dumps(item.get("metric", {}), sort_keys=True))
    return result


def context(sample_limit: int = 10 ** 9, byte_limit: int = 1 << 62,
            deadline_seconds: float = 60.0, deadline=None, dot_all: bool = True):
    """A request context for calling a store directly: generous limits unless named,
    ``deadline`` (a ``Deadline``) instead of a new one if given."""
    from chalicelib.context import Limits, RequestContext
    ctx = RequestContext(Limits(deadline_seconds=deadline_seconds, sample_limit=sample_limit,
                                byte_limit=byte_limit), dot_all)
    if deadline is not None:
        ctx.deadline = deadline
    return ctx
