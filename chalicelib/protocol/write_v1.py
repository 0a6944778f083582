"""Translation between protobuf messages and the connector's model, with validation.

Label rules follow Prometheus 3 (UTF-8 names): every label name and the metric
name (``__name__``, which must be present) are non-empty UTF-8, no name appears
twice. Protobuf refuses invalid UTF-8 when it decodes a string, so that is a
400 too. Labels with empty values are dropped (an empty value means "absent"
in Prometheus). Values may be any UTF-8.
"""
import logging
import operator
from typing import Iterable, List, NamedTuple, Tuple

from google.protobuf.message import DecodeError

from chalicelib.caches import ClearedWhenFull
from chalicelib.errors import BadRequest
from chalicelib.matchers import Matcher
from chalicelib.model import Labels, Query, Series
from chalicelib.protocol.prompb import fastpath_pb2, remote_pb2, types_pb2
from chalicelib.quoting import escape

LOG = logging.getLogger(__name__)

# Label sets seen before, by their encoded form: a Prometheus sends the same series
# over and over, so each is decoded and validated once. A memory budget (64 MiB): a byte
# more or less cannot change what is stored or answered.
LABELS_CACHE_MAX_BYTES = 67_108_864  # pragma: no mutate
_LABELS = ClearedWhenFull(LABELS_CACHE_MAX_BYTES)
# What a cached label set holds (measured with tracemalloc, see tests/test_translate.py):
# its encoded labels as bytes and decoded as str, at most 2 bytes per encoded byte; per
# label a bytes object, two str headers and a pair, at most _LABEL_BYTES (ASCII text
# needs about 200, other text more); the tuples and the dict slot, at most _SET_BYTES.
# Rounded up: a byte more or less only moves the (estimated) bound by that much.
_LABEL_BYTES = 256  # pragma: no mutate
_SET_BYTES = 128  # pragma: no mutate


def validate_labels(labels: Labels) -> Labels:
    """Return ``labels`` sorted with empty values dropped; BadRequest if invalid."""
    shown = describe(labels)
    seen = set()
    for name, _ in labels:
        if not name:
            raise BadRequest(f"empty label name in series {shown}")
        if name in seen:
            raise BadRequest(f"duplicate label name {name!r} in series {shown}")
        seen.add(name)
    cleaned = tuple(sorted((n, v) for n, v in labels if v))  # an empty value: no label
    metric = dict(cleaned).get("__name__")
    if metric is None:
        raise BadRequest(f"series without a metric name (__name__): {shown}")
    return cleaned


def decode_labels(encoded: Tuple[bytes, ...]) -> Labels:
    """(name, value) pairs of encoded ``prometheus.Label``s, as sent (not validated)."""
    pairs = []
    for item in encoded:
        try:
            label = types_pb2.Label.FromString(item)
        except DecodeError:
            raise BadRequest("body is not a valid protobuf WriteRequest: "
                             "a label is malformed or not UTF-8") from None
        pairs.append((label.name, label.value))
    return tuple(pairs)


def _remember(encoded: Tuple[bytes, ...], labels: Labels) -> None:
    _LABELS.put(encoded, labels,
                2 * sum(map(len, encoded)) + _LABEL_BYTES * len(encoded) + _SET_BYTES)


def labels_cache_bytes() -> int:
    """Bytes held by the label cache (an upper estimate; never above LABELS_CACHE_MAX_BYTES)."""
    return _LABELS.bytes


def describe(labels: Iterable) -> str:
    """Render labels like PromQL, e.g. ``up{job="x"}``, for messages and logs: control
    characters escaped, each name and value and the whole cut short."""
    pairs = list(labels)
    name = next((v for n, v in pairs if n == "__name__"), "")
    rest = ",".join(f'{escape(n, 60)}="{escape(v, 100)}"' for n, v in pairs if n != "__name__")
    text = f"{escape(name, 100)}{{{rest}}}"
    return text if len(text) <= 300 else text[:297] + "..."


_TIMESTAMP = operator.attrgetter("timestamp")
_VALUE = operator.attrgetter("value")


class Refusal(NamedTuple):
    """One series of a write request that can never be stored, and why."""

    reason: str  # one line, client text escaped (names the series)
    samples: int  # samples lost with it


class Translated(NamedTuple):
    """A write request split into the series to store and the series refused."""

    series: List[Series]
    refused: List[Refusal]

    @property
    def refused_samples(self) -> int:
        """Samples of the refused series."""
        return sum(refusal.samples for refusal in self.refused)


def series_from_write_request(request: fastpath_pb2.WriteRequestLabelsAsBytes) -> Translated:
    """Validated series of a write request, and the refused ones with their reasons
    (native histograms are skipped and logged). One bad series costs only itself.

    This is the hot path of every write: labels stay encoded until a series is
    new and per-sample work is C-level ``map``."""
    result = []
    refused = []
    histograms = 0
    known = _LABELS.get
    for ts in request.timeseries:
        histograms += len(ts.histograms)
        samples = ts.samples
        if not samples:
            continue
        encoded = tuple(ts.labels)
        labels = known(encoded)
        if labels is None:
            pairs = decode_labels(encoded)  # a malformed body fails the whole request
            try:
                labels = validate_labels(pairs)
            except BadRequest as exc:
                refused.append(Refusal(str(exc), len(samples)))
                continue
            _remember(encoded, labels)
        if len(samples) == 1:  # the usual case: one message object instead of two maps
            sample = samples[0]
            result.append(Series(labels, [sample.timestamp], [sample.value]))
        else:
            result.append(Series(labels, list(map(_TIMESTAMP, samples)),
                                 list(map(_VALUE, samples))))
    if histograms:
        LOG.warning("skipped %d native histogram samples: native histograms are not stored",
                    histograms)
    return Translated(result, refused)


def queries_from_read_request(request: remote_pb2.ReadRequest, dot_all: bool) -> List[Query]:
    """The request's queries as model objects (BadRequest on a bad matcher or range).

    ``dot_all``: the client's regex dialect (``.`` matches ``\\n``, Prometheus 3)."""
    queries = []
    for index, query in enumerate(request.queries):
        if query.end_timestamp_ms < query.start_timestamp_ms:
            raise BadRequest(f"query {index}: end {query.end_timestamp_ms} is before "
                             f"start {query.start_timestamp_ms}")
        matchers = tuple(Matcher.of(m.type, m.name, m.value, dot_all) for m in query.matchers)
        if not matchers:
            raise BadRequest(f"query {index}: at least one matcher is required")
        queries.append(Query(query.start_timestamp_ms, query.end_timestamp_ms, matchers))
    return queries


def encoded_series(series: Series) -> bytes:
    """``series`` as an encoded ``prometheus.TimeSeries`` (for a response built one
    series at a time, see fastpath.proto)."""
    message = types_pb2.TimeSeries()
    _fill(message, series)
    return message.SerializeToString()


def _fill(ts: types_pb2.TimeSeries, item: Series) -> None:
    add_label = ts.labels.add
    for name, value in item.labels:
        add_label(name=name, value=value)
    add_sample = ts.samples.add  # faster than building Sample objects and extending
    for timestamp, value in zip(item.timestamps, item.values):
        add_sample(timestamp=timestamp, value=value)
