"""Timestream write figures for `make bench`: metered writes and CPU per sample.

- Metered 1 KiB writes per million samples of realistic node_exporter remote-write requests
  (chalicelib/storage/timestream/metering.py, harness/workloads.py), this connector's calls against the Go connector's encoding.
- CPU per sample on the write path, measured in this process (process time): parsing alone
  (snappy + protobuf, the baseline), the connector (decode, translate, records), and boto3
  turning those calls into signed HTTP requests (the HTTP send itself is stubbed), with the
  client configuration the connector uses and with botocore's parameter validation on.
"""
import time
from typing import List, Tuple

from chalicelib.storage.timestream import metering
from chalicelib.protocol import codec, write_v1
from chalicelib.protocol.prompb import remote_pb2
from harness import workloads
from chalicelib.storage.timestream.records import build_batches
from harness.remote import HEADERS


def _bodies(requests: int, start_ms: int) -> Tuple[list, List[bytes]]:
    batches = workloads.node_exporter_requests(requests, start_ms)
    bodies = []
    for series in batches:
        request = remote_pb2.WriteRequest()
        for item in series:
            ts = request.timeseries.add()
            for name, value in item.labels:
                ts.labels.add(name=name, value=value)
            for timestamp, value in zip(item.timestamps, item.values):
                ts.samples.add(timestamp=timestamp, value=value)
        bodies.append(codec.encode_message(request))
    return batches, bodies


def _cpu(function) -> Tuple[float, object]:
    started = time.process_time()
    result = function()
    return time.process_time() - started, result


def _stubbed_client(validation: bool):
    import boto3
    from botocore.awsrequest import AWSResponse
    from botocore.config import Config

    from chalicelib.storage.timestream.client import client_config

    config = client_config(8, 5) if not validation else \
        client_config(8, 5).merge(Config(parameter_validation=True))
    client = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x",
                                   region_name="us-east-1").client(
        "timestream-write", endpoint_url="https://ingest.timestream.example", config=config)

    def answer(request, **kwargs):
        response = AWSResponse(request.url, 200, {"x-amzn-requestid": "1"}, None)
        response._content = b'{"RecordsIngested": {"Total": 1}}'
        return response
    client.meta.events.register("before-send.timestream-write.WriteRecords", answer)
    return client


def figures(requests: int = 30) -> List[Tuple[str, float, float]]:
    """(name, value, ratio to its baseline) rows."""
    now_ms = int(time.time() * 1000)
    batches, bodies = _bodies(requests, now_ms - 60_000)
    samples = sum(len(b) for b in batches)
    ours = sum(metering.connector_units(b, now_ms) for b in batches)
    go = sum(metering.go_units(b) for b in batches)
    rows = [("metered writes per M samples: Go connector (baseline)", go / samples * 1e6, 1.0),
            ("metered writes per M samples: this connector", ours / samples * 1e6, ours / go)]

    def parse():
        for body in bodies:
            codec.decode_write_request(body, HEADERS, 1 << 30)

    def connector():
        return [build_batches(write_v1.series_from_write_request(
            codec.decode_write_request(body, HEADERS, 1 << 30)).series, now_ms, None)[0]
            for body in bodies]
    connector()  # warm: a Prometheus sends the same series again and again
    parse_s, _ = _cpu(parse)
    connector_s, calls = _cpu(connector)
    calls = [call for request in calls for call in request]
    rows.append(("CPU us/sample: snappy + protobuf parse (baseline)", parse_s / samples * 1e6, 1.0))
    rows.append(("CPU us/sample: connector (decode, translate, records)",
                 connector_s / samples * 1e6, connector_s / parse_s))
    for validation in (True, False):
        client = _stubbed_client(validation)
        boto_s, _ = _cpu(lambda: [client.write_records(
            DatabaseName="d", TableName="t", CommonAttributes=call.common, Records=call.records)
            for call in calls])
        name = "boto3, parameter validation on" if validation else "boto3, as configured"
        rows.append((f"CPU us/sample: {name}", boto_s / samples * 1e6, boto_s / parse_s))
    return rows


if __name__ == "__main__":
    for row_name, value, ratio in figures():
        print(f"{row_name:56} {value:12,.2f} {ratio:11.2f}x")
