"""The checked-in protobuf code is exactly what protoc generates from the .proto files."""
import os
import subprocess
import sys

import pytest

from harness.processes import ROOT

PROTOS = ["chalicelib/protocol/prompb/types.proto", "chalicelib/protocol/prompb/remote.proto",
          "chalicelib/protocol/prompb/fastpath.proto", "chalicelib/protocol/prompb/write_v2.proto"]


def test_checked_in_code_equals_a_fresh_generation(tmp_path):
    pytest.importorskip("grpc_tools")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I.", f"--python_out={tmp_path}",
                    f"--pyi_out={tmp_path}", *PROTOS], cwd=ROOT, check=True)
    for proto in PROTOS:
        for suffix in ("_pb2.py", "_pb2.pyi"):
            generated = proto.replace(".proto", suffix)
            with open(tmp_path / generated) as fresh, open(os.path.join(ROOT, generated)) as kept:
                assert kept.read() == fresh.read(), f"{generated} is stale: run `make proto`"


def test_field_numbers_match_the_prometheus_wire_format():
    from chalicelib.protocol.prompb import remote_pb2, types_pb2
    numbers = {
        types_pb2.Sample: {"value": 1, "timestamp": 2},
        types_pb2.TimeSeries: {"labels": 1, "samples": 2, "exemplars": 3, "histograms": 4},
        types_pb2.Label: {"name": 1, "value": 2},
        types_pb2.LabelMatcher: {"type": 1, "name": 2, "value": 3},
        remote_pb2.WriteRequest: {"timeseries": 1, "metadata": 3},
        remote_pb2.ReadRequest: {"queries": 1, "accepted_response_types": 2},
        remote_pb2.ReadResponse: {"results": 1},
        remote_pb2.Query: {"start_timestamp_ms": 1, "end_timestamp_ms": 2, "matchers": 3,
                           "hints": 4},
        remote_pb2.QueryResult: {"timeseries": 1},
    }
    for message, fields in numbers.items():
        assert {f.name: f.number for f in message.DESCRIPTOR.fields
                if f.name in fields} == fields, message.DESCRIPTOR.name


def test_fast_path_view_is_wire_compatible_with_write_request():
    from chalicelib.protocol.prompb import fastpath_pb2, remote_pb2, types_pb2
    pairs = {fastpath_pb2.WriteRequestLabelsAsBytes: remote_pb2.WriteRequest,
             fastpath_pb2.TimeSeriesLabelsAsBytes: types_pb2.TimeSeries}
    for view, original in pairs.items():
        fields = {f.name: f for f in original.DESCRIPTOR.fields}
        for field in view.DESCRIPTOR.fields:
            twin = fields[field.name]
            assert field.number == twin.number, field.name
            assert field.is_repeated and twin.is_repeated, field.name
            # a message may be read as bytes: both are length-delimited on the wire
            assert field.type == twin.type or field.type == field.TYPE_BYTES, field.name


def test_remote_write_v2_field_numbers_match_the_specification():
    """prompb/io/prometheus/write/v2/types.proto (Prometheus v3.14.0), as the spec publishes it."""
    from chalicelib.protocol.prompb import write_v2_pb2 as v2
    numbers = {
        v2.Request: {"symbols": 4, "timeseries": 5},
        v2.TimeSeries: {"labels_refs": 1, "samples": 2, "histograms": 3, "exemplars": 4,
                        "metadata": 5},
        v2.Sample: {"value": 1, "timestamp": 2, "start_timestamp": 3},
        v2.Exemplar: {"labels_refs": 1, "value": 2, "timestamp": 3},
        v2.Metadata: {"type": 1, "help_ref": 3, "unit_ref": 4},
        v2.Histogram: {"count_int": 1, "count_float": 2, "sum": 3, "schema": 4,
                       "zero_threshold": 5, "timestamp": 15, "custom_values": 16,
                       "start_timestamp": 17},
    }
    for message, fields in numbers.items():
        actual = {f.name: f.number for f in message.DESCRIPTOR.fields}
        if message is v2.Histogram:  # its bucket fields are checked by the generation test
            actual = {name: actual[name] for name in fields}
        assert actual == fields, message.DESCRIPTOR.name
    assert v2.DESCRIPTOR.package == "io.prometheus.write.v2"
