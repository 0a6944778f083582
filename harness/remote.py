"""Clients of the remote-storage protocols, for tests and benchmarks: the headers Prometheus
sends, request builders, and POSTs to a connector's (or a Prometheus's) endpoints."""
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, List, Tuple

from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2, write_v2_pb2

#: What Prometheus sends with a remote-write 1.0 or remote-read request.
HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
#: What Prometheus 2.42 sends with a remote-read request.
PROMETHEUS2_READ_HEADERS = {**HEADERS, "User-Agent": "Prometheus/2.42.0",
                            "X-Prometheus-Remote-Read-Version": "0.1.0",
                            "Accept-Encoding": "snappy"}
#: What Prometheus 3 sends with a remote-write 2.0 request.
V2_HEADERS = {"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
              "Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "2.0.0",
              "User-Agent": "Prometheus/3.5.0"}

#: The headers a connector answers a remote-write 2.0 request with.
WRITTEN = ("X-Prometheus-Remote-Write-Samples-Written",
           "X-Prometheus-Remote-Write-Histograms-Written",
           "X-Prometheus-Remote-Write-Exemplars-Written")


def write_request(*series) -> remote_pb2.WriteRequest:
    """A WriteRequest from (labels dict, [(timestamp, value), ...]) pairs."""
    request = remote_pb2.WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, value in sorted(labels.items()):
            ts.labels.add(name=name, value=value)
        for timestamp, value in samples:
            ts.samples.add(timestamp=timestamp, value=value)
    return request


def read_request(*queries) -> remote_pb2.ReadRequest:
    """A ReadRequest from (start, end, [(type, name, value), ...]) triples."""
    request = remote_pb2.ReadRequest()
    for start, end, matchers in queries:
        query = request.queries.add(start_timestamp_ms=start, end_timestamp_ms=end)
        for type_, name, value in matchers:
            query.matchers.add(type=type_, name=name, value=value)
    return request


def post(url: str, body: bytes, headers: Dict[str, str]) -> Tuple[int, Dict[str, str], bytes]:
    """POST and return (status, headers, body) for any status."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def remote_write(base_url: str, request: remote_pb2.WriteRequest) -> Tuple[int, bytes]:
    status, _, body = post(base_url + "/write", codec.encode_message(request), HEADERS)
    return status, body


def remote_read(base_url: str, request: remote_pb2.ReadRequest) -> remote_pb2.ReadResponse:
    status, headers, body = post(base_url + "/read", codec.encode_message(request), HEADERS)
    assert status == 200, (status, body)
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(body, 1 << 30))
    return response


def promql(base_url: str, query: str, at: float) -> List[dict]:
    """Evaluate ``query`` at time ``at`` through Prometheus's HTTP API; sorted result."""
    params = urllib.parse.urlencode({"query": query, "time": f"{at:.3f}"})
    with urllib.request.urlopen(f"{base_url}/api/v1/query?{params}", timeout=30) as response:
        payload = json.load(response)
    assert payload["status"] == "success", payload
    result = payload["data"]["result"]
    if isinstance(result, list):
        result.sort(key=lambda item: json.dumps(item.get("metric", {}), sort_keys=True))
    return result


class V2:
    """Builds an io.prometheus.write.v2.Request as a sender does: one interned symbol
    table (starting with ""), labels as sorted name/value reference pairs."""

    def __init__(self) -> None:
        self.request = write_v2_pb2.Request()
        self.request.symbols.append("")
        self.index = {"": 0}

    def ref(self, text: str) -> int:
        if text not in self.index:
            self.index[text] = len(self.request.symbols)
            self.request.symbols.append(text)
        return self.index[text]

    def series(self, labels, samples=(), histograms=(), exemplars=(), refs=None,
               help_text="", unit=""):
        ts = self.request.timeseries.add()
        ts.labels_refs.extend(refs if refs is not None else
                              [self.ref(s) for name in sorted(labels)
                               for s in (name, labels[name])])
        for timestamp, value in samples:
            ts.samples.add(timestamp=timestamp, value=value, start_timestamp=timestamp - 500)
        for timestamp in histograms:
            ts.histograms.add(timestamp=timestamp, count_int=3, sum=1.5, schema=0)
        for timestamp, value in exemplars:
            ts.exemplars.add(labels_refs=[self.ref("trace_id"), self.ref("abc")],
                             value=value, timestamp=timestamp)
        ts.metadata.type = write_v2_pb2.Metadata.METRIC_TYPE_COUNTER
        ts.metadata.help_ref = self.ref(help_text)
        ts.metadata.unit_ref = self.ref(unit)
        return self

    def body(self) -> bytes:
        return codec.encode_message(self.request)
