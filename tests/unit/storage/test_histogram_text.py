"""The text every backend stores a native histogram as: exact, readable, compact."""
import json
import math
import struct

import pytest

from chalicelib.model import Histogram, RESET_GAUGE, RESET_NO, RESET_YES
from chalicelib.storage.histogram_text import dumps, loads


def from_bits(bits: int) -> float:
    return struct.unpack(">d", struct.pack(">Q", bits))[0]


def bits(value: float) -> int:
    return struct.unpack(">Q", struct.pack(">d", value))[0]


def test_an_integer_histogram_as_text():
    histogram = Histogram(5, 12, 3.5, 3, 1e-128, 1, ((0, 2), (1, 1)), (3, -1, 0), ((-1, 1),),
                          (2,), RESET_NO)
    text = dumps(histogram)
    assert text == ('{"count":12,"sum":3.5,"schema":3,"zero_threshold":1e-128,"zero_count":1,'
                    '"positive_spans":[[0,2],[1,1]],"positive_deltas":[3,-1,0],'
                    '"negative_spans":[[-1,1]],"negative_deltas":[2],"reset_hint":"no"}')
    assert loads(text, 5) == histogram
    assert type(loads(text, 5).count) is int


def test_a_float_histogram_with_custom_buckets_as_text():
    histogram = Histogram(6, 2.5, -0.0, -53, 0.0, 0.5, ((0, 2),), (1.5, 1.0),
                          reset_hint=RESET_GAUGE, is_float=True, custom_values=(0.1, 1.0))
    text = dumps(histogram)
    assert text == ('{"count":2.5,"sum":-0.0,"schema":-53,"zero_threshold":0.0,'
                    '"zero_count":0.5,"float":true,"positive_spans":[[0,2]],'
                    '"positive_counts":[1.5,1.0],"reset_hint":"gauge","custom_values":[0.1,1.0]}')
    again = loads(text, 6)
    assert again == histogram and math.copysign(1, again.sum) == -1


def test_an_empty_histogram_leaves_out_what_it_does_not_have():
    assert dumps(Histogram(0, 0, 0.0, 0, 0.0, 0)) == \
        '{"count":0,"sum":0.0,"schema":0,"zero_threshold":0.0,"zero_count":0}'
    assert loads(dumps(Histogram(0, 0, 0.0, 0, 0.0, 0, reset_hint=RESET_YES)), 0).reset_hint \
        == RESET_YES


@pytest.mark.parametrize("value,text", [
    (float("inf"), '"+Inf"'), (float("-inf"), '"-Inf"'),
    (from_bits(0x7FF8000000000001), '"NaN"'), (from_bits(0x7FF0000000000002), '"StaleNaN"'),
    (from_bits(0x7FF8000000000000), '"NaN:7ff8000000000000"'),
    (from_bits(0xFFF0000000000123), '"NaN:fff0000000000123"'),
    (5e-324, "5e-324"), (0.1 + 0.2, "0.30000000000000004"), (1.7976931348623157e308,
                                                              "1.7976931348623157e+308"),
])
def test_every_float_keeps_its_bits(value, text):
    histogram = Histogram(1, value, value, 0, value, value, ((0, 1),), (value,), is_float=True,
                          custom_values=())
    written = dumps(histogram)
    assert json.loads(written)["sum"] == json.loads(text)
    assert f'"count":{text}' in written and f'"positive_counts":[{text}]' in written
    again = loads(written, 1)
    for field in (again.count, again.sum, again.zero_threshold, again.zero_count,
                  again.positive[0]):
        assert bits(field) == bits(value)
    custom = Histogram(1, 1, 0.0, -53, 0.0, 0, custom_values=(value,))
    assert bits(loads(dumps(custom), 1).custom_values[0]) == bits(value)


@pytest.mark.parametrize("text", [
    "", "[]", "{}", '{"count":1}', '{"count":"x","sum":1,"schema":0,"zero_threshold":0,'
    '"zero_count":0}', '{"count":1,"sum":"Nope","schema":0,"zero_threshold":0,"zero_count":0}',
    '{"count":1,"sum":0,"schema":0,"zero_threshold":0,"zero_count":0,"reset_hint":"maybe"}',
    '{"count":1,"sum":0,"schema":0,"zero_threshold":0,"zero_count":0,"positive_spans":[[1]]}',
])
def test_text_that_is_not_a_stored_histogram_is_a_value_error(text):
    with pytest.raises(ValueError, match="not a stored native histogram"):
        loads(text, 0)


def test_only_true_makes_a_float_histogram():
    text = '{"count":1,"sum":0,"schema":0,"zero_threshold":0,"zero_count":0,"float":1}'
    assert loads(text, 0).is_float is False
