"""Shared pieces of the end-to-end tests: a fixture exporter and real Prometheus servers."""
import http.server
import shutil
import threading
import time
import urllib.request


from harness.processes import Process, free_port, wait_for_port
from harness.remote import HEADERS, post

PROMETHEUS = shutil.which("prometheus")

LONG_NAME = "fixture_a_metric_name_that_is_definitely_longer_than_sixty_bytes_for_timestream_total"
VANISH_AFTER = 3.0  # seconds: the "vanishing" series then disappears -> stale marker

FIXTURE = f"""# TYPE fixture_value gauge
fixture_value{{kind="quote",v="say \\"hi\\""}} 1
fixture_value{{kind="backslash",v="C:\\\\path\\\\x"}} 2
fixture_value{{kind="unicode",v="ünïcødé ✓ 日本"}} 3
fixture_value{{kind="newline",v="two\\nlines"}} 4
fixture_value{{kind="empty",v=""}} 5
fixture_value{{kind="nan"}} NaN
fixture_value{{kind="inf"}} +Inf
fixture_value{{kind="ninf"}} -Inf
fixture_value{{kind="tiny"}} 1e-300
fixture_value{{kind="sum"}} 0.30000000000000004
fixture_value{{kind="sql",v="x' OR '1'='1"}} 6
# TYPE {LONG_NAME} counter
{LONG_NAME} 42
"""
VANISHING = 'fixture_value{kind="vanishing"} 7\n'

class Exporter:
    """A scrape target on 127.0.0.1: each GET is answered with ``answer()``'s (body,
    Content-Type)."""

    def __init__(self, answer) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body, content_type = answer()
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FixtureExporter(Exporter):
    """Serves FIXTURE on /metrics (plus a series that vanishes after a few seconds)."""

    def __init__(self) -> None:
        first_scrape = []

        def answer():
            text = FIXTURE
            first_scrape[:] = first_scrape or [time.monotonic()]
            if time.monotonic() - first_scrape[0] < VANISH_AFTER:
                text += VANISHING
            return text.encode("utf-8"), "text/plain; version=0.0.4"

        super().__init__(answer)


def start_prometheus(tmp_path, name: str, port: int, config: str, flags=()) -> Process:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "prometheus.yml").write_text(config)
    proc = Process([PROMETHEUS or "prometheus", f"--config.file={directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", *flags],
                   str(directory / "log.txt"))
    try:
        wait_for_port(port, proc.proc)
    except Exception:
        proc.stop()
        raise
    return proc


def wait_until_ready(url: str, timeout: float = 60.0) -> None:
    """Prometheus listens before its TSDB is open (it answers 503 until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def start_receiver(tmp_path, flags=()):
    """A Prometheus that only takes remote writes (it scrapes nothing), once ready: (its
    process, its URL); ``flags``: more command-line flags."""
    port = free_port()
    proc = start_prometheus(tmp_path, "prometheus", port, "global: {scrape_interval: 1h}\n",
                            flags=("--web.enable-remote-write-receiver", *flags))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url)
    except BaseException:
        proc.stop()
        raise
    return proc, url


def send(url: str, body: bytes) -> bytes:
    """POST a snappy protobuf body (a remote write or read) to a Prometheus; its answer."""
    status, _, answer = post(url, body, {**HEADERS, "X-Prometheus-Remote-Write-Version": "0.1.0"})
    assert status in (200, 204), (status, answer)
    return answer


def writer_config(port: int, exporter_port: int, write_url: str, auth: str = "") -> str:
    """A Prometheus that scrapes itself (on ``port``) and the fixture every second and
    remote-writes in order (one shard) with short batches, to ``write_url``."""
    return f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: self
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
  - job_name: fixture
    static_configs: [{{targets: ["127.0.0.1:{exporter_port}"]}}]
remote_write:
  - url: {write_url}
    {auth}
    queue_config: {{min_shards: 1, max_shards: 1, batch_send_deadline: 500ms,
                    min_backoff: 100ms, max_backoff: 1s}}
"""
