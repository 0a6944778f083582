"""The Prometheus text exposition off Lambda."""
from prometheus_client.parser import text_string_to_metric_families

from chalicelib.telemetry import local
from chalicelib.telemetry.request import DROPPED_KINDS, REJECT_REASONS, RequestTelemetry


def samples():
    body, content_type = local.exposition()
    assert content_type.startswith("text/plain; version=")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode())
            for s in family.samples}


def test_a_request_adds_its_counts_and_every_reason_is_shown_from_the_start():
    before = samples()
    for reason in REJECT_REASONS:
        assert (("connector_samples_rejected_total", (("reason", reason),))) in before
    for kind in DROPPED_KINDS:
        assert (("connector_dropped_total", (("kind", kind),))) in before
    telemetry = RequestTelemetry("/write")
    telemetry.received, telemetry.stored, telemetry.write_units = 5, 3, 4
    telemetry.histograms = 2
    telemetry.dropped.update(exemplars=7)
    telemetry.reject("out_of_bounds", 2)
    telemetry.calls("influxdb", "write").call()
    telemetry.calls("influxdb", "write").retried(throttled=True)
    local.record(telemetry, 204, 0.02)
    after = samples()

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0)
    assert grew("connector_samples_received_total") == 5
    assert grew("connector_samples_stored_total") == 3
    assert grew("connector_histograms_stored_total") == 2
    assert grew("connector_dropped_total", kind="exemplars") == 7
    assert grew("connector_dropped_total", kind="metadata") == 0
    assert grew("connector_samples_rejected_total", reason="out_of_bounds") == 2
    assert grew("connector_samples_failed_total") == 0
    assert grew("connector_requests_total", route="/write", code="204") == 1
    assert grew("connector_request_duration_seconds_count", route="/write") == 1
    assert grew("connector_backend_calls_total", backend="influxdb", operation="write") == 1
    assert grew("connector_backend_retries_total", backend="influxdb", operation="write") == 1
    assert grew("connector_backend_throttles_total", backend="influxdb", operation="write") == 1
    assert grew("connector_timestream_write_units_total") == 4
    assert grew("connector_read_backend_calls_count") == 0  # a histogram of reads only


def test_a_read_observes_its_backend_calls_and_counts_no_samples():
    before = samples()
    telemetry = RequestTelemetry("/read")
    for _ in range(5):
        telemetry.calls("timestream", "Query").call()
    telemetry.received = 99  # never counted for a read
    local.record(telemetry, 200, 0.5)
    after = samples()
    assert after[("connector_read_backend_calls_count", ())] \
        - before.get(("connector_read_backend_calls_count", ()), 0) == 1
    assert after[("connector_read_backend_calls_sum", ())] \
        - before.get(("connector_read_backend_calls_sum", ()), 0) == 5
    assert after[("connector_samples_received_total", ())] \
        == before[("connector_samples_received_total", ())]


def test_build_info_names_the_version():
    from chalicelib.version import VERSION
    assert samples()[("connector_build_info", (("version", VERSION),))] == 1


def test_the_histograms_have_the_buckets_dashboards_query():
    """``histogram_quantile`` over these buckets (README): request times up to 30 s (the
    stages' Lambda timeout), backend calls per read in powers of two up to 512."""
    local.record(RequestTelemetry("/read"), 200, 0.1)

    def bounds(name, **labels):
        return [float(dict(key)["le"]) for (sample, key) in samples()
                if sample == name + "_bucket"
                and all(dict(key).get(k) == v for k, v in labels.items())]
    assert sorted(bounds("connector_request_duration_seconds", route="/read")) == [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 30, float("inf")]
    assert sorted(bounds("connector_read_backend_calls")) == [
        1, 2, 4, 8, 16, 32, 64, 128, 256, 512, float("inf")]
