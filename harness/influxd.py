"""A real InfluxDB (Debian's ``influxd`` 1.6.7) for tests: own ports, own temp data dir.

``influxd config`` prints the defaults; the data paths go to a temp directory, the
RPC and HTTP ``bind-address`` lines to free loopback ports, reporting and the
``_internal`` monitor database off.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Optional


from harness.processes import Process, free_port

INFLUXD = shutil.which("influxd")


class InfluxServer:
    """One influxd listening on 127.0.0.1:<port>, stopped (and its data removed) by ``stop``."""

    def __init__(self, auth: bool = False, port: Optional[int] = None) -> None:
        self.directory = tempfile.mkdtemp(prefix="influxd-")
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.auth = auth
        self.url = f"http://127.0.0.1:{self.port}"
        defaults = subprocess.run([INFLUXD or "influxd", "config"], capture_output=True,
                                  text=True, check=True).stdout
        config = defaults.replace("/var/lib/influxdb", self.directory)
        config = re.sub(r'(?m)^bind-address = .*$', f'bind-address = "127.0.0.1:{self.rpc_port}"',
                        config)
        config = re.sub(r'(\[http\][^\[]*?bind-address = )"[^"]*"',
                        rf'\1"127.0.0.1:{self.port}"', config)
        config = re.sub(r'(\[http\][^\[]*?auth-enabled = )\w+', rf'\1{str(auth).lower()}',
                        config)
        config = re.sub(r'(\[http\][^\[]*?log-enabled = )\w+', r'\1false', config)
        config = re.sub(r'(?m)^reporting-(enabled|disabled) = .*$', "reporting-disabled = true",
                        config)
        config = config.replace("store-enabled = true", "store-enabled = false")
        config = config.replace("query-log-enabled = true", "query-log-enabled = false")
        self.config_path = os.path.join(self.directory, "influxdb.conf")
        with open(self.config_path, "w") as handle:
            handle.write(config)
        self.process: Optional[Process] = None
        self.start()

    def start(self) -> None:
        """Start influxd (again) on the same port and data; wait for /ping -> 204."""
        self.process = Process([INFLUXD or "influxd", "-config", self.config_path],
                               os.path.join(self.directory, "influxd.log"))
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2) as response:
                    if response.status == 204:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if self.process.proc.poll() is not None or time.monotonic() > deadline:
                log = self.process.log()
                self.process.stop()
                raise RuntimeError("influxd did not start:\n" + log)
            time.sleep(0.1)
        if self.auth:
            self.query("CREATE USER admin WITH PASSWORD 'admin-secret' WITH ALL PRIVILEGES",
                       auth=None)

    def stop_process(self) -> None:
        """Stop influxd, keeping its data (``start`` brings it back)."""
        if self.process is not None:
            self.process.stop()
            self.process = None

    def stop(self) -> None:
        self.stop_process()
        shutil.rmtree(self.directory, ignore_errors=True)

    def query(self, q: str, db: str = "", auth=("admin", "admin-secret"), **params) -> dict:
        """Run InfluxQL through POST /query; returns the decoded JSON."""
        fields = {"q": q, **params}
        if db:
            fields["db"] = db
        credentials = ""
        if self.auth and auth:  # influxd reads u and p from the URL only
            credentials = "?" + urllib.parse.urlencode({"u": auth[0], "p": auth[1]})
        request = urllib.request.Request(self.url + "/query" + credentials,
                                         data=urllib.parse.urlencode(fields).encode(),
                                         method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def write_lines(self, db: str, text: str, precision: str = "ms") -> int:
        """POST line protocol as is; returns the HTTP status."""
        request = urllib.request.Request(
            f"{self.url}/write?db={urllib.parse.quote(db)}&precision={precision}",
            data=text.encode("utf-8"), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code


_databases = iter(range(1, 1 << 30))


def fresh_store(server: InfluxServer, url: Optional[str] = None, **kwargs):
    """An InfluxDBStore on a new, empty database of ``server``."""
    from chalicelib.storage.influxdb.client import InfluxClient
    from chalicelib.storage.influxdb.credentials import InfluxCredentials
    from chalicelib.storage.influxdb.store import InfluxDBStore
    database = f"test_{os.getpid()}_{next(_databases)}"
    credentials = InfluxCredentials("admin", "admin-secret", origin="test") if server.auth \
        else InfluxCredentials()
    return InfluxDBStore(InfluxClient(url or server.url, database, credentials=credentials),
                         **kwargs)


class FaultProxy:
    """Forwards HTTP requests to ``target_url``; answers the next ``fail`` requests with
    ``status`` and ``body`` instead, and delays every answer by ``delay`` seconds."""

    def __init__(self, target_url: str) -> None:
        import http.client
        import http.server
        import threading
        self.fail = 0
        self.status = 503
        self.body = b'{"error":"injected"}'
        self.delay = 0.0
        self.requests = 0
        self._lock = threading.Lock()
        target = urllib.parse.urlsplit(target_url)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    proxy.requests += 1
                    failing = proxy.fail > 0
                    proxy.fail -= failing
                time.sleep(proxy.delay)
                if failing:
                    data, status, headers = proxy.body, proxy.status, []
                else:
                    conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                    conn.request("POST", self.path, body=body, headers={
                        k: v for k, v in self.headers.items() if k.lower() != "host"})
                    response = conn.getresponse()
                    data, status = response.read(), response.status
                    headers = [(k, v) for k, v in response.getheaders() if k.lower() not in
                               ("content-length", "transfer-encoding", "connection")]
                    conn.close()
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
