"""The EMF documents the connector prints on Lambda, checked against the Embedded Metric
Format specification (``tests.support.emf.valid_emf``)."""
import json

import pytest

from chalicelib.telemetry import emf, names
from chalicelib.telemetry.request import RequestTelemetry
from tests.support.emf import valid_emf

def printed(capsys, telemetry, seconds=0.25, stage="prod"):
    emf.record(telemetry, seconds, stage)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1  # one document per request
    return json.loads(lines[0])


def test_a_write_prints_one_valid_document_with_every_write_metric(capsys, monkeypatch):
    monkeypatch.delenv(names.NAMESPACE_ENV, raising=False)
    telemetry = RequestTelemetry("/write")
    telemetry.received, telemetry.stored, telemetry.write_units, telemetry.late = 10, 7, 3, 2
    telemetry.histograms = 4
    telemetry.dropped.update(exemplars=5, metadata=6)
    telemetry.reject("duplicate", 2)
    telemetry.reject("invalid_series", 1)
    stats = telemetry.calls("timestream", "WriteRecords")
    stats.call()
    stats.retried(throttled=True)
    stats.call()
    document = printed(capsys, telemetry)
    valid_emf(document)
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == names.DEFAULT_NAMESPACE
    assert directive["Dimensions"] == [list(names.DIMENSIONS)]
    assert (document["Stage"], document["Route"]) == ("prod", "/write")
    got = {m["Name"]: (m["Unit"], document[m["Name"]]) for m in directive["Metrics"]}
    expected = {"SamplesReceived": 10, "SamplesStored": 7, "SamplesRejected": 3,
                "SamplesFailed": 0, "TimestreamWriteUnits": 3, "LateSamples": 2,
                "HistogramsStored": 4, "ExemplarsDropped": 5, "MetadataDropped": 6,
                "Latency": 250.0, "BackendCalls": 2, "BackendRetries": 1,
                "BackendThrottles": 1, "BackendFailures": 0}
    assert {name: value for name, (_, value) in got.items()} == {
        name: [float(value)] for name, value in expected.items()}
    assert set(got) == set(names.WRITE_METRICS) | set(names.COMMON_METRICS)
    assert {name: unit for name, (unit, _) in got.items()} == {
        **names.WRITE_METRICS, **names.COMMON_METRICS}


def test_a_read_prints_its_query_calls_and_no_sample_metric(capsys, monkeypatch):
    monkeypatch.setenv(names.NAMESPACE_ENV, "MyTeam/Connector")
    telemetry = RequestTelemetry("/read")
    for _ in range(3):
        telemetry.calls("timestream", "Query").call()
    document = printed(capsys, telemetry, stage="dev")
    valid_emf(document)
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MyTeam/Connector"
    assert document["QueryCalls"] == [3.0] and document["Route"] == "/read"
    assert not set(names.WRITE_METRICS) & set(document)


@pytest.mark.parametrize("stage", ["", "influxdb"])
def test_the_stage_dimension_is_never_empty(capsys, stage):
    document = printed(capsys, RequestTelemetry("/write"), stage=stage)
    valid_emf(document)
    assert document["Stage"] == (stage or "unknown")
