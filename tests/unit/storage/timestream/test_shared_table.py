"""Reads stay exact on a table other writers fill: other connector instances, the Go
connector, other tools writing other types; columns that Timestream shows late."""
import pytest

from chalicelib.errors import BackendError, BackendUnavailable
from chalicelib.matchers import Matcher
from chalicelib.model import Histogram, Query, Series
from chalicelib.storage.histogram_text import dumps
from chalicelib.storage.timestream.reader import (TimestreamQueryRunner,
                                                  TimestreamReader)
from chalicelib.storage.timestream.store import TimestreamStore
from harness.timestream.env import DATABASE, NOW_MS, TABLE
from tests.support import context


def second_instance(env) -> TimestreamStore:
    """Another Lambda instance of the connector: its own clients, same table."""
    reader = TimestreamReader(TimestreamQueryRunner(env.query_client), DATABASE, TABLE)
    return TimestreamStore(env.other_writer(), reader, DATABASE, TABLE, executor=env.executor,
                           clock=lambda: NOW_MS / 1000)


def series(labels, samples):
    return Series(tuple(sorted(labels.items())), [t for t, _ in samples],
                  [v for _, v in samples])


def read(store, *matchers):
    return list(store.read(Query(0, 2 ** 62, tuple(Matcher.of(*m) for m in matchers)), context(10 ** 6)))


def answer(result):
    return {tuple(s.labels): list(zip(s.timestamps, s.values)) for s in result}


A = {"__name__": "m", "job": "a"}
AP = {"__name__": "m", "job": "a", "pod": "p1"}


def test_series_of_two_writers_never_merge(env):
    list(env.store.read(Query(0, 1, (Matcher.of(0, "__name__", "m"),)), context(10)))  # warm this instance
    env.store.write([series(A, [(NOW_MS, 1.0)])], context())
    second_instance(env).write([series(AP, [(NOW_MS, 2.0)])], context())
    expected = {tuple(sorted(A.items())): [(NOW_MS, 1.0)],
                tuple(sorted(AP.items())): [(NOW_MS, 2.0)]}
    assert answer(read(env.store, (0, "__name__", "m"))) == expected
    assert answer(read(env.store, (0, "pod", "p1"))) == {tuple(sorted(AP.items())): [(NOW_MS, 2.0)]}
    assert answer(read(env.store, (0, "__name__", "m"), (0, "pod", ""))) \
        == {tuple(sorted(A.items())): [(NOW_MS, 1.0)]}


def test_a_column_timestream_does_not_show_yet_is_no_500_and_never_a_merged_series(env):
    env.store.write([series(A, [(NOW_MS, 1.0)])], context())
    second_instance(env).write([series(AP, [(NOW_MS, 2.0)])], context())
    env.queries.hidden = {"pod"}  # written, not yet propagated
    with pytest.raises(BackendUnavailable, match="two samples at .* not visible yet") as raised:
        read(env.store, (0, "__name__", "m"))
    assert raised.value.status == 503
    assert read(env.store, (0, "pod", "p1")) == []  # nothing Timestream shows has pod
    env.queries.hidden = set()  # propagated: readable on the very next read
    assert len(read(env.store, (0, "pod", "p1"))) == 1
    assert len(read(env.store, (0, "__name__", "m"))) == 2


def test_other_types_in_a_shared_table_are_left_out(env):
    env.store.write([series(A, [(NOW_MS, 1.0)])], context())
    tool = env.other_writer()
    tool.write_records(DatabaseName=DATABASE, TableName=TABLE, Records=[
        {"MeasureName": "count", "MeasureValueType": "BIGINT", "MeasureValue": "7",
         "Time": str(NOW_MS), "Dimensions": [{"Name": "job", "Value": "a"}]},
        {"MeasureName": "note", "MeasureValueType": "VARCHAR", "MeasureValue": "hello",
         "Time": str(NOW_MS), "Dimensions": [{"Name": "job", "Value": "a"}]},
        {"MeasureName": "flag", "MeasureValueType": "BOOLEAN", "MeasureValue": "true",
         "Time": str(NOW_MS), "Dimensions": [{"Name": "host", "Value": "h"}]},
        {"MeasureName": "metrics", "MeasureValueType": "MULTI", "Time": str(NOW_MS),
         "Dimensions": [{"Name": "job", "Value": "a"}],
         "MeasureValues": [{"Name": "cpu", "Value": "0.5", "Type": "DOUBLE"},
                           {"Name": "mem", "Value": "12", "Type": "BIGINT"}]}])
    assert answer(read(env.store, (0, "job", "a"))) == {tuple(sorted(A.items())): [(NOW_MS, 1.0)]}
    assert read(env.store, (0, "__name__", "count")) == []
    assert read(env.store, (0, "__name__", "metrics")) == []
    assert read(env.store, (2, "__name__", ".+"), (0, "host", "h")) == []


def test_a_table_without_doubles_answers_empty(env):
    assert read(env.store, (2, "__name__", ".+")) == []
    env.other_writer().write_records(DatabaseName=DATABASE, TableName=TABLE, Records=[
        {"MeasureName": "count", "MeasureValueType": "BIGINT", "MeasureValue": "7",
         "Time": str(NOW_MS), "Dimensions": [{"Name": "job", "Value": "a"}]}])
    assert read(env.store, (2, "__name__", ".+")) == []
    assert read(env.store, (0, "__name__", "count")) == []


def test_data_written_by_the_go_connector_reads_back(env):
    """The Go connector (awslabs/amazon-timestream-connector-prometheus): measure name =
    metric name, every label a dimension, DOUBLE formatted with 6 decimals, milliseconds,
    one record per sample, no CommonAttributes."""
    go = env.other_writer()
    samples = {("node_cpu_seconds_total", "0", "idle"): [(NOW_MS - 30_000, 1234.5),
                                                          (NOW_MS, 1240.25)],
               ("node_cpu_seconds_total", "1", "user"): [(NOW_MS, 0.1 + 0.2)],
               ("up", None, None): [(NOW_MS, 1.0)]}
    records = []
    for (name, cpu, mode), points in samples.items():
        labels = {"instance": "10.0.0.1:9100", "job": "node"}
        if cpu is not None:
            labels.update(cpu=cpu, mode=mode)
        for ts, value in points:
            records.append({"Dimensions": [{"Name": k, "Value": v} for k, v in labels.items()],
                            "MeasureName": name, "MeasureValue": "%.6f" % value,
                            "MeasureValueType": "DOUBLE", "Time": str(ts),
                            "TimeUnit": "MILLISECONDS"})
    go.write_records(DatabaseName=DATABASE, TableName=TABLE, Records=records)
    got = answer(read(env.store, (0, "job", "node")))
    base = (("instance", "10.0.0.1:9100"), ("job", "node"))
    assert got == {
        (("__name__", "node_cpu_seconds_total"), ("cpu", "0")) + base + (("mode", "idle"),):
            [(NOW_MS - 30_000, 1234.5), (NOW_MS, 1240.25)],
        (("__name__", "node_cpu_seconds_total"), ("cpu", "1")) + base + (("mode", "user"),):
            [(NOW_MS, 0.3)],
        (("__name__", "up"),) + base: [(NOW_MS, 1.0)]}
    assert answer(read(env.store, (0, "__name__", "node_cpu_seconds_total"), (0, "mode", "idle")))


H = Histogram(0, 3, 1.5, 0, 0.0, 1, positive_spans=((0, 2),), positive=(1, 0))


def test_histograms_another_instance_wrote_read_back_and_other_multi_measures_are_left_out(env):
    second_instance(env).write([Series((("__name__", "h"), ("job", "a")), [], [],
                                       [H._replace(timestamp=NOW_MS)])], context())
    env.other_writer().write_records(DatabaseName=DATABASE, TableName=TABLE, Records=[
        {"MeasureName": "metrics", "MeasureValueType": "MULTI", "Time": str(NOW_MS),
         "Dimensions": [{"Name": "job", "Value": "a"}],
         "MeasureValues": [{"Name": "cpu", "Value": "0.5", "Type": "DOUBLE"}]}])
    [found] = read(env.store, (0, "job", "a"))
    assert found.labels == (("__name__", "h"), ("job", "a"))
    assert [dumps(h) for h in found.histograms] == [dumps(H)]
    assert read(env.store, (0, "__name__", "metrics")) == []


def test_a_histogram_measure_holding_other_text_is_a_500_naming_the_series(env):
    env.store.write([Series((("__name__", "h"),), [], [], [H._replace(timestamp=NOW_MS)])],
                    context())
    env.other_writer().write_records(DatabaseName=DATABASE, TableName=TABLE, Records=[
        {"MeasureName": "g#histogram", "MeasureValueType": "MULTI", "Time": str(NOW_MS),
         "Dimensions": [{"Name": "job", "Value": "b"}],
         "MeasureValues": [{"Name": "__histogram", "Value": "not json", "Type": "VARCHAR"}]}])
    with pytest.raises(BackendError, match=r'value of g\{job="b"\} that this connector did '
                                           "not write as a native histogram") as raised:
        read(env.store, (0, "__name__", "g"))
    assert raised.value.status == 500
    assert len(read(env.store, (0, "__name__", "h"))) == 1
