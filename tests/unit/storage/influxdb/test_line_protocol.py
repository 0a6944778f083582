"""Line protocol: escaping, the reversible ``base64:`` form, exact values, batching."""
import math
import struct

import pytest

from chalicelib.model import Histogram, Series
from chalicelib.storage.histogram_text import dumps
from chalicelib.storage.influxdb import line_protocol as influxdb_line
from chalicelib.storage.influxdb.line_protocol import (LineEncoder, batches,
                                                       decode, field_text,
                                                       histogram_fields,
                                                       series_key, stored_key,
                                                       stored_measurement,
                                                       stored_tag,
                                                       value_from_fields)
from tests.support import ESTIMATE_SLACK, memory_held_after

STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def test_series_key_escapes_commas_spaces_and_equals():
    labels = (("__name__", "m x,y=z"), ("a", "b c,d=e"), ("k y", "v"))
    assert series_key(labels) == \
        "m\\ x\\,y=z,__name__=m\\ x\\,y\\=z,a=b\\ c\\,d\\=e,k\\ y=v"
    decoded_name = "".join(["__na", "me__"])  # as from protobuf: equal, not the same object
    assert series_key(((decoded_name, "up"),)) == "up,__name__=up"



def test_label_names_sorting_before_the_metric_name_are_tags_not_the_measurement():
    assert series_key((("A", "x"), ("__name__", "m"), ("b", "y"))) == "m,A=x,__name__=m,b=y"


@pytest.mark.parametrize("text", ["two\nlines", "cr\rx", "nul\x00x", "tab\tx", "del\x7fx",
                                  "a\\,b", "a\\ b", "a\\=b", "a\\", "base64:x", "base64:"])
def test_what_line_protocol_cannot_carry_is_encoded_and_decodes_back(text):
    assert stored_tag(text).startswith("base64:")
    assert "\n" not in stored_tag(text) and "\\" not in stored_tag(text)
    assert decode(stored_tag(text)) == text
    assert decode(stored_key(text)) == text and decode(stored_measurement(text)) == text


@pytest.mark.parametrize("text", ["a\\b", "C:\\\\x", "a b", "a,b", "a=b", "#x", "ü 日本", "'\"",
                                  "base64", "xbase64:"])
def test_everything_else_is_stored_as_is(text):
    assert stored_tag(text) == text and decode(text) == text


def test_reserved_keys_and_comment_measurements_are_encoded():
    for key in ("time", "_field", "_measurement"):
        assert stored_key(key) != key and decode(stored_key(key)) == key
    assert stored_key("value") == "value" and stored_tag("time") == "time"
    assert stored_measurement("#m") != "#m" and decode(stored_measurement("#m")) == "#m"
    assert stored_measurement("m#") == "m#"


def test_text_that_only_looks_encoded_stays_literal():
    assert decode("base64:!!") == "base64:!!"
    assert decode("base64:_w") == "base64:_w"  # not UTF-8
    assert decode("base64:YQ") == "a"


def bits(value):
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def test_values_are_exact_and_special_values_keep_their_bits():
    assert field_text(0.1 + 0.2) == "value=0.30000000000000004"
    assert field_text(-0.0) == "value=-0.0"
    assert field_text(5e-324) == "value=5e-324"
    assert field_text(STALE) == 'value_bits="7ff0000000000002"'
    assert field_text(float("inf")) == 'value_bits="7ff0000000000000"'
    assert field_text(float("-inf")) == 'value_bits="fff0000000000000"'
    for value in (STALE, float("nan"), float("inf"), float("-inf")):
        text = field_text(value).split('"')[1]
        assert bits(value_from_fields(None, text)) == bits(value)


def test_value_from_fields():
    assert value_from_fields(2, None) == 2.0 and isinstance(value_from_fields(2, None), float)
    assert value_from_fields(1.5, "7ff0000000000000") == 1.5  # value wins
    assert math.isinf(value_from_fields(None, "7ff0000000000000"))
    for value, text in ((None, None), ("s", None), (True, None), (None, "zz"), (None, 5),
                        (None, "1" * 17)):
        assert value_from_fields(value, text) is None, (value, text)


def test_lines_and_batches():
    series = [Series((("__name__", "m"),), [1, 2, 3], [1.0, float("nan"), 3.0]),
              Series((("__name__", "n"), ("a", "b")), [4, 5], [4.0, 5.0])]
    encoder = LineEncoder()
    assert list(encoder.lines(series)) == [
        "m,__name__=m value=1.0 1", 'm,__name__=m value_bits="7ff8000000000000" 2',
        "m,__name__=m value=3.0 3", "n,__name__=n,a=b value=4.0 4", "n,__name__=n,a=b value=5.0 5"]
    assert [len(b.lines) for b in batches(series, encoder, 2, 1 << 20)] == [2, 2, 1]
    assert [len(b.lines) for b in batches(series, encoder, 5, 1 << 20)] == [5]
    assert list(batches([], encoder, 5, 1 << 20)) == []
    assert b"\n".join(next(batches(series, encoder, 5, 1 << 20)).lines).decode() == \
        "\n".join(encoder.lines(series))


def test_batches_are_bounded_in_bytes_newlines_included():
    """Lines of 24 bytes (and a non-ASCII one of 26: counted in UTF-8 bytes)."""
    series = [Series((("__name__", "m"),), [1, 2, 3, 4], [1.0, 2.0, 3.0, 4.0]),
              Series((("__name__", "\u00e9"),), [5], [5.0])]
    encoder = LineEncoder()
    lines = [line.encode() for line in encoder.lines(series)]
    assert [len(line) for line in lines] == [24, 24, 24, 24, 26]
    assert [len(b.lines) for b in batches(series, encoder, 100, 24 + 1 + 24)] == [2, 2, 1]
    assert [len(b.lines) for b in batches(series, encoder, 100, 24 + 1 + 24 - 1)] == [1, 1, 1, 1, 1]
    assert [len(b.lines) for b in batches(series, encoder, 100, 3 * 25 + 26)] == [4, 1]
    assert [len(b.lines) for b in batches(series, encoder, 100, 4 * 25 + 26)] == [5]
    # A line longer than the bound comes alone, between the others.
    assert [len(b.lines) for b in batches(series, encoder, 100, 25 + 24)] == [2, 2, 1]
    assert [b"".join(b.lines) for b in batches(series, encoder, 100, 23)] == lines


def test_remembered_series_keys_are_bounded_in_bytes_and_refill_after_emptying(monkeypatch):
    monkeypatch.setattr(influxdb_line, "KEYS_CACHE_MAX_BYTES", 300_000)  # entries <= 292 B
    encoder = LineEncoder()  # ~ 390 to 420 B per series (estimated)
    series = [Series((("__name__", f"m{i}"),), [i], [1.0]) for i in range(1200)]
    assert [line.split(" ")[0] for line in encoder.lines(series[:300] * 2)] == \
        [f"m{i},__name__=m{i}" for i in range(300)] * 2
    assert encoder.keys.bytes == 0  # each over a 1024th of the budget: none kept
    monkeypatch.setattr(influxdb_line, "KEYS_CACHE_MAX_BYTES", 450_000)
    encoder = LineEncoder()
    sizes = []
    for part in range(3):  # 3 x 400 series: the budget holds ~800, emptied once
        lines = list(encoder.lines(series[part * 400:(part + 1) * 400] * 2))
        assert [line.split(" ")[0] for line in lines] == \
            [f"m{i},__name__=m{i}" for i in range(part * 400, (part + 1) * 400)] * 2
        sizes.append(len(encoder.keys))
        assert 0 < encoder.keys.bytes <= 450_000
    assert sizes[:2] == [400, 800] and sizes[2] < 1200


@pytest.mark.parametrize("labels", [
    {"__name__": "m{i}"},
    {"__name__": "m", "job": "j{i}", "instance": "i{i}"},
    {"__name__": "m", **{f"label{j}": f"v{{i}}-{j}" for j in range(20)}},
    {"__name__": "m", **{f"l{j}": "x" * 200 + f"{{i}}-{j}" for j in range(5)}},
    {"__name__": "m", **{f"l{j}": "\U0001f600" * 100 + f"{{i}}-{j}" for j in range(3)}},
    {"__name__": "m", **{f"service name,{j}": f"{{i}}= {j}" for j in range(5)}},  # escaped
    {"__name__": "m", "time": "{i}", "_field": "{i}"},  # reserved: base64-encoded
])
def test_remembered_keys_bytes_are_the_memory_they_hold_rounded_up(labels):
    """What the bound counts is at least what the keys and their labels really hold (and
    not far more): the labels outlive the translate caches' entries."""
    encoder = LineEncoder()
    def work():
        for i in range(500):  # fresh strings for each series, as decoded from a request
            encoder.key(tuple(sorted((name.format(i=i).encode().decode(),
                                      value.format(i=i).encode().decode())
                                     for name, value in labels.items())))

    held = memory_held_after(work)
    assert held <= encoder.keys.bytes <= ESTIMATE_SLACK * held


H = Histogram(7, 17, 27.5, 3, 0.001, 2, positive_spans=((0, 2),), positive=(1, 2))
NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0]


def test_a_histogram_is_its_exact_text_in_a_string_field_with_count_and_sum_beside():
    text = dumps(H)
    assert histogram_fields(H, text) == (
        'histogram="' + text.replace('"', '\\"') + '",histogram_count=17.0,histogram_sum=27.5')
    assert histogram_fields(H, 'a"b\\c\\') == \
        'histogram="a\\"b\\\\c\\\\",histogram_count=17.0,histogram_sum=27.5'
    floating = H._replace(count=0.1 + 0.2, sum=-0.0, is_float=True)
    assert histogram_fields(floating, "t") == \
        'histogram="t",histogram_count=0.30000000000000004,histogram_sum=-0.0'
    assert histogram_fields(H._replace(count=2 ** 64 - 1), "t").endswith(
        ",histogram_count=1.8446744073709552e+19,histogram_sum=27.5")


@pytest.mark.parametrize("count,total,fields", [
    (17, float("inf"), ',histogram_count=17.0'),
    (17, float("-inf"), ',histogram_count=17.0'),
    (17, NAN, ',histogram_count=17.0'),               # Prometheus's NaN: not a stale marker
    (float("inf"), 1.5, ',histogram_sum=1.5'),
    (NAN, NAN, ''),
    (0, STALE, ''),                                   # a stale marker: neither
    (5, STALE, ''),
])
def test_count_and_sum_are_written_only_when_finite_and_never_for_a_stale_marker(
        count, total, fields):
    histogram = H._replace(count=count, sum=total, is_float=isinstance(count, float))
    assert histogram_fields(histogram, "t") == 'histogram="t"' + fields


def test_histogram_lines_follow_the_float_lines_of_their_series():
    series = [Series((("__name__", "h"), ("a", "b c")), [1], [1.0], [H, H._replace(timestamp=9)]),
              Series((("__name__", "f"),), [2], [2.0])]
    text = dumps(H).replace('"', '\\"')
    assert list(LineEncoder().lines(series)) == [
        "h,__name__=h,a=b\\ c value=1.0 1",
        f'h,__name__=h,a=b\\ c histogram="{text}",histogram_count=17.0,histogram_sum=27.5 7',
        f'h,__name__=h,a=b\\ c histogram="{text}",histogram_count=17.0,histogram_sum=27.5 9',
        "f,__name__=f value=2.0 2"]


def test_a_histogram_over_the_string_limit_is_refused_naming_its_series(monkeypatch):
    size = len(dumps(H))
    monkeypatch.setattr(influxdb_line, "MAX_STRING_FIELD_BYTES", size)
    fits = Series((("__name__", "h"),), [], [], [H])
    refused = []
    assert len(LineEncoder.histogram_lines("h", fits, refused)) == 1 and refused == []
    monkeypatch.setattr(influxdb_line, "MAX_STRING_FIELD_BYTES", size - 1)
    over = Series((("__name__", "h"), ("job", "j")), [], [], [H, H._replace(timestamp=8)])
    assert LineEncoder.histogram_lines("h", over, refused) == []
    assert refused == [f"InfluxDB cannot store a native histogram of {size} bytes (string "
                       f'fields hold at most {size - 1}): h{{job="j"}} at {t}' for t in (7, 8)]
    assert influxdb_line.MAX_STRING_FIELD_BYTES != 1_048_576
    monkeypatch.undo()
    assert influxdb_line.MAX_STRING_FIELD_BYTES == 1_048_576  # InfluxDB's MaxFieldValueLength


def test_batches_count_their_histograms_and_list_their_series():
    a = Series((("__name__", "a"),), [1, 2], [1.0, 2.0], [H, H])
    b = Series((("__name__", "b"),), [3], [3.0])
    c = Series((("__name__", "c"),), [], [], [H])
    made = list(batches([a, b, c], LineEncoder(), 3, 1 << 20))
    assert [(len(x.lines), x.histograms, [s.labels[0][1] for s in x.series], x.refused)
            for x in made] == [(3, 1, ["a"], []), (3, 2, ["a", "b", "c"], [])]
    # A batch that ends where a series starts does not list it.
    made = list(batches([a, b], LineEncoder(), 4, 1 << 20))
    assert [[s.labels[0][1] for s in x.series] for x in made] == [["a"], ["b"]]
    made = list(batches([b, b._replace(labels=(("__name__", "b2"),)), c], LineEncoder(), 2,
                        1 << 20))
    assert [(x.histograms, [s.labels[0][1] for s in x.series]) for x in made] == [
        (0, ["b", "b2"]), (1, ["c"])]
    made = list(batches([b, c, a], LineEncoder(), 2, 1 << 20))
    assert [(x.histograms, [s.labels[0][1] for s in x.series]) for x in made] == [
        (1, ["b", "c"]), (0, ["a"]), (2, ["a"])]


def test_refusals_go_with_the_batch_being_filled_even_without_lines(monkeypatch):
    monkeypatch.setattr(influxdb_line, "MAX_STRING_FIELD_BYTES", 10)
    refused_only = list(batches([Series((("__name__", "h"),), [], [], [H])], LineEncoder(),
                                5, 1 << 20))
    assert [(x.lines, x.histograms, len(x.refused)) for x in refused_only] == [([], 0, 1)]
    mixed = list(batches([Series((("__name__", "f"),), [1, 2, 3], [1.0] * 3),
                          Series((("__name__", "h"),), [4], [4.0], [H])], LineEncoder(), 2,
                         1 << 20))
    assert [(len(x.lines), x.histograms, len(x.refused)) for x in mixed] == [
        (2, 0, 0), (2, 0, 1)]
    assert list(batches([Series((("__name__", "e"),), [], [])], LineEncoder(), 2, 1)) == []


def test_a_histogram_line_over_the_byte_bound_comes_alone():
    lines = list(LineEncoder().lines([Series((("__name__", "h"),), [1], [1.0], [H])]))
    series = [Series((("__name__", "h"),), [1, 2], [1.0, 2.0], [H])]
    made = list(batches(series, LineEncoder(), 100, len(lines[0].encode()) * 2 + 1))
    assert [(len(x.lines), x.histograms) for x in made] == [(2, 0), (1, 1)]


@pytest.mark.parametrize("kind", ["float", "histogram"])
def test_batches_of_either_kind_are_bounded_in_lines_and_bytes(kind):
    """Four lines of an odd length L and a last one two bytes longer, newlines counted."""
    def one(name, t):
        if kind == "float":
            return Series((("__name__", name),), [t], [1.25])
        return Series((("__name__", name),), [], [], [H._replace(timestamp=t + 10)])

    series = [one("m", t) for t in (1, 2, 3, 4)] + [one("mm", 5)]
    encoder = LineEncoder()
    lines = [line.encode() for line in encoder.lines(series)]
    size = len(lines[0])
    assert size % 2 == 1 and [len(line) for line in lines] == [size] * 4 + [size + 2]

    def shape(max_lines, max_bytes):
        made = list(batches(series, encoder, max_lines, max_bytes))
        assert [b.histograms for b in made] == \
            [len(b.lines) if kind == "histogram" else 0 for b in made]
        return [len(b.lines) for b in made]

    assert shape(2, 1 << 20) == [2, 2, 1]
    assert shape(4, 1 << 20) == [4, 1]
    assert shape(100, 2 * size + 1) == [2, 2, 1]
    assert shape(100, 2 * size) == [1, 1, 1, 1, 1]
    assert shape(100, 4 * (size + 1) + size + 2) == [5]
    assert shape(100, 4 * (size + 1) + size + 1) == [4, 1]
    assert shape(100, 3 * (size + 1) + size) == [4, 1]
    assert shape(100, 3 * (size + 1) + size - 1) == [3, 2]
    assert [b"".join(b.lines) for b in batches(series, encoder, 100, 1)] == lines
