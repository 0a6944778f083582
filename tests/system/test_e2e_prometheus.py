"""End to end with the real `prometheus` binary and `make run` (the local server).

A writer Prometheus scrapes itself and a fixture exporter and remote-writes through
the connector; a reader Prometheus with only remote_read answers PromQL queries,
which must equal the writer's own answers at the same evaluation time.
"""
import os
import sys
import time

import pytest

from chalicelib.protocol.prompb import remote_pb2
from harness.processes import ROOT, Process, free_port, wait_for_port
from harness.remote import promql, remote_read
from tests.support.prometheus import (LONG_NAME, FixtureExporter,
                                      start_prometheus,
                                      writer_config)


QUERIES = [
    "fixture_value",
    'fixture_value{kind="quote"}',
    'fixture_value{v="say \\"hi\\""}',
    'fixture_value{v="C:\\\\path\\\\x"}',
    'fixture_value{v="ünïcødé ✓ 日本"}',
    'fixture_value{v="two\\nlines"}',
    'fixture_value{v="x\' OR \'1\'=\'1"}',
    'fixture_value{kind!="nan"}',
    'fixture_value{kind=~"n.*"}',
    'fixture_value{kind=~"nan|inf"}',
    'fixture_value{kind!~"n.*|inf"}',
    'fixture_value{kind=~"(?i)QUOTE|s.*"}',
    'fixture_value{v=""}',
    'fixture_value{v!=""}',
    'fixture_value{v=~".*"}',
    'fixture_value{v=~".+"}',
    'fixture_value{v!~"C.*"}',
    'fixture_value{v=~"two.lines"}',
    'fixture_value{v=~"ü.*"}',
    "fixture_value[10s]",
    'fixture_value{kind="nan"}[5s]',
    LONG_NAME,
    '{__name__=~"fixture_a_metric.*"}',
    'up{job="fixture"}',
    "up",
    "prometheus_build_info",
    'rate(prometheus_http_requests_total{handler="/metrics"}[30s])',
    'count({__name__=~".+"})',
    'count by (job) ({__name__=~".+",job!=""})',
]


# Queries whose right answer is empty: in Prometheus 2.42, "." does not match "\n".
EMPTY_ANSWERS = {'fixture_value{v=~"two.lines"}'}


def start_connector(tmp_path, backend_env=None) -> (Process, str):
    """The README's `make run`, with PORT and DATA_DIR overriding the defaults (and, for
    the InfluxDB backend, the README's STORAGE_BACKEND/INFLUXDB_* variables)."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATA_DIR=str(tmp_path / "connector-data"),
               **(backend_env or {}))
    proc = Process(["make", "--no-print-directory", "run", f"VENV={sys.prefix}"],
                   str(tmp_path / "connector.log"), env=env)
    return proc, port


def latest_timestamp(base_url: str, job: str) -> int:
    request = remote_pb2.ReadRequest()
    query = request.queries.add(start_timestamp_ms=0, end_timestamp_ms=2 ** 62)
    query.matchers.add(type=0, name="__name__", value="up")
    query.matchers.add(type=0, name="job", value=job)
    response = remote_read(base_url, request)
    stamps = [s.timestamp for ts in response.results[0].timeseries for s in ts.samples]
    return max(stamps, default=0)


@pytest.fixture(params=["sqlite", "influxdb", "influxdb-packaged"])
def backend(request, tmp_path):
    """How the connector runs per backend: the README's `make run` (the embedded store, or
    `STORAGE_BACKEND=influxdb INFLUXDB_URL=... INFLUXDB_DATABASE=prometheus` on a real
    influxd), or the `influxdb` stage's packaged zip behind an API Gateway stand-in.
    Yields (start() -> (process, port), a check that the samples are in the backend)."""
    if request.param == "sqlite":
        yield (lambda: start_connector(tmp_path),
               lambda: os.listdir(tmp_path / "connector-data"))
        return
    server = request.getfixturevalue("influx_server_for_e2e")
    # The database does not exist yet: the connector creates it.
    env = {"STORAGE_BACKEND": "influxdb", "INFLUXDB_URL": server.url,
           "INFLUXDB_DATABASE": "prometheus"}
    stored = lambda: server.query("SHOW MEASUREMENTS", db="prometheus")["results"][0]["series"]  # noqa: E731
    if request.param == "influxdb":
        yield lambda: start_connector(tmp_path, env), stored
        return
    yield lambda: start_packaged(tmp_path, "influxdb", env), stored


def start_packaged(tmp_path, stage: str, env: dict) -> (Process, int):
    """`make package STAGE=stage`'s zip, run with only its own contents (python -I -S)
    behind tests/support/lambda_gateway.py, with the environment the template would set."""
    import shutil
    import zipfile

    from deploy.package import package
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    package(stage, str(tmp_path / "package"))
    code = tmp_path / "lambda"
    with zipfile.ZipFile(tmp_path / "package" / "deployment.zip") as archive:
        archive.extractall(code)
    shutil.copy(os.path.join(ROOT, "tests", "support", "lambda_gateway.py"), code / "lambda_gateway.py")
    port = free_port()
    proc = Process([sys.executable, "-I", "-S", "lambda_gateway.py", str(port), stage],
                   str(tmp_path / "connector.log"), cwd=str(code),
                   env={"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1",
                        "AUTH_MODE": "role", "LOG_LEVEL": "info", **env})
    return proc, port


@pytest.fixture
def influx_server_for_e2e():
    from harness.influxd import InfluxServer
    server = InfluxServer()
    yield server
    server.stop()


def test_writer_and_reader_prometheus_agree(tmp_path, backend):
    processes = []
    exporter = FixtureExporter()
    try:
        start, stored_in_backend = backend
        connector, connector_port = start()
        processes.append(connector)
        connector_url = f"http://127.0.0.1:{connector_port}"
        wait_for_port(connector_port, connector.proc, timeout=300)

        writer_port, reader_port = free_port(), free_port()
        processes.append(start_prometheus(tmp_path, "writer", writer_port, writer_config(
            writer_port, exporter.port, f"{connector_url}/write")))
        writer = processes[-1]
        processes.append(start_prometheus(tmp_path, "reader", reader_port, f"""
global: {{scrape_interval: 1m}}
remote_read:
  - url: {connector_url}/read
    read_recent: true
"""))

        writer_url = f"http://127.0.0.1:{writer_port}"
        reader_url = f"http://127.0.0.1:{reader_port}"
        vanished = 'fixture_value{kind="vanishing"}'
        # Evaluate once the vanishing series has gone stale in the writer.
        deadline = time.monotonic() + 60
        while True:
            at = time.time() - 0.5
            if promql(writer_url, vanished + "[30s]", at) and not promql(writer_url, vanished, at):
                break
            assert time.monotonic() < deadline, "the vanishing series never went stale"
            time.sleep(0.5)
        while min(latest_timestamp(connector_url, job) for job in ("self", "fixture")) \
                < at * 1000 + 2000:
            assert time.monotonic() < deadline, "writes did not reach the connector:\n" \
                + writer.log() + connector.log()
            time.sleep(0.5)

        # A stale marker (a NaN with special bits) ends the vanishing series: the
        # reader sees it end too only if the connector kept the marker's exact bits.
        assert promql(reader_url, vanished, at) == []
        assert promql(reader_url, vanished + "[30s]", at) == promql(writer_url, vanished + "[30s]", at)
        for query in QUERIES:
            expected = promql(writer_url, query, at)
            assert bool(expected) != (query in EMPTY_ANSWERS), f"fixture is wrong for {query}"
            assert promql(reader_url, query, at) == expected, query
        assert stored_in_backend()  # the samples are where the backend keeps them
    finally:
        for proc in reversed(processes):
            proc.stop()
        exporter.stop()
