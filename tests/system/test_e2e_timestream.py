"""End to end on the `dev` stage: a real Prometheus writes through `make run STAGE=dev`
into Timestream (harness/timestream/server.py: its ingest and query endpoints on two
addresses, each refusing the other's operations), with basic-auth IAM keys.

The table behaves as a busy production account's does: every DescribeTable is throttled,
one WriteRecords call in three fails (500 or throttling), and the others are judged by
Timestream's documented write rules (at least one dimension, conflicts, time window...).
The writer has a recording rule whose series has no label but its name. The records
must hold the writer's exact samples, with CommonAttributes and at most 100 records per
call; reading them back (the connector's SQL run on DuckDB loaded with those records)
must equal the writer Prometheus's own remote-read answer, sample bit for sample bit.
A one-hour read of 1 000 series through the stage, with each query taking 3 s to its
first page and 0.5 s per further page, comes back exact within the request deadline.
"""
import base64
import json
import os
import struct
import sys
import time

import pytest

from chalicelib import handlers
from chalicelib.context import Limits
from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2
from chalicelib.storage.timestream.reader import (TimestreamQueryRunner,
                                                  TimestreamReader)
from chalicelib.storage.timestream.store import TimestreamStore
from harness.processes import ROOT, Process, free_port, wait_for_port
from harness.remote import PROMETHEUS2_READ_HEADERS, post, read_request
from harness.timestream.env import (DATABASE, TABLE, emulated_query_client,
                                    install_sql_functions)
from harness.timestream.query_service import QueryService
from harness.timestream.server import TimestreamServer
from harness.timestream.write_rules import WriteRules
from tests.support.prometheus import (LONG_NAME, VANISH_AFTER, FixtureExporter,
                                      start_prometheus,
                                      writer_config)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AUTH = "Basic " + base64.b64encode(f"AKIDEXAMPLE:{SECRET}".encode()).decode()
LABELLESS = "cluster:http_requests:rate5m"
RULES = f"""groups:
  - name: e2e
    rules:
      - record: {LABELLESS}
        expr: sum(rate(prometheus_http_requests_total[5m]))
"""
FAULTS = [(500, "InternalServerException"), (400, "ThrottlingException")]


@pytest.fixture
def timestream():
    """The two endpoints of a busy account: DescribeTable always throttled, one write in
    three failing."""
    rules = WriteRules()
    queries = QueryService(DATABASE, TABLE, rules.records, install_sql_functions)
    server = TimestreamServer(DATABASE, TABLE, rules, queries, describe_throttled=True,
                              write_faults=FAULTS)
    yield server
    server.stop()


def dev_stage(tmp_path, server: TimestreamServer) -> (Process, str):
    """`make run STAGE=dev` with each Timestream endpoint set on its own."""
    port = free_port()
    env = dict(os.environ, TIMESTREAM_WRITE_ENDPOINT_URL=server.ingest_url,
               TIMESTREAM_QUERY_ENDPOINT_URL=server.query_url, AWS_DEFAULT_REGION="us-east-1")
    connector = Process(["make", "--no-print-directory", "run", "STAGE=dev", f"PORT={port}",
                         f"VENV={sys.prefix}"], str(tmp_path / "connector.log"), env=env,
                        cwd=ROOT)
    try:
        wait_for_port(port, connector.proc, timeout=300)
    except Exception:
        connector.stop()
        raise
    return connector, f"http://127.0.0.1:{port}"


def prometheus_remote_read(base_url: str, request) -> remote_pb2.ReadResponse:
    """The writer Prometheus's own answer (its /api/v1/read endpoint)."""
    status, _, body = post(base_url + "/api/v1/read", codec.encode_message(request),
                           {"Content-Type": "application/x-protobuf",
                            "Content-Encoding": "snappy"})
    assert status == 200, body
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(body, 1 << 30))
    return response


def comparable(result: remote_pb2.QueryResult):
    return [(tuple((l.name, l.value) for l in ts.labels),
             [(s.timestamp, struct.pack("<d", s.value)) for s in ts.samples])
            for ts in result.timeseries]


def test_dev_stage_writes_exact_records_to_timestream_and_reads_them_back(tmp_path,
                                                                          timestream):
    stoppers = []
    try:
        proxy = timestream
        exporter = FixtureExporter()
        stoppers.append(exporter.stop)

        connector, connector_url = dev_stage(tmp_path, timestream)
        stoppers.append(connector.stop)

        writer_port = free_port()
        rules = tmp_path / "rules.yml"
        rules.write_text(RULES)
        writer = start_prometheus(tmp_path, "writer", writer_port, writer_config(
            writer_port, exporter.port, connector_url + "/write",
            auth=f'basic_auth: {{username: AKIDEXAMPLE, password: "{SECRET}"}}')
            + f"rule_files: [{json.dumps(str(rules))}]\n")
        stoppers.append(writer.stop)
        writer_url = f"http://127.0.0.1:{writer_port}"

        def newest_up_per_job():
            newest = {}
            for record in proxy.rules.records():
                if record["MeasureName"] == "up":
                    job = {d["Name"]: d["Value"] for d in record["Dimensions"]}["job"]
                    newest[job] = max(newest.get(job, 0), int(record["Time"]))
                elif record["MeasureName"] == LABELLESS:
                    newest[LABELLESS] = max(newest.get(LABELLESS, 0), int(record["Time"]))
            return newest

        deadline = time.monotonic() + 90
        while len(newest_up_per_job()) < 3:  # both targets and the rule written
            assert time.monotonic() < deadline, connector.log() + writer.log()
            time.sleep(0.5)
        time.sleep(VANISH_AFTER + 2)  # the vanishing fixture series goes stale meanwhile
        at_ms = int(time.time() * 1000) - 500
        while min(newest_up_per_job().values()) <= at_ms + 2000:  # all up to at_ms sent
            assert time.monotonic() < deadline, connector.log() + writer.log()
            time.sleep(0.5)

        # The wire: CommonAttributes carry the shared parts, never more than 100 records.
        calls = list(proxy.written)
        assert calls and all(len(c["Records"]) <= 100 for c in calls)
        assert all(c["CommonAttributes"]["TimeUnit"] == "MILLISECONDS" for c in calls)
        for call in calls:
            common = call["CommonAttributes"]
            assert "MeasureName" in common or all("MeasureName" in r for r in call["Records"])
            targets = {tuple(sorted((d["Name"], d["Value"])
                                    for d in common.get("Dimensions", []) + r.get("Dimensions", [])
                                    if d["Name"] in ("job", "instance")))
                       for r in call["Records"]}
            if len(targets) == 1 and len(next(iter(targets))) == 2:
                # one target per call: its labels are billed once
                assert {d["Name"] for d in common["Dimensions"]} >= {"job", "instance"}
        assert LONG_NAME in {r["MeasureName"] for r in proxy.rules.records()}
        assert SECRET not in connector.log()
        # Faults were injected and retried; nothing was refused or answered 4xx/5xx.
        assert proxy.faults >= 3 and proxy.refusals == []
        assert "/write 4" not in connector.log() and "/write 5" not in connector.log()
        assert [r["Dimensions"] for r in proxy.rules.records()
                if r["MeasureName"] == LABELLESS][0] == [{"Name": "__name__", "Value": LABELLESS}]
        # Every DescribeTable was throttled, yet every write was stored; the lookup was tried
        # once, then not again for a minute: throttling is not fed by the connector.
        assert proxy.count("DescribeTable") == 1
        # Each client kept to its own endpoint.
        assert {name for endpoint, name in proxy.operations if endpoint == "ingest"} \
            == {"WriteRecords", "DescribeTable"}
        assert "cannot read the table's retention (ThrottlingException)" in connector.log()

        snapshot = proxy.rules.records()  # the writer keeps writing; read what was sent by now
        query_client, _ = emulated_query_client(lambda: snapshot)
        reader = TimestreamReader(TimestreamQueryRunner(query_client), DATABASE, TABLE)
        timestream = TimestreamStore(None, reader, DATABASE, TABLE, executor=None)
        start = at_ms - 60_000
        for matchers in ([(0, "__name__", "fixture_value")],
                         [(2, "__name__", "fixture_.*")],
                         [(0, "__name__", "fixture_value"), (0, "v", "")],
                         [(0, "__name__", "fixture_value"), (3, "kind", "n.*|quote")],
                         [(0, "__name__", "fixture_value"), (0, "kind", "vanishing")],
                         [(0, "job", "self"), (2, "__name__", "prometheus_tsdb_.*")],
                         [(0, "__name__", "up")],
                         [(0, "__name__", LABELLESS)]):
            request = read_request((start, at_ms, matchers))
            expected = prometheus_remote_read(writer_url, request).results[0]
            _, body = handlers.read(codec.encode_message(request),
                                    {"Content-Type": "application/x-protobuf",
                                     "Content-Encoding": "snappy"},
                                    timestream,
                                    # A long deadline: the emulation (DuckDB, a JVM for
                                    # regexes) is no measure of time.
                                    Limits(deadline_seconds=300, sample_limit=10 ** 7,
                                           byte_limit=1 << 30, max_decoded_bytes=1 << 26))
            got = remote_pb2.ReadResponse()
            got.ParseFromString(codec.decompress(body, 1 << 30))
            assert expected.timeseries, matchers
            assert comparable(got.results[0]) == comparable(expected), matchers
    finally:
        for stop in reversed(stoppers):
            stop()


def test_dev_stage_reads_an_hour_of_1000_series_exactly_from_a_slow_timestream(tmp_path,
                                                                                 timestream):
    """3 s to each query's first page, 0.5 s per further 1 MB page: 240 000 samples answered
    200, exact, inside the request deadline (REQUEST_DEADLINE_SECONDS, 25 s on the stage)."""
    end = int(time.time() * 1000) // 15_000 * 15_000
    times = list(range(end - 3_600_000 + 15_000, end + 1, 15_000))
    assert len(times) == 240
    for first in range(0, 1000, 100):  # what a writer stored, through the write rules
        for at in range(0, 240, 1):
            records = [{"Dimensions": [{"Name": "instance", "Value": f"host-{i:04d}"},
                                       {"Name": "job", "Value": "node"}],
                        "MeasureName": "load", "MeasureValueType": "DOUBLE",
                        "MeasureValue": repr(i + at / 4), "Time": str(times[at]),
                        "TimeUnit": "MILLISECONDS"} for i in range(first, first + 100)]
            assert timestream.rules.write_records({"Records": records}) is None
    timestream.queries.warm()  # loading the SQL engine is the emulation's cost, not the service's
    timestream.queries.first_page_seconds, timestream.queries.page_seconds = 3.0, 0.5
    connector, url = dev_stage(tmp_path, timestream)
    try:
        request = read_request((times[0], end, [(0, "__name__", "load"), (0, "job", "node")]))
        started = time.monotonic()
        status, _, body = post(url + "/read", codec.encode_message(request),
                               {**PROMETHEUS2_READ_HEADERS, "Authorization": AUTH})
        took = time.monotonic() - started
    finally:
        connector.stop()
    assert status == 200, (body[:300], connector.log()[-2000:])
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(body, 1 << 30))
    got = [([(l.name, l.value) for l in ts.labels], [(s.timestamp, s.value) for s in ts.samples])
           for ts in response.results[0].timeseries]
    assert got == [([("__name__", "load"), ("instance", f"host-{i:04d}"), ("job", "node")],
                    [(t, i + at / 4) for at, t in enumerate(times)]) for i in range(1000)]
    assert took < 25  # the stage's deadline: past it the answer would have been a 503
    pages = [c for c in timestream.queries.calls if c["Operation"] == "Query"]
    print(f"\n1 h x 1 000 series: {len(pages)} Query calls, {took:.1f} s")
    assert {endpoint for endpoint, name in timestream.operations if name == "Query"} == {"query"}
