"""`make bench`, InfluxDB backend: the connector's writes and reads against a real influxd,
beside InfluxDB 1.x's own Prometheus endpoints (/api/v1/prom/write and /api/v1/prom/read)
fed the same payloads in the same run. Only the ratios are meaningful."""
import shutil
import time

from chalicelib import handlers
from chalicelib.context import Limits, RequestContext
from chalicelib.matchers import Matcher
from chalicelib.model import Histogram, Query, Series
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
        kinds = histograms_against_floats(server)
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
    print(f"\n{'InfluxDB backend: native histograms':48} {'seconds':>12} {'vs floats':>12}")
    for name, (floats, histograms) in kinds.items():
        print(f"{name:48} {histograms:12.3f} {floats / histograms:11.2f}x")
    print(f"({HISTOGRAM_SERIES * HISTOGRAM_SAMPLES} samples of each kind, a histogram of "
          f"{len(HISTOGRAM.positive)} buckets; ratio: histograms' speed over floats')")


HISTOGRAM_SERIES, HISTOGRAM_SAMPLES = 500, 20
HISTOGRAM = Histogram(0, 1234, 56.75, 3, 2.938735877055719e-39, 4,
                      positive_spans=((-5, 6), (2, 6)), positive=(1, 3, -2, 4, 0, 7) * 2,
                      negative_spans=((0, 2),), negative=(1, -1))


def histograms_against_floats(server: InfluxServer) -> dict:
    """{"write …"/"read …": (seconds for float samples, for as many native histograms)}: the
    connector's store in-process, the same series and timestamps."""
    times = list(range(1_000, 1_000 + 15_000 * HISTOGRAM_SAMPLES, 15_000))
    labels = [(("__name__", "bench_latency_seconds"), ("instance", f"host{i}:9100"),
               ("job", "api")) for i in range(HISTOGRAM_SERIES)]
    kinds = {"floats": [Series(item, times, [0.5] * len(times)) for item in labels],
             "histograms": [Series(item, [], [], [HISTOGRAM._replace(timestamp=t)
                                                  for t in times]) for item in labels]}
    query = Query(0, times[-1], (Matcher.of(0, "__name__", "bench_latency_seconds"),))
    seconds = {"write (connector in-process)": [], "read (connector in-process)": []}
    for series in kinds.values():
        store = fresh_store(server)
        started = time.perf_counter()
        store.write(series, RequestContext(LIMITS))
        seconds["write (connector in-process)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        store.read(query, RequestContext(LIMITS))
        seconds["read (connector in-process)"].append(time.perf_counter() - started)
    return {name: tuple(pair) for name, pair in seconds.items()}
