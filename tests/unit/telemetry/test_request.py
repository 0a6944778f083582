"""One request's counts: calls by operation, rejections by a fixed set of reasons."""
import threading

from chalicelib.telemetry.request import REJECT_REASONS, RequestTelemetry


def test_calls_are_counted_per_backend_and_operation_and_summed():
    telemetry = RequestTelemetry("/write")
    writes = telemetry.calls("timestream", "WriteRecords")
    assert telemetry.calls("timestream", "WriteRecords") is writes
    writes.call()
    writes.call()
    writes.retried(throttled=True)
    writes.retried(throttled=False)
    telemetry.calls("timestream", "DescribeTable").failed(throttled=True)
    telemetry.calls("timestream", "DescribeTable").call()
    assert (writes.calls, writes.retries, writes.throttles, writes.failures) == (2, 2, 1, 0)
    assert telemetry.total("calls") == 3 and telemetry.total("throttles") == 2
    assert telemetry.total("failures") == 1 and telemetry.total("retries") == 2
    assert sorted(telemetry.operations()) == [("timestream", "DescribeTable"),
                                              ("timestream", "WriteRecords")]


def test_a_request_that_did_nothing_counts_nothing():
    """What an undecodable body or an empty read publishes: zeros, never a stray count."""
    telemetry = RequestTelemetry("/write")
    assert (telemetry.received, telemetry.stored, telemetry.failed, telemetry.write_units,
            telemetry.late) == (0, 0, 0, 0, 0)
    assert not telemetry.rejected and not telemetry.operations()
    assert telemetry.total("calls") == telemetry.total("throttles") == 0


def test_an_operation_that_fails_for_good_is_a_throttle_only_when_said_so():
    stats = RequestTelemetry("/write").calls("embedded", "write")
    stats.failed()
    assert (stats.failures, stats.throttles) == (1, 0)
    stats.failed(throttled=True)
    assert (stats.failures, stats.throttles) == (2, 1)


def test_a_reason_outside_the_fixed_set_is_counted_as_backend_refused():
    telemetry = RequestTelemetry("/write")
    telemetry.reject("duplicate", 2)
    telemetry.reject('job="from the request"', 3)
    assert dict(telemetry.rejected) == {"duplicate": 2, "backend_refused": 3}
    assert "backend_refused" in REJECT_REASONS


def test_counts_from_many_threads_add_up():
    telemetry = RequestTelemetry("/write")

    def work():
        stats = telemetry.calls("influxdb", "write")
        for _ in range(5000):
            stats.call()
            telemetry.reject("limits", 1)
            telemetry.add_write_units(2)
    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert telemetry.total("calls") == 20_000
    assert telemetry.rejected["limits"] == 20_000 and telemetry.write_units == 40_000
