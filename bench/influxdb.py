"""`make bench`, InfluxDB backend: the connector's writes and reads against a real influxd,
beside InfluxDB 1.x's own Prometheus endpoints (/api/v1/prom/write and /api/v1/prom/read)
fed the same payloads in the same run. Only the ratios are meaningful."""
import shutil
import time

from chalicelib import handlers
from chalicelib.context import Limits
from harness.influxd import InfluxServer, fresh_store
from harness.remote import HEADERS, post

LIMITS = Limits(deadline_seconds=3600, sample_limit=10 ** 8, byte_limit=1 << 40)


def report(bodies, read_body: bytes, samples: int, senders: int, send_all) -> None:
    """Print write and read rates: influxd's own endpoints (baseline) vs the connector's
    InfluxDB store in-process (the HTTP layer is measured by run.py for the embedded store)."""
    if not shutil.which("influxd"):
        print("\n(influxd not installed: InfluxDB backend not measured)")
        return
    server = InfluxServer()
    try:
        server.query("CREATE DATABASE own")
        own = send_all(f"{server.url}/api/v1/prom/write?db=own", bodies, senders)
        store = fresh_store(server)
        started = time.perf_counter()
        for body in bodies:
            handlers.write(body, HEADERS, store, LIMITS)
        ours = time.perf_counter() - started

        started = time.perf_counter()
        for _ in range(5):
            status, _, data = post(f"{server.url}/api/v1/prom/read?db=own", read_body,
                                   HEADERS)
            assert status == 200, data
        own_read = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(5):
            handlers.read(read_body, HEADERS, store, LIMITS)
        our_read = time.perf_counter() - started
    finally:
        server.stop()
    print(f"\n{'InfluxDB backend (influxd 1.6.7)':48} {'seconds':>12} {'vs baseline':>12}")
    rows = [("write: influxd /api/v1/prom/write (baseline)", own, own),
            ("write: connector in-process (InfluxDB store)", ours, own),
            ("read: influxd /api/v1/prom/read x5 (baseline)", own_read, own_read),
            ("read: connector in-process x5 (InfluxDB store)", our_read, own_read)]
    for name, seconds, base in rows:
        print(f"{name:48} {seconds:12.3f} {base / seconds:11.2f}x")
    print(f"({samples} samples written; speed ratios: higher is faster)")
