"""`make run` (chalice local on the embedded store, and on InfluxDB) over real HTTP."""
import http.client
import os
import sys
import threading

import pytest

from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2
from harness.processes import Process, free_port, wait_for_port
from harness.remote import (PROMETHEUS2_READ_HEADERS, read_request,
                            remote_read, remote_write, write_request)


def start(tmp_path, data_dir, **env_vars) -> (Process, str):
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATA_DIR=str(data_dir), **env_vars)
    proc = Process(["make", "--no-print-directory", "run", f"VENV={sys.prefix}"],
                   str(tmp_path / f"server-{port}.log"), env=env)
    try:
        wait_for_port(port, proc.proc, timeout=300)
    except Exception:
        proc.stop()
        raise
    return proc, f"http://127.0.0.1:{port}", port


@pytest.fixture(scope="module", params=["sqlite", "influxdb"])
def server(request, tmp_path_factory):
    """`make run` on the embedded store, and with the README's InfluxDB variables."""
    tmp_path = tmp_path_factory.mktemp("server")
    env = {}
    if request.param == "influxdb":
        influx = request.getfixturevalue("influx_server")
        env = {"STORAGE_BACKEND": "influxdb", "INFLUXDB_URL": influx.url,
               "INFLUXDB_DATABASE": "local_server"}
    proc, url, port = start(tmp_path, tmp_path / "data", **env)
    yield url, port, tmp_path
    proc.stop()


def raw_post(port, path, body, headers):
    """POST with exactly these headers (no Accept), as Prometheus does."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()




def test_read_without_accept_header_gets_snappy_protobuf(server):
    url, port, _ = server
    assert remote_write(url, write_request(({"__name__": "noaccept"}, [(5, 1.5)])))[0] == 204
    body = codec.encode_message(read_request((0, 10, [(0, "__name__", "noaccept")])))
    status, headers, data = raw_post(port, "/read", body, PROMETHEUS2_READ_HEADERS)
    assert status == 200, data
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["Content-Encoding"] == "snappy"
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(data, 1 << 20))
    assert response.results[0].timeseries[0].samples[0].value == 1.5


@pytest.mark.parametrize("body,headers,status,reason", [
    (b"\x05abc", PROMETHEUS2_READ_HEADERS, 400, b"snappy"),
    (b"garbage", {**PROMETHEUS2_READ_HEADERS, "Content-Type": "text/plain"}, 415, b"Content-Type"),
    (bytes([0x80, 0x80, 0x80, 0x80, 0x08]) + b"\x00", PROMETHEUS2_READ_HEADERS, 413, b"over the limit"),
    (b"", PROMETHEUS2_READ_HEADERS, 400, b"empty body"),
])
def test_bad_bodies_get_4xx_with_reason_and_server_keeps_serving(server, body, headers, status,
                                                                  reason):
    url, port, _ = server
    for path in ("/write", "/read"):
        got, _, text = raw_post(port, path, body, headers)
        assert (got, reason in text) == (status, True), text
    assert remote_write(url, write_request(({"__name__": "alive"}, [(1, 1.0)])))[0] == 204


def test_concurrent_writers_lose_nothing(server):
    url, _, _ = server
    errors = []

    def writer(worker):
        for batch in range(10):
            request = write_request(*[({"__name__": "conc", "w": str(worker), "s": str(s)},
                                       [(batch * 10 + i, float(i)) for i in range(10)])
                                      for s in range(20)])
            status, body = remote_write(url, request)
            if status != 204:
                errors.append((status, body))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    result = remote_read(url, read_request((0, 1000, [(0, "__name__", "conc")])))
    assert len(result.results[0].timeseries) == 4 * 20
    assert sum(len(ts.samples) for ts in result.results[0].timeseries) == 4 * 20 * 100


def test_data_survives_a_restart(tmp_path):
    proc, url, _ = start(tmp_path, tmp_path / "data")
    try:
        assert remote_write(url, write_request(({"__name__": "durable"}, [(7, 7.0)])))[0] == 204
    finally:
        proc.stop()
    proc, url, _ = start(tmp_path, tmp_path / "data")
    try:
        result = remote_read(url, read_request((0, 10, [(0, "__name__", "durable")])))
        assert result.results[0].timeseries[0].samples[0].value == 7.0
    finally:
        proc.stop()
    assert os.path.exists(tmp_path / "data" / "prometheus.sqlite3")


def test_log_level_from_the_shell_wins_over_the_stage(tmp_path):
    proc, url, _ = start(tmp_path, tmp_path / "data", LOG_LEVEL="debug")
    try:
        assert remote_write(url, write_request(({"__name__": "dbg"}, [(1, 1.0)])))[0] == 204
    finally:
        proc.stop()
    assert "write: 1 series, 1 samples stored" in proc.log()


def test_remote_write_2_over_real_http(server):
    """chalice local reads a 2.0 body (its Content-Type has a proto parameter) as binary."""
    from harness.remote import V2, V2_HEADERS, WRITTEN
    url, port, _ = server
    labels = {"__name__": "rw2.local", "service.name": "api"}
    status, headers, data = raw_post(port, "/write", V2().series(labels, [(7, 2.5)]).body(),
                                     V2_HEADERS)
    assert status == 204, data
    assert [headers[h] for h in WRITTEN] == ["1", "0", "0"]
    result = remote_read(url, read_request((0, 10, [(0, "service.name", "api")])))
    assert [{l.name: l.value for l in ts.labels} for ts in result.results[0].timeseries] == \
        [labels]


def test_streamed_remote_read_over_real_http(server):
    """As Prometheus >= 2.55 asks: STREAMED_XOR_CHUNKS first, no Accept header."""
    from tests.support.streamed_reader import as_bits, decode_xor, read_frames
    url, port, _ = server
    samples = [(t, float(t)) for t in range(1000, 1300)]
    assert remote_write(url, write_request(({"__name__": "streamed_local"}, samples)))[0] == 204
    request = read_request((0, 5000, [(0, "__name__", "streamed_local")]))
    request.accepted_response_types.extend([remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS,
                                            remote_pb2.ReadRequest.SAMPLES])
    status, headers, data = raw_post(port, "/read", codec.encode_message(request),
                                     dict(PROMETHEUS2_READ_HEADERS, **{"User-Agent": "Prometheus/3.5.0"}))
    assert status == 200, data
    assert headers["Content-Type"].startswith("application/x-streamed-protobuf")
    got = [s for frame in read_frames(data) for c in frame.chunked_series[0].chunks
           for s in decode_xor(c.data)]
    assert got == [(t, as_bits(v)) for t, v in samples]
