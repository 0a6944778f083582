"""Series to Timestream records: label names <-> dimension names (classic names as before,
any other UTF-8 name through a reversible escape Timestream accepts), the series cache, and
batching into WriteRecords calls with CommonAttributes, metered as Timestream bills them."""
import re
import struct

import pytest

from chalicelib.caches import ClearedWhenFull
from chalicelib.model import RESET_NO, Histogram, Series
from chalicelib.protocol.labels import validate_labels
from chalicelib.storage.histogram_text import dumps
from chalicelib.storage.timestream import metering, records
from harness import workloads
from harness.timestream.env import NOW_MS
from tests.support import context, ESTIMATE_SLACK, memory_held_after

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]




from chalicelib.storage.timestream.records import dimension_name, label_name
from harness.timestream.write_rules import refuses_dimension_name

CLASSIC = ["job", "instance", "le", "a_b", "_x", "X9", "time", "measure_name", "measure_value",
           "ts_x", "measure_value_y", "__x", "__U__x", "U__x", "__value", "value", "_", "__"]
UTF8 = ["service.name", "http.server.duration", "a:b", ":", "a-b", "0x", "日本語", "ü",
        "😀", "a b", "a\nb", '"quoted"', "back\\slash", "x_y.z", "_.", "._a_", "__U__x.",
        "ts_.x", "time.zone", "measure_value.x", "\u0000", "Ω_1"]


@pytest.mark.parametrize("name", CLASSIC + UTF8)
def test_round_trip_and_accepted_by_timestream(name):
    stored = dimension_name(name)
    assert label_name(stored) == name
    assert not refuses_dimension_name(stored)


def test_classic_names_are_stored_exactly_as_before():
    # existing tables (and the Go connector's data) stay readable
    assert [dimension_name(n) for n in ["job", "instance", "le", "a_b", "U__x"]] == \
        ["job", "instance", "le", "a_b", "U__x"]
    assert dimension_name("time") == "__time"
    assert dimension_name("__x") == "____x"
    assert label_name("job") == "job"


def test_escape_is_documented_form():
    assert dimension_name("service.name") == "__U__service_2e_name"
    assert dimension_name("a:b") == "__U__a_3a_b"
    assert dimension_name("x_y.z") == "__U__x__y_2e_z"
    assert dimension_name("日本") == "__U___65e5__672c_"
    assert re.fullmatch(r"[A-Za-z0-9_]+", dimension_name("😀 a:b\n"))


def test_no_two_names_share_a_dimension():
    names = CLASSIC + UTF8
    assert len({dimension_name(n) for n in names}) == len(names)


def test_a_dimension_not_written_by_the_escape_reads_as_itself():
    # e.g. a column someone else wrote: read with the classic rule (strip "__"), no crash
    assert label_name("__U__a_zz") == "U__a_zz"
    assert label_name("__U__a_") == "U__a_"


def series(labels, samples):
    return Series(validate_labels(tuple(sorted(labels.items()))), [t for t, _ in samples],
                  [v for _, v in samples])


def test_one_series_uses_common_attributes_and_at_most_100_records_per_call(env):
    samples = [(NOW_MS - 1000 * i, i + 0.1) for i in range(250)]
    result = env.store.write([series({"__name__": "cpu", "job": "node", "instance": "a:1"},
                                     samples)], context())
    assert result.stored == 250 and result.rejected == 0
    assert sorted(len(call["Records"]) for call in env.wire.calls) == [50, 100, 100]
    for call in env.wire.calls:
        common = call["CommonAttributes"]
        assert common["MeasureName"] == "cpu"
        assert common["MeasureValueType"] == "DOUBLE" and common["TimeUnit"] == "MILLISECONDS"
        assert common["Dimensions"] == [{"Name": "instance", "Value": "a:1"},
                                        {"Name": "job", "Value": "node"}]
        assert all(set(record) == {"Time", "MeasureValue"} for record in call["Records"])


def test_many_series_share_their_common_dimensions(env):
    batch = [series({"__name__": f"m{i % 3}", "job": "node", "cpu": str(i)}, [(NOW_MS, 1.0)])
             for i in range(150)]
    env.store.write(batch, context())
    # One call per metric (its name, job and the scrape time in CommonAttributes): 3 units.
    assert sorted(len(call["Records"]) for call in env.wire.calls) == [50, 50, 50]
    for call in env.wire.calls:
        common = call["CommonAttributes"]
        assert {"Name": "job", "Value": "node"} in common["Dimensions"]
        assert common["Time"] == str(NOW_MS) and common["MeasureName"] in ("m0", "m1", "m2")
        assert all(record["Dimensions"][0]["Name"] == "cpu" for record in call["Records"])
    assert sum(metering.call_units(c["CommonAttributes"], c["Records"])
               for c in env.wire.calls) == 3
    assert len(env.wire.records()) == 150


def test_realistic_node_exporter_writes_are_metered_well_under_the_go_connectors():
    """Metered 1 KiB writes (pricing docs' formula) for node_exporter remote-write batches:
    `make bench` prints the ratio; this only guards against a regression past 0.6x."""
    batches = workloads.node_exporter_requests(5, NOW_MS)
    ours = sum(metering.connector_units(batch, NOW_MS) for batch in batches)
    go = sum(metering.go_units(batch) for batch in batches)
    assert ours < 0.6 * go


def test_a_series_written_again_is_not_checked_again(env, monkeypatch):
    """Prometheus sends the same series over and over: each is checked and mapped once."""
    checked = []
    check = records.check_series
    monkeypatch.setattr(records, "check_series", lambda labels: checked.append(labels) or
                        check(labels))
    monkeypatch.setattr(records, "_MEMBERS", fresh_members())
    for i in range(3):
        env.store.write([series({"__name__": "m", "job": "x"}, [(NOW_MS - i, 1.0)]),
                         series({"__name__": "m", "x" * 61: "v"}, [(NOW_MS - i, 1.0)])], context())
    assert len(checked) == 2 and len(env.wire.records()) == 3


def fresh_members(max_bytes=records.MEMBERS_CACHE_MAX_BYTES):
    return ClearedWhenFull(max_bytes)


def test_the_series_cache_is_bounded_in_bytes_and_refills_after_emptying(env, monkeypatch):
    monkeypatch.setattr(records, "_MEMBERS", fresh_members(1_500_000))
    sizes = []
    for batch in range(3):  # 3 x 700 series of ~770 bytes (estimated): emptied once
        result = env.store.write([series({"__name__": "m", "i": f"{batch}-{i}"},
                                         [(NOW_MS, float(i))]) for i in range(700)], context())
        assert (result.stored, result.rejected) == (700, 0)
        sizes.append(len(records._MEMBERS))
        assert 0 < records._MEMBERS.bytes <= 1_500_000
    assert sizes[:2] == [700, 1400] and 0 < sizes[2] < 700
    stored = sorted((r["Dimensions"][0]["Value"], r["MeasureValue"]) for r in env.wire.records())
    assert stored == sorted((f"{b}-{i}", repr(float(i))) for b in range(3) for i in range(700))


@pytest.mark.parametrize("labels", [
    {"__name__": "m{i}"},  # the one dimension __name__
    {"__name__": "m", "job": "j{i}", "instance": "i{i}"},
    {"__name__": "m", **{f"label{j}": f"v{{i}}-{j}" for j in range(20)}},
    {"__name__": "m", **{f"l{j}": "x" * 200 + f"{{i}}-{j}" for j in range(5)}},
    {"__name__": "m", **{f"l{j}": "\U0001f600" * 100 + f"{{i}}-{j}" for j in range(3)}},
    {"__name__": "m", **{f"service.name.{j}": f"{{i}}-{j}" for j in range(5)}},  # escaped
    {"__name__": "m", "time": "{i}", "ts_x": "{i}"},  # reserved: a __ prefix
])
def test_the_series_cache_bytes_are_the_memory_it_holds_rounded_up(monkeypatch, labels):
    """What the cache's bound counts is at least what it really holds (and not far more),
    labels included: they outlive the translate caches' entries."""
    monkeypatch.setattr(records, "_MEMBERS", fresh_members())
    def work():
        for i in range(500):  # fresh strings for each series, as decoded from a request
            assert isinstance(records._member(tuple(sorted(
                (name.format(i=i).encode().decode(), value.format(i=i).encode().decode())
                for name, value in labels.items()))), records._Member)

    held = memory_held_after(work)
    assert held <= records._MEMBERS.bytes <= ESTIMATE_SLACK * held


def test_the_series_cache_counts_the_reason_a_series_is_refused(monkeypatch):
    monkeypatch.setattr(records, "_MEMBERS", fresh_members())
    def work():
        for i in range(500):
            assert "longer than 60 bytes" in records._member(
                (("__name__", f"m{i}"), ("x" * 2000 + str(i), "v")))

    held = memory_held_after(work)
    assert held <= records._MEMBERS.bytes <= ESTIMATE_SLACK * held


def target_metric(count, value_bytes, instance, scrapes=1):
    """``count`` series of metric ``a`` of one target (job, instance), ``scrapes`` samples each."""
    return [series({"__name__": "a", "job": "j", "instance": instance,
                    "k": f"{i:03}".ljust(value_bytes, "v")},
                   [(NOW_MS - t, 1.0) for t in range(scrapes)]) for i in range(count)]


def calls_and_units(request):
    batches, _ = records.build_batches(request, NOW_MS, None)
    return ([(len(b.records), b.common.get("MeasureName")) for b in batches],
            [metering.call_units(b.common, b.records) for b in batches])


@pytest.mark.parametrize("metric,alone_units,shared_bytes,calls", [
    # 902 bytes alone, exactly 1024 shared: a call of its own
    (target_metric(16, 46, "i"), [1], 16 * 64, [(16, "a"), (1, "b")]),
    (target_metric(31, 15, "i"), [1], 31 * 33, [(32, None)]),          # 1023 shared: shared
    # 6 x (8 + 1 + 158) + 22 = 1024 bytes alone: one unit, no more than 1056 shared bytes
    (target_metric(6, 158, "i"), [1], 6 * 176, [(6, "a"), (1, "b")]),
    (target_metric(6, 158, "ii"), [2], 6 * 176, [(7, None)]),          # 1025 bytes: 2 units
    # two scrapes: each record carries its time; 14 + 10 + 40 x (8 + 8 + 1 + 8) = 1024 bytes
    (target_metric(20, 8, "i" * 11, scrapes=2), [1], 40 * 26, [(40, "a"), (1, "b")]),
    (target_metric(20, 8, "i" * 12, scrapes=2), [2], 40 * 26, [(41, None)]),
    # 2 units alone, 2046 shared bytes: less than 2 KiB, so shared
    (target_metric(31, 48, "i"), [2], 31 * 66, [(32, None)]),
    # full calls (100 records): alone no more units than shared (rounded up), or more
    (target_metric(100, 3, "i" * 930), [3], 100 * 21, [(100, "a"), (1, "b")]),
    (target_metric(100, 3, "i" * 1860), [4], 100 * 21, [(100, None), (1, "a")]),
    # 6 units alone; 5121 shared bytes are 6 units too (rounded up), 5119 only 5
    (target_metric(21, 34, "i" * 930) + target_metric(100, 33, "i" * 930)[21:], [6], 5121,
     [(100, "a"), (1, "b")]),
    (target_metric(19, 34, "i" * 930) + target_metric(100, 33, "i" * 930)[19:], [6], 5119,
     [(100, None), (1, "a")]),
    # 5120 shared bytes are exactly 5 units: 6 alone cost more
    (target_metric(20, 34, "i" * 930) + target_metric(100, 33, "i" * 930)[20:], [6], 5120,
     [(100, None), (1, "a")]),
])
def test_a_metric_gets_calls_of_its_own_exactly_when_they_cost_no_more_units(
        metric, alone_units, shared_bytes, calls):
    assert calls_and_units(metric)[1] == alone_units
    assert sum(16 + 1 + 1 + len(dict(s.labels)["k"]) for s in metric
               for _ in s.timestamps) == shared_bytes
    instance = dict(metric[0].labels)["instance"]
    other = series({"__name__": "b", "job": "j", "instance": instance, "k": "z" * 40},
                   [(NOW_MS, 1.0)])
    assert calls_and_units(metric + [other])[0] == calls


def fresh(text):
    """``text`` as another string object than the literal, as decoded from a request."""
    return "".join(list(text))


def test_labels_decoded_from_a_request_are_mapped_like_literal_ones(env):
    """A request's label names are new string objects, never the interned literals of the
    code: the metric name, job and instance are still found by value."""
    request = [Series(((fresh("__name__"), fresh("cpu")), (fresh("instance"), fresh(target)),
                       (fresh("job"), fresh("node")), (fresh("mode"), fresh(f"m{k:02}"))),
                      [NOW_MS], [1.0]) for target in ("a:1", "b:1") for k in range(60)]
    literal = "__name__"
    assert request[0].labels[0][0] == literal and request[0].labels[0][0] is not literal
    assert env.store.write(request, context()).stored == 120
    # 60 series a target: too many to share one call, so a call per target
    assert sorted(((c["CommonAttributes"]["MeasureName"], c["CommonAttributes"]["Dimensions"])
                   for c in env.wire.calls), key=str) == [
        ("cpu", [{"Name": "instance", "Value": target}, {"Name": "job", "Value": "node"}])
        for target in ("a:1", "b:1")]


def test_decoded_labels_are_checked_against_the_limits_like_literal_ones(env):
    """128 labels besides the metric name, 2 048 bytes of them: the name is not one."""
    labels = tuple(sorted([(fresh("__name__"), fresh("m" * 200))]
                          + [(fresh(f"l{i:03}"), fresh("v" * 12)) for i in range(128)]))
    assert env.store.write([Series(labels, [NOW_MS], [1.0])], context()).stored == 1


def test_labels_sorting_before_the_metric_name_count_against_the_limits(env):
    """Upper-case label names sort before __name__: they are dimensions like the others."""
    labels = tuple(sorted([("__name__", "m")] + [(f"L{i:03}", "v") for i in range(129)]))
    result = env.store.write([Series(labels, [NOW_MS], [1.0])], context())
    assert (result.stored, result.rejected) == (0, 1)
    assert result.reasons[0].endswith("more than 128 labels besides the metric name")


def test_a_target_is_its_job_and_instance_even_as_decoded_strings(env):
    """One metric of two jobs on one instance: two targets, a call each (60 series each,
    too many to share one call)."""
    request = [Series(((fresh("__name__"), fresh("cpu")), (fresh("core"), fresh(f"{k:02}")),
                       (fresh("instance"), fresh("i:1")), (fresh("job"), fresh(job))),
                      [NOW_MS], [1.0]) for job in ("a", "b") for k in range(60)]
    assert env.store.write(request, context()).stored == 120
    assert sorted(str(c["CommonAttributes"]["Dimensions"]) for c in env.wire.calls) == [
        str([{"Name": "instance", "Value": "i:1"}, {"Name": "job", "Value": job}])
        for job in ("a", "b")]


def test_a_metric_of_several_targets_gets_a_call_per_target_sharing_its_labels(env):
    request = [series({"__name__": "a", "job": "j", "instance": instance,
                       "k": f"{i:03}".ljust(20, "v")}, [(NOW_MS, 1.0)])
               for instance in ("x:1", "y:1") for i in range(60)]
    assert env.store.write(request, context()).stored == 120
    assert sorted((len(call["Records"]), call["CommonAttributes"]["MeasureName"],
                   str(call["CommonAttributes"]["Dimensions"])) for call in env.wire.calls) == [
        (60, "a", str([{"Name": "instance", "Value": "x:1"}, {"Name": "job", "Value": "j"}])),
        (60, "a", str([{"Name": "instance", "Value": "y:1"}, {"Name": "job", "Value": "j"}]))]


def test_small_metrics_of_a_target_share_calls_largest_records_first(env):
    """The last call of a scrape, rounded up to a whole KiB like the others, holds the
    smallest records."""
    request = [series({"__name__": f"m{size:02}", "job": "j", "instance": "i",
                       "k": f"{copy}" * size}, [(NOW_MS, 1.0)])
               for size in range(1, 76) for copy in (1, 2)]
    assert env.store.write(request, context()).stored == 150
    first, second = sorted(env.wire.calls, key=lambda call: -len(call["Records"]))
    assert len(first["Records"]) == 100 and len(second["Records"]) == 50
    assert {r["MeasureName"] for r in first["Records"]} == {f"m{s:02}" for s in range(26, 76)}
    assert first["CommonAttributes"]["Dimensions"] == [{"Name": "instance", "Value": "i"},
                                                        {"Name": "job", "Value": "j"}]


def test_grouping_a_huge_write_stops_at_the_deadline(monkeypatch):
    """A request of very many series costs at most the deadline, before any call."""
    from chalicelib.errors import BackendUnavailable
    monkeypatch.setattr(records, "SERIES_PER_DEADLINE_CHECK", 2)
    looked = []

    class Passing:
        def ensure(self, what):
            looked.append(what)
            if len(looked) > 2:
                raise BackendUnavailable(f"{what} did not finish within the request deadline")
    many = [Series((("__name__", "m"), ("i", str(i))), [NOW_MS], [1.0]) for i in range(4)]
    batches, _ = records.build_batches(many, NOW_MS, None, Passing())  # looks at 0 and 2
    assert sum(len(b.records) for b in batches) == 4 and len(looked) == 2
    looked.clear()
    with pytest.raises(BackendUnavailable, match="grouping the write"):
        records.build_batches(many + many[:1], NOW_MS, None, Passing())  # looks at 0, 2, 4
    assert len(looked) == 3


def test_small_scrapes_of_many_targets_share_calls_and_cost_less_than_one_record_each():
    """Two load averages from each of 50 targets: one call per target would cost 50 KiB
    (each call rounds up to a whole KiB); packed, they cost what the records weigh."""
    many = [Series(tuple(sorted({"__name__": metric, "job": "node",
                                 "instance": f"10.0.0.{i}:9100"}.items())), [NOW_MS], [1.0])
            for i in range(50) for metric in ("node_load1", "node_load5")]
    batches, _ = records.build_batches(many, NOW_MS, None)
    assert [len(b.records) for b in batches] == [100]  # about 50 bytes a record: one call
    assert metering.connector_units(many, NOW_MS) == 4 < metering.go_units(many) == 6
    [batch] = batches
    # every record keeps its own target; the shared job and time are common
    assert batch.common["Dimensions"] == [{"Name": "job", "Value": "node"}]
    assert {r["Dimensions"][0]["Value"] for r in batch.records} == {
        f"10.0.0.{i}:9100" for i in range(50)}
    assert sorted(batch.labels) == sorted(s.labels for s in many)


def test_targets_too_large_to_share_a_call_keep_calls_of_their_own():
    """60 records each: two targets cannot share a call of at most 100 records."""
    big = [Series(tuple(sorted({"__name__": "m", "job": "node", "instance": f"host-{i}",
                                "k": f"{k:02}"}.items())), [NOW_MS], [1.0])
           for i in range(3) for k in range(60)]
    batches, _ = records.build_batches(big, NOW_MS, None)
    assert sorted(len(b.records) for b in batches) == [60, 60, 60]
    for batch in batches:
        assert len({dict(labels)["instance"] for labels in batch.labels}) == 1


# -- native histograms: one MULTI record each ---------------------------------------------

H = Histogram(0, 17, 27.5, 3, 2.938735877055719e-39, 2, positive_spans=((-2, 2), (1, 3)),
              positive=(1, 2, -1, 0, 3), negative_spans=((0, 1),), negative=(2,),
              reset_hint=RESET_NO)


def with_histograms(labels, histograms, samples=()):
    return Series(validate_labels(tuple(sorted(labels.items()))), [t for t, _ in samples],
                  [v for _, v in samples], list(histograms))


def test_a_histogram_is_its_exact_text_with_its_count_and_sum_as_doubles():
    assert records.histogram_measure_values(H) == [
        {"Name": "__histogram", "Value": dumps(H), "Type": "VARCHAR"},
        {"Name": "__histogram_count", "Value": "17.0", "Type": "DOUBLE"},
        {"Name": "__histogram_sum", "Value": "27.5", "Type": "DOUBLE"}]


@pytest.mark.parametrize("count,total,names", [
    (3.0, STALE_NAN, ["__histogram", "__histogram_count"]),  # a stale marker
    (float("inf"), -0.0, ["__histogram", "__histogram_sum"]),
    (float("nan"), float("-inf"), ["__histogram"]),
])
def test_a_count_or_sum_no_double_can_hold_is_left_to_the_text(count, total, names):
    histogram = H._replace(count=count, sum=total, is_float=True, positive=(1.0,) * 5,
                           negative=(2.0,))
    values = records.histogram_measure_values(histogram)
    assert [v["Name"] for v in values] == names
    assert values[0]["Value"] == dumps(histogram)
    assert all(v["Value"] == "-0.0" for v in values[1:] if v["Name"] == "__histogram_sum")


def test_the_metered_bytes_of_a_value_are_8_for_a_double_and_names_and_values_for_multi():
    assert records.value_bytes({"MeasureValue": "1.5"}) == 8
    assert records.value_bytes({"MeasureValues": [
        {"Name": "__histogram", "Value": "{\"é\":1}", "Type": "VARCHAR"},
        {"Name": "__histogram_sum", "Value": "1.5", "Type": "DOUBLE"}]}) == 11 + 8 + 15 + 8


@pytest.mark.parametrize("name,metric", [("h#histogram", "h"), ("a#b#histogram", "a#b"),
                                         ("#histogram", None), ("h", None),
                                         ("h#histograms", None), ("h#Histogram", None)])
def test_the_metric_of_a_histogram_measure(name, metric):
    assert records.histogram_metric(name) == metric


def test_histograms_are_multi_records_of_the_series_dimensions_in_calls_of_their_own():
    samples = [H._replace(timestamp=NOW_MS - 2000), H._replace(timestamp=NOW_MS - 1000)]
    request = [with_histograms({"__name__": "h", "job": "j", "instance": "i", "le": "x"},
                               samples, [(NOW_MS - 2000, 1.0)])]
    batches, rejected = records.build_batches(request, NOW_MS, None)
    assert rejected == []
    floats, histograms = batches
    assert floats.common["MeasureValueType"] == "DOUBLE" and floats.common["MeasureName"] == "h"
    assert histograms.common == {
        "MeasureValueType": "MULTI", "TimeUnit": "MILLISECONDS", "MeasureName": "h#histogram",
        "Dimensions": [{"Name": "instance", "Value": "i"}, {"Name": "job", "Value": "j"},
                       {"Name": "le", "Value": "x"}]}
    assert histograms.records == [
        {"Time": str(h.timestamp), "MeasureValues": records.histogram_measure_values(h)}
        for h in samples]
    assert histograms.labels == [request[0].labels] * 2


def test_one_scrape_of_histograms_shares_its_time_and_target():
    request = [with_histograms({"__name__": "h", "job": "j", "path": p},
                               [H._replace(timestamp=NOW_MS)]) for p in ("/a", "/b")]
    [batch], _ = records.build_batches(request, NOW_MS, None)
    assert batch.common["Time"] == str(NOW_MS)
    assert batch.common["Dimensions"] == [{"Name": "job", "Value": "j"}]
    assert batch.records == [{"MeasureValues": records.histogram_measure_values(H),
                              "Dimensions": [{"Name": "path", "Value": p}]}
                             for p in ("/a", "/b")]


def test_histograms_go_in_calls_of_at_most_100_records_in_the_order_written():
    samples = [H._replace(timestamp=NOW_MS - 1000 * i) for i in range(250)]
    batches, _ = records.build_batches([with_histograms({"__name__": "h"}, samples)], NOW_MS,
                                       None)
    assert [len(b.records) for b in batches] == [100, 100, 50]
    assert [r["Time"] for b in batches for r in b.records] == [str(h.timestamp) for h in samples]
    assert all(b.common["Dimensions"] == [{"Name": "__name__", "Value": "h"}] for b in batches)


def test_histograms_of_several_metrics_and_targets_share_calls_when_no_dearer():
    request = [with_histograms({"__name__": name, "job": "j", "instance": instance},
                               [H._replace(timestamp=NOW_MS)])
               for name, instance in (("h2", "a"), ("h1", "b"), ("h1", "a"))]
    [batch], _ = records.build_batches(request, NOW_MS, None)  # 3 x 296 bytes: one unit
    assert metering.call_units(batch.common, batch.records) == 1
    assert [(r["MeasureName"], r["Dimensions"]) for r in batch.records] == [
        (f"{name}#histogram", [{"Name": "instance", "Value": instance}])
        for name, instance in (("h1", "a"), ("h1", "b"), ("h2", "a"))]
    assert batch.common["Dimensions"] == [{"Name": "job", "Value": "j"}]
    four = request + [with_histograms({"__name__": "h2", "job": "j", "instance": "b"},
                                      [H._replace(timestamp=NOW_MS)])]
    [joined], _ = records.build_batches(four, NOW_MS, None)  # 2 units: as 3 + 1 apart
    assert metering.call_units(joined.common, joined.records) == 2
    # each metric's 2 series share a long label: 979 bytes apart, 2 772 bytes together
    big = [with_histograms({"__name__": name, "job": "j", "k": name[1] * 400, "i": i},
                           [H._replace(timestamp=NOW_MS)]) for name in ("h1", "h2")
           for i in ("0", "1")]
    batches, _ = records.build_batches(big, NOW_MS, None)
    assert [(b.common["MeasureName"], len(b.records), records._units(b)) for b in batches] == [
        ("h1#histogram", 2, 1), ("h2#histogram", 2, 1)]
    assert records._units(records._batch([e for b in batches for e in zip(
        [records._member(labels)._replace(measure=b.common["MeasureName"])
         for labels in b.labels], [NOW_MS] * 2, [r["MeasureValues"] for r in b.records])])) == 3


def test_a_multi_call_is_metered_with_each_measures_name_and_value():
    request = [with_histograms({"__name__": "h", "job": "j"}, [H._replace(timestamp=NOW_MS)])]
    [batch], _ = records.build_batches(request, NOW_MS, None)
    size = 8 + len("h#histogram") + len("jobj") + records.value_bytes(batch.records[0])
    assert records.value_bytes(batch.records[0]) == (
        len("__histogram") + len(dumps(H)) + len("__histogram_count") + 8
        + len("__histogram_sum") + 8)
    assert metering.call_units(batch.common, batch.records) == records._units(batch) == 1
    assert metering.connector_units(request, NOW_MS) == 1 and size < 1024
    wide = [with_histograms({"__name__": "h", "job": "j"},
                            [H._replace(timestamp=NOW_MS - i) for i in range(5)])]
    [batch], _ = records.build_batches(wide, NOW_MS, None)
    each = 8 + records.value_bytes(batch.records[0])  # time and values in every record
    assert records._units(batch) == metering.call_units(batch.common, batch.records) == \
        -(-(len("h#histogram") + len("jobj") + 5 * each) // 1024)


def test_a_split_multi_call_keeps_its_records():
    request = [with_histograms({"__name__": "h", "job": "j", "i": str(i)},
                               [H._replace(timestamp=NOW_MS - i)]) for i in range(3)]
    [batch], _ = records.build_batches(request, NOW_MS, None)
    first, second = records.split_batch(batch)
    assert first.common["MeasureValueType"] == second.common["MeasureValueType"] == "MULTI"
    assert [r["MeasureValues"] for r in first.records + second.records] == [
        r["MeasureValues"] for r in batch.records]
    assert first.labels + second.labels == batch.labels


def of_size(values_bytes):
    """A histogram whose measures (text, count and sum) take exactly ``values_bytes``."""
    for buckets in range(1, values_bytes):
        for first in (1, 10):  # one character more
            histogram = H._replace(positive_spans=((0, buckets),),
                                   positive=(first,) + (1,) * (buckets - 1))
            size = records.measure_values_size(records.histogram_measure_values(histogram))
            if size == values_bytes:
                return histogram
    raise AssertionError(values_bytes)


def test_a_histogram_of_2048_bytes_of_values_is_written_and_one_byte_more_is_refused():
    long_labels = {"__name__": "h", "pad": "p" * 1900}  # dimensions have their own 2 KB
    fits = with_histograms(long_labels, [of_size(2048)._replace(timestamp=NOW_MS)])
    batches, rejected = records.build_batches([fits], NOW_MS, None)
    assert len(batches) == 1 and rejected == []
    over = with_histograms(long_labels, [of_size(2049)._replace(timestamp=NOW_MS)])
    batches, rejected = records.build_batches([over], NOW_MS, None)
    assert batches == [] and rejected == [records.Rejected(
        over.labels, 1, "native histogram too large for Timestream: its text, count and sum "
        "take 2049 bytes, over the 2048 bytes of values a multi-measure record holds",
        "limits", 1)]


def test_the_size_of_a_histograms_values_counts_what_it_holds():
    values = records.histogram_measure_values(H)
    assert records.measure_values_size(values) == len(dumps(H)) + 8 + 8
    stale = records.histogram_measure_values(H._replace(sum=STALE_NAN))
    assert records.measure_values_size(stale) == len(dumps(H._replace(sum=STALE_NAN))) + 8


def test_only_the_histograms_too_large_are_refused_and_the_largest_size_is_named():
    request = [with_histograms({"__name__": "h"}, [
        of_size(2048)._replace(timestamp=NOW_MS - 3), of_size(2100)._replace(
            timestamp=NOW_MS - 2), of_size(2200)._replace(timestamp=NOW_MS - 1)],
        [(NOW_MS, 1.0)])]
    batches, rejected = records.build_batches(request, NOW_MS, None)
    assert sum(len(b.records) for b in batches) == 2  # the float sample and one histogram
    [refused] = rejected
    assert (refused.count, refused.histograms, refused.kind) == (2, 2, "limits")
    assert "its text, count and sum take 2200 bytes" in refused.reason


def test_a_histogram_measure_name_is_at_most_256_bytes():
    fits = with_histograms({"__name__": "m" * 246}, [H._replace(timestamp=NOW_MS)])
    assert records.build_batches([fits], NOW_MS, None)[1] == []
    long = with_histograms({"__name__": "m" * 247, "job": "j"},
                           [H._replace(timestamp=NOW_MS - i) for i in range(2)],
                           [(NOW_MS, 1.0)])
    batches, rejected = records.build_batches([long], NOW_MS, None)
    assert [b.common["MeasureValueType"] for b in batches] == ["DOUBLE"]  # floats written
    assert rejected == [records.Rejected(
        long.labels, 2, "metric name longer than 246 bytes: a native histogram's measure name "
        "is the metric name and '#histogram', at most 256 bytes", "limits", 2)]


def test_histograms_outside_the_writable_window_are_counted_with_the_float_samples():
    oldest = NOW_MS - 3_600_000
    request = [with_histograms({"__name__": "h"}, [
        H._replace(timestamp=t) for t in (oldest - 1, oldest, NOW_MS + 900_000,
                                          NOW_MS + 900_001, NOW_MS + 900_002)],
        [(oldest - 5, 1.0), (NOW_MS + 900_001, 1.0), (NOW_MS + 900_003, 1.0)])]
    batches, rejected = records.build_batches(request, NOW_MS, oldest)
    assert sum(len(b.records) for b in batches) == 2
    assert [(r.count, r.histograms, r.kind, r.reason[:14]) for r in rejected] == [
        (4, 2, "out_of_bounds", "timestamp more"), (2, 1, "out_of_bounds", "timestamp olde")]
    only_histograms = [with_histograms({"__name__": "h"}, [H._replace(timestamp=oldest - 1)])]
    assert [(r.count, r.histograms) for r in records.build_batches(
        only_histograms, NOW_MS, oldest)[1]] == [(1, 1)]


def test_a_series_over_the_limits_counts_its_histograms_among_its_refused_samples():
    refused = with_histograms({"__name__": "h", "x" * 61: "v"},
                              [H._replace(timestamp=NOW_MS)] * 2, [(NOW_MS, 1.0)])
    assert [(r.count, r.histograms, r.kind) for r in records.build_batches(
        [refused], NOW_MS, None)[1]] == [(3, 2, "limits")]


def test_histograms_of_one_metric_get_calls_per_target():
    """60 series on each of two targets of one job: a call each, the target in its common
    dimensions (runs of one metric and target, as for float samples)."""
    request = [with_histograms({"__name__": "h", "job": "j", "instance": instance,
                                "i": str(i)}, [H._replace(timestamp=NOW_MS)])
               for instance in ("a", "b") for i in range(60)]
    batches, _ = records.build_batches(request, NOW_MS, None)
    assert [(len(b.records), b.common["Dimensions"]) for b in batches] == [
        (60, [{"Name": "instance", "Value": instance}, {"Name": "job", "Value": "j"}])
        for instance in ("a", "b")]


@pytest.mark.parametrize("batch", [
    records.Batch({"MeasureValueType": "DOUBLE"}, [
        {"MeasureName": "m" * 500, "MeasureValue": "1", "Time": "1",
         "Dimensions": [{"Name": "a", "Value": "b"}]}] * 2, [], False),
    records.Batch({"MeasureValueType": "MULTI", "MeasureName": "m" * 500, "Time": "1",
                   "Dimensions": [{"Name": "n" * 10, "Value": "v" * 20}]}, [
        {"MeasureValues": [{"Name": "x", "Value": "é" * 200, "Type": "VARCHAR"},
                           {"Name": "y", "Value": "1.5", "Type": "DOUBLE"}]}] * 2, [], True),
])
def test_a_calls_units_are_what_the_pricing_page_counts(batch):
    """The grouping's own count (``records._units``) is the metering formula's."""
    assert records._units(batch) == metering.call_units(batch.common, batch.records)
    common = batch.common
    size = (8 * ("Time" in common) + len(common.get("MeasureName", ""))
            + sum(len(d["Name"]) + len(d["Value"]) for d in common.get("Dimensions", ())))
    for record in batch.records:
        size += (8 * ("Time" in record) + len(record.get("MeasureName", ""))
                 + sum(len(d["Name"]) + len(d["Value"]) for d in record.get("Dimensions", ()))
                 + (8 if "MeasureValue" in record else sum(
                     len(v["Name"]) + (8 if v["Type"] == "DOUBLE" else len(v["Value"].encode()))
                     for v in record["MeasureValues"])))
    assert records._units(batch) == -(-size // 1024) == 2
