"""Mapping Prometheus series to Timestream records, and rows back to samples.

Rules (documented in docs/timestream-data-model.md):

- measure name = metric name (up to 256 bytes); dimensions = the other labels;
  time in milliseconds; finite values as DOUBLE in shortest round-trip form.
- Label names (``dimension_name``): a classic name (``[a-zA-Z_][a-zA-Z0-9_]*``) is
  stored as is, except names Timestream reserves (``time``, ``measure_name``,
  ``measure_value``, anything starting with ``ts_`` or ``measure_value``) and names
  starting with ``__``, which get a ``__`` prefix (``time`` -> ``__time``). Any other
  UTF-8 name (Prometheus 3, e.g. ``service.name``) is stored as ``__U__`` + the name
  with ``_`` doubled, ``[a-zA-Z0-9]`` kept and every other character written as
  ``_<hex code point>_`` (Prometheus's ``U__`` value escaping, with ``:`` escaped
  too, since Timestream refuses it): ``service.name`` -> ``__U__service_2e_name``.
  A classic name never maps to ``__U__...`` (it would be ``____U__...``), so no
  escaped name collides with a legal one, and reading inverts both.
- A record's identity is (measure name, dimensions, time) (API_Record, "Records
  with duplicate data ... same dimensions, timestamps, and measure names"), and a
  measure name keeps the type it was first written with. So a value must never add
  a dimension or change the type: Timestream's DOUBLE cannot hold NaN or +-Inf
  (supported data types page), so they are written as DOUBLE *markers*, the finite
  doubles just below the largest one: +Inf -> 1.7976931348623155e308 (-Inf: its
  negative), NaN -> 1.7976931348623153e308, the Prometheus stale marker ->
  1.7976931348623151e308. A finite sample whose magnitude lies in that marker range
  is refused (counted, with its reason); the largest double itself is an ordinary
  value. NaNs other than the stale marker read back as Prometheus's NaN
  (``math.NaN()``: 0x7ff8000000000001).
- A series with no label but its name gets one dimension, ``__name__`` = the metric
  name (Timestream refuses a record without dimensions); reading drops it. No label
  maps to that dimension name (labels starting with ``__`` are stored as ``____...``).
- Samples Timestream would refuse (names or records over its limits, more than
  128 dimensions, times outside the writable window) are rejected with a reason.
- A native histogram sample is one MULTI record (writes.html, "Multi-measure records") of
  the same series' dimensions and time, its measure name the metric name followed by
  ``#histogram``: a measure name holds one data type, DOUBLE or MULTI (data-modeling.html,
  "Using measure name with multi-measure records"), and a series may carry float and
  histogram samples. Its measures: ``__histogram`` (VARCHAR, the exact text of
  ``histogram_text.dumps``), and for SQL users ``__histogram_count`` and
  ``__histogram_sum`` (DOUBLE, when finite). Measure names are table columns that no
  dimension may share (ts-limits.html, "All Column Names"): no label is stored under a
  dimension name ``__histogram...``. A histogram whose measures take more than the 2 048
  bytes of values a multi-measure record holds (ts-limits.html, "Measure value size per
  multi-measure record": the text's UTF-8 bytes, 8 for each DOUBLE) is refused with a
  reason.
"""
import math
import re
import struct
from itertools import chain, groupby
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from chalicelib.caches import ClearedWhenFull, strings_bytes
from chalicelib.context import Deadline
from chalicelib.model import Histogram, Labels, Series
from chalicelib.storage.histogram_text import dumps

MAX_RECORDS_PER_CALL = 100
MAX_DIMENSION_NAME_BYTES = 60
MAX_MEASURE_NAME_BYTES = 256
MAX_DIMENSIONS = 128
MAX_DIMENSION_BYTES = 2048  # ts-limits: dimension name/value pair size per series
FUTURE_WINDOW_MS = 15 * 60 * 1000
LABELLESS_DIMENSION = "__name__"
# Native histograms (see the module doc).
HISTOGRAM_SUFFIX = "#histogram"
HISTOGRAM_TEXT = "__histogram"
HISTOGRAM_COUNT = "__histogram_count"
HISTOGRAM_SUM = "__histogram_sum"
MAX_MEASURE_VALUES_BYTES = 2048  # ts-limits: "Measure value size per multi-measure record"
RESERVED_VALUE_REASON = ("value of magnitude 1.7976931348623151e308 to 1.7976931348623155e308: "
                         "reserved for the +-Inf, NaN and stale markers in Timestream")


def _double(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def _bits(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


STALE_NAN_BITS = 0x7FF0000000000002   # Prometheus's stale marker (value.StaleNaN)
NAN_BITS = 0x7FF8000000000001         # Prometheus's NaN (Go's math.NaN())
POS_INF_MARKER = _double(0x7FEFFFFFFFFFFFFE)   # 1.7976931348623155e308
NAN_MARKER = _double(0x7FEFFFFFFFFFFFFD)       # 1.7976931348623153e308
STALE_MARKER = _double(0x7FEFFFFFFFFFFFFC)     # 1.7976931348623151e308
_NAN = _double(NAN_BITS)
_STALE_NAN = _double(STALE_NAN_BITS)
_RESERVED = ("time", "measure_name", "measure_value")
_RESERVED_PREFIXES = ("ts_", "measure_value", "__")


# Timestream dimension names (Naming Constraints, referenced from
# https://docs.aws.amazon.com/timestream/latest/developerguide/API_Dimension.html and
# spelled out in https://docs.aws.amazon.com/iot/latest/apireference/API_TimestreamDimension.html):
# not measure_name, measure_value or time; not starting with ts_ or measure_value;
# no colon; 1 to 60 bytes. A classic Prometheus name has no colon.
_CLASSIC = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ESCAPED_PREFIX = "__U__"
_CODE_POINT = re.compile(r"__|_([0-9a-f]+)_|([a-zA-Z0-9])")


def dimension_name(label: str) -> str:
    """The dimension name a label is stored under (reversible escape, see module doc)."""
    if not _CLASSIC.fullmatch(label):
        return _ESCAPED_PREFIX + "".join(
            c if c.isascii() and c.isalnum() else "__" if c == "_" else "_%x_" % ord(c)
            for c in label)
    if label in _RESERVED or label.startswith(_RESERVED_PREFIXES):
        return "__" + label
    return label


def label_name(dimension: str) -> str:
    """Inverse of ``dimension_name``."""
    if dimension.startswith(_ESCAPED_PREFIX):
        return _unescape(dimension[len(_ESCAPED_PREFIX):])
    return dimension[2:] if dimension.startswith("__") else dimension


def _unescape(body: str) -> str:
    parts, index = [], 0
    while index < len(body):
        match = _CODE_POINT.match(body, index)
        if not match:  # not written by dimension_name: read as before the escape
            return "U__" + body
        hex_digits, kept = match.groups()
        parts.append(kept or ("_" if hex_digits is None else chr(int(hex_digits, 16))))
        index = match.end()
    return "".join(parts)


def encode_value(value: float) -> Optional[str]:
    """The MeasureValue (DOUBLE) of ``value``; None for a finite value in the marker range,
    which cannot be stored (see the module doc)."""
    if value != value:  # NaN
        return repr(STALE_MARKER) if _bits(value) == STALE_NAN_BITS else repr(NAN_MARKER)
    if value in (math.inf, -math.inf):
        return repr(math.copysign(POS_INF_MARKER, value))
    if STALE_MARKER <= abs(value) <= POS_INF_MARKER:
        return None
    return repr(value)


def decode_value(measure_value: str) -> float:
    """The Prometheus value of a ``measure_value::double`` (inverse of ``encode_value``)."""
    value = float(measure_value)
    magnitude = abs(value)
    if magnitude < STALE_MARKER or magnitude > POS_INF_MARKER:
        return value
    if magnitude == POS_INF_MARKER:
        return math.copysign(math.inf, value)
    return _NAN if magnitude == NAN_MARKER else _STALE_NAN


#: Series grouped between two looks at the request's deadline.
SERIES_PER_DEADLINE_CHECK = 4096


class Rejected(NamedTuple):
    """Samples of one series that can never be written, and why (``kind``: one of
    ``telemetry.request.REJECT_REASONS``); ``histograms``: of the ``count``, the native
    histogram samples."""

    labels: Labels
    count: int
    reason: str
    kind: str = "backend_refused"
    histograms: int = 0


def histogram_measure_values(histogram: Histogram) -> List[dict]:
    """The MeasureValues of a native histogram's MULTI record: its exact text, and its count
    and sum where DOUBLE can hold them (finite: NaN and Infinity cannot be written)."""
    values = [{"Name": HISTOGRAM_TEXT, "Value": dumps(histogram), "Type": "VARCHAR"}]
    for name, number in ((HISTOGRAM_COUNT, histogram.count), (HISTOGRAM_SUM, histogram.sum)):
        if math.isfinite(number):
            values.append({"Name": name, "Value": repr(float(number)), "Type": "DOUBLE"})
    return values


#: The size of a value by its type (pricing docs, "Writes": 8 bytes for a double); a
#: VARCHAR's is its UTF-8 bytes.
_VALUE_SIZES = {"DOUBLE": 8}


def _value_size(value: dict) -> int:
    size = _VALUE_SIZES.get(value["Type"])
    return len(value["Value"].encode()) if size is None else size


def measure_values_size(values: List[dict]) -> int:
    """The size of a MULTI record's values, as Timestream limits it: a VARCHAR's UTF-8 bytes,
    8 bytes for a DOUBLE."""
    return sum(map(_value_size, values))


def value_bytes(record: dict) -> int:
    """The metered bytes of a record's values (pricing docs, "Writes"): 8 for a DOUBLE; for a
    MULTI record, each measure's name and value (8 bytes for a DOUBLE, the UTF-8 bytes of a
    VARCHAR)."""
    values = record.get("MeasureValues")
    if values is None:
        return 8
    return sum(len(v["Name"].encode()) + _value_size(v) for v in values)


def histogram_metric(measure_name: str) -> Optional[str]:
    """The metric name of a native histogram measure, None for any other measure name."""
    if not measure_name.endswith(HISTOGRAM_SUFFIX):
        return None
    return measure_name[:-len(HISTOGRAM_SUFFIX)] or None


class Batch(NamedTuple):
    """The arguments of one WriteRecords call."""

    common: dict
    records: List[dict]
    labels: List[Labels]  # the series of each record, for error reports
    histograms: bool      # MULTI records of native histogram samples, else DOUBLE samples


def check_series(labels: Labels) -> Optional[str]:
    """Why a series can never be written to Timestream, or None."""
    dims = [(dimension_name(n), v) for n, v in labels if n != "__name__"]
    measure = dict(labels).get("__name__", "")
    if len(measure.encode()) > MAX_MEASURE_NAME_BYTES:
        return f"metric name longer than {MAX_MEASURE_NAME_BYTES} bytes"
    if len(dims) > MAX_DIMENSIONS:
        return f"more than {MAX_DIMENSIONS} labels besides the metric name"
    for name, _ in dims:
        if len(name.encode()) > MAX_DIMENSION_NAME_BYTES:
            return f"label name {name!r} longer than {MAX_DIMENSION_NAME_BYTES} bytes"
    # (a series without labels has the one dimension __name__ = its name: at most 268 bytes)
    size = sum(len(n.encode()) + len(v.encode()) for n, v in dims)
    if size > MAX_DIMENSION_BYTES:
        return (f"labels take {size} bytes, over Timestream's {MAX_DIMENSION_BYTES}-byte limit "
                "for dimension names and values per series")
    return None


class _Member(NamedTuple):
    """One series' part of the records: its labels, measure name and dimensions."""

    labels: Labels
    measure: str
    dims: Tuple[Tuple[str, str], ...]  # (dimension name, value), sorted
    order: tuple                       # (job, instance, labels): neighbours share a target
    mixed: int                         # a record's metered bytes in a call of its target


# Series seen before: a Prometheus sends the same series over and over, so each is checked
# and mapped once. A memory budget (64 MiB): a byte more or less cannot change what is
# written or answered.
MEMBERS_CACHE_MAX_BYTES = 67_108_864  # pragma: no mutate
_MEMBERS = ClearedWhenFull(MEMBERS_CACHE_MAX_BYTES)
# What a cached series holds besides its strings (measured with tracemalloc, see
# tests/unit/storage/timestream/test_store.py): per label its pair and its dimension's pair, at most
# _LABEL_BYTES; the _Member, its tuples and the dict slot, at most _SET_BYTES. Its labels
# count too: they outlive the translate caches' entries. Rounded up: a byte more or less
# only moves the (estimated) bound by that much.
_LABEL_BYTES = 136  # pragma: no mutate
_SET_BYTES = 288  # pragma: no mutate


def _member(labels: Labels) -> object:
    """The _Member of a series, or why it can never be written (str)."""
    found = _MEMBERS.get(labels)
    if found is not None:
        return found
    reason = check_series(labels)
    if reason:
        found = reason
    else:
        measure = ""
        dims = []
        job = instance = ""
        for name, value in labels:
            if name == "__name__":
                measure = value
            else:
                dims.append((dimension_name(name), value))
                if name == "job":
                    job = value
                elif name == "instance":
                    instance = value
        dims_tuple = tuple(sorted(dims)) or ((LABELLESS_DIMENSION, measure),)
        mixed = 16 + len(measure.encode()) + sum(
            len(n.encode()) + len(v.encode()) for n, v in dims_tuple
            if n not in ("job", "instance"))
        found = _Member(labels, measure, dims_tuple, (job, instance, labels), mixed)
    _MEMBERS.put(labels, found, _entry_bytes(labels, found))
    return found


def _entry_bytes(labels: Labels, found: object) -> int:
    """What a _MEMBERS entry holds (estimated): each of its strings once (escaped dimension
    names and a reason are new ones), and the pairs and tuples around them."""
    more = [found] if isinstance(found, str) else [name for name, _ in found.dims]
    return (strings_bytes(chain(chain.from_iterable(labels), more))
            + _LABEL_BYTES * len(labels) + _SET_BYTES)


def build_batches(series: Sequence[Series], now_ms: int, oldest_ms: Optional[int],
                  deadline: Optional[Deadline] = None) -> Tuple[List[Batch], List[Rejected]]:
    """Group samples into WriteRecords calls of at most 100 records, metered as little as
    possible (pricing docs, "Writes": each call counts in 1 KiB units, rounded up, and what
    its CommonAttributes carry counts once).

    Samples of one metric make calls of their own, with the measure name and the dimensions
    they share (job, instance...) in CommonAttributes, when that call costs no more units
    than its records would in a mixed call; the rest (metrics with few series) are sorted by
    target and share a target's dimensions. ``oldest_ms`` is the oldest writable time (None
    when the table accepts writes of any age). A request too large to group before
    ``deadline`` stops there (503), before any call.
    """
    rejected: List[Rejected] = []
    by_measure: Dict[str, List[Tuple[_Member, str, str]]] = {}
    histograms: List[Tuple[_Member, str, List[dict]]] = []
    newest_ms = now_ms + FUTURE_WINDOW_MS
    for index, item in enumerate(series):
        if deadline is not None and index % SERIES_PER_DEADLINE_CHECK == 0:
            deadline.ensure("grouping the write into Timestream records")
        labels = item.labels
        member = _member(labels)
        if isinstance(member, str):
            rejected.append(Rejected(labels, len(item.timestamps) + len(item.histograms),
                                     member, "limits", len(item.histograms)))
            continue
        entries = by_measure.setdefault(member.measure, [])
        too_old = too_new = reserved = 0
        for timestamp, value in zip(item.timestamps, item.values):
            if timestamp > newest_ms:
                too_new += 1
            elif oldest_ms is not None and timestamp < oldest_ms:
                too_old += 1
            else:
                measure_value = encode_value(value)
                if measure_value is None:
                    reserved += 1
                else:
                    entries.append((member, str(timestamp), measure_value))
        new_histograms = old_histograms = 0
        if item.histograms:
            new_histograms, old_histograms = _histogram_entries(
                item.histograms, member, newest_ms, oldest_ms, histograms, rejected)
        if too_new or new_histograms:
            rejected.append(Rejected(labels, too_new + new_histograms,
                                     "timestamp more than 15 minutes in the future",
                                     "out_of_bounds", new_histograms))
        if too_old or old_histograms:
            rejected.append(Rejected(labels, too_old + old_histograms,
                                     "timestamp older than the table's retention for writes "
                                     "(its memory store's, or magnetic store's when "
                                     "magnetic store writes are enabled)", "out_of_bounds",
                                     old_histograms))
        if reserved:
            rejected.append(Rejected(labels, reserved, RESERVED_VALUE_REASON, "value"))
    batches: List[Batch] = []
    mixed: List[Tuple[_Member, str, str]] = []
    for entries in by_measure.values():
        entries.sort(key=lambda entry: entry[0].order)
        rest: List[Tuple[_Member, str, str]] = []
        for _, run in groupby(entries, key=lambda entry: entry[0].order[:2]):
            rest.extend(_own_calls(list(run), batches))  # one metric of one target
        mixed.extend(_own_calls(rest, batches))         # one metric of several targets
    # By target, then time (one scrape shares its time too), largest records first: the
    # last call of a scrape, rounded up to a whole KiB like the others, holds the smallest.
    mixed.sort(key=lambda entry: (entry[0].order[:2], entry[1], -entry[0].mixed))
    chunks = []
    for _, run in groupby(mixed, key=lambda entry: entry[0].order[:2]):
        run = list(run)
        chunks.extend(run[i:i + MAX_RECORDS_PER_CALL]
                      for i in range(0, len(run), MAX_RECORDS_PER_CALL))
    batches.extend(_packed(chunks))
    batches.extend(_packed(_histogram_chunks(histograms)))
    return batches, rejected


def _histogram_entries(samples: Sequence[Histogram], member: _Member, newest_ms: int,
                       oldest_ms: Optional[int], entries: list, rejected: List[Rejected]
                       ) -> Tuple[int, int]:
    """Add the MULTI records of one series' native histograms to ``entries``; reject those
    no record can hold (too large, or a measure name too long). Returns how many are too new
    and too old, reported with the series' float samples."""
    measure = member.measure + HISTOGRAM_SUFFIX
    if len(measure.encode()) > MAX_MEASURE_NAME_BYTES:
        rejected.append(Rejected(
            member.labels, len(samples),
            f"metric name longer than {MAX_MEASURE_NAME_BYTES - len(HISTOGRAM_SUFFIX)} bytes: "
            f"a native histogram's measure name is the metric name and {HISTOGRAM_SUFFIX!r}, "
            f"at most {MAX_MEASURE_NAME_BYTES} bytes", "limits", len(samples)))
        return 0, 0
    owner = member._replace(measure=measure)
    too_new = too_old = 0
    too_large: List[int] = []
    for histogram in samples:
        if histogram.timestamp > newest_ms:
            too_new += 1
        elif oldest_ms is not None and histogram.timestamp < oldest_ms:
            too_old += 1
        else:
            values = histogram_measure_values(histogram)
            size = measure_values_size(values)
            if size > MAX_MEASURE_VALUES_BYTES:
                too_large.append(size)
            else:
                entries.append((owner, str(histogram.timestamp), values))
    if too_large:
        rejected.append(Rejected(
            member.labels, len(too_large),
            "native histogram too large for Timestream: its text, count and sum take "
            f"{max(too_large)} bytes, over the {MAX_MEASURE_VALUES_BYTES} bytes of values a "
            "multi-measure record holds", "limits", len(too_large)))
    return too_new, too_old


def _histogram_chunks(entries: List[Tuple[_Member, str, List[dict]]]) -> List[list]:
    """The records of native histograms in runs of at most 100 of one metric and target, by
    series, each series' samples in the order written."""
    entries.sort(key=lambda entry: (entry[0].measure, entry[0].order))
    chunks = []
    for _, run in groupby(entries, key=lambda entry: (entry[0].measure, entry[0].order[:2])):
        run = list(run)
        chunks.extend(run[i:i + MAX_RECORDS_PER_CALL]
                      for i in range(0, len(run), MAX_RECORDS_PER_CALL))
    return chunks


def _packed(chunks: List[List[Tuple[_Member, str, str]]]) -> List[Batch]:
    """Calls for ``chunks`` (each one target's records, in order), neighbours joined into
    one call while that costs no more than apart: each call is rounded up to a whole KiB,
    so the small scrapes of many targets cost less together, their dimensions then in
    their records."""
    result: List[Batch] = []
    current: List[Tuple[_Member, str, str]] = []
    current_batch: Optional[Batch] = None
    for chunk in chunks:
        if current_batch is not None and len(current) + len(chunk) <= MAX_RECORDS_PER_CALL:
            joined = _batch(current + chunk)
            if _units(joined) <= _units(current_batch) + _units(_batch(chunk)):
                current, current_batch = current + chunk, joined
                continue
        if current_batch is not None:
            result.append(current_batch)
        current, current_batch = list(chunk), _batch(chunk)
    if current_batch is not None:
        result.append(current_batch)
    return result


def _own_calls(entries: List[Tuple[_Member, str, str]], batches: List[Batch]
               ) -> List[Tuple[_Member, str, str]]:
    """Add to ``batches`` the calls of ``entries`` (one metric) that cost no more than their
    records would in mixed calls; return the entries left for mixed calls."""
    left: List[Tuple[_Member, str, str]] = []
    for start in range(0, len(entries), MAX_RECORDS_PER_CALL):
        chunk = entries[start:start + MAX_RECORDS_PER_CALL]
        mixed = sum(member.mixed for member, _, _ in chunk)
        full = len(chunk) == MAX_RECORDS_PER_CALL
        if full or mixed >= 1024:  # a call of its own costs at least 1 KiB
            batch = _batch(chunk)
            units = _units(batch)
            if units * 1024 <= mixed or (full and units <= -(-mixed // 1024)):
                batches.append(batch)
                continue
        left.extend(chunk)
    return left


def _units(batch: Batch) -> int:
    """Metered 1 KiB units of a call (pricing docs, "Writes"): what CommonAttributes carry
    counts once, the rest per record, 8 bytes of value each, rounded up to a whole KiB."""
    common = batch.common
    size = 8 * ("Time" in common) + len(common.get("MeasureName", "").encode()) + sum(
        len(d["Name"].encode()) + len(d["Value"].encode()) for d in common.get("Dimensions", ()))
    for record in batch.records:
        size += value_bytes(record) + 8 * ("Time" in record) + len(
            record.get("MeasureName", "").encode()) + sum(
            len(d["Name"].encode()) + len(d["Value"].encode())
            for d in record.get("Dimensions", ()))
    return -(-size // 1024)


def _batch(chunk: List[Tuple[_Member, str, str]]) -> Batch:
    """One call's arguments: CommonAttributes hold what every record shares. The values are
    DOUBLE MeasureValues (str) or a MULTI record's MeasureValues (list), never both."""
    members = {id(member): member for member, _, _ in chunk}
    shared = set.intersection(*(set(member.dims) for member in members.values()))
    # (a chunk's values are all of one kind: its last would say the same as its first)
    multi = isinstance(chunk[0][2], list)  # pragma: no mutate
    value_key = "MeasureValues" if multi else "MeasureValue"
    common: Dict[str, object] = {"MeasureValueType": "MULTI" if multi else "DOUBLE",
                                 "TimeUnit": "MILLISECONDS"}
    if shared:
        common["Dimensions"] = [{"Name": n, "Value": v} for n, v in sorted(shared)]
    names = {member.measure for member in members.values()}
    same_name = len(names) == 1
    if same_name:
        common["MeasureName"] = names.pop()
    own: Dict[int, dict] = {}
    for key, member in members.items():
        part: dict = {}
        dims = [{"Name": n, "Value": v} for n, v in member.dims if (n, v) not in shared]
        if dims:
            part["Dimensions"] = dims
        if not same_name:
            part["MeasureName"] = member.measure
        own[key] = part
    times = {timestamp for _, timestamp, _ in chunk}
    if len(times) == 1:  # one scrape: the time is shared too
        common["Time"] = times.pop()
        records = [{value_key: value, **own[id(member)]} for member, _, value in chunk]
    else:
        records = [{"Time": timestamp, value_key: value, **own[id(member)]}
                   for member, timestamp, value in chunk]
    return Batch(common, records, [member.labels for member, _, _ in chunk], multi)


def split_batch(batch: Batch) -> Tuple[Batch, Batch]:
    """The two halves of a batch, each with its own CommonAttributes."""
    common_dims = [(d["Name"], d["Value"]) for d in batch.common.get("Dimensions", ())]
    chunk = []
    for labels, record in zip(batch.labels, batch.records):
        dims = common_dims + [(d["Name"], d["Value"]) for d in record.get("Dimensions", ())]
        measure = record.get("MeasureName", batch.common.get("MeasureName", ""))
        # (order and cost only sort and price the batches before any split)
        member = _Member(labels, measure, tuple(sorted(dims)), (), 0)  # pragma: no mutate
        chunk.append((member, record.get("Time", batch.common.get("Time")),
                      record["MeasureValues"] if "MeasureValues" in record
                      else record["MeasureValue"]))
    middle = len(chunk) // 2
    return _batch(chunk[:middle]), _batch(chunk[middle:])


def labels_from_row(measure_name: str, dimensions: Dict[str, Optional[str]]) -> Labels:
    """Prometheus labels of a Timestream row (NULL dimensions are absent labels; the
    ``__name__`` dimension of a label-less series is no label)."""
    pairs = [(label_name(name), value) for name, value in dimensions.items()
             if value is not None and name != LABELLESS_DIMENSION]
    pairs.append(("__name__", measure_name))
    return tuple(sorted(pairs))
