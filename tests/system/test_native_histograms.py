"""Native histograms end to end, on every backend: a real Prometheus 2.42 scrapes them from
a protobuf exposition and remote-writes them (``send_native_histograms: true``) through the
README's `make run` (the embedded store, InfluxDB on a real influxd, the `dev` stage on the
Timestream emulation); `/read` answers them as the writer's own query API shows them, stale
markers included."""
import struct
import time

import pytest

from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2, types_pb2
from harness.processes import free_port, wait_for_port
from harness.remote import HEADERS, post, promql
from tests.support.native_histograms import (SCRAPES, NativeHistogramExporter, api_histograms,
                                             api_view, close)
from tests.support.prometheus import start_prometheus
from tests.support.streamed_reader import read_frames
from tests.system.test_e2e_prometheus import start_connector
from tests.system.test_e2e_timestream import AUTH, SECRET, dev_stage

NAMES = ("e2e_balance", "e2e_latency_seconds", "e2e_weights")
STALE = 0x7FF0000000000002


@pytest.fixture(params=["sqlite", "influxdb", "timestream"])
def connector(request, tmp_path):
    """The connector on one backend: (its URL, the writer's auth block, the reader's headers)."""
    if request.param == "timestream":
        from harness.timestream.env import DATABASE, TABLE, install_sql_functions
        from harness.timestream.query_service import QueryService
        from harness.timestream.server import TimestreamServer
        from harness.timestream.write_rules import WriteRules
        rules = WriteRules()
        server = TimestreamServer(DATABASE, TABLE, rules, QueryService(
            DATABASE, TABLE, rules.records, install_sql_functions))
        process, url = dev_stage(tmp_path, server)
        yield url, (f"basic_auth: {{username: AKIDEXAMPLE, password: {SECRET}}}",
                    {"Authorization": AUTH})
        process.stop()
        server.stop()
        return
    env = None
    if request.param == "influxdb":
        influxd = request.getfixturevalue("influx_server_for_e2e")
        env = {"STORAGE_BACKEND": "influxdb", "INFLUXDB_URL": influxd.url,
               "INFLUXDB_DATABASE": "prometheus"}
    process, port = start_connector(tmp_path, env)
    try:
        wait_for_port(port, process.proc, timeout=300)
        yield f"http://127.0.0.1:{port}", ("", {})
    finally:
        process.stop()


@pytest.fixture
def influx_server_for_e2e():
    from harness.influxd import InfluxServer
    server = InfluxServer()
    yield server
    server.stop()


def config(exporter_port: int, write_url: str, auth: str) -> str:
    return f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: histograms
    static_configs: [{{targets: ["127.0.0.1:{exporter_port}"]}}]
remote_write:
  - url: {write_url}
    send_native_histograms: true
    {auth}
    queue_config: {{min_shards: 1, max_shards: 1, batch_send_deadline: 500ms,
                    min_backoff: 100ms, max_backoff: 1s}}
"""


def histograms_read(url: str, headers: dict):
    """{labels: histograms} of the connector's SAMPLES answer for every NAMES series."""
    from chalicelib.protocol.histograms import from_message
    request = remote_pb2.ReadRequest()
    query = request.queries.add(start_timestamp_ms=0, end_timestamp_ms=int(time.time() * 1000))
    query.matchers.add(type=2, name="__name__", value="e2e_.*")
    status, _, body = post(url + "/read", codec.encode_message(request), {**HEADERS, **headers})
    assert status == 200, body
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(body, 1 << 30))
    [result] = response.results
    return {tuple(sorted((l.name, l.value) for l in ts.labels)):
            [from_message(h) for h in ts.histograms] for ts in result.timeseries}


def streamed_chunks(url: str, headers: dict, path: str):
    """{labels: [(type, min time, max time, bytes)]} of a streamed read of every NAMES
    series, as Prometheus 3 asks for it."""
    request = remote_pb2.ReadRequest(accepted_response_types=[
        remote_pb2.ReadRequest.STREAMED_XOR_CHUNKS])
    query = request.queries.add(start_timestamp_ms=0, end_timestamp_ms=int(time.time() * 1000))
    query.matchers.add(type=2, name="__name__", value="e2e_.*")
    status, _, body = post(url + path, codec.encode_message(request),
                           {**HEADERS, "User-Agent": "Prometheus/3.9.1", **headers})
    assert status == 200, body
    found = {}
    for frame in read_frames(body):
        for series in frame.chunked_series:
            labels = tuple(sorted((l.name, l.value) for l in series.labels))
            found.setdefault(labels, []).extend(
                (c.type, c.min_time_ms, c.max_time_ms, c.data) for c in series.chunks)
    return found


def is_stale(histogram) -> bool:
    return struct.unpack("<Q", struct.pack("<d", histogram.sum))[0] == STALE


def test_prometheus_2_42_native_histograms_are_stored_and_read_back(tmp_path, connector):
    url, (auth, headers) = connector
    exporter = NativeHistogramExporter()
    processes = []
    try:
        writer_port = free_port()
        processes.append(start_prometheus(
            tmp_path, "writer", writer_port, config(exporter.port, f"{url}/write", auth),
            flags=["--enable-feature=native-histograms"]))
        writer = f"http://127.0.0.1:{writer_port}"
        deadline = time.monotonic() + 90
        while True:  # until every series' stale marker has arrived
            found = histograms_read(url, headers)
            if len(found) == 3 and all(h and is_stale(h[-1]) for h in found.values()):
                break
            assert time.monotonic() < deadline, (exporter.scrapes, found)
            time.sleep(1)
        theirs = api_histograms(promql(writer, '{__name__=~"e2e_.*"}[10m]', time.time()))
        assert sorted(dict(labels)["__name__"] for labels in found) == list(NAMES)
        for labels, histograms in found.items():
            live = [h for h in histograms if not is_stale(h)]
            assert len(live) == SCRAPES  # every scrape, then exactly one stale marker
            assert [is_stale(h) for h in histograms] == [False] * SCRAPES + [True]
            expected = theirs[labels]
            assert [t for t, _ in expected] == [h.timestamp for h in live]
            for (_, view), histogram in zip(expected, live):
                assert close(api_view(histogram), view), (labels, histogram, view)
        kinds = {dict(labels)["__name__"]: {h.is_float for h in histograms}
                 for labels, histograms in found.items()}
        assert kinds == {"e2e_balance": {False}, "e2e_latency_seconds": {False},
                         "e2e_weights": {True}}  # its stale marker too
        # Streamed: the very chunks the writer's own TSDB holds, byte for byte. Except one
        # bit pair: Prometheus 2.42 re-encodes a series' open head chunk for a read and
        # loses its counter-reset header there (tsdb/querier.go, "Re-encode head chunks
        # that are still open"): the connector keeps the header the chunk was cut with.
        mine = streamed_chunks(url, headers, "/read")
        theirs = streamed_chunks(writer, {}, "/api/v1/read")
        assert mine.keys() == theirs.keys()
        for labels, chunks in mine.items():
            assert chunks[:-1] == theirs[labels][:-1], labels
            *meta, data = chunks[-1]
            *their_meta, their_data = theirs[labels][-1]
            assert meta == their_meta and their_data[2] & 0xC0 == 0, labels
            assert data[:2] + bytes([data[2] & 0x3F]) + data[3:] == their_data, labels
        [latency] = [chunks for labels, chunks in mine.items()
                     if dict(labels)["__name__"] == "e2e_latency_seconds"]
        assert [data[2] >> 6 for *_, data in latency] == [0, 2]  # unknown, then a reset
        assert {kind for chunks in mine.values() for kind, *_ in chunks} == {
            types_pb2.Chunk.HISTOGRAM, types_pb2.Chunk.FLOAT_HISTOGRAM}
    finally:
        for process in reversed(processes):
            process.stop()
        exporter.stop()
