"""Remote write 1.0 (``prometheus.WriteRequest``) translated to the connector's model.

Each series' labels stay encoded until the series is new to this process: a sender
repeats its series, so each label set is decoded and validated once (``labels``) and kept
in a byte-bounded cache. Protobuf refuses invalid UTF-8 when it decodes a string, so
that is a 400 too.
"""
import operator
from typing import Any, List, Optional, Sequence, Tuple

from google.protobuf.message import DecodeError

from chalicelib.caches import ClearedWhenFull
from chalicelib.context import Deadline
from chalicelib.errors import BadRequest
from chalicelib.model import Histogram, Labels, Series
from chalicelib.protocol.histograms import from_messages, invalid_histogram
from chalicelib.protocol.labels import Refusal, Translated, validate_labels
from chalicelib.protocol.prompb import fastpath_pb2, types_pb2

# Label sets seen before, by their encoded form: a Prometheus sends the same series
# over and over, so each is decoded and validated once. A memory budget (64 MiB): a byte
# more or less cannot change what is stored or answered.
LABELS_CACHE_MAX_BYTES = 67_108_864  # pragma: no mutate
_LABELS = ClearedWhenFull(LABELS_CACHE_MAX_BYTES)
# What a cached label set holds (measured with tracemalloc, see tests/unit/protocol/test_write_v1.py):
# its encoded labels as bytes and decoded as str, at most 2 bytes per encoded byte; per
# label a bytes object, two str headers and a pair, at most _LABEL_BYTES (ASCII text
# needs about 200, other text more); the tuples and the dict slot, at most _SET_BYTES.
# Rounded up: a byte more or less only moves the (estimated) bound by that much.
_LABEL_BYTES = 256  # pragma: no mutate
_SET_BYTES = 128  # pragma: no mutate


def _parsed(message_type: Any, encoded: Sequence[bytes], what: str) -> List[Any]:
    """The ``message_type`` messages of ``encoded``; BadRequest saying ``what`` is
    malformed if one is not (the whole body then is)."""
    try:
        return [message_type.FromString(item) for item in encoded]
    except DecodeError:
        raise BadRequest(f"body is not a valid protobuf WriteRequest: {what}") from None


def decode_labels(encoded: Tuple[bytes, ...]) -> Labels:
    """(name, value) pairs of encoded ``prometheus.Label``s, as sent (not validated)."""
    return tuple((label.name, label.value) for label in _parsed(
        types_pb2.Label, encoded, "a label is malformed or not UTF-8"))


def _remember(encoded: Tuple[bytes, ...], labels: Labels) -> None:
    _LABELS.put(encoded, labels,
                2 * sum(map(len, encoded)) + _LABEL_BYTES * len(encoded) + _SET_BYTES)


def labels_cache_bytes() -> int:
    """Bytes held by the label cache (an upper estimate; never above LABELS_CACHE_MAX_BYTES)."""
    return _LABELS.bytes


#: Series translated between two looks at the request's deadline.
SERIES_PER_DEADLINE_CHECK = 4096  # pragma: no mutate (how often: answers are the same)
_TIMESTAMP = operator.attrgetter("timestamp")
_VALUE = operator.attrgetter("value")


def decode_histograms(encoded: Sequence[bytes]) -> List[Histogram]:
    """Encoded ``prometheus.Histogram``s as native histogram samples, sorted by time:
    ValueError saying what is wrong with one that is invalid (its series is refused),
    BadRequest if one is not protobuf at all (the whole body is malformed)."""
    return from_messages(_parsed(types_pb2.Histogram, encoded, "a native histogram is malformed"))


def series_from_write_request(request: fastpath_pb2.WriteRequestLabelsAsBytes,
                              deadline: Optional[Deadline] = None) -> Translated:
    """Validated series of a write request (float and native histogram samples), the
    refused ones with their reasons, and the exemplars and metadata it carried (counted:
    no store keeps them). One bad series costs only itself; a request too large to
    translate before ``deadline`` stops there (503).

    This is the hot path of every write: labels stay encoded until a series is
    new and per-sample work is C-level ``map``."""
    result = []
    refused = []
    exemplars = 0
    known = _LABELS.get
    for index, ts in enumerate(request.timeseries):
        if deadline is not None and index % SERIES_PER_DEADLINE_CHECK == 0:
            deadline.ensure("translating the write request")
        exemplars += len(ts.exemplars)
        samples = ts.samples
        encoded_histograms = ts.histograms
        if not samples and not encoded_histograms:
            continue
        encoded = tuple(ts.labels)
        labels = known(encoded)
        if labels is None:
            pairs = decode_labels(encoded)  # a malformed body fails the whole request
            try:
                labels = validate_labels(pairs)
            except BadRequest as exc:
                refused.append(Refusal(str(exc), len(samples) + len(encoded_histograms)))
                continue
            _remember(encoded, labels)
        histograms: Sequence[Histogram] = ()
        if encoded_histograms:
            try:
                histograms = decode_histograms(encoded_histograms)
            except ValueError as exc:
                refused.append(Refusal(invalid_histogram(labels, exc),
                                       len(samples) + len(encoded_histograms)))
                continue
        if len(samples) == 1:  # the usual case: one message object instead of two maps
            sample = samples[0]
            result.append(Series(labels, [sample.timestamp], [sample.value], histograms))
        else:
            result.append(Series(labels, list(map(_TIMESTAMP, samples)),
                                 list(map(_VALUE, samples)), histograms))
    return Translated(result, refused, exemplars, len(request.metadata))
