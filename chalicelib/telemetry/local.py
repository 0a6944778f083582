"""The connector's metrics in Prometheus's text format (``GET /metrics`` off Lambda), kept
with the prometheus-client library in a registry of their own.

Counters add up: ``connector_samples_received_total`` = ``..._stored_total`` + the sum of
``..._rejected_total`` over reasons + ``..._failed_total`` (samples of requests answered
5xx, which Prometheus sends again).
"""
from typing import Tuple

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest

from chalicelib.telemetry.request import DROPPED_KINDS, REJECT_REASONS, RequestTelemetry
from chalicelib.version import VERSION

REGISTRY = CollectorRegistry()
BUILD_INFO = Gauge("connector_build_info", "Always 1; the connector's version in its label.",
                   ["version"], registry=REGISTRY)
BUILD_INFO.labels(VERSION).set(1)
RECEIVED = Counter("connector_samples_received", "Samples decoded from write requests "
                   "(remote write 1.0 and 2.0).", registry=REGISTRY)
STORED = Counter("connector_samples_stored", "Samples the backend acknowledged.",
                 registry=REGISTRY)
HISTOGRAMS = Counter("connector_histograms_stored", "Of the samples stored, native histogram "
                     "samples.", registry=REGISTRY)
DROPPED = Counter("connector_dropped", "Exemplars and series metadata received and not kept "
                  "(no backend stores them), by kind.", ["kind"], registry=REGISTRY)
REJECTED = Counter("connector_samples_rejected", "Samples refused for good, by reason.",
                   ["reason"], registry=REGISTRY)
FAILED = Counter("connector_samples_failed", "Samples of write requests answered 5xx "
                 "(Prometheus sends them again).", registry=REGISTRY)
REQUESTS = Counter("connector_requests", "Requests answered, by route and HTTP status.",
                   ["route", "code"], registry=REGISTRY)
DURATION = Histogram("connector_request_duration_seconds", "Time to answer a request.",
                     ["route"], registry=REGISTRY,
                     buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 30))
CALLS = Counter("connector_backend_calls", "Calls (attempts) to the backend, by operation.",
                ["backend", "operation"], registry=REGISTRY)
RETRIES = Counter("connector_backend_retries", "Backend calls retried after a transient "
                  "failure.", ["backend", "operation"], registry=REGISTRY)
THROTTLES = Counter("connector_backend_throttles", "Backend answers asking to slow down "
                    "(Timestream ThrottlingException, InfluxDB 429).",
                    ["backend", "operation"], registry=REGISTRY)
FAILURES = Counter("connector_backend_failures", "Backend operations that failed for good.",
                   ["backend", "operation"], registry=REGISTRY)
READ_CALLS = Histogram("connector_read_backend_calls", "Backend calls one /read made "
                       "(Timestream: Query calls).", registry=REGISTRY,
                       buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512))
WRITE_UNITS = Counter("connector_timestream_write_units", "Timestream's metered 1 KiB write "
                      "units of the records it took.", registry=REGISTRY)
LATE = Counter("connector_timestream_late_samples", "Samples written to Timestream's magnetic "
               "store (older than the memory store's retention).", registry=REGISTRY)
for _reason in REJECT_REASONS:
    REJECTED.labels(_reason)  # every reason shown from the start, at 0
for _kind in DROPPED_KINDS:
    DROPPED.labels(_kind)


def record(telemetry: RequestTelemetry, status: int, seconds: float) -> None:
    """Add one answered request's counts."""
    route = telemetry.route
    REQUESTS.labels(route, str(status)).inc()
    DURATION.labels(route).observe(seconds)
    if route == "/write":
        RECEIVED.inc(telemetry.received)
        STORED.inc(telemetry.stored)
        HISTOGRAMS.inc(telemetry.histograms)
        for kind, count in telemetry.dropped.items():
            DROPPED.labels(kind).inc(count)
        FAILED.inc(telemetry.failed)
        for reason, samples in telemetry.rejected.items():
            REJECTED.labels(reason).inc(samples)
        WRITE_UNITS.inc(telemetry.write_units)
        LATE.inc(telemetry.late)
    for (backend, operation), stats in telemetry.operations().items():
        CALLS.labels(backend, operation).inc(stats.calls)
        RETRIES.labels(backend, operation).inc(stats.retries)
        THROTTLES.labels(backend, operation).inc(stats.throttles)
        FAILURES.labels(backend, operation).inc(stats.failures)
    if route == "/read":
        READ_CALLS.observe(telemetry.total("calls"))


def exposition() -> Tuple[bytes, str]:
    """The text exposition of every metric, and its Content-Type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
