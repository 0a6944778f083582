"""Native histograms between remote write's protobuf and the model, checked as Prometheus
checks their structure."""
import pytest

from chalicelib.model import Histogram, RESET_GAUGE
from chalicelib.protocol.histograms import from_message, invalid, invalid_histogram, to_message
from chalicelib.protocol.prompb import types_pb2, write_v2_pb2


def message(**fields) -> types_pb2.Histogram:
    spans = {side: fields.pop(side, ()) for side in ("positive_spans", "negative_spans")}
    built = types_pb2.Histogram(**fields)
    for side, items in spans.items():
        for offset, length in items:
            getattr(built, side).add(offset=offset, length=length)
    return built


def test_an_integer_histogram_keeps_every_field():
    built = message(count_int=9, sum=-2.5, schema=-4, zero_threshold=0.5, zero_count_int=2,
                    positive_spans=[(-2, 1), (3, 2)], positive_deltas=[1, 2, -1],
                    negative_spans=[(1, 1)], negative_deltas=[3], reset_hint=RESET_GAUGE,
                    timestamp=-7)
    histogram = from_message(built)
    assert histogram == Histogram(-7, 9, -2.5, -4, 0.5, 2, ((-2, 1), (3, 2)), (1, 2, -1),
                                  ((1, 1),), (3,), RESET_GAUGE, False, ())
    assert type(histogram.count) is int and type(histogram.zero_count) is int
    assert to_message(histogram) == built


def test_a_float_histogram_keeps_every_field_and_its_zero_values():
    built = message(count_float=0.0, sum=1.0, schema=8, zero_threshold=0.0,
                    zero_count_float=0.0, positive_spans=[(0, 2)], positive_counts=[0.5, 0.0],
                    negative_spans=[(0, 1)], negative_counts=[2.5], timestamp=3)
    histogram = from_message(built)
    assert histogram.is_float and histogram.positive == (0.5, 0.0)
    assert histogram.negative == (2.5,)
    again = to_message(histogram)
    assert again == built
    assert again.WhichOneof("count") == "count_float"
    assert again.WhichOneof("zero_count") == "zero_count_float"


def test_an_integer_histogram_answers_with_its_integer_fields_set():
    again = to_message(from_message(message(schema=0)))
    assert again.WhichOneof("count") == "count_int"
    assert again.WhichOneof("zero_count") == "zero_count_int"


def test_custom_buckets_keep_their_bounds_in_both_protocols():
    built = write_v2_pb2.Histogram(count_int=3, schema=-53, custom_values=[0.5, 1.0],
                                   positive_deltas=[1, 1], timestamp=1)
    built.positive_spans.add(offset=0, length=2)
    histogram = from_message(built)
    assert histogram.custom_values == (0.5, 1.0)
    answered = write_v2_pb2.Histogram.FromString(to_message(histogram).SerializeToString())
    assert from_message(answered) == histogram and answered.custom_values == [0.5, 1.0]


@pytest.mark.parametrize("fields,problem", [
    ({"count_float": 1.0, "positive_spans": [(0, 1)], "positive_deltas": [1]},
     "at 5: a float histogram (count_float) with integer buckets or zero_count_int"),
    ({"count_float": 1.0, "negative_spans": [(0, 1)], "negative_deltas": [1]},
     "a float histogram (count_float) with integer buckets"),
    ({"count_float": 1.0, "zero_count_int": 1}, "a float histogram"),
    ({"count_int": 1, "positive_spans": [(0, 1)], "positive_counts": [1.0]},
     "at 5: an integer histogram (count_int) with float buckets or zero_count_float"),
    ({"count_int": 1, "negative_spans": [(0, 1)], "negative_counts": [1.0]},
     "an integer histogram"),
    ({"count_int": 1, "zero_count_float": 1.0}, "an integer histogram"),
    ({"zero_count_float": 1.0}, "an integer histogram"),  # no count at all: an integer one
    ({"schema": 9}, "at 5: schema 9 is not one Prometheus knows (-4 to 8, or -53)"),
    ({"schema": -5}, "schema -5 is not one"),
    ({"schema": -54}, "schema -54 is not one"),
    ({"schema": -53}, "custom buckets (schema -53) without custom_values"),
    ({"schema": -53, "custom_values": [1.0, 1.0]}, "custom_values are not strictly increasing"),
    ({"schema": -53, "custom_values": [2.0, 1.0]}, "custom_values are not strictly increasing"),
    ({"schema": -53, "custom_values": [1.0], "negative_spans": [(0, 1)],
      "negative_deltas": [1]}, "custom buckets (schema -53) with negative buckets"),
    ({"schema": -53, "custom_values": [1.0], "negative_spans": [(0, 0)]},
     "custom buckets (schema -53) with negative buckets"),
    ({"schema": 0, "custom_values": [1.0]},
     "custom_values with schema 0 (only custom buckets, -53, have them)"),
    ({"positive_spans": [(0, 1), (-1, 1)], "positive_deltas": [1, 1]},
     "positive span 1 has a negative offset -1"),
    ({"negative_spans": [(0, 1), (0, 1), (-2, 1)], "negative_deltas": [1, 1, 1]},
     "negative span 2 has a negative offset -2"),
    ({"positive_spans": [(0, 2)], "positive_deltas": [1]},
     "positive spans cover 2 buckets, but 1 are given"),
    ({"negative_deltas": [1]}, "negative spans cover 0 buckets, but 1 are given"),
    ({"positive_spans": [(0, 2)], "positive_deltas": [1, -2]},
     "a positive bucket has a negative count (-1)"),
    ({"negative_spans": [(0, 1)], "negative_deltas": [-1]},
     "a negative bucket has a negative count (-1)"),
    ({"count_float": 1.0, "negative_spans": [(0, 2)], "negative_counts": [1.0, -1.5]},
     "a negative bucket has a negative count (-1.5)"),
    ({"count_float": 1.0, "positive_spans": [(0, 1)], "positive_counts": [-0.5]},
     "a positive bucket has a negative count (-0.5)"),
    ({"count_float": -1.0}, "a negative count (-1.0) or zero count (0.0)"),
    ({"count_float": 1.0, "zero_count_float": -0.5}, "a negative count (1.0) or zero count (-0.5)"),
])
def test_what_prometheus_refuses_is_refused_saying_why(fields, problem):
    with pytest.raises(ValueError) as refused:
        from_message(message(timestamp=5, **fields))
    assert problem in str(refused.value)


@pytest.mark.parametrize("fields", [
    {"schema": -4}, {"schema": 8}, {"schema": -53, "custom_values": [-1.0, 0.0, 2.5]},
    {"positive_spans": [(-5, 1), (0, 1)], "positive_deltas": [2, -2]},  # a zero bucket
    {"positive_spans": [(0, 300)], "positive_deltas": [1] * 300},  # counts past small ints
    {"count_float": 1.0, "positive_spans": [(0, 2)], "positive_counts": [3.0, 0.5]},
    {"count_float": 0.0, "zero_count_float": 0.0, "positive_spans": [(0, 1)],
     "positive_counts": [0.0]},  # zero is no negative count
])
def test_what_prometheus_takes_is_taken(fields):
    assert invalid(from_message(message(**fields))) is None


def test_a_refused_series_is_named():
    assert invalid_histogram((("__name__", "m"), ("a", "b")), ValueError("at 1: why")) == \
        'invalid native histogram in series m{a="b"} at 1: why'
