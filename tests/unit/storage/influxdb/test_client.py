"""The InfluxDB v1 client on a real influxd: what each status means to the user, answers
cut off mid-way, chunked reads, and the retry schedule inside the request deadline."""
import re
import socket
import threading

import pytest

from chalicelib import retry
from chalicelib.errors import (BackendError, BackendUnavailable, BadRequest, Forbidden,
                               Unauthorized)
from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series
from chalicelib.retry import Transient
from chalicelib.storage.influxdb.client import InfluxClient, http_error
from chalicelib.storage.influxdb.credentials import InfluxCredentials
from chalicelib.storage.influxdb.store import MIN_ATTEMPT_SECONDS
from harness.influxd import FaultProxy, fresh_store
from tests.support import FakeDeadline, context


def with_retries(call, deadline, what, timeout):
    """The InfluxDB store's retries of one ``what`` (write, query)."""
    return retry.with_retries(call, deadline, f"InfluxDB {what}", timeout, MIN_ATTEMPT_SECONDS)


ROLE = InfluxCredentials("u", "p", origin="INFLUXDB_USERNAME/INFLUXDB_PASSWORD")
PROMETHEUS = InfluxCredentials("u", "p", origin="Prometheus basic_auth")


def test_a_url_with_a_trailing_slash_reaches_the_same_server(influx_server):
    store = fresh_store(influx_server, url=influx_server.url + "/")
    assert store.write([Series((("__name__", "m"),), [1], [1.0])], context()).stored == 1
    [found] = list(store.read(Query(0, 10, (Matcher.of(0, "__name__", "m"),)), context(10)))
    assert list(found.values) == [1.0]


def test_a_refused_statement_says_what_influxdb_said(influx_server):
    client = InfluxClient(influx_server.url, "any")
    with pytest.raises(BadRequest) as raised:
        list(client.query("SELEC x", 5))
    assert str(raised.value).startswith(
        "InfluxDB refused the query (HTTP 400): error parsing query: found SELEC")


def test_reads_arrive_in_chunks_of_ten_thousand_points(influx_server):
    store = fresh_store(influx_server)
    store.write([Series((("__name__", "c"),), list(range(25_000)), [1.0] * 25_000)], context())
    results = list(store.client.query('SELECT "value" FROM "c" GROUP BY *', 10))
    assert [len(r["series"][0]["values"]) for r in results] == [10_000, 10_000, 5_000]
    assert results[1]["series"][0]["values"][0] == [10_000, 1]


def test_negative_zero_reads_back_as_negative_zero(influx_server):
    store = fresh_store(influx_server)
    store.write([Series((("__name__", "z"),), [1, 2], [-0.0, 0.0])], context())
    [found] = list(store.read(Query(0, 10, (Matcher.of(0, "__name__", "z"),)), context(10)))
    assert [str(v) for v in found.values] == ["-0.0", "0.0"]


@pytest.mark.parametrize("status", [429, 500, 503, 599])
def test_throttling_and_server_errors_are_worth_retrying(status):
    error = http_error(status, "busy", "write", ROLE)
    assert isinstance(error, Transient) and str(error) == f"HTTP {status}: busy"


@pytest.mark.parametrize("status,cls", [(401, Unauthorized), (403, Forbidden)])
def test_refused_prometheus_credentials_are_the_clients_own_401_403(status, cls):
    error = http_error(status, "authorization failed", "read", PROMETHEUS)
    assert type(error) is cls and error.status == status
    assert str(error) == ("InfluxDB refused the credentials in Prometheus's basic_auth for "
                          f"read (HTTP {status}: authorization failed)")


@pytest.mark.parametrize("status", [401, 403])
def test_refused_connector_credentials_are_a_500_that_says_what_to_check(status):
    error = http_error(status, "authorization failed", "write", ROLE)
    assert type(error) is BackendError and error.status == 500
    assert str(error) == ("InfluxDB refused the connector's credentials "
                          f"(INFLUXDB_USERNAME/INFLUXDB_PASSWORD) for write (HTTP {status}: "
                          "authorization failed): check the username/password or token")


def test_other_statuses_say_what_influxdb_said_in_at_most_300_characters():
    assert str(http_error(404, "database not found: x", "write", ROLE)) == (
        "InfluxDB: database not found: x (HTTP 404): create the database or set "
        "INFLUXDB_DATABASE (for InfluxDB 2.x/3.x, a DBRP mapping)")
    for status, kind in ((400, BadRequest), (413, BackendError), (499, BackendError)):
        error = http_error(status, "x" * 299 + "yz", "query", ROLE)
        assert type(error) is kind
        assert str(error) == f"InfluxDB refused the query (HTTP {status}): " + "x" * 299 + "y"
    assert type(http_error(400, "bad", "write", ROLE)) is BackendError  # a write's 400 is counted


@pytest.mark.parametrize("body,said", [(b'{"error":"too big"}', "too big"),             # 1.x
                                       (b'{"code":"x","message":"too big"}', "too big"),  # 2.x
                                       (b'{"error":"a","message":"b"}', "a"),
                                       (b'{"code":"x"}', '{"code":"x"}'),
                                       (b"  <html>too big</html>\n", "<html>too big</html>"),
                                       (b'["too big"]', '["too big"]')])
def test_an_error_answer_is_quoted_whatever_its_shape(influx_server, body, said):
    proxy = FaultProxy(influx_server.url)
    try:
        proxy.status, proxy.fail, proxy.body = 409, 2, body
        store = fresh_store(influx_server, url=proxy.url)
        with pytest.raises(BackendError) as raised:
            store.write([Series((("__name__", "m"),), [1], [1.0])], context())
        assert str(raised.value) == f"InfluxDB refused the write (HTTP 409): {said}"
    finally:
        proxy.stop()


@pytest.mark.parametrize("body,said", [
    (b"<html>Welcome to nginx!</html>\n", "'<html>Welcome to nginx!</html>'"),
    (b'["results"]', "'[\"results\"]'"),
    (b"\xff" + b"x" * 200, "'\ufffd" + "x" * 99 + "'")])
def test_a_query_answer_that_is_not_influxdb_json_is_a_500_naming_the_url(influx_server,
                                                                           body, said):
    """A 200 from some other HTTP server (a wrong INFLUXDB_URL) is neither stored data nor
    a crash: the read fails with a message that quotes the answer and names the setting."""
    proxy = FaultProxy(influx_server.url)
    try:
        proxy.status, proxy.fail, proxy.body = 200, 2, body  # CREATE DATABASE, then the read
        store = fresh_store(influx_server, url=proxy.url)
        with pytest.raises(BackendError) as raised:
            list(store.read(Query(0, 10, (Matcher.of(0, "__name__", "m"),)), context(10)))
        assert type(raised.value) is BackendError
        assert str(raised.value) == (f"InfluxDB's query answer is not InfluxDB JSON ({said}): "
                                     "check that INFLUXDB_URL is InfluxDB's HTTP API")
        assert proxy.requests == 2  # not retried: no retry can mend a wrong URL
    finally:
        proxy.stop()


class CutServer:
    """Answers every request with ``status`` and a body that stops half-way."""

    def __init__(self, status: int) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.requests = 0
        if status == 200:  # a chunked /query answer: one chunk, then the connection closes
            self.answer = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n"
                           b"21\r\n" b'{"results":[{"statement_id":0}]}\n' b"\r\n5\r\n{\"re")
        else:
            self.answer = (f"HTTP/1.1 {status} Error\r\nContent-Length: 100\r\n\r\n"
                           '{"error":'.encode())
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            with connection:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += connection.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                while length and len(body) < int(length.group(1)):
                    # the whole request read: closing on unread data would reset the
                    # connection, and the client would see that instead of the cut answer
                    body += connection.recv(65536)
                self.requests += 1
                connection.sendall(self.answer)

    def stop(self) -> None:
        self.socket.close()


@pytest.mark.parametrize("status,what", [(400, "write"), (200, "query")])
def test_an_answer_cut_off_is_retried_then_503(status, what, monkeypatch):
    monkeypatch.setattr(retry.random, "random", lambda: 1.0)
    monkeypatch.setattr(retry, "sleep", lambda seconds: None)
    server = CutServer(status)
    try:
        client = InfluxClient(server.url, "db")
        call = {"write": lambda timeout: client.write(b"", timeout),
                "query": lambda timeout: list(client.query("SELECT 1", timeout))}[what]
        with pytest.raises(BackendUnavailable) as raised:
            with_retries(call, FakeDeadline(0.58), what, 1.0)  # 0.53 s left, then 0.48
        assert str(raised.value) == (f"InfluxDB {what} still failing after 2 attempts "
                                     "(IncompleteRead reading the answer); retry later")
        assert server.requests == 2
    finally:
        server.stop()


def test_an_unreachable_server_is_retried_then_503():
    client = InfluxClient("http://127.0.0.1:1", "db")
    with pytest.raises(BackendUnavailable) as raised:
        with_retries(lambda timeout: client.write(b"", timeout), FakeDeadline(0.5), "write", 1.0)
    assert str(raised.value).startswith("InfluxDB write still failing after 1 attempts "
                                        "(URLError: [Errno 111] Connection refused)")
