"""`make run` (Chalice's local server, hardened: localserver.py) on the embedded store and on
InfluxDB, over real HTTP; raw sockets where a client library would not send the request."""
import http.client
import json
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time

import pytest

from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2
from harness.processes import Process, free_port, wait_for_port
from harness.remote import (PROMETHEUS2_READ_HEADERS, read_request,
                            remote_read, remote_write, write_request)


def start(tmp_path, data_dir, **env_vars) -> (Process, str):
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATA_DIR=str(data_dir), **env_vars)
    proc = Process(["make", "--no-print-directory", "run", f"VENV={sys.prefix}"],
                   str(tmp_path / f"server-{port}.log"), env=env)
    try:
        wait_for_port(port, proc.proc, timeout=300)
    except Exception:
        proc.stop()
        raise
    return proc, f"http://127.0.0.1:{port}", port


@pytest.fixture(scope="module", params=["sqlite", "influxdb"])
def server(request, tmp_path_factory):
    """`make run` on the embedded store, and with the README's InfluxDB variables."""
    tmp_path = tmp_path_factory.mktemp("server")
    env = {}
    if request.param == "influxdb":
        influx = request.getfixturevalue("influx_server")
        env = {"STORAGE_BACKEND": "influxdb", "INFLUXDB_URL": influx.url,
               "INFLUXDB_DATABASE": "local_server"}
    proc, url, port = start(tmp_path, tmp_path / "data", **env)
    yield url, port, tmp_path, proc
    proc.stop()


def raw_post(port, path, body, headers):
    """POST with exactly these headers (no Accept), as Prometheus does."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()




def test_read_without_accept_header_gets_snappy_protobuf(server):
    url, port, _, _ = server
    assert remote_write(url, write_request(({"__name__": "noaccept"}, [(5, 1.5)])))[0] == 204
    body = codec.encode_message(read_request((0, 10, [(0, "__name__", "noaccept")])))
    status, headers, data = raw_post(port, "/read", body, PROMETHEUS2_READ_HEADERS)
    assert status == 200, data
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["Content-Encoding"] == "snappy"
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(data, 1 << 20))
    assert response.results[0].timeseries[0].samples[0].value == 1.5


@pytest.mark.parametrize("body,headers,status,reason", [
    (b"\x05abc", PROMETHEUS2_READ_HEADERS, 400, b"snappy"),
    (b"garbage", {**PROMETHEUS2_READ_HEADERS, "Content-Type": "text/plain"}, 415, b"Content-Type"),
    (bytes([0x80, 0x80, 0x80, 0x80, 0x08]) + b"\x00", PROMETHEUS2_READ_HEADERS, 413, b"over the limit"),
    (b"", PROMETHEUS2_READ_HEADERS, 400, b"empty body"),
])
def test_bad_bodies_get_4xx_with_reason_and_server_keeps_serving(server, body, headers, status,
                                                                  reason):
    url, port, _, _ = server
    for path in ("/write", "/read"):
        got, _, text = raw_post(port, path, body, headers)
        assert (got, reason in text) == (status, True), text
    assert remote_write(url, write_request(({"__name__": "alive"}, [(1, 1.0)])))[0] == 204


def test_concurrent_writers_lose_nothing(server):
    url, _, _, _ = server
    errors = []

    def writer(worker):
        for batch in range(10):
            request = write_request(*[({"__name__": "conc", "w": str(worker), "s": str(s)},
                                       [(batch * 10 + i, float(i)) for i in range(10)])
                                      for s in range(20)])
            status, body = remote_write(url, request)
            if status != 204:
                errors.append((status, body))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = remote_read(url, read_request((0, 1000, [(0, "__name__", "conc")])))
    assert len(result.results[0].timeseries) == 4 * 20
    assert sum(len(ts.samples) for ts in result.results[0].timeseries) == 4 * 20 * 100


def test_data_survives_a_restart(tmp_path):
    proc, url, _ = start(tmp_path, tmp_path / "data")
    try:
        assert remote_write(url, write_request(({"__name__": "durable"}, [(7, 7.0)])))[0] == 204
    finally:
        proc.stop()
    proc, url, _ = start(tmp_path, tmp_path / "data")
    try:
        result = remote_read(url, read_request((0, 10, [(0, "__name__", "durable")])))
        assert result.results[0].timeseries[0].samples[0].value == 7.0
    finally:
        proc.stop()
    assert os.path.exists(tmp_path / "data" / "prometheus.sqlite3")


def test_log_level_from_the_shell_wins_over_the_stage(tmp_path):
    proc, url, _ = start(tmp_path, tmp_path / "data", LOG_LEVEL="debug")
    try:
        assert remote_write(url, write_request(({"__name__": "dbg"}, [(1, 1.0)])))[0] == 204
    finally:
        proc.stop()
    assert "write: 1 series, 1 samples stored" in proc.log()


def test_remote_write_2_over_real_http(server):
    """The local server reads a 2.0 body (its Content-Type has a proto parameter) as binary."""
    from harness.remote import V2, V2_HEADERS, WRITTEN
    url, port, _, _ = server
    labels = {"__name__": "rw2.local", "service.name": "api"}
    status, headers, data = raw_post(port, "/write", V2().series(labels, [(7, 2.5)]).body(),
                                     V2_HEADERS)
    assert status == 204, data
    assert [headers[h] for h in WRITTEN] == ["1", "0", "0"]
    result = remote_read(url, read_request((0, 10, [(0, "service.name", "api")])))
    assert [{l.name: l.value for l in ts.labels} for ts in result.results[0].timeseries] == \
        [labels]


def test_streamed_remote_read_over_real_http(server):
    """As Prometheus >= 2.55 asks: STREAMED_XOR_CHUNKS first, no Accept header."""
    from tests.support.streamed_reader import as_bits, decode_xor, read_frames
    url, port, _, _ = server
    samples = [(t, float(t)) for t in range(1000, 1300)]
    assert remote_write(url, write_request(({"__name__": "streamed_local"}, samples)))[0] == 204
    request = read_request((0, 5000, [(0, "__name__", "streamed_local")]))
    request.accepted_response_types.extend([remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS,
                                            remote_pb2.ReadRequest.SAMPLES])
    status, headers, data = raw_post(port, "/read", codec.encode_message(request),
                                     dict(PROMETHEUS2_READ_HEADERS, **{"User-Agent": "Prometheus/3.5.0"}))
    assert status == 200, data
    assert headers["Content-Type"].startswith("application/x-streamed-protobuf")
    got = [s for frame in read_frames(data) for c in frame.chunked_series[0].chunks
           for s in decode_xor(c.data)]
    assert got == [(t, as_bits(v)) for t, v in samples]


# The HTTP layer itself: framing, limits, backlog, idle connections, error bodies.

MiB = 1 << 20
WRITE_HEAD = (b"POST /write HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n")


def write_body(name: str, value: float = 1.0) -> bytes:
    return codec.encode_message(write_request(({"__name__": name}, [(1, value)])))


def exchange(port: int, data: bytes, timeout: float = 30.0) -> bytes:
    """Send ``data`` on one connection and return every byte until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_until_closed(sock, timeout)


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    received, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if not data:
            return received
        received += data
    raise AssertionError(f"still open after {timeout} s; received {received[:300]!r}")


def read_response(sock: socket.socket, timeout: float) -> bytes:
    """One response (head and Content-Length body), whether or not the server then closes."""
    received, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        head, _, body = received.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^Content-Length:\s*(\d+)", head)
        if _ and length and len(body) >= int(length.group(1)):
            return received
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(65536)
        if not data:
            return received
        received += data
    raise AssertionError(f"no whole response within {timeout} s; received {received[:300]!r}")


def statuses(raw: bytes) -> list:
    return [int(code) for code in re.findall(rb"(?m)^HTTP/1\.[01] (\d{3}) ", raw)]


def json_message(raw: bytes) -> str:
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])["message"]


def stored(url: str, name: str) -> list:
    result = remote_read(url, read_request((0, 10, [(0, "__name__", name)])))
    return [s.value for ts in result.results[0].timeseries for s in ts.samples]


def chunked(body: bytes, size: int) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in pieces) + \
        b"0\r\nX-Trailer: t\r\n\r\n"


def server_pid(proc: Process) -> int:
    """The Python process that serves behind `make run` (a descendant of make)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parents[int(entry)] = int(handle.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    family, found = {proc.proc.pid}, True
    while found:
        found = {pid for pid, parent in parents.items() if parent in family} - family
        family |= found
    for pid in sorted(family):
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            if b"python" in handle.read().split(b"\0")[0]:
                return pid
    raise AssertionError(f"no python process under make ({family})")


def proc_status(pid: int, field: str) -> int:
    """A number from /proc/<pid>/status (``VmHWM`` in kB, ``Threads``)."""
    with open(f"/proc/{pid}/status") as handle:
        return int(re.search(rf"(?m)^{field}:\s+(\d+)", handle.read()).group(1))


def test_chunked_write_is_decoded_and_the_connection_stays_usable(server):
    url, port, _, _ = server
    raw = exchange(port, WRITE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" +
                   chunked(write_body("chunked_write", 4.5), 7) +
                   WRITE_HEAD + b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    assert statuses(raw) == [204, 400], raw  # the second: the app's "empty body"
    assert stored(url, "chunked_write") == [4.5]


@pytest.mark.parametrize("framing,expected", [
    ("Transfer-Encoding: chunked\r\n", [400, 403]),  # decoded: not snappy; then the next request
    ("Transfer-Encoding: chunked\r\nContent-Length: {size_line}\r\n", [400]),  # refused, closed
])
def test_a_request_inside_a_chunked_body_is_never_run(server, framing, expected):
    """The chunk holds a whole /write: it is body (or refused), never the next request. The
    request after the chunked one is answered as itself."""
    url, port, _, _ = server
    name = f"smuggled_{len(expected)}"
    inner = WRITE_HEAD + b"Content-Length: %d\r\n\r\n" % len(write_body(name)) + write_body(name)
    size_line = b"%x\r\n" % len(inner)
    head = framing.format(size_line=len(size_line)).encode()
    follow_up = b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    raw = exchange(port, WRITE_HEAD + head + b"\r\n" + size_line + inner + b"\r\n0\r\n\r\n" +
                   follow_up)
    assert statuses(raw) == expected, raw
    assert stored(url, name) == []


@pytest.mark.parametrize("head,body,status,reason", [
    (b"Transfer-Encoding: chunked\r\n", b"ffffffff\r\n", 413, "over the limit"),
    (b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n", 400, "chunk size"),
    (b"Transfer-Encoding: chunked\r\n", b"2\r\nhello\r\n0\r\n\r\n", 400, "chunk"),
    (b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n", 501, "transfer coding"),
    (b"Transfer-Encoding: gzip\r\n", b"", 400, "Transfer-Encoding"),
])
def test_bad_transfer_encodings_are_refused_with_a_reason(server, head, body, status, reason):
    url, port, _, _ = server
    raw = exchange(port, WRITE_HEAD + head + b"\r\n" + body)
    assert statuses(raw) == [status], raw
    assert reason in json_message(raw)
    assert remote_write(url, write_request(({"__name__": "alive"}, [(1, 1.0)])))[0] == 204


@pytest.mark.parametrize("lengths", [["abc"], ["-1"], ["+5"], ["1_0"], ["0x10"], ["5", "6"],
                                     ["5, 6"]])
def test_malformed_content_length_is_answered_400(server, lengths):
    url, port, _, _ = server
    head = b"".join(b"Content-Length: %s\r\n" % value.encode() for value in lengths)
    raw = exchange(port, WRITE_HEAD + head + b"\r\nhello world")
    assert statuses(raw) == [400], raw
    assert "Content-Length" in json_message(raw)
    assert remote_write(url, write_request(({"__name__": "alive"}, [(1, 1.0)])))[0] == 204


def test_a_512_mib_body_is_refused_before_it_is_buffered(server):
    """The server answers 413 from the headers; its peak memory stays put while the client
    keeps sending (measured: /proc/<pid>/status VmHWM, before and after)."""
    url, port, _, proc = server
    pid = server_pid(proc)
    peak_before = proc_status(pid, "VmHWM")
    declared, sent, piece = 512 * MiB, 0, bytes(MiB)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(WRITE_HEAD + b"Content-Length: %d\r\n\r\n" % declared)
        started = time.monotonic()
        while sent < declared and time.monotonic() - started < 120:
            if select.select([sock], [], [], 0)[0]:
                break  # answered
            try:
                sock.sendall(piece)
            except OSError:
                break
            sent += len(piece)
        raw = read_response(sock, 60)
    grown_kib = proc_status(pid, "VmHWM") - peak_before
    assert grown_kib < 64 * 1024, f"peak memory grew by {grown_kib} KiB ({sent} bytes sent)"
    assert statuses(raw) == [413], raw[:300]
    assert "over the limit" in json_message(raw)
    assert remote_write(url, write_request(({"__name__": "alive"}, [(1, 1.0)])))[0] == 204


def listen_backlog(port: int) -> int:
    """The listening socket's backlog, as the kernel reports it (ss: Send-Q)."""
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True,
                         check=True).stdout.split()
    return int(out[2])


def test_64_concurrent_connections_are_all_answered(server):
    """64 writers connect at once, as 64 remote-write shards may. A SYN dropped from a full
    listen queue is retried after Linux's initial 1 s retransmission timeout, so a connect
    taking 1 s or more shows a queue too short."""
    url, port, _, _ = server
    count = 64
    barrier, results = threading.Barrier(count), []

    def shard(worker: int) -> None:
        body = write_body(f"shard_{worker}")
        barrier.wait()
        started = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                connected = time.monotonic() - started
                sock.sendall(WRITE_HEAD + b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                             % len(body) + body)
                results.append((connected, statuses(read_until_closed(sock, 60))))
        except Exception as exc:  # a reset or refused connection
            results.append((None, repr(exc)))

    threads = [threading.Thread(target=shard, args=(w,)) for w in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = [r for r in results if r[0] is None or r[1] != [204]]
    assert failed == [] and len(results) == count, failed[:5]
    slowest = max(connected for connected, _ in results)
    assert slowest < 1.0, f"a connect took {slowest:.2f} s: the listen queue overflowed"
    assert listen_backlog(port) >= 128
    assert all(stored(url, f"shard_{w}") == [1.0] for w in range(count))


def test_idle_connections_are_closed_after_the_idle_timeout(tmp_path):
    """IDLE_TIMEOUT_SECONDS=1: silent connections, a kept-alive one, one stuck in its
    headers and one stuck in its body are all closed, and their threads end."""
    proc, url, port = start(tmp_path, tmp_path / "data", IDLE_TIMEOUT_SECONDS="1")
    try:
        pid = server_pid(proc)
        assert remote_write(url, write_request(({"__name__": "idle"}, [(1, 1.0)])))[0] == 204
        threads_before = proc_status(pid, "Threads")
        socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(16)]
        socks[0].sendall(WRITE_HEAD + b"Content-Length: 0\r\n\r\n")  # answered, then idle
        socks[1].sendall(b"POST /write HTTP/1.1\r\nHost: x\r\n")      # headers never end
        socks[2].sendall(WRITE_HEAD + b"Content-Length: 100\r\n\r\n0123456789")  # body stops
        started = time.monotonic()
        received = [read_until_closed(sock, 30) for sock in socks]
        elapsed = time.monotonic() - started
        for sock in socks:
            sock.close()
        assert statuses(received[0]) == [400] and statuses(received[2]) == [408]
        assert "no body bytes" in json_message(received[2])
        assert received[1] == b"" and received[3:] == [b""] * 13
        assert elapsed < 30
        deadline = time.monotonic() + 30
        while proc_status(pid, "Threads") > threads_before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc_status(pid, "Threads") <= threads_before
    finally:
        proc.stop()


@pytest.mark.parametrize("request_line", [b"POST /nowhere HTTP/1.1", b"GET / HTTP/1.1",
                                          b"POST /write/extra HTTP/1.1"])
def test_unknown_paths_answer_403_without_echoing_headers(server, request_line):
    _, port, _, _ = server
    secret = "Basic c2VjcmV0LWtleS1pZDpzZWNyZXQtdmFsdWUtOTg3NjU="
    raw = exchange(port, request_line + b"\r\nHost: x\r\nAuthorization: " + secret.encode() +
                   b"\r\nX-AWS-Session-Token: token-1234\r\nContent-Length: 0\r\n"
                   b"Connection: close\r\n\r\n")
    assert statuses(raw) == [403], raw
    assert secret.encode() not in raw and b"c2VjcmV0" not in raw and b"token-1234" not in raw
    assert "Missing Authentication Token" in json_message(raw)
