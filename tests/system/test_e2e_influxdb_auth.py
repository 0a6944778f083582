"""End to end with credentials: a real Prometheus sends basic_auth through `make run`
(AUTH_MODE=basic) to an influxd with authentication on, as a user with rights on one
database only; the connector passes the credentials through and never logs them."""
import base64
import os
import sys
import time

from chalicelib.protocol import codec
from harness.influxd import InfluxServer
from harness.processes import Process, free_port, wait_for_port
from harness.remote import post, read_request
from tests.support.prometheus import (FixtureExporter,
                                      start_prometheus, writer_config)

PASSWORD = "p-secret-4f9a"


def test_prometheus_basic_auth_reaches_influxdb_and_is_enforced(tmp_path):
    server = InfluxServer(auth=True)
    exporter = FixtureExporter()
    processes = []
    try:
        server.query('CREATE DATABASE "prometheus"')
        server.query(f"CREATE USER prom WITH PASSWORD '{PASSWORD}'")
        server.query('GRANT ALL ON "prometheus" TO prom')
        port = free_port()
        env = dict(os.environ, PORT=str(port), STORAGE_BACKEND="influxdb",
                   INFLUXDB_URL=server.url, INFLUXDB_DATABASE="prometheus", AUTH_MODE="basic")
        connector = Process(["make", "--no-print-directory", "run", f"VENV={sys.prefix}"],
                            str(tmp_path / "connector.log"), env=env)
        processes.append(connector)
        wait_for_port(port, connector.proc, timeout=300)
        url = f"http://127.0.0.1:{port}"
        writer_port = free_port()
        processes.append(start_prometheus(tmp_path, "writer", writer_port, writer_config(
            writer_port, exporter.port, f"{url}/write",
            auth=f'basic_auth: {{username: prom, password: "{PASSWORD}"}}')))

        deadline = time.monotonic() + 90
        while not server.query('SELECT count("value") FROM "up"', db="prometheus")[
                "results"][0].get("series"):
            assert time.monotonic() < deadline, connector.log() + processes[-1].log()
            time.sleep(0.5)

        body = codec.encode_message(read_request((0, 2 ** 62, [(0, "__name__", "up")])))
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}

        def read(user, password, body=body):
            auth = base64.b64encode(f"{user}:{password}".encode()).decode()
            return post(url + "/read", body, {**headers, "Authorization": f"Basic {auth}"})

        status, _, data = read("prom", PASSWORD)
        assert status == 200, data
        assert b"up" in codec.decompress(data, 1 << 24)
        status, _, data = read("prom", "wrong")
        assert status == 401 and b"refused the credentials in Prometheus's basic_auth" in data
        # Credentials are checked before any matcher is compiled: regexes over the request's
        # budget are refused (400) only for a known user; an unknown one costs them nothing.
        heavy = codec.encode_message(read_request((0, 1, [(0, "__name__", "up")] + [
            (3, "job", r"\pL{30}q%d" % i) for i in range(100)])))
        status, _, data = read("prom", "wrong", heavy)
        assert status == 401, data
        status, _, data = read("prom", PASSWORD, heavy)
        assert status == 400 and b"RE2 instructions in all" in data, data
        status, response_headers, data = post(url + "/read", body, headers)
        assert status == 401 and b"configure basic_auth" in data
        assert "WWW-Authenticate" in response_headers
        assert PASSWORD not in connector.log()
    finally:
        for proc in reversed(processes):
            proc.stop()
        exporter.stop()
        server.stop()
