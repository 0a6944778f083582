"""Native histograms end to end: a real Prometheus 2.42 scrapes them from a protobuf
exposition and remote-writes them (``send_native_histograms: true``) through the README's
`make run`; `/read` answers them as the writer's own query API shows them, stale markers
included, and streamed reads carry the writer's very chunks."""
import struct
import time

from chalicelib.protocol.prompb import remote_pb2
from harness.processes import free_port, wait_for_port
from harness.remote import promql, remote_read
from tests.support.native_histograms import (SCRAPES, NativeHistogramExporter, api_histograms,
                                             api_view, close)
from tests.support.prometheus import start_prometheus
from tests.system.test_e2e_prometheus import start_connector

NAMES = ("e2e_balance", "e2e_latency_seconds", "e2e_weights")
STALE = 0x7FF0000000000002


def config(exporter_port: int, write_url: str) -> str:
    return f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: histograms
    static_configs: [{{targets: ["127.0.0.1:{exporter_port}"]}}]
remote_write:
  - url: {write_url}
    send_native_histograms: true
    queue_config: {{min_shards: 1, max_shards: 1, batch_send_deadline: 500ms,
                    min_backoff: 100ms, max_backoff: 1s}}
"""


def histograms_read(url: str):
    """{labels: histograms} of the connector's SAMPLES answer for every NAMES series."""
    from chalicelib.protocol.histograms import from_message
    request = remote_pb2.ReadRequest()
    query = request.queries.add(start_timestamp_ms=0, end_timestamp_ms=2 ** 62)
    query.matchers.add(type=2, name="__name__", value="e2e_.*")
    [result] = remote_read(url, request).results
    return {tuple(sorted((l.name, l.value) for l in ts.labels)):
            [from_message(h) for h in ts.histograms] for ts in result.timeseries}


def is_stale(histogram) -> bool:
    return struct.unpack("<Q", struct.pack("<d", histogram.sum))[0] == STALE


def test_prometheus_2_42_native_histograms_are_stored_and_read_back(tmp_path):
    exporter = NativeHistogramExporter()
    processes = []
    try:
        connector, port = start_connector(tmp_path)
        processes.append(connector)
        wait_for_port(port, connector.proc, timeout=300)
        url = f"http://127.0.0.1:{port}"
        writer_port = free_port()
        processes.append(start_prometheus(
            tmp_path, "writer", writer_port, config(exporter.port, f"{url}/write"),
            flags=["--enable-feature=native-histograms"]))
        writer = f"http://127.0.0.1:{writer_port}"
        deadline = time.monotonic() + 90
        while True:  # until every series' stale marker has arrived
            found = histograms_read(url)
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
    finally:
        for process in reversed(processes):
            process.stop()
        exporter.stop()
