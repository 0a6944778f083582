"""`make bench`: write and read throughput against a real Prometheus, measured in the same run.

Baseline: Prometheus's own remote-write receiver (--web.enable-remote-write-receiver)
and its remote-read endpoint (/api/v1/read), fed the same payloads over HTTP from
the same number of concurrent senders. Machines here are noisy, so only the ratios
printed at the end are meaningful.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench import read_memory  # noqa: E402
from chalicelib import handlers  # noqa: E402
from chalicelib.context import Limits  # noqa: E402
from chalicelib.protocol import codec  # noqa: E402
from chalicelib.protocol.prompb import remote_pb2  # noqa: E402
from chalicelib.storage.sqlite import SQLiteStore  # noqa: E402
from chalicelib.telemetry import local  # noqa: E402
from chalicelib.telemetry.request import RequestTelemetry  # noqa: E402
from harness.processes import Process, free_port, wait_for_port  # noqa: E402
from harness.remote import HEADERS, post  # noqa: E402

SERIES = 2000        # distinct series, like one scrape of a few targets
SAMPLES_PER_SERIES_PER_REQUEST = 1


def payloads(requests: int, start_ms: int, senders: int):
    """Remote-write bodies of SERIES samples each, one scrape per request. Sender k sends
    bodies k, k + senders, ...: its own series, in time order (as Prometheus shards do)."""
    bodies = []
    for index in range(requests):
        group, step = index % senders, index // senders
        request = remote_pb2.WriteRequest()
        for s in range(group * SERIES, (group + 1) * SERIES):
            ts = request.timeseries.add()
            ts.labels.add(name="__name__", value=f"bench_metric_{s % 50}_total")
            ts.labels.add(name="handler", value=f"/api/v{s % 7}/x")
            ts.labels.add(name="instance", value=f"10.0.{s % 40}.1:9100")
            ts.labels.add(name="job", value="node")
            ts.labels.add(name="series", value=str(s))
            ts.samples.add(timestamp=start_ms + step * 1000, value=float(index * s))
        bodies.append(codec.encode_message(request))
    return bodies


def send_all(url: str, bodies, senders: int) -> float:
    """Seconds to POST every body, ``senders`` at a time; fails on any non-2xx."""
    def sender(k):
        for body in bodies[k::senders]:
            status, _, text = post(url, body, HEADERS)
            assert 200 <= status < 300, (status, text)
    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(sender, range(senders)))
    return time.perf_counter() - started


def read_request(start_ms: int, end_ms: int) -> bytes:
    request = remote_pb2.ReadRequest()
    query = request.queries.add(start_timestamp_ms=start_ms, end_timestamp_ms=end_ms)
    query.matchers.add(type=2, name="__name__", value="bench_metric_(1|2|3).*")
    return codec.encode_message(request)


def time_reads(url: str, body: bytes, repeat: int) -> (float, int):
    started = time.perf_counter()
    for _ in range(repeat):
        status, _, data = post(url, body, {**HEADERS, "Accept-Encoding": "snappy"})
        assert status == 200, data
    elapsed = time.perf_counter() - started
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(data, 1 << 30))
    samples = sum(len(ts.samples) for ts in response.results[0].timeseries)
    return elapsed, samples * repeat


def import_seconds(module: str, runs: int = 7) -> float:
    """Median wall time of a fresh interpreter importing ``module`` (a Lambda cold start's
    import phase), minus that of an interpreter importing nothing."""
    def median(code: str) -> float:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
            times.append(time.perf_counter() - started)
        return sorted(times)[runs // 2]
    return median(f"import {module}") - median("pass")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    prometheus = shutil.which("prometheus")
    if not prometheus:
        sys.exit("make bench needs the prometheus binary (apt-get install prometheus)")
    work = tempfile.mkdtemp(prefix="bench-")
    start_ms = int(time.time() * 1000) - args.requests * 1000 - 60_000
    bodies = payloads(args.requests, start_ms, args.senders)
    samples = args.requests * SERIES
    results = {}
    processes = []
    try:
        port = free_port()
        config = os.path.join(work, "prometheus.yml")
        with open(config, "w") as handle:
            handle.write("global: {scrape_interval: 1h}\n")
        processes.append(Process([prometheus, f"--config.file={config}",
                                  f"--storage.tsdb.path={work}/prom",
                                  f"--web.listen-address=127.0.0.1:{port}",
                                  "--web.enable-remote-write-receiver", "--log.level=error"],
                                 os.path.join(work, "prometheus.log")))
        wait_for_port(port, processes[-1].proc)
        time.sleep(2)
        prom_url = f"http://127.0.0.1:{port}"
        results["write: Prometheus receiver (baseline)"] = samples / send_all(
            prom_url + "/api/v1/write", bodies, args.senders)

        # In-process, without and with the request's metrics published (the telemetry's own
        # cost), interleaved so both see the same machine.
        plain, counted = [0.0], [0.0]
        stores = (SQLiteStore(os.path.join(work, "inprocess")),
                  SQLiteStore(os.path.join(work, "inprocess-telemetry")))
        for body in bodies:
            for store, spent, publish in ((stores[0], plain, False), (stores[1], counted, True)):
                started = time.perf_counter()
                telemetry = RequestTelemetry("/write")
                handlers.write(body, HEADERS, store, Limits(deadline_seconds=3600), telemetry)
                if publish:
                    local.record(telemetry, 204, time.perf_counter() - started)
                spent[0] += time.perf_counter() - started
        results["write: connector in-process (embedded store)"] = samples / plain[0]
        results["write: in-process, metrics published"] = samples / counted[0]

        cport = free_port()
        env = dict(os.environ, DATA_DIR=os.path.join(work, "connector"))
        processes.append(Process([sys.executable, "-m", "localserver", "--stage", "local",
                                  "--host", "127.0.0.1", "--port", str(cport)],
                                 os.path.join(work, "connector.log"), env=env, cwd=ROOT))
        wait_for_port(cport, processes[-1].proc)
        conn_url = f"http://127.0.0.1:{cport}"
        results["write: connector over HTTP (make run)"] = samples / send_all(
            conn_url + "/write", bodies, args.senders)

        body = read_request(start_ms, start_ms + args.requests * 1000)
        elapsed, read_samples = time_reads(prom_url + "/api/v1/read", body, 5)
        results["read: Prometheus /api/v1/read (baseline)"] = read_samples / elapsed
        elapsed, ours = time_reads(conn_url + "/read", body, 5)
        assert ours == read_samples, (ours, read_samples)
        results["read: connector over HTTP (make run)"] = ours / elapsed
        from bench import backfill  # make backfill from the same Prometheus, same run
        backfills = backfill.figures(prometheus, prom_url, conn_url, start_ms,
                                     start_ms + args.requests * 1000, read_samples, work)
    finally:
        for proc in processes:
            proc.stop()
        shutil.rmtree(work, ignore_errors=True)

    write_base = results["write: Prometheus receiver (baseline)"]
    read_base = results["read: Prometheus /api/v1/read (baseline)"]
    print(f"\n{samples} samples in {args.requests} requests of {SERIES} series, "
          f"{args.senders} senders\n")
    print(f"{'measurement':48} {'samples/s':>12} {'vs baseline':>12}")
    for name, rate in results.items():
        base = write_base if name.startswith("write") else read_base
        print(f"{name:48} {rate:12,.0f} {rate / base:11.2f}x")
    backfill_base = backfills["backfill: into Prometheus receiver (baseline)"]
    for name, rate in backfills.items():
        print(f"{name:48} {rate:12,.0f} {rate / backfill_base:11.2f}x")
    boto3_s, app_s = import_seconds("boto3"), import_seconds("app")
    print(f"\n{'cold start (import, median of 7)':48} {'seconds':>12} {'vs baseline':>12}")
    print(f"{'import boto3 (baseline)':48} {boto3_s:12.3f} {1:11.2f}x")
    print(f"{'import app':48} {app_s:12.3f} {app_s / boto3_s:11.2f}x")
    read_memory.report()
    from bench import timestream_read  # Query round trips of a 240 000-sample read
    timestream_read.report()
    from bench import timestream_write  # metered writes vs the Go connector, CPU per sample
    print(f"\n{'Timestream writes (node_exporter payloads)':56} {'value':>12} {'vs baseline':>12}")
    for name, value, ratio in timestream_write.figures():
        print(f"{name:56} {value:12,.2f} {ratio:11.2f}x")
    from bench import influxdb  # the InfluxDB backend beside influxd's own endpoints
    influxdb.report(bodies, body, samples, args.senders, send_all)


if __name__ == "__main__":
    main()
