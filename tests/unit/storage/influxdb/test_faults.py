"""Faults between the connector and a real influxd: 5xx, slow answers, the server stopped
mid-write. Transient failures are retried within the request deadline, then 503; nothing
acknowledged is lost."""
import threading
import time

import pytest

from chalicelib.errors import BackendUnavailable
from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series, WriteResult
from chalicelib.storage.influxdb import store as influxdb
from harness.influxd import FaultProxy, InfluxServer, fresh_store
from tests.support import context



def series(name, timestamps):
    return [Series((("__name__", name),), list(timestamps), [float(t) for t in timestamps])]


DEADLINE = 4.0  # seconds: the request deadline of these tests' requests


def read_timestamps(store, name):
    result = list(store.read(Query(0, 10 ** 9, (Matcher.of(0, "__name__", name),)),
                             context(10 ** 6, deadline_seconds=DEADLINE)))
    return [t for s in result for t in s.timestamps]


@pytest.fixture
def proxied(influx_server):
    proxy = FaultProxy(influx_server.url)
    store = fresh_store(influx_server, url=proxy.url)
    yield proxy, store
    proxy.stop()


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_transient_statuses_are_retried_and_the_write_lands(proxied, status):
    proxy, store = proxied
    proxy.status, proxy.fail, proxy.requests = status, 3, 0
    assert store.write(series("retried", [1, 2, 3]), context()).stored == 3
    assert proxy.requests == 4
    assert read_timestamps(store, "retried") == [1, 2, 3]


def test_reads_are_retried_too(proxied):
    proxy, store = proxied
    store.write(series("r", [1]), context())
    proxy.fail = 2
    assert read_timestamps(store, "r") == [1]


def test_failure_past_the_deadline_is_503(proxied):
    proxy, store = proxied
    proxy.fail = 10 ** 6
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="retry later") as raised:
        store.write(series("never", [1]), context(deadline_seconds=DEADLINE))
    assert raised.value.status == 503
    assert time.monotonic() - started < DEADLINE + 1
    with pytest.raises(BackendUnavailable):
        read_timestamps(store, "never")


def test_slow_answers_time_out_and_are_retried(proxied, monkeypatch):
    proxy, store = proxied
    monkeypatch.setattr(influxdb, "WRITE_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(influxdb, "MIN_ATTEMPT_SECONDS", 0.2)
    proxy.delay = 1.0
    with pytest.raises(BackendUnavailable, match="timed out|TimeoutError|timeout"):
        store.write(series("slow", [1]), context(deadline_seconds=DEADLINE))
    proxy.delay = 0.0
    assert store.write(series("slow", [2]), context()).stored == 1
    # The slow write may have landed after the client gave up: a retry by Prometheus
    # rewrites the same points (idempotent), never a different value.
    assert read_timestamps(store, "slow")[-1] == 2


def test_server_stopped_mid_write_loses_nothing_acknowledged():
    server = InfluxServer()
    try:
        store = fresh_store(server)
        acknowledged, refused = [], []
        stop = threading.Event()

        def writer():
            t = 0
            while not stop.is_set():
                batch = list(range(t, t + 50))
                t += 50
                try:
                    store.write(series("kept", batch), context(deadline_seconds=1.5))
                    acknowledged.extend(batch)
                except BackendUnavailable:
                    refused.extend(batch)  # 503: Prometheus would send these again

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(1.0)
        server.stop_process()  # influxd stops mid-write
        time.sleep(2.5)
        server.start()
        time.sleep(1.0)
        stop.set()
        thread.join(timeout=30)
        assert refused, "no write saw the server down"
        assert acknowledged
        stored = set(read_timestamps(store, "kept"))
        assert set(acknowledged) <= stored
    finally:
        server.stop()


@pytest.mark.parametrize("status", [200, 299])
def test_any_2xx_answer_means_success(proxied, status):
    proxy, store = proxied
    proxy.status, proxy.fail = status, 1
    assert store.write(series("ok", [1]), context()) == WriteResult(1, 0, ())
    proxy.fail = 1
    assert read_timestamps(store, "ok") == []  # what a 2xx answer holds: here no series


def test_a_body_over_the_servers_max_body_size_is_refused_once_not_retried(proxied):
    """413: InfluxDB takes no request this large; retrying cannot help, and the answer says
    which setting to lower."""
    proxy, store = proxied
    proxy.status, proxy.fail, proxy.requests = 413, 1, 0
    ctx = context()
    result = store.write(series("large", [1, 2]), ctx)
    assert (result.stored, result.rejected, proxy.requests) == (0, 2, 1)
    assert dict(ctx.telemetry.rejected) == {"limits": 2}
    assert result.reasons == ("InfluxDB did not store 2 of 2 points: HTTP 413 (injected): the "
                              "request was larger than InfluxDB's max-body-size; set "
                              "INFLUXDB_MAX_BODY_BYTES below it",)


def test_a_partial_write_of_influxdb_2_is_counted_once_not_retried(proxied):
    """InfluxDB 2.x answers a partial write on its v1 /write with 422 and its reason in
    ``message`` (http/legacy/write_handler.go): points it can never store, which a retry
    (a 5xx) would only send again, for ever."""
    proxy, store = proxied
    proxy.status, proxy.fail, proxy.requests = 422, 1, 0
    proxy.body = (b'{"code":"unprocessable entity","message":"failure writing points to '
                  b'database: partial write: input field \\"value\\" on measurement '
                  b'\\"partial\\" is type float, already exists as type string dropped=1"}')
    ctx = context()
    result = store.write(series("partial", [1, 2]), ctx)
    assert (result.stored, result.rejected, proxy.requests) == (1, 1, 1)
    assert dict(ctx.telemetry.rejected) == {"backend_refused": 1}
    assert result.reasons == ('InfluxDB did not store 1 of 2 points (partial{}): failure '
                              'writing points to database: partial write: input field "value" '
                              'on measurement "partial" is type float, already exists as type '
                              'string dropped=1',)


@pytest.mark.parametrize("status", [300, 409])
def test_other_refusals_are_a_5xx_that_says_so(proxied, status):
    from chalicelib.errors import BackendError
    proxy, store = proxied
    proxy.status, proxy.fail = status, 2
    with pytest.raises(BackendError) as raised:
        store.write(series("refused", [1]), context())
    assert str(raised.value) == f"InfluxDB refused the write (HTTP {status}): injected"
    with pytest.raises(BackendError) as raised:
        read_timestamps(store, "refused")
    assert str(raised.value) == f"InfluxDB refused the query (HTTP {status}): injected"


def test_a_histogram_influxdb_2_finds_too_long_is_counted_naming_its_series(proxied):
    """InfluxDB 1.8+/2.x refuse a string field over 1 MiB with a partial write that names
    the field and the measurement: the series is named, the histogram not counted stored."""
    from chalicelib.model import Histogram
    proxy, store = proxied
    proxy.status, proxy.fail = 422, 1
    proxy.body = (b'{"code":"unprocessable entity","message":"failure writing points to '
                  b'database: partial write: input field \\"histogram\\" on measurement '
                  b'\\"big\\" is too long, 2000000 > 1048576 dropped=1"}')
    big = Series((("__name__", "big"), ("job", "j")), [1], [1.0],
                 [Histogram(2, 1, 1.0, 0, 0.0, 0)])
    result = store.write([big, *series("small", [1])], context())
    assert (result.stored, result.rejected, result.histograms) == (2, 1, 0)
    assert result.reasons[0].startswith('InfluxDB did not store 1 of 3 points (big{job="j"}): '
                                        'failure writing points')
