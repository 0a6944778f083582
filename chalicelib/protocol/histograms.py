"""Native histogram samples between remote write/read's protobuf and the connector's model.

Remote write 1.0's ``prometheus.Histogram`` and 2.0's ``io.prometheus.write.v2.Histogram``
have the same fields and numbers, so one translation serves both. A histogram is checked
as Prometheus's own ``Validate`` checks its structure (model/histogram): integer and float
fields not mixed, a known schema, spans that cover exactly the buckets given, no span
after the first with a negative offset, no negative bucket count, count or zero count, custom
bucket bounds only with the custom-buckets schema and strictly increasing. What fails is
refused with the series (a 400 naming it), never stored in a form no reader can decode.
"""
from itertools import accumulate
from operator import attrgetter
from typing import Any, Iterable, List, Optional, Sequence, Tuple

from chalicelib.model import Histogram, Labels, Span, describe
from chalicelib.protocol.prompb import types_pb2

#: Exponential schemas Prometheus accepts, and the custom-buckets schema (NHCB).
MIN_SCHEMA, MAX_SCHEMA, CUSTOM_BUCKETS_SCHEMA = -4, 8, -53


def from_message(message: Any) -> Histogram:
    """The histogram of a ``prometheus.Histogram`` (1.0) or ``io.prometheus.write.v2.Histogram``
    (2.0) message; ValueError saying what is wrong with it (and its timestamp)."""
    is_float = message.WhichOneof("count") == "count_float"
    zero_float = message.WhichOneof("zero_count") == "zero_count_float"
    if is_float:
        if message.positive_deltas or message.negative_deltas or message.HasField(
                "zero_count_int"):
            raise ValueError(f"at {message.timestamp}: a float histogram (count_float) with "
                             "integer buckets or zero_count_int")
        count: Any = message.count_float
        zero_count: Any = message.zero_count_float
        positive: Tuple = tuple(message.positive_counts)
        negative: Tuple = tuple(message.negative_counts)
    else:
        if message.positive_counts or message.negative_counts or zero_float:
            raise ValueError(f"at {message.timestamp}: an integer histogram (count_int) with "
                             "float buckets or zero_count_float")
        count, zero_count = message.count_int, message.zero_count_int
        positive, negative = tuple(message.positive_deltas), tuple(message.negative_deltas)
    histogram = Histogram(
        message.timestamp, count, message.sum, message.schema, message.zero_threshold,
        zero_count, _spans(message.positive_spans), positive, _spans(message.negative_spans),
        negative, int(message.reset_hint), is_float, tuple(message.custom_values))
    problem = invalid(histogram)
    if problem:
        raise ValueError(f"at {message.timestamp}: {problem}")
    return histogram


def from_messages(messages: Iterable[Any]) -> List[Histogram]:
    """``from_message`` of each of ``messages``, sorted by time."""
    return sorted(map(from_message, messages), key=attrgetter("timestamp"))


def invalid_histogram(labels: Labels, problem: Exception) -> str:
    """The reason a series with an invalid native histogram is refused."""
    return f"invalid native histogram in series {describe(labels)} {problem}"


def _spans(spans: Sequence[Any]) -> Tuple[Span, ...]:
    return tuple((span.offset, span.length) for span in spans)


def invalid(histogram: Histogram) -> Optional[str]:
    """What is wrong with ``histogram``'s structure, or None."""
    schema = histogram.schema
    if schema == CUSTOM_BUCKETS_SCHEMA:
        bounds = histogram.custom_values
        if not bounds:
            return "custom buckets (schema -53) without custom_values"
        if any(b <= a for a, b in zip(bounds, bounds[1:])):
            return "custom_values are not strictly increasing"
        if histogram.negative_spans or histogram.negative:
            return "custom buckets (schema -53) with negative buckets"
    elif not MIN_SCHEMA <= schema <= MAX_SCHEMA:
        return f"schema {schema} is not one Prometheus knows (-4 to 8, or -53)"
    elif histogram.custom_values:
        return f"custom_values with schema {schema} (only custom buckets, -53, have them)"
    for side in ("positive", "negative"):
        spans = getattr(histogram, f"{side}_spans")
        buckets = getattr(histogram, side)
        for number, (offset, _) in enumerate(spans[1:], 1):
            if offset < 0:
                return f"{side} span {number} has a negative offset {offset}"
        covered = sum(length for _, length in spans)
        if covered != len(buckets):
            return f"{side} spans cover {covered} buckets, but {len(buckets)} are given"
        counts = buckets if histogram.is_float else accumulate(buckets)
        negative = next((count for count in counts if count < 0), None)
        if negative is not None:
            return f"a {side} bucket has a negative count ({negative})"
    if histogram.count < 0 or histogram.zero_count < 0:
        return (f"a negative count ({histogram.count}) or zero count "
                f"({histogram.zero_count})")
    return None


def to_message(histogram: Histogram) -> types_pb2.Histogram:
    """``histogram`` as a ``prometheus.Histogram`` (remote read's answer)."""
    message = types_pb2.Histogram(
        sum=histogram.sum, schema=histogram.schema, zero_threshold=histogram.zero_threshold,
        reset_hint=histogram.reset_hint, timestamp=histogram.timestamp,
        custom_values=histogram.custom_values)
    if histogram.is_float:
        message.count_float = histogram.count
        message.zero_count_float = histogram.zero_count
        message.positive_counts.extend(histogram.positive)
        message.negative_counts.extend(histogram.negative)
    else:
        message.count_int = histogram.count
        message.zero_count_int = histogram.zero_count
        message.positive_deltas.extend(histogram.positive)
        message.negative_deltas.extend(histogram.negative)
    for offset, length in histogram.positive_spans:
        message.positive_spans.add(offset=offset, length=length)
    for offset, length in histogram.negative_spans:
        message.negative_spans.add(offset=offset, length=length)
    return message
