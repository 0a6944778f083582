"""Remote-write 2.0 (``io.prometheus.write.v2.Request``) translated to the connector's model.

- Label names and values are references into the request's symbol table. Every
  reference is checked against the table's bounds; a series with a reference outside
  it (or an odd number of references) is refused on its own, like a series with
  invalid labels in 1.0 (the others are stored, the answer is 400).
- Float samples become exactly the ``Series`` the equivalent 1.0 request gives (same
  label rules, ``labels.validate_labels``), so they are stored the same way.
- Native histogram samples (integer and float) are checked as in 1.0
  (``histograms.from_message``) and stored with the series.
- Metadata (type, help and unit references, bounds-checked too) and start ("created")
  timestamps are accepted; no store keeps them. Exemplars are not kept either: both are
  counted, so the answer's ``...-Exemplars-Written`` header and the connector's metrics
  show them (never dropped without a trace).
"""
import operator
from typing import List, Optional, Sequence

from chalicelib.caches import ClearedWhenFull, strings_bytes
from chalicelib.context import Deadline
from chalicelib.errors import BadRequest
from chalicelib.model import Histogram, Labels, Series
from chalicelib.protocol.histograms import from_messages, invalid_histogram
from chalicelib.protocol.prompb import write_v2_pb2
from chalicelib.protocol.labels import Refusal, Translated, validate_labels
from chalicelib.protocol.write_v1 import SERIES_PER_DEADLINE_CHECK

# Validated label sets by their (name, value) pairs: a sender repeats its series. A memory
# budget (64 MiB): a byte more or less cannot change what is stored or answered.
LABELS_CACHE_MAX_BYTES = 67_108_864  # pragma: no mutate
_LABELS = ClearedWhenFull(LABELS_CACHE_MAX_BYTES)
# What a cached label set holds besides its strings (measured with tracemalloc, see
# tests/system/test_prometheus3.py): per label a pair in the key and one in the labels, and their
# tuples' slots, at most _LABEL_BYTES; the two tuples and the dict slot, at most _SET_BYTES.
# Rounded up: a byte more or less only moves the (estimated) bound by that much.
_LABEL_BYTES = 136  # pragma: no mutate
_SET_BYTES = 160  # pragma: no mutate
_TIMESTAMP = operator.attrgetter("timestamp")
_VALUE = operator.attrgetter("value")


def series_from_request(request: write_v2_pb2.Request,
                        deadline: Optional[Deadline] = None) -> Translated:
    """Resolve each series' labels through the symbol table and validate them and its
    native histograms; a request too large to translate before ``deadline`` stops there
    (503)."""
    symbols = list(request.symbols)
    series: List[Series] = []
    refused: List[Refusal] = []
    exemplars = metadata = 0
    for index, ts in enumerate(request.timeseries):
        if deadline is not None and index % SERIES_PER_DEADLINE_CHECK == 0:
            deadline.ensure("translating the write request")
        exemplars += len(ts.exemplars)
        meta = ts.metadata
        metadata += bool(meta.type or meta.help_ref or meta.unit_ref)
        samples = ts.samples
        if not samples and not ts.histograms:
            continue
        count = len(samples) + len(ts.histograms)
        try:
            labels = _labels(ts, symbols, index)
        except BadRequest as exc:
            refused.append(Refusal(str(exc), count))
            continue
        histograms: Sequence[Histogram] = ()
        if ts.histograms:
            try:
                histograms = from_messages(ts.histograms)
            except ValueError as exc:
                refused.append(Refusal(invalid_histogram(labels, exc), count))
                continue
        series.append(Series(labels, list(map(_TIMESTAMP, samples)), list(map(_VALUE, samples)),
                             histograms))
    return Translated(series, refused, exemplars, metadata)


def _labels(ts: write_v2_pb2.TimeSeries, symbols: Sequence[str], index: int) -> Labels:
    refs = ts.labels_refs
    if len(refs) % 2:
        problem = f"{len(refs)} label references, not name/value pairs"
    else:
        problem = _bad_refs(refs, len(symbols), "label")
    if problem is None and ts.HasField("metadata"):
        problem = _bad_refs((ts.metadata.help_ref, ts.metadata.unit_ref), len(symbols),
                            "metadata")
    if problem is not None:
        raise BadRequest(f"series {index} of the request: {problem}")
    strings = list(map(symbols.__getitem__, refs))
    pairs = tuple(zip(strings[::2], strings[1::2]))
    labels = _LABELS.get(pairs)
    if labels is None:
        labels = validate_labels(pairs)
        _LABELS.put(pairs, labels,
                    strings_bytes(strings) + _LABEL_BYTES * len(pairs) + _SET_BYTES)
    return labels


def _bad_refs(refs: Sequence[int], size: int, what: str) -> Optional[str]:
    if refs and max(refs) >= size:
        ref = next(ref for ref in refs if ref >= size)
        return f"{what} reference {ref} is outside the symbol table ({size} symbols)"
    return None
