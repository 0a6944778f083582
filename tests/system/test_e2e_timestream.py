"""End to end on the `dev` stage: a real Prometheus writes through `chalice local --stage dev`
into Timestream (a moto server), with basic-auth IAM keys.

Every WriteRecords call passes a proxy on its way to moto that answers one call in three
with a fault (500 or throttling) and judges the others by Timestream's documented write
rules (harness/timestream/write_rules.py: at least one dimension, conflicts, time window...).
The writer has a recording rule whose series has no label but its name. The records
must hold the writer's exact samples, with CommonAttributes and at most 100 records per
call; reading them back (the connector's SQL run on DuckDB loaded with those records)
must equal the writer Prometheus's own remote-read answer, sample bit for sample bit.
"""
import http.client
import http.server
import json
import os
import struct
import sys
import threading
import time

import boto3
from moto.server import ThreadedMotoServer

from chalicelib import handlers
from chalicelib.context import Limits
from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2
from chalicelib.storage.timestream.reader import (TimestreamQueryRunner,
                                                  TimestreamReader)
from chalicelib.storage.timestream.store import TimestreamStore
from harness.processes import ROOT, Process, free_port, wait_for_port
from harness.remote import post, read_request
from harness.timestream.env import DATABASE, TABLE, emulated_query_client
from harness.timestream.write_rules import WriteRules
from tests.support.prometheus import (LONG_NAME, VANISH_AFTER, FixtureExporter,
                                      start_prometheus,
                                      writer_config)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
LABELLESS = "cluster:http_requests:rate5m"
RULES = f"""groups:
  - name: e2e
    rules:
      - record: {LABELLESS}
        expr: sum(rate(prometheus_http_requests_total[5m]))
"""
FAULTS = [(500, "InternalServerException"), (400, "ThrottlingException")]


class RecordingProxy:
    """Forwards AWS JSON requests to moto; answers one WriteRecords call in three with a
    fault, judges the others by Timestream's write rules (``rules`` holds what the table
    stores) and keeps each accepted request body."""

    def __init__(self, target_port: int, rules: WriteRules) -> None:
        self.calls = []
        self.rules = rules
        self.write_calls = 0
        self.faults = 0
        self.refusals = []
        lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("X-Amz-Target", "").endswith(".WriteRecords"):
                    with lock:
                        proxy.write_calls += 1
                        fault = FAULTS[proxy.faults % 2] if proxy.write_calls % 3 == 0 else None
                        proxy.faults += fault is not None
                    if fault:
                        status, code = fault
                        return self.answer(status, json.dumps(
                            {"__type": code, "message": f"injected {code}"}).encode())
                    refusal = proxy.rules.write_records(json.loads(body))
                    if refusal is not None:
                        proxy.refusals.append(refusal)
                        return self.answer(refusal.status, refusal.body())
                conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request("POST", self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if self.headers.get("X-Amz-Target", "").endswith(".WriteRecords") \
                        and response.status == 200:
                    proxy.calls.append(json.loads(body))
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def records(self):
        return self.rules.records()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


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


def test_dev_stage_writes_exact_records_to_timestream_and_reads_them_back(tmp_path):
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    moto.start()
    stoppers = [moto.stop]
    try:
        moto_url = f"http://127.0.0.1:{moto._port}"
        admin = boto3.client("timestream-write", region_name="us-east-1", endpoint_url=moto_url)
        admin.create_database(DatabaseName=DATABASE)
        admin.create_table(DatabaseName=DATABASE, TableName=TABLE)
        proxy = RecordingProxy(moto._port, WriteRules())
        stoppers.append(proxy.stop)
        exporter = FixtureExporter()
        stoppers.append(exporter.stop)

        port = free_port()
        env = dict(os.environ, TIMESTREAM_ENDPOINT_URL=proxy.url, AWS_DEFAULT_REGION="us-east-1")
        connector = Process([os.path.join(sys.prefix, "bin", "chalice"), "local", "--stage",
                             "dev", "--host", "127.0.0.1", "--port", str(port),
                             "--no-autoreload"], str(tmp_path / "connector.log"), env=env,
                            cwd=ROOT)
        stoppers.append(connector.stop)
        wait_for_port(port, connector.proc)

        writer_port = free_port()
        rules = tmp_path / "rules.yml"
        rules.write_text(RULES)
        writer = start_prometheus(tmp_path, "writer", writer_port, writer_config(
            writer_port, exporter.port, f"http://127.0.0.1:{port}/write",
            auth=f'basic_auth: {{username: AKIDEXAMPLE, password: "{SECRET}"}}')
            + f"rule_files: [{json.dumps(str(rules))}]\n")
        stoppers.append(writer.stop)
        writer_url = f"http://127.0.0.1:{writer_port}"

        def newest_up_per_job():
            newest = {}
            for record in proxy.records():
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
        assert proxy.calls and all(len(c["Records"]) <= 100 for c in proxy.calls)
        assert all(c["CommonAttributes"]["TimeUnit"] == "MILLISECONDS" for c in proxy.calls)
        for call in proxy.calls:
            common = call["CommonAttributes"]
            assert "MeasureName" in common or all("MeasureName" in r for r in call["Records"])
            targets = {tuple(sorted((d["Name"], d["Value"])
                                    for d in common.get("Dimensions", []) + r.get("Dimensions", [])
                                    if d["Name"] in ("job", "instance")))
                       for r in call["Records"]}
            if len(targets) == 1 and len(next(iter(targets))) == 2:
                # one target per call: its labels are billed once
                assert {d["Name"] for d in common["Dimensions"]} >= {"job", "instance"}
        assert LONG_NAME in {r["MeasureName"] for r in proxy.records()}
        assert SECRET not in connector.log()
        # Faults were injected and retried; nothing was refused or answered 4xx/5xx.
        assert proxy.faults >= 3 and proxy.refusals == []
        assert "/write 4" not in connector.log() and "/write 5" not in connector.log()
        assert [r["Dimensions"] for r in proxy.records() if r["MeasureName"] == LABELLESS][0] \
            == [{"Name": "__name__", "Value": LABELLESS}]

        snapshot = proxy.records()  # the writer keeps writing; read what was sent by now
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
