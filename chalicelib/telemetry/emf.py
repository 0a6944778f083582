"""The connector's metrics on Lambda: one CloudWatch Embedded Metric Format document per
request on stdout (AWS Lambda Powertools' Metrics), which CloudWatch Logs turns into
metrics. No PutMetricData call, no extra IAM right. The names are in ``names``."""
import os

from chalicelib.telemetry.names import (COMMON_METRICS, DEFAULT_NAMESPACE, NAMESPACE_ENV,
                                        READ_METRICS, WRITE_METRICS)
from chalicelib.telemetry.request import RequestTelemetry


def values(telemetry: RequestTelemetry, seconds: float) -> dict:
    """Every metric of the request's route, by name: 0 when nothing happened, so an alarm
    on "nothing stored" sees zeros while requests arrive."""
    result = {"Latency": seconds * 1000.0, "BackendCalls": telemetry.total("calls"),
              "BackendRetries": telemetry.total("retries"),
              "BackendThrottles": telemetry.total("throttles"),
              "BackendFailures": telemetry.total("failures")}
    if telemetry.route == "/write":
        result.update(SamplesReceived=telemetry.received, SamplesStored=telemetry.stored,
                      SamplesRejected=sum(telemetry.rejected.values()),
                      SamplesFailed=telemetry.failed, HistogramsStored=telemetry.histograms,
                      ExemplarsDropped=telemetry.dropped["exemplars"],
                      MetadataDropped=telemetry.dropped["metadata"],
                      TimestreamWriteUnits=telemetry.write_units, LateSamples=telemetry.late)
    else:
        result["QueryCalls"] = telemetry.total("calls")
    return result


def record(telemetry: RequestTelemetry, seconds: float, stage: str) -> None:
    """Print the request's EMF document (dimensions Stage and Route)."""
    # Imported on the first request, not at cold start's import of the app.
    from aws_lambda_powertools.metrics import Metrics

    units = {**WRITE_METRICS, **READ_METRICS, **COMMON_METRICS}
    metrics = Metrics(namespace=os.environ.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE)
    metrics.add_dimension(name="Stage", value=stage or "unknown")
    metrics.add_dimension(name="Route", value=telemetry.route)
    for name, value in values(telemetry, seconds).items():
        metrics.add_metric(name=name, unit=units[name], value=value)
    metrics.flush_metrics()
