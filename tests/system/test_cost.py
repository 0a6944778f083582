"""`make cost`: the write and query cost of a Prometheus's traffic, listened to or captured."""
import json
import os
import re
import shlex
import subprocess
import threading
import time
import urllib.parse
import urllib.request

import pytest

from bench import cost
from chalicelib import handlers
from chalicelib.context import Limits
from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2
from chalicelib.storage.timestream import metering
from chalicelib.storage.timestream.reader import READ_CONCURRENCY
from harness.processes import ROOT, free_port
from harness.remote import HEADERS, post, read_request, write_request
from harness.timestream.env import timestream_env
from tests.support import context
from tests.support.prometheus import start_prometheus

HOUR_MS = 3_600_000


def body(n: int = 50, now: int = None) -> bytes:
    now = now or int(time.time() * 1000)
    return codec.encode_message(write_request(*[
        ({"__name__": "node_load1", "job": "node", "instance": f"10.0.0.{i}:9100"}, [(now, 1.0)])
        for i in range(n)]))


def mixed_body(now: int) -> bytes:
    """Two metrics on 20 targets, one with a label the other lacks."""
    return codec.encode_message(write_request(*(
        [({"__name__": "node_load1", "job": "node", "instance": f"10.0.0.{i}:9100"},
          [(now - 1000, (now - 1000) % 997.0), (now, now % 997.0)]) for i in range(20)]
        + [({"__name__": "node_cpu_seconds_total", "job": "node", "cpu": "0", "mode": m,
             "instance": f"10.0.0.{i}:9100"}, [(now, 3.0)])
           for i in range(20) for m in ("idle", "user")])))


def reads(now: int):
    """Read requests as Prometheus sends them: several ranges, exact and regex matchers."""
    hour = now // HOUR_MS * HOUR_MS
    return [
        read_request((hour - 1_800_000, hour + 1_799_999, [(0, "__name__", "node_load1")])),
        read_request((hour - 3 * HOUR_MS, hour - 1, [(0, "__name__", "node_cpu_seconds_total"),
                                                     (0, "mode", "idle")])),
        read_request((now - 6 * HOUR_MS, now, [(2, "__name__", "node_.*"),
                                               (2, "instance", "10[.]0[.]0[.]1.*")])),
        read_request((0, 2 ** 62, [(0, "job", "node")]),
                     (now - 60_000, now, [(0, "__name__", "absent_metric")])),
    ]


def query_api(base_url: str, query: str) -> dict:
    """Prometheus's whole answer to an instant query now (remote-read failures are warnings)."""
    params = urllib.parse.urlencode({"query": query, "time": f"{time.time():.3f}"})
    with urllib.request.urlopen(f"{base_url}/api/v1/query?{params}", timeout=30) as response:
        return json.load(response)


def readme_cost_command() -> str:
    """The README's `make cost` line for captured write and read payloads."""
    with open(os.path.join(ROOT, "README.md")) as handle:
        text = handle.read()
    return next(line.split("#")[0].strip() for line in text.splitlines()
                if line.startswith("make cost") and "COST_READ_PAYLOADS=" in line)


def test_make_cost_reads_captured_payloads(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"body{i}"
        path.write_bytes(body())
        paths.append(str(path))
    result = subprocess.run(["make", "-s", "cost", "COST_SECONDS=10",
                             f"COST_PAYLOADS={' '.join(paths)}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "3 requests, 150 samples in 10 s: 15.0 samples/s" in result.stdout
    assert "this connector" in result.stdout and "Go connector" in result.stdout
    assert metering.PRICE_DATE in result.stdout
    assert "no remote reads: no query cost" in result.stdout


def test_the_readme_command_prices_captured_reads_next_to_the_writes(tmp_path):
    """The README's command as written, its file names pointing at captured bodies."""
    now = int(time.time() * 1000)
    words = shlex.split(readme_cost_command())
    assert words[:2] == ["make", "cost"]
    files = {}
    for word in words[2:]:
        name, _, value = word.partition("=")
        files[name] = value.split() if name.endswith("PAYLOADS") else value
    writes, read_files = files["COST_PAYLOADS"], files["COST_READ_PAYLOADS"]
    requests = reads(now)
    for index, name in enumerate(writes):
        (tmp_path / name).write_bytes(mixed_body(now - index * 1000))
    for index, name in enumerate(read_files):
        (tmp_path / name).write_bytes(codec.encode_message(requests[index % len(requests)]))
    args = [f"{name}={' '.join(str(tmp_path / v) for v in value)}"
            if isinstance(value, list) else f"{name}={value}" for name, value in files.items()]
    result = subprocess.run(["make", "-s", "cost", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    seconds = float(files["COST_SECONDS"])
    assert f"{len(read_files)} read requests in {seconds:g} s" in result.stdout
    assert "(an EXAMPLE price)" in result.stdout and metering.PRICING_PAGE in result.stdout
    assert metering.TCU_PAGE in result.stdout and metering.TCU_PAGE_DATE in result.stdout
    assert re.search(r"^mean +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+$", result.stdout, re.M)
    assert "per month at this rate" in result.stdout and "TCU-hours" in result.stdout


def test_statements_counted_are_what_the_query_api_receives_for_the_same_reads():
    """The same writes and reads through the connector's request handlers on the emulated
    Timestream: the Query executions and calls the emulation received are the ones
    `make cost` counts."""
    now = int(time.time() * 1000)
    writes = [mixed_body(now - 1000), mixed_body(now)]
    requests = [codec.encode_message(r) for r in reads(now)]
    counted, failures = cost.read_queries(writes, [cost.Read(r, {}) for r in requests], now)
    assert not failures
    with timestream_env() as env:
        for write in writes:
            handlers.write(write, HEADERS, env.store, Limits())
        # A store checks its credentials once (a SHOW MEASURES listing nothing) before its
        # first read: not a cost of each read.
        env.store.check_credentials(context())
        for request, expected in zip(requests, counted):
            executions, calls = len(env.queries.executions), len(env.queries.calls)
            handlers.read(request, HEADERS, env.store, Limits(deadline_seconds=600))
            assert len(env.queries.executions) - executions == expected.statements
            assert len(env.queries.calls) - calls == sum(expected.calls)
    # What the reader does, by construction: SHOW MEASURES, then one SELECT per whole-hour
    # slice (at most READ_CONCURRENCY; one over a week), per query of the request.
    assert [r.statements for r in counted] == [1 + 2, 1 + 3, 1 + READ_CONCURRENCY, 1 + 1 + 1]
    assert [r.peak for r in counted] == [2, 3, READ_CONCURRENCY, 1]


def test_tcu_seconds_follow_the_stated_formula():
    first, page = metering.STATEMENT_FIRST_PAGE_SECONDS, metering.STATEMENT_PAGE_SECONDS
    assert metering.read_tcu_seconds(metering.ReadQueries([], 0)) == 0
    # Short statements: the 30 s minimum of each TCU held at the peak (4 per statement).
    assert metering.read_tcu_seconds(metering.ReadQueries([2, 2, 2], 2)) == 4 * 2 * 30
    # Long statements: 4 TCUs for each statement's running time.
    calls = [2, 200, 300]
    held = 4 * sum(first + page * (c - 1) for c in calls)
    assert held > 4 * 2 * 30
    assert metering.read_tcu_seconds(metering.ReadQueries(calls, 2)) == pytest.approx(held)
    assert metering.monthly_query_price(1.0, 2.0) == pytest.approx(30 * 24 * 2.0)


def test_the_report_prices_reads_by_the_formula():
    now = int(time.time() * 1000)
    writes = [mixed_body(now)]
    captured = [cost.Read(codec.encode_message(r), {}) for r in reads(now)]
    counted, _ = cost.read_queries(writes, captured, now)
    tcu = [metering.read_tcu_seconds(r) for r in counted]
    text = cost.report(cost.Traffic(writes, captured), 20, usd_per_tcu_hour=0.25)
    assert f"{'mean':28} {sum(r.statements for r in counted) / 4:10,.1f}" in text
    assert f"{max(tcu):10,.1f}" in text.split("\nmax")[1].splitlines()[0]
    per_second = sum(tcu) / 20
    assert (f"{4 / 20 * 30 * 86_400:,.0f} reads, {per_second * 30 * 86_400 / 3600:,.1f} "
            f"TCU-hours, USD {metering.monthly_query_price(per_second, 0.25):,.2f} at "
            "USD 0.25 per TCU-hour, as given") in text


def test_listening_counts_what_a_sender_writes_and_prices_it():
    port = free_port()
    traffic = []
    listener = threading.Thread(target=lambda: traffic.append(cost.listen(port, 2)))
    listener.start()
    time.sleep(0.5)
    assert post(f"http://127.0.0.1:{port}/write", body(), {})[0] == 204
    listener.join()
    text = cost.report(traffic[0], 2)
    assert "1 requests, 50 samples in 2 s: 25.0 samples/s" in text
    go_units = metering.go_units(cost.series_of(traffic[0].writes[0]))
    go_month = go_units / 2 * 30 * 86_400
    assert f"{go_month:16,.0f} {metering.monthly_price(go_units / 2):12,.2f}" in text


def test_a_prometheus_reading_through_the_listener_gets_empty_answers_and_is_counted(tmp_path):
    """A real Prometheus with remote_write and remote_read at the listener: its PromQL
    queries succeed (each read answered with one empty result per query), and its reads are
    priced."""
    port, prom_port = free_port(), free_port()
    traffic = []
    listen_seconds = 16
    listener = threading.Thread(target=lambda: traffic.append(cost.listen(port, listen_seconds)))
    listener.start()
    config = f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: self
    static_configs: [{{targets: ["127.0.0.1:{prom_port}"]}}]
remote_write:
  - url: http://127.0.0.1:{port}/write
    queue_config: {{batch_send_deadline: 500ms}}
remote_read:
  - url: http://127.0.0.1:{port}/read
    read_recent: true
"""
    with start_prometheus(tmp_path, "prometheus", prom_port, config):
        base = f"http://127.0.0.1:{prom_port}"
        deadline = time.monotonic() + 12
        while True:  # the first scrape comes a few seconds after start
            answer = query_api(base, "up")
            assert answer["status"] == "success" and not answer.get("warnings"), answer
            if answer["data"]["result"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert answer["data"]["result"], answer  # the local answer, merged with no series
        answer = query_api(base, 'rate(prometheus_http_requests_total{handler="/metrics"}[30s])')
        assert answer["status"] == "success" and not answer.get("warnings"), answer
        listener.join()
    writes, read_bodies = traffic[0]
    assert writes and len(read_bodies) >= 2
    assert all(r.headers.get("User-Agent", "").startswith("Prometheus/") for r in read_bodies)
    text = cost.report(traffic[0], listen_seconds)
    assert f"{len(read_bodies)} read requests in {listen_seconds} s" in text
    counted, failures = cost.read_queries(writes, read_bodies, int(time.time() * 1000))
    assert not failures and all(r.statements >= 2 for r in counted)  # SHOW + a SELECT at least


def test_the_listener_answers_each_read_with_no_series_in_the_type_the_client_takes():
    request = read_request((0, 1, [(0, "__name__", "up")]), (0, 1, [(0, "job", "x")]))
    headers, answer = cost.empty_read_response(codec.encode_message(request))
    assert headers == codec.READ_RESPONSE_HEADERS
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(answer, 1 << 20))
    assert len(response.results) == 2 and not any(r.timeseries for r in response.results)
    request.accepted_response_types.append(remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS)
    headers, answer = cost.empty_read_response(codec.encode_message(request))
    assert headers == codec.STREAMED_READ_HEADERS and answer == b""
