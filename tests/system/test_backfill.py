"""End to end: `make backfill` from a source Prometheus holding two days of history (TSDB
blocks made by `promtool tsdb create-blocks-from openmetrics`) into `make run`; a reader
Prometheus reading only through the connector answers range queries over that history
exactly as the source does. An interrupted run resumes from its checkpoint; a second run
sends nothing; a run with a fresh checkpoint sends everything again and changes nothing.
Stale markers and Prometheus 3 UTF-8 names are copied bit-exactly from a streamed source.
"""
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

from backfill import cli
from chalicelib.model import Series
from chalicelib.protocol import codec, streamed
from chalicelib.protocol.prompb import remote_pb2
from harness.processes import ROOT, Process, free_port, wait_for_port
from harness.remote import read_request, remote_read
from tests.support.history import openmetrics
from tests.support.prometheus import PROMETHEUS, start_prometheus
from tests.system.test_e2e_prometheus import start_connector

RANGE_QUERIES = [
    "history_load",
    'history_load{instance="host-03"}',
    "rate(history_requests_total[5m])",
    'sum by (code) (increase(history_requests_total{job="node"}[1h]))',
    "history_special",
    'history_special{v=~"ü.*"}',
    'history_special{v="say \\"hi\\""}',
    'history_special{kind="nan"}',
    'count({__name__=~"history_.+"})',
]


def source_prometheus(tmp_path, end: int) -> (Process, str):
    """A Prometheus started on TSDB blocks holding two days of history up to ``end``."""
    directory = tmp_path / "source"
    directory.mkdir()
    (directory / "history.om").write_text(openmetrics(end), encoding="utf-8")
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics",
                    str(directory / "history.om"), str(directory / "data")],
                   check=True, capture_output=True)
    (directory / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
    port = free_port()
    proc = Process([PROMETHEUS or "prometheus", f"--config.file={directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={directory / 'data'}", "--storage.tsdb.retention.time=30d",
                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                   str(directory / "log.txt"))
    wait_for_port(port, proc.proc)
    return proc, f"http://127.0.0.1:{port}"


def backfill(source: str, target: str, start: int, end: int, checkpoints, **extra) -> list:
    """`make backfill` as a user types it: the command's arguments."""
    args = ["make", "--no-print-directory", "backfill", f"VENV={sys.prefix}", f"FROM={source}",
            f"TO={target}", f"START={start}", f"END={end}", f"CHECKPOINT_DIR={checkpoints}"]
    return args + [f"{name}={value}" for name, value in extra.items()]


def run(args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300, **kwargs)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def query_range(base_url: str, query: str, start: int, end: int, step: int = 60) -> list:
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": step})
    with urllib.request.urlopen(f"{base_url}/api/v1/query_range?{params}", timeout=60) as answer:
        payload = json.load(answer)
    assert payload["status"] == "success", payload
    return sorted(payload["data"]["result"], key=lambda item: json.dumps(item["metric"],
                                                                        sort_keys=True))


def test_backfill_into_make_run_resumes_and_is_idempotent(tmp_path):
    end = int(time.time()) // 60 * 60 - 600
    start = end - 2 * 86_400 + 60
    processes = []
    try:
        source, source_url = source_prometheus(tmp_path, end)
        processes.append(source)
        connector, port = start_connector(tmp_path)
        processes.append(connector)
        wait_for_port(port, connector.proc, timeout=300)
        target = f"http://127.0.0.1:{port}"
        checkpoints = tmp_path / "checkpoints"

        dry = run(backfill(source_url, target, start, end, checkpoints, DRY_RUN=1))
        assert "40 series, 115200 samples in 24 slices" in dry.stdout, dry.stdout + dry.stderr
        assert re.search(r"Timestream write cost: \d+ write units", dry.stdout)

        # Interrupted: killed (SIGKILL) once a few slices are in its checkpoint.
        slow = subprocess.Popen(backfill(source_url, target, start, end, checkpoints,
                                         RATE=8000), cwd=ROOT, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            files = list(checkpoints.glob("backfill-*.json")) if checkpoints.exists() else []
            if files and len(json.loads(files[0].read_text())["done"]) >= 3:
                break
            assert slow.poll() is None and time.monotonic() < deadline, slow.stdout.read()
            time.sleep(0.05)
        os.killpg(slow.pid, signal.SIGKILL)
        slow.wait()
        done_before = len(json.loads(files[0].read_text())["done"])
        assert done_before < 24

        resumed = run(backfill(source_url, target, start, end, checkpoints))
        assert f"resuming: {done_before} of 24 slices were sent already" in resumed.stderr
        sent = int(re.search(r"(\d+) samples sent \((\d+) stored, 0 rejected\)",
                             resumed.stderr).group(1))
        assert sent <= 115_200 - done_before * 4800, resumed.stderr

        reader_port = free_port()
        processes.append(start_prometheus(tmp_path, "reader", reader_port, f"""
global: {{scrape_interval: 1m}}
remote_read:
  - url: {target}/read
    read_recent: true
"""))
        reader_url = f"http://127.0.0.1:{reader_port}"

        def same_answers():
            for query in RANGE_QUERIES:
                expected = query_range(source_url, query, start, end)
                assert expected, query
                assert query_range(reader_url, query, start, end) == expected, query

        same_answers()
        again = run(backfill(source_url, target, start, end, checkpoints))
        assert "nothing left to send" in again.stderr, again.stderr

        fresh = run(backfill(source_url, target, start, end, tmp_path / "fresh", SHARDS=3))
        assert "115200 samples sent (115200 stored, 0 rejected)" in fresh.stderr, fresh.stderr
        same_answers()

        special_source_copies_bits_and_utf8_names(target, tmp_path)
    finally:
        for proc in reversed(processes):
            proc.stop()


STALE = 0x7FF0000000000002


def special_source_copies_bits_and_utf8_names(target: str, tmp_path) -> None:
    """A streamed source (the connector's own encoder) with a stale marker, NaN payloads
    and Prometheus 3 UTF-8 names: the connector then answers the same bits."""
    import struct

    def value(pattern):
        return struct.unpack(">d", struct.pack(">Q", pattern))[0]

    series = [Series((("__name__", "http.server.duration"), ("service.name", "api ✓")),
                     [1000, 2000, 3000, 4000], [1.5, value(STALE), value(0x7FF8000000000001),
                                                float("-inf")]),
              Series((("__name__", "plain"), ("zone", "a")), [1000, 5000], [0.1, value(STALE)])]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            request = remote_pb2.ReadRequest.FromString(codec.decompress(
                self.rfile.read(int(self.headers["Content-Length"])), 1 << 20))
            query = request.queries[0]
            name = query.matchers[0].value  # the backfill's MATCH: one metric name
            body = b"".join(streamed.frames([query], lambda q: [
                s for s in series if s.labels[0][1] == name and any(
                    q.start_timestamp_ms <= t <= q.end_timestamp_ms for t in s.timestamps)]))
            self.send_response(200)
            self.send_header("Content-Type", codec.STREAMED_READ_HEADERS["Content-Type"])
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert cli.main(["--from", f"http://127.0.0.1:{server.server_address[1]}", "--to", target,
                         "--start", "0", "--end", "10", "--slice", "3s",
                         "--match", '{"http.server.duration"}',
                         "--checkpoint-dir", str(tmp_path / "special")]) == 0
        assert cli.main(["--from", f"http://127.0.0.1:{server.server_address[1]}", "--to", target,
                         "--start", "0", "--end", "10", "--match", "plain",
                         "--checkpoint-dir", str(tmp_path / "special")]) == 0
    finally:
        server.shutdown()
        server.server_close()
    answer = remote_read(target, read_request((0, 10_000, [(2, "__name__", "http.server.*|plain")])))
    got = [(tuple((l.name, l.value) for l in ts.labels),
            [(s.timestamp, struct.pack(">d", s.value)) for s in ts.samples])
           for ts in answer.results[0].timeseries]
    assert got == [(s.labels, [(t, struct.pack(">d", v)) for t, v in zip(s.timestamps, s.values)])
                   for s in series]
