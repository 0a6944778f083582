"""The InfluxDB backend on a real influxd: hostile names and values, no InfluxQL injection,
the shape InfluxDB's own Prometheus endpoint writes, rejected points, batching."""
import gzip
import logging
import os
import re
import struct
import time

import pytest

from chalicelib.context import SAMPLE_BYTES, histogram_bytes, series_bytes
from chalicelib.errors import (BackendError, BackendUnavailable, BadRequest, Forbidden,
                               ResponseTooLarge, Unauthorized)
from chalicelib.matchers import Matcher
from chalicelib.model import Histogram, Query, Series
from chalicelib.protocol import codec
from chalicelib.retry import Transient
from chalicelib.storage.histogram_text import dumps
from chalicelib.storage.influxdb import client as influxdb_client
from chalicelib.storage.influxdb import line_protocol as influxdb_line
from chalicelib.storage.influxdb import store as influxdb
from chalicelib.storage.influxdb.line_protocol import stored_key
from harness.influxd import fresh_store
from harness.processes import ROOT
from harness.remote import post, write_request
from tests.support import context

HOSTILE = [
    "a,b", "a b", "a=b", "a\\b", "a\\", "\\", "a\\,b", "a\\ b", "a\\=b", "a\\\\", "two\nlines",
    "\n", "cr\rlf", "tab\tx", "nul\x00x", "'", "\"", "x' OR '1'='1", "\") OR (\"a\"=\"a",
    "/", "a/ OR /.*", "base64:", "base64:YQ", "#comment", "ü 日本 ✓", "  ", "=", ",", "\\n",
    "a\\'b", "' ; DROP DATABASE x; --", "$", "^.*$", "\u2028",
]


def labels(**pairs):
    return tuple(sorted(pairs.items()))


def query(*matchers, start=0, end=10_000, dot_all=False):
    return Query(start, end, tuple(Matcher.of(t, n, v, dot_all) for t, n, v in matchers))


def bits(value):
    return struct.pack("<d", value)


@pytest.fixture
def store(influx_server):
    return fresh_store(influx_server)


def test_hostile_label_values_round_trip_and_match_exactly(store):
    store.write([Series(labels(__name__="m", v=value, i=str(i)), [1000], [float(i)])
                 for i, value in enumerate(HOSTILE)], context())
    everything = list(store.read(query((0, "__name__", "m")), context(10_000)))
    assert sorted(dict(s.labels)["v"] for s in everything) == sorted(HOSTILE)
    for i, value in enumerate(HOSTILE):
        for match_type, pattern in ((0, value), (2, value.replace("\\", "\\\\"))):
            if match_type == 2 and any(c in value for c in "()[]{}.*+?^$|"):
                continue  # regex metacharacters: matched as regexes, covered below
            [found] = list(store.read(query((0, "__name__", "m"), (match_type, "v", pattern)), context(100)))
            assert dict(found.labels)["i"] == str(i), (match_type, value)
        others = list(store.read(query((0, "__name__", "m"), (1, "v", value)), context(10_000)))
        assert len(others) == len(HOSTILE) - 1


def test_hostile_metric_and_label_names_round_trip(store):
    odd = [labels(__name__="time", time="t"), labels(__name__="value", value="v"),
           labels(__name__="m", _field="f", _measurement="x", value_bits="b")]
    store.write([Series(item, [5], [1.5]) for item in odd], context())
    for item in odd:
        name = dict(item)["__name__"]
        [found] = list(store.read(query((0, "__name__", name)), context(10)))
        assert found.labels == item and list(found.values) == [1.5]
    assert stored_key("time") != "time" and stored_key("job") == "job"


def test_regexes_are_anchored_and_slashes_cannot_end_the_literal(store):
    store.write([Series(labels(__name__="m", p=p), [1], [1.0])
                 for p in ("/a/b", "x/a/b", "/a/bx", "a\nb", "ab")], context())

    def selected(pattern, dot_all=False):
        return sorted(dict(s.labels)["p"] for s in list(store.read(
            query((0, "__name__", "m"), (2, "p", pattern), dot_all=dot_all), context(100))))

    assert selected("/a/b") == ["/a/b"]
    assert selected("\\/a\\/b") == ["/a/b"]
    assert selected(".*/b") == ["/a/b", "x/a/b"]
    assert selected("a.b") == []
    assert selected("a.b", dot_all=True) == ["a\nb"]
    assert selected("a\nb") == ["a\nb"]
    assert selected("/.*") == ["/a/b", "/a/bx"]
    assert selected("a/ OR /.*") == []


def test_invalid_regex_is_refused_before_reaching_influxdb():
    with pytest.raises(BadRequest):
        Matcher.of(2, "p", "(?=x)")


def test_reads_what_influxdbs_own_prometheus_endpoint_wrote(influx_server):
    store = fresh_store(influx_server)
    database = store.client.database
    request = write_request(
        ({"__name__": "up", "job": "x", "instance": "a:1"}, [(1000, 1.0), (2000, 0.0)]),
        ({"__name__": "http_requests_total", "code": "200", "path": "/a b,c=d"},
         [(1000, 0.1 + 0.2), (2000, 1e-300)]),
        ({"__name__": "gone", "job": "x"}, [(1000, float("nan")), (2000, 3.0)]))
    status, _, body = post(f"{influx_server.url}/api/v1/prom/write?db={database}",
                           codec.encode_message(request),
                           {"Content-Type": "application/x-protobuf",
                            "Content-Encoding": "snappy"})
    assert status == 204, body
    [up] = list(store.read(query((0, "__name__", "up")), context(100)))
    assert up.labels == labels(__name__="up", instance="a:1", job="x")
    assert list(up.timestamps) == [1000, 2000] and list(up.values) == [1.0, 0.0]
    [http] = list(store.read(query((2, "__name__", "http_.*"), (0, "path", "/a b,c=d")), context(100)))
    assert [bits(v) for v in http.values] == [bits(0.1 + 0.2), bits(1e-300)]
    [gone] = list(store.read(query((0, "__name__", "gone")), context(100)))
    assert list(gone.timestamps) == [2000]  # InfluxDB's endpoint drops NaN samples

    # The connector writes the same shape: same measurement, tag keys and field.
    ours = fresh_store(influx_server)
    ours.write([Series(labels(__name__="up", job="x", instance="a:1"), [1000, 2000],
                       [1.0, 0.0])], context())
    shape = "SELECT * FROM up GROUP BY *"
    assert influx_server.query(shape, db=ours.client.database, epoch="ms") == \
        influx_server.query(shape, db=database, epoch="ms")


def test_points_influxdb_can_never_store_are_counted_and_the_rest_stored(influx_server):
    store = fresh_store(influx_server)
    # An integer field "value" in this shard makes InfluxDB drop float values for "m".
    assert influx_server.write_lines(store.client.database, "m,__name__=m value=1i 1000") == 204
    ctx = context()
    result = store.write([Series(labels(__name__="m"), [2000, 3000], [1.5, 2.5]),
                          Series(labels(__name__="ok"), [2000], [4.0])], ctx)
    assert (result.stored, result.rejected) == (1, 2)
    assert dict(ctx.telemetry.rejected) == {"backend_refused": 2}
    assert "dropped" in result.reasons[0] or "conflict" in result.reasons[0]
    [ok] = list(store.read(query((0, "__name__", "ok")), context(10)))
    assert list(ok.values) == [4.0]


def test_large_writes_go_in_gzip_batches_of_thousands_of_lines(influx_server, monkeypatch):
    store = fresh_store(influx_server)
    sizes = []
    original = influxdb.InfluxClient.write

    def spy(self, body, timeout):
        sizes.append(gzip.decompress(body).count(b"\n") + 1)
        return original(self, body, timeout)

    monkeypatch.setattr(influxdb.InfluxClient, "write", spy)
    series = [Series(labels(__name__="big", s=str(s)), list(range(100)), [float(t) for t in
                                                                         range(100)])
              for s in range(120)]
    assert store.write(series, context()).stored == 12_000
    assert sizes == [influxdb.BATCH_LINES, influxdb.BATCH_LINES, 2000]
    result = list(store.read(query((0, "__name__", "big")), context(20_000)))
    assert sum(len(s.timestamps) for s in result) == 12_000


def test_sample_limit_stops_a_chunked_read(influx_server):
    store = fresh_store(influx_server)
    store.write([Series(labels(__name__="many", s=str(s)), list(range(5000)),
                        [1.0] * 5000) for s in range(5)], context())
    result = list(store.read(query((0, "__name__", "many")), context(25_000)))  # over several chunks
    assert [dict(s.labels)["s"] for s in result] == ["0", "1", "2", "3", "4"]
    assert all(list(s.timestamps) == list(range(5000)) for s in result)
    with pytest.raises(Exception, match="more than 24999 samples"):
        list(store.read(query((0, "__name__", "many")), context(24_999)))


def test_a_series_over_several_chunks_is_charged_each_sample_once(influx_server):
    store = fresh_store(influx_server)
    store.write([Series(labels(__name__="long"), list(range(25_000)), [1.0] * 25_000)],
                context())
    [found] = store.read(query((0, "__name__", "long"), end=30_000), context(25_000))
    assert len(found.timestamps) == 25_000  # three chunks of one series
    with pytest.raises(Exception, match="more than 24999 samples"):
        store.read(query((0, "__name__", "long"), end=30_000), context(24_999))


class CheckingClient:
    """Answers each credentials check with the next of ``answers``: InfluxDB's results, or
    an error to raise."""

    def __init__(self, *answers):
        self.answers, self.statements = list(answers), []

    def query(self, statement, timeout):
        self.statements.append(statement)
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return iter(answer)


def checked(client, times):
    store = influxdb.InfluxDBStore(client, create_database=False)
    contexts = [context() for _ in range(times)]
    for ctx in contexts:
        store.check_credentials(ctx)
    return [ctx.telemetry.calls("influxdb", "query") for ctx in contexts]


def test_credentials_are_checked_once_with_a_show_measurements_of_one():
    client = CheckingClient([{"statement_id": 0}])
    first, second = checked(client, 2)
    assert client.statements == ["SHOW MEASUREMENTS LIMIT 1"]
    assert (first.calls, first.failures, second.calls) == (1, 0, 0)


def test_a_check_answered_with_an_error_lets_the_read_answer_and_is_tried_again():
    client = CheckingClient([{"error": "database not found: prometheus"}], [{}])
    checked(client, 2)
    assert len(client.statements) == 2


@pytest.mark.parametrize("error", [BackendError("HTTP 500"), BackendUnavailable("down"),
                                   Transient("HTTP 503")])
def test_a_check_that_fails_otherwise_lets_the_read_answer_and_is_tried_again(error):
    client = CheckingClient(error, [{}], [{}])
    first, second, third = checked(client, 3)
    assert len(client.statements) == 2
    assert (first.failures, first.throttles, second.failures, third.calls) == (1, 0, 0, 0)


@pytest.mark.parametrize("error", [Unauthorized("who?"), Forbidden("no rights")])
def test_refused_credentials_fail_the_check_every_time(error):
    client = CheckingClient(error, error)
    store = influxdb.InfluxDBStore(client, create_database=False)
    for _ in range(2):
        ctx = context()
        with pytest.raises(type(error)):
            store.check_credentials(ctx)
        assert ctx.telemetry.calls("influxdb", "query").failures == 1


def readme() -> str:
    with open(os.path.join(ROOT, "README.md")) as handle:
        return handle.read()


def test_readme_states_the_tested_local_command():
    # tests/system/test_e2e_prometheus.py runs this command with these variables (ports aside).
    assert "STORAGE_BACKEND=influxdb INFLUXDB_URL=http://127.0.0.1:8086 " \
           "INFLUXDB_DATABASE=prometheus make run" in readme()


def test_readme_verification_sample_reads_back_through_the_connector(influx_server):
    store = fresh_store(influx_server)
    line = re.search(r'--data-binary "([^"]+)"', readme()).group(1)
    now = int(time.time())
    assert influx_server.write_lines(store.client.database, line.replace("$(date +%s)", str(now)),
                                     precision="s") == 204
    [found] = list(store.read(query((0, "__name__", "prometheus_temperature"),
                               start=(now - 1) * 1000, end=(now + 1) * 1000), context(10)))
    assert found.labels == labels(__name__="prometheus_temperature", instance="localhost:9090",
                                  job="prometheus")
    assert list(found.values) == [98.76] and list(found.timestamps) == [now * 1000]


def test_hostile_label_names_cannot_change_the_statement(store):
    names = ['a"b', "a'b", "a b", "a,b", "a=b", "a\\", "a\\\"", "ü日本", "a\nb", "a/b",
             "\") OR (\""]
    store.write([Series(labels(__name__="n", **{name: "v", "i": str(i)}), [1], [1.0])
                 for i, name in enumerate(names)], context())
    for i, name in enumerate(names):
        for matchers in ([(0, name, "v")], [(2, name, "v|w")], [(1, name, "")]):
            [found] = list(store.read(query((0, "__name__", "n"), *matchers), context(100)))
            assert dict(found.labels) == {"__name__": "n", name: "v", "i": str(i)}, matchers
        assert len(list(store.read(query((0, "__name__", "n"), (0, name, "")), context(100)))) == len(names) - 1


def test_a_retention_policy_other_than_the_default(influx_server):
    store = fresh_store(influx_server)
    database = store.client.database
    influx_server.query(f'CREATE RETENTION POLICY "week" ON "{database}" DURATION 7d REPLICATION 1')
    in_rp = fresh_store(influx_server)
    in_rp.client.database, in_rp.client.retention_policy = database, "week"
    now = int(time.time() * 1000)
    assert in_rp.write([Series(labels(__name__="rp"), [now], [1.0])], context()).stored == 1
    [found] = list(in_rp.read(query((0, "__name__", "rp"), start=now - 1, end=now + 1), context(10)))
    assert list(found.values) == [1.0]
    assert list(store.read(query((0, "__name__", "rp"), start=now - 1, end=now + 1), context(10))) == []
    assert influx_server.query("SELECT * FROM week.rp", db=database)["results"][0]["series"]


def test_ranges_past_what_influxdb_can_represent_are_clamped(store):
    store.write([Series(labels(__name__="wide"), [-5, 0, 5], [1.0, 2.0, 3.0])], context())
    [found] = list(store.read(query((0, "__name__", "wide"), start=-2 ** 62, end=2 ** 62), context(10)))
    assert list(found.timestamps) == [-5, 0, 5]


def test_values_written_by_others_that_are_not_samples_are_skipped(influx_server):
    store = fresh_store(influx_server)
    database = store.client.database
    lines = ('m,__name__=m value_bits="zz" 1000\nm,__name__=m other=1 2000\n'
             'm,__name__=m,k=base64:!! value=3 3000')
    assert influx_server.write_lines(database, lines) == 204
    [found] = list(store.read(query((0, "__name__", "m")), context(10)))
    assert (list(found.timestamps), dict(found.labels)["k"]) == ([3000], "base64:!!")


def test_dropped_point_counts():
    assert influxdb.dropped_points("partial write: field type conflict dropped=3", 10) == 3
    assert influxdb.dropped_points("a dropped=2; b dropped=4", 5) == 5
    assert influxdb.dropped_points("unable to parse 'x': bad; unable to parse 'y': bad", 9) == 2
    assert influxdb.dropped_points("partial write: unable to parse 'x': time outside range "
                                   "dropped=0", 9) == 1  # what influxd 1.6.7 answers
    assert influxdb.dropped_points("something else", 7) == 7
    assert influxdb.dropped_points("unable to parse 'x': bad dropped=1", 9) == 2


def test_several_queries_answer_in_order(store):
    from chalicelib import handlers
    from chalicelib.context import Limits
    from chalicelib.protocol.prompb import remote_pb2
    from harness.remote import HEADERS, read_request
    store.write([Series(labels(__name__="q1"), [1], [1.0]),
                 Series(labels(__name__="q2"), [1], [2.0])], context())
    _, body = handlers.read(codec.encode_message(read_request(
        (0, 10, [(0, "__name__", "q2")]), (0, 10, [(0, "__name__", "none")]),
        (0, 10, [(0, "__name__", "q1")]))), HEADERS, store,
        Limits(sample_limit=100, max_decoded_bytes=1 << 20, max_response_bytes=1 << 20))
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(body, 1 << 20))
    assert [[s.value for ts in r.timeseries for s in ts.samples] for r in response.results] == \
        [[2.0], [], [1.0]]


def test_a_missing_database_is_a_clear_500(influx_server):
    from chalicelib.errors import BackendError
    from chalicelib.storage.influxdb.client import InfluxClient
    from chalicelib.storage.influxdb.store import InfluxDBStore
    store = InfluxDBStore(InfluxClient(influx_server.url, "absent"), create_database=False)
    with pytest.raises(BackendError, match="database not found.*create the database") as raised:
        store.write([Series(labels(__name__="m"), [1], [1.0])], context())
    assert raised.value.status == 500
    with pytest.raises(BackendError) as raised:
        list(store.read(query((0, "__name__", "m")), context(10)))
    assert str(raised.value) == "InfluxDB refused the query: database not found: absent"
    assert raised.value.status == 500


def test_timestamps_influxdb_cannot_represent_are_counted_and_the_rest_stored(store):
    result = store.write([Series(labels(__name__="far"), [5, 10 ** 16, 6], [1.0, 2.0, 3.0])], context())
    assert (result.stored, result.rejected) == (2, 1)
    assert "unable to parse" in result.reasons[0]
    [found] = list(store.read(query((0, "__name__", "far")), context(10)))
    assert list(found.timestamps) == [5, 6]


def test_a_store_on_a_retention_policy_leaves_the_database_as_it_is(influx_server):
    from chalicelib.storage.influxdb.client import InfluxClient
    from chalicelib.storage.influxdb.store import InfluxDBStore
    rp_only, created = f"rp_only_{os.getpid()}", f"created_{os.getpid()}"
    InfluxDBStore(InfluxClient(influx_server.url, rp_only, retention_policy="autogen"))
    InfluxDBStore(InfluxClient(influx_server.url, created))
    [shown] = influx_server.query("SHOW DATABASES")["results"][0]["series"]
    names = [row[0] for row in shown["values"]]
    assert created in names and rp_only not in names


def test_a_database_that_cannot_be_created_is_logged_and_the_store_still_starts(
        influx_server, caplog):
    from chalicelib.storage.influxdb.client import InfluxClient
    from chalicelib.storage.influxdb.store import InfluxDBStore
    caplog.set_level(logging.INFO, logger="chalicelib")
    InfluxDBStore(InfluxClient(influx_server.url, ""))
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == \
        [("INFO", "could not create database: invalid name")]
    caplog.clear()
    InfluxDBStore(InfluxClient("http://127.0.0.1:1", "unreachable"))
    [record] = caplog.records
    assert record.levelname == "INFO"
    assert record.getMessage().startswith("could not create database unreachable: URLError")


def test_a_sample_that_is_not_a_number_is_skipped_and_the_later_ones_read(influx_server):
    store = fresh_store(influx_server)
    lines = 'm,__name__=m value_bits="zz" 1000\nm,__name__=m value=2 2000\n' \
            'm,__name__=m value_bits="zz" 3000\nm,__name__=m value=4 4000'
    assert influx_server.write_lines(store.client.database, lines) == 204
    [found] = list(store.read(query((0, "__name__", "m")), context(10)))
    assert (list(found.timestamps), list(found.values)) == ([2000, 4000], [2.0, 4.0])


def test_points_written_without_a_name_tag_are_named_by_their_measurement(influx_server):
    store = fresh_store(influx_server)
    lines = "cpu,host=a value=1 1000\ncpu,host=b,__name__=renamed value=2 1000"
    assert influx_server.write_lines(store.client.database, lines) == 204
    found = list(store.read(query((2, "host", "a|b")), context(10)))
    assert [s.labels for s in found] == [labels(__name__="cpu", host="a"),
                                         labels(__name__="renamed", host="b")]
    # Matchers see the name read back, though InfluxDB stored no __name__ tag.
    [renamed] = list(store.read(query((2, "host", "a|b"), (1, "__name__", "cpu")), context(10)))
    assert renamed.labels == labels(__name__="renamed", host="b")


@pytest.mark.parametrize("matchers,names", [
    ([(0, "__name__", "cpu")], ["cpu"]),
    ([(2, "__name__", "c.u")], ["cpu"]),
    ([(1, "__name__", "mem"), (0, "host", "a")], ["cpu"]),
    ([(3, "__name__", "m.*"), (0, "host", "a")], ["cpu"]),
    ([(0, "host", "a")], ["cpu"]),
    ([(0, "__name__", "mem")], []),
    ([(2, "__name__", "mem|disk")], []),
    ([(1, "__name__", "cpu"), (0, "host", "a")], []),
])
def test_points_without_a_name_tag_are_selected_by_every_matcher_on_their_name(
        influx_server, matchers, names):
    """Points written by other tools (Telegraf writes no __name__ tag) answer name matchers
    by their measurement, whatever the matcher."""
    store = fresh_store(influx_server)
    assert influx_server.write_lines(store.client.database, "cpu,host=a value=1 1000") == 204
    found = list(store.read(query(*matchers), context(10)))
    assert [dict(s.labels)["__name__"] for s in found] == names


def test_matchers_see_values_that_only_look_encoded_as_they_read_back(influx_server):
    store = fresh_store(influx_server)
    lines = "m,__name__=m,k=base64:!! value=1 1000\nm,__name__=m,k=x value=2 1000"
    assert influx_server.write_lines(store.client.database, lines) == 204
    [other] = list(store.read(query((0, "__name__", "m"), (1, "k", "base64:!!")), context(10)))
    assert other.labels == labels(__name__="m", k="x")


def test_rejected_points_are_logged_once_with_a_short_reason(influx_server, caplog):
    caplog.set_level(logging.INFO, logger="chalicelib")
    store = fresh_store(influx_server, batch_lines=2)
    long_value = "v" * 1000
    result = store.write([Series(labels(__name__="far", v=long_value), [1, 10 ** 16, 10 ** 16],
                                 [1.0, 2.0, 3.0]),
                          Series(labels(__name__="far2"), [10 ** 16], [1.0])], context())
    assert (result.stored, result.rejected) == (1, 3)
    assert [r[:r.index(": ")] for r in result.reasons] == [
        "InfluxDB did not store 1 of 2 points", "InfluxDB did not store 2 of 2 points"]
    # InfluxDB's answer quotes the whole line: the reason keeps its first 300 characters.
    assert [len(r) - r.index(": ") - 2 for r in result.reasons] == [300, 300]
    assert all("unable to parse 'far,__name__=far,v=vvv" in r for r in result.reasons)
    [record] = caplog.records
    assert (record.levelname, record.getMessage()) == \
        ("WARNING", f"InfluxDB rejected 3 of 4 samples: {result.reasons[0]}")


def test_each_attempt_waits_at_most_its_timeout_and_never_past_the_deadline(influx_server,
                                                                             monkeypatch):
    timeouts = []
    for name in ("write", "query"):
        def spy(self, body, timeout, original=getattr(influxdb.InfluxClient, name), name=name):
            timeouts.append((name, timeout))
            return original(self, body, timeout)
        monkeypatch.setattr(influxdb.InfluxClient, name, spy)
    store = fresh_store(influx_server)
    store.write([Series(labels(__name__="t"), [1], [1.0])], context(deadline_seconds=25.0))
    list(store.read(query((0, "__name__", "t")), context(10, deadline_seconds=25.0)))
    assert timeouts == [("query", 4.0), ("write", 10.0), ("query", 20.0)]
    timeouts.clear()
    near = fresh_store(influx_server)
    near.write([Series(labels(__name__="t"), [1], [1.0])], context(deadline_seconds=5.0))
    list(near.read(query((0, "__name__", "t")), context(10, deadline_seconds=5.0)))
    assert [name for name, _ in timeouts] == ["query", "write", "query"]
    assert timeouts[0] == ("query", 4.0)  # CREATE DATABASE, before any request's deadline
    assert all(4.0 < timeout <= 5.0 for _, timeout in timeouts[1:])


def test_a_series_with_huge_labels_goes_in_requests_bounded_in_bytes(influx_server, monkeypatch):
    """60 KB of labels x 1 000 samples is 60 MB of line protocol: several requests, each under
    the bound, none refused by influxd's max-body-size (25 MB) and none retried."""
    store = fresh_store(influx_server, max_body_bytes=8_000_000)
    sizes = []
    original = influxdb.InfluxClient.write

    def spy(self, body, timeout):
        sizes.append(len(gzip.decompress(body)))
        return original(self, body, timeout)

    monkeypatch.setattr(influxdb.InfluxClient, "write", spy)
    big = labels(__name__="huge", blob="x" * 60_000)
    assert store.write([Series(big, list(range(1000)), [1.0] * 1000)], context()).stored == 1000
    assert len(sizes) == 8 and all(7_000_000 < size <= 8_000_000 for size in sizes[:-1])
    [found] = list(store.read(query((0, "__name__", "huge")), context()))
    assert list(found.timestamps) == list(range(1000))


def test_a_line_that_can_never_fit_is_refused_naming_it_and_the_rest_stored(influx_server):
    store = fresh_store(influx_server, max_body_bytes=50_000)
    ctx = context()
    result = store.write([Series(labels(__name__="huge", blob="x" * 60_000), [1], [1.0]),
                          Series(labels(__name__="small"), [1], [2.0])], ctx)
    assert (result.stored, result.rejected) == (1, 1)
    assert dict(ctx.telemetry.rejected) == {"limits": 1}
    assert result.reasons[0].startswith("InfluxDB cannot take a 60036-byte line, over "
                                        "INFLUXDB_MAX_BODY_BYTES (50000): huge,__name__=huge,blob=")
    assert [s.values[0] for s in store.read(query((0, "__name__", "small")), context())] == [2.0]


def test_a_connector_started_before_influxdb_creates_the_database_once_it_is_up(
        influx_server, caplog):
    """InfluxDB down at the first request: that write is a 503 (Prometheus retries); the
    database is created before the first write once InfluxDB answers, not after a restart."""
    from harness.influxd import FaultProxy
    caplog.set_level(logging.INFO, logger="chalicelib")
    proxy = FaultProxy(influx_server.url)
    try:
        proxy.status, proxy.fail = 503, 10 ** 6  # InfluxDB down
        store = fresh_store(influx_server, url=proxy.url)
        with pytest.raises(BackendUnavailable):
            store.write([Series(labels(__name__="late"), [1], [1.0])],
                        context(deadline_seconds=5.0))
        proxy.fail = 0  # InfluxDB up
        assert store.write([Series(labels(__name__="late"), [2], [2.0])], context()).stored == 1
        [found] = list(store.read(query((0, "__name__", "late")), context()))
        assert list(found.timestamps) == [2]
        created = [r for r in caplog.records if "could not create database" in r.getMessage()]
        assert len(created) == 2  # at start and before the first write; then created
    finally:
        proxy.stop()


def test_an_answer_streamed_past_the_deadline_stops_there(influx_server, monkeypatch):
    """Each chunk of a chunked answer comes within the client's timeout, but the whole answer
    must come within the request deadline: past it, 503 (no retry)."""
    store = fresh_store(influx_server)
    store.write([Series(labels(__name__="slow"), [1], [1.0])], context())
    chunks = []

    def slow_chunks(self, statement, timeout):
        for _ in range(20):
            time.sleep(0.1)
            chunks.append(1)
            yield {"series": []}
    monkeypatch.setattr(influxdb.InfluxClient, "query", slow_chunks)
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="the InfluxDB query did not finish within the "
                                                 "request deadline"):
        list(store.read(query((0, "__name__", "slow")), context(deadline_seconds=1.0)))
    assert time.monotonic() - started < 1.5 and len(chunks) < 15


def test_a_regex_influxdb_cannot_run_is_a_400_with_its_reason(store):
    """999 nested groups pass Prometheus's limit; InfluxDB's anchoring adds one: influxd
    refuses the statement, and the client is told why (never a 500 that Prometheus retries)."""
    store.write([Series(labels(__name__="deep", k="a"), [1], [1.0])], context())
    pattern = "(" * 999 + "a" + ")" * 999
    with pytest.raises(BadRequest, match=r"InfluxDB refused the query \(HTTP 400\): error "
                                          "parsing query") as raised:
        list(store.read(query((0, "__name__", "deep"), (2, "k", pattern)), context()))
    assert raised.value.status == 400


def test_a_statement_larger_than_a_request_may_be_is_a_400_not_sent(influx_server):
    store = fresh_store(influx_server, max_body_bytes=10_000)
    with pytest.raises(BadRequest, match=r"the query's matchers make a 10\d\d\d-byte InfluxQL "
                                          r"statement, over INFLUXDB_MAX_BODY_BYTES \(10000\)"):
        list(store.read(query((0, "__name__", "m"), (0, "k", "x" * 10_000)), context()))
    assert list(store.read(query((0, "__name__", "m"), (0, "k", "x" * 9_000)), context())) == []


def test_the_database_is_created_at_a_write_only_with_time_for_it_and_the_write(
        influx_server):
    """CREATE DATABASE (4 s at most) and then the write (at least 0.5 s) must both fit."""
    from harness.influxd import FaultProxy
    proxy = FaultProxy(influx_server.url)
    try:
        proxy.status, proxy.fail = 503, 1  # down when the store starts
        store = fresh_store(influx_server, url=proxy.url)
        proxy.requests = 0
        ctx = context()
        ctx.deadline.end = time.monotonic() + 4.49
        with pytest.raises(BackendError, match="database not found"):
            store.write([Series(labels(__name__="c"), [1], [1.0])], ctx)
        assert proxy.requests == 1  # the write alone: no time to create the database first
        ctx = context()
        ctx.deadline.end = time.monotonic() + 4.6
        assert store.write([Series(labels(__name__="c"), [1], [1.0])], ctx).stored == 1
        assert proxy.requests == 3  # CREATE DATABASE, then the write
        store.write([Series(labels(__name__="c"), [2], [1.0])], context())
        assert proxy.requests == 4  # created: never again
    finally:
        proxy.stop()


def test_a_database_influxdb_refuses_to_create_is_not_asked_for_again(influx_server):
    from harness.influxd import FaultProxy
    proxy = FaultProxy(influx_server.url)
    try:
        proxy.status, proxy.fail = 403, 1  # not allowed to CREATE DATABASE: a final answer
        store = fresh_store(influx_server, url=proxy.url)
        influx_server.query(f'CREATE DATABASE "{store.client.database}"')
        proxy.requests = 0
        assert store.write([Series(labels(__name__="r"), [1], [1.0])], context()).stored == 1
        assert proxy.requests == 1
    finally:
        proxy.stop()


def test_a_line_of_exactly_the_body_limit_is_sent_and_one_byte_more_is_not(influx_server):
    line = b"small,__name__=small value=2.0 1"
    store = fresh_store(influx_server, max_body_bytes=len(line))
    assert store.write([Series(labels(__name__="small"), [1], [2.0])], context()).stored == 1
    store = fresh_store(influx_server, max_body_bytes=len(line) - 1)
    result = store.write([Series(labels(__name__="small"), [1], [2.0])], context())
    assert result.rejected == 1
    assert result.reasons[0].endswith(f"({len(line) - 1}): small,__name__=small")


def test_a_statement_of_exactly_the_body_limit_is_sent(influx_server):
    from chalicelib.storage.influxdb.influxql import select_statement
    wanted = query((0, "__name__", "m"), (0, "k", "x" * 500))
    size = len(select_statement(wanted).encode())
    assert list(fresh_store(influx_server, max_body_bytes=size).read(wanted, context())) == []
    with pytest.raises(BadRequest):
        list(fresh_store(influx_server, max_body_bytes=size - 1).read(wanted, context()))



# Native histograms: points of the series' own measurement and tags with a "histogram"
# string field (the exact text), "histogram_count" and "histogram_sum" beside it.

H = Histogram(0, 17, 27.5, 3, 0.001, 2, positive_spans=((0, 2), (1, 1)), positive=(3, -1, 0),
              negative_spans=((0, 1),), negative=(2,))
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def at(*timestamps, histogram=H):
    return [histogram._replace(timestamp=t) for t in timestamps]


def rows(server, store, statement):
    [result] = server.query(statement, db=store.client.database, epoch="ms")["results"]
    return [(s.get("tags"), s["columns"], s["values"]) for s in result.get("series", [])]


def test_histograms_are_seen_in_influxql_as_text_count_and_sum(influx_server):
    store = fresh_store(influx_server)
    stale = H._replace(timestamp=3000, count=0, sum=STALE, positive_spans=(), positive=(),
                       negative_spans=(), negative=())
    result = store.write([Series(labels(__name__="lat", job="j"), [1000], [0.5],
                                 at(2000) + [stale])], context())
    assert (result.stored, result.histograms, result.rejected) == (3, 2, 0)
    assert rows(influx_server, store, "SELECT * FROM lat GROUP BY *") == [
        ({"__name__": "lat", "job": "j"},
         ["time", "histogram", "histogram_count", "histogram_sum", "value"],
         [[1000, None, None, None, 0.5], [2000, dumps(H), 17, 27.5, None],
          [3000, dumps(stale), None, None, None]])]
    # A float sample's InfluxQL (and InfluxDB's own remote read) does not see them.
    assert rows(influx_server, store, "SELECT value FROM lat") == [
        (None, ["time", "value"], [[1000, 0.5]])]
    [found] = store.read(query((0, "__name__", "lat")), context())
    assert (list(found.timestamps), list(found.values)) == ([1000], [0.5])
    assert [dumps(h) for h in found.histograms] == [dumps(H), dumps(stale)]
    assert [h.timestamp for h in found.histograms] == [2000, 3000]


def test_a_point_with_a_float_and_a_histogram_gives_both(store):
    store.write([Series(labels(__name__="both"), [5], [1.5], at(5))], context())
    [found] = store.read(query((0, "__name__", "both")), context())
    assert (list(found.timestamps), list(found.values), found.histograms) == \
        ([5], [1.5], at(5))


def test_histograms_of_hostile_series_round_trip_and_match_exactly(store):
    odd = [labels(__name__="h", histogram="tag", histogram_count="c", value="v", i="0"),
           labels(__name__='q"uo\\te', i="1"), labels(__name__="h", i="2", v="a\nb"),
           labels(__name__="\u2028", i="3")]
    store.write([Series(item, [], [], at(int(dict(item)["i"]) + 1)) for item in odd],
                context())
    for item in odd:
        wanted = [(0, name, value) for name, value in item]
        [found] = store.read(query(*wanted), context())
        assert found.labels == item and found.histograms == at(int(dict(item)["i"]) + 1)
    found = store.read(query((0, "__name__", "h"), (2, "histogram", "t.g")), context())
    assert [s.labels for s in found] == [odd[0]]


def test_histograms_written_without_a_name_tag_are_named_by_their_measurement(influx_server):
    store = fresh_store(influx_server)
    text = dumps(H).replace('"', '\\"')
    assert influx_server.write_lines(store.client.database,
                                     f'cpu,host=a histogram="{text}" 1000') == 204
    for matchers in ([(0, "__name__", "cpu")], [(2, "__name__", "c.u")], [(0, "host", "a")],
                     [(1, "__name__", "mem"), (0, "host", "a")]):
        [found] = store.read(query(*matchers), context())
        assert found.labels == labels(__name__="cpu", host="a"), matchers
        assert found.histograms == at(1000)
    assert store.read(query((1, "__name__", "cpu")), context()) == []


def test_histogram_fields_that_are_not_ours_are_skipped_and_the_floats_kept(influx_server):
    store = fresh_store(influx_server)
    text = dumps(H).replace('"', '\\"')
    lines = (f'm,__name__=m histogram="not json",value=1 1000\n'
             f'm,__name__=m histogram="{{}}" 2000\n'
             f'm,__name__=m histogram="{text}" 3000\n'
             f'n,__name__=n histogram=5,value=2 1000')  # a float field of that name
    assert influx_server.write_lines(store.client.database, lines) == 204
    found = store.read(query((2, "__name__", "m|n")), context())
    assert [(s.labels, list(s.timestamps), s.histograms) for s in found] == [
        (labels(__name__="m"), [1000], at(3000)), (labels(__name__="n"), [1000], [])]


def test_each_histogram_is_charged_to_the_budget_once_over_several_chunks(influx_server,
                                                                           monkeypatch):
    monkeypatch.setattr(influxdb_client, "CHUNK_SIZE", 4)  # 2 + 2 samples, then 1 + 3
    store = fresh_store(influx_server)
    store.write([Series(labels(__name__="c"), [2, 4, 6], [1.0] * 3, at(1, 3, 5, 7, 9))],
                context())
    cost = series_bytes(labels(__name__="c")) + 3 * SAMPLE_BYTES + 5 * histogram_bytes(H)
    [found] = store.read(query((0, "__name__", "c")), context(8, byte_limit=cost))
    assert (list(found.timestamps), [h.timestamp for h in found.histograms]) == \
        ([2, 4, 6], [1, 3, 5, 7, 9])
    with pytest.raises(ResponseTooLarge, match="more than 7 samples"):
        store.read(query((0, "__name__", "c")), context(7))
    with pytest.raises(ResponseTooLarge, match=f"more than {cost - 1} bytes"):
        store.read(query((0, "__name__", "c")), context(byte_limit=cost - 1))


def test_a_histogram_over_influxdbs_string_limit_is_refused_naming_it_and_not_sent(
        influx_server, monkeypatch):
    """InfluxDB 1.8+/2.x refuse a string field over 1 MiB (1.6.7 takes it): refused the same
    way whatever the version, before sending; the rest of the series is stored."""
    size = len(dumps(H))
    monkeypatch.setattr(influxdb_line, "MAX_STRING_FIELD_BYTES", size - 1)
    store = fresh_store(influx_server)
    big = H._replace(timestamp=2, positive=(3, -1, 1))
    ctx = context()
    result = store.write([Series(labels(__name__="big", job="j"), [1], [1.0],
                                 [big, H._replace(timestamp=3, positive=(3, -1))])], ctx)
    assert (result.stored, result.histograms, result.rejected) == (2, 1, 1)
    assert result.reasons == (f"InfluxDB cannot store a native histogram of {size} bytes "
                              f'(string fields hold at most {size - 1}): big{{job="j"}} at 2',)
    assert dict(ctx.telemetry.rejected) == {"limits": 1}
    [found] = store.read(query((0, "__name__", "big")), context())
    assert list(found.timestamps) == [1] and [h.timestamp for h in found.histograms] == [3]


def test_a_histogram_field_of_another_type_refuses_them_naming_the_series(influx_server):
    """A "histogram" field first written as a float (another tool) makes InfluxDB drop
    every histogram of that measurement: counted, named, the write's 400; the rest stored."""
    store = fresh_store(influx_server)
    assert influx_server.write_lines(store.client.database, "lat,__name__=lat histogram=1 1") \
        == 204
    ctx = context()
    result = store.write([Series(labels(__name__="lat", job=str(i)), [10], [1.0], at(20, 30))
                          for i in range(5)] + [Series(labels(__name__="ok"), [], [], at(20))],
                         ctx)
    assert (result.stored, result.rejected, result.histograms) == (6, 10, 1)
    assert dict(ctx.telemetry.rejected) == {"backend_refused": 10}
    [reason] = result.reasons
    assert reason.startswith('InfluxDB did not store 10 of 16 points (lat{job="0"}, '
                             'lat{job="1"}, lat{job="2"} and 2 more series): partial write: '
                             'field type conflict: input field "histogram" on measurement '
                             '"lat" is type string, already exists as type float dropped=10')
    found = store.read(query((2, "__name__", "lat|ok")), context())
    # InfluxQL reads "histogram" as a float in "lat" and as a string in "ok", in one statement.
    assert [(len(s.timestamps), len(s.histograms)) for s in found] == [(1, 0)] * 5 + [(0, 1)]


def test_a_batch_stored_in_part_counts_its_histograms_as_a_lower_bound(influx_server):
    """InfluxDB says how many points of a batch it dropped, not which: the histograms
    stored are counted as if the dropped were histograms (never more than were stored)."""
    store = fresh_store(influx_server)
    assert influx_server.write_lines(store.client.database, "m,__name__=m value=1i 1") == 204
    result = store.write([Series(labels(__name__="m"), [5], [1.5]),
                          Series(labels(__name__="n"), [5], [1.5], at(6, 7))], context())
    assert (result.stored, result.rejected, result.histograms) == (3, 1, 1)
    assert result.reasons[0].startswith("InfluxDB did not store 1 of 4 points (m{}): ")


def test_a_histogram_line_too_long_to_send_is_not_counted_stored(influx_server):
    store = fresh_store(influx_server, max_body_bytes=200)
    result = store.write([Series(labels(__name__="h", blob="x" * 150), [1], [1.0], at(2))],
                         context())
    assert (result.stored, result.rejected, result.histograms) == (1, 1, 0)
    assert result.reasons[0].startswith("InfluxDB cannot take a ")


def test_refusals_name_the_series_whose_samples_carry_the_field_in_that_measurement():
    odd = 'a"b\\c\u2028\U0001f600'
    batch = [Series(labels(__name__="m", i="f"), [1], [1.0]),
             Series(labels(__name__="m", i="h"), [], [], at(1)),
             Series(labels(__name__="n", i="n"), [1], [1.0], at(1)),
             Series(labels(__name__=odd, i="odd"), [1], [1.0], at(2)),
             Series(labels(__name__="m", i="none"), [], []),
             Series(labels(i="nameless"), [1], [1.0])]

    def named(text):
        return [dict(item)["i"] for item in influxdb.refused_series(text, batch)]

    conflict = 'partial write: field type conflict: input field "{}" on measurement "{}" is type'
    assert named(conflict.format("histogram", "m")) == ["h"]
    assert named(conflict.format("histogram_count", "m")) == ["h"]
    assert named(conflict.format("value", "m")) == ["f"]
    assert named(conflict.format("value_bits", "m")) == ["f"]
    assert named(conflict.format("histogram_sum", "n")) == ["n"]
    assert named(conflict.format("value", "n")) == ["n"]
    assert named(conflict.format("value", "")) == ["nameless"]
    assert named(conflict.format("other", "m")) == []
    assert named(conflict.format("histogram", "m2")) == []
    assert named('input field "histogram" on measurement "m" was') == []
    assert named("unable to parse 'm,__name__=m value=1 1': bad") == []
    assert named(f'input field "histogram" on measurement "{odd}" is too long, 9 > 1') == ["odd"]
    go_quoted = 'a\\"b\\\\c\\u2028\U0001f600'  # Go's %q (2.x)
    assert named(f'input field "value" on measurement "{go_quoted}" is type') == ["odd"]
    assert influxdb._go_quoted("\U000e0001\uffff\u00e9") == "\\U000e0001\\uffff\u00e9"


def test_a_refusal_names_three_series_and_counts_the_others():
    assert influxdb.naming([]) == ""
    assert influxdb.naming([labels(__name__="a", j="x")]) == ' (a{j="x"})'
    assert influxdb.naming([labels(__name__=n) for n in "abc"]) == " (a{}, b{}, c{})"
    assert influxdb.naming([labels(__name__=n) for n in "abcdefg"]) == \
        " (a{}, b{}, c{} and 4 more series)"


def test_the_documented_histogram_line_is_the_one_the_connector_writes(influx_server):
    with open(os.path.join(ROOT, "docs", "influxdb.md")) as handle:
        [line] = re.findall(r"(?m)^  (http_request_duration_seconds,\S+ histogram=.*)$",
                            handle.read())
    labels_ = labels(__name__="http_request_duration_seconds", job="api")
    written = Series(labels_, [], [], at(1700000000000, histogram=Histogram(
        0, 17, 27.5, 3, 0.001, 2, positive_spans=((0, 2), (1, 1)), positive=(3, -1, 0))))
    assert list(influxdb_line.LineEncoder().lines([written])) == [line]
    store = fresh_store(influx_server)
    assert influx_server.write_lines(store.client.database, line) == 204
    [found] = store.read(query((0, "job", "api"), start=0, end=2 * 10 ** 12), context())
    assert found == written


def test_influxdbs_own_prometheus_read_sees_only_the_float_samples(influx_server):
    from chalicelib.protocol.prompb import remote_pb2
    from harness.remote import HEADERS, read_request
    store = fresh_store(influx_server)
    store.write([Series(labels(__name__="lat", job="j"), [1000], [0.5], at(2000))], context())
    status, _, body = post(f"{influx_server.url}/api/v1/prom/read?db={store.client.database}",
                           codec.encode_message(read_request((0, 10_000, [(0, "__name__", "lat")]))),
                           HEADERS)
    assert status == 200, body
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(body, 1 << 20))
    [series] = response.results[0].timeseries
    assert [(s.timestamp, s.value) for s in series.samples] == [(1000, 0.5)]
    assert list(series.histograms) == []


def test_a_value_bits_field_of_another_tool_elsewhere_hides_no_stale_marker(influx_server):
    """Another measurement's float ``value_bits`` would make InfluxQL read the field as a
    float across the statement and drop our markers: they are read as strings."""
    store = fresh_store(influx_server)
    assert influx_server.write_lines(store.client.database,
                                     "other,__name__=other value_bits=1 1") == 204
    stale = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
    store.write([Series(labels(__name__="mine"), [10, 20], [1.0, stale])], context())
    [found] = [s for s in store.read(query((2, "__name__", "mine|other")), context())
               if dict(s.labels)["__name__"] == "mine"]
    assert [struct.pack("<d", v) for v in found.values] == [struct.pack("<d", 1.0),
                                                            struct.pack("<d", stale)]
