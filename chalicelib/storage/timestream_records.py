"""Mapping Prometheus series to Timestream records, and rows back to samples.

Rules (documented in the README, "Timestream data model"):

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
"""
import math
import re
import struct
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from chalicelib.model import Labels, Series

MAX_RECORDS_PER_CALL = 100
MAX_DIMENSION_NAME_BYTES = 60
MAX_MEASURE_NAME_BYTES = 256
MAX_DIMENSIONS = 128
MAX_DIMENSION_BYTES = 2048  # ts-limits: dimension name/value pair size per series
FUTURE_WINDOW_MS = 15 * 60 * 1000
LABELLESS_DIMENSION = "__name__"
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
    for match in _CODE_POINT.finditer(body):
        if match.start() != index:
            break
        hex_digits, kept = match.groups()
        parts.append(kept or ("_" if hex_digits is None else chr(int(hex_digits, 16))))
        index = match.end()
    if index != len(body):  # not written by dimension_name: read as before the escape
        return "U__" + body
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


class Rejected(NamedTuple):
    """Samples of one series that can never be written, and why."""

    labels: Labels
    count: int
    reason: str


class Batch(NamedTuple):
    """The arguments of one WriteRecords call."""

    common: dict
    records: List[dict]
    labels: List[Labels]  # the series of each record, for error reports


def record_size(measure: str, dims: Sequence[Tuple[str, str]]) -> int:
    """A DOUBLE record's size as Timestream meters it (pricing docs, "Writes"): 8 bytes of
    time, the UTF-8 bytes of each dimension name and value and of the measure name, 8 bytes
    of value."""
    return 16 + len(measure.encode()) + sum(len(n.encode()) + len(v.encode()) for n, v in dims)


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
    if not dims:
        dims = [(LABELLESS_DIMENSION, measure)]
    size = sum(len(n.encode()) + len(v.encode()) for n, v in dims)
    if size > MAX_DIMENSION_BYTES:
        return (f"labels take {size} bytes, over Timestream's {MAX_DIMENSION_BYTES}-byte limit "
                "for dimension names and values per series")
    return None


def build_batches(series: Sequence[Series], now_ms: int, oldest_ms: Optional[int]
                  ) -> Tuple[List[Batch], List[Rejected]]:
    """Group samples into WriteRecords calls of at most 100 records.

    Series are sorted by target (job, instance), then metric name, so neighbouring
    records share most dimensions; each call's CommonAttributes carries the
    dimensions (and measure name) all its records share, so they are billed once. ``oldest_ms`` is the oldest writable time
    (None when the table accepts writes of any age).
    """
    rejected: List[Rejected] = []
    records: List[Tuple[Labels, dict]] = []
    newest_ms = now_ms + FUTURE_WINDOW_MS
    for item in sorted(series, key=_target_order):
        reason = check_series(item.labels)
        if reason:
            rejected.append(Rejected(item.labels, len(item.timestamps), reason))
            continue
        measure = dict(item.labels)["__name__"]
        dims = [{"Name": dimension_name(n), "Value": v} for n, v in item.labels if n != "__name__"]
        if not dims:
            dims = [{"Name": LABELLESS_DIMENSION, "Value": measure}]
        too_old = too_new = reserved = 0
        for timestamp, value in zip(item.timestamps, item.values):
            if timestamp > newest_ms:
                too_new += 1
                continue
            if oldest_ms is not None and timestamp < oldest_ms:
                too_old += 1
                continue
            measure_value = encode_value(value)
            if measure_value is None:
                reserved += 1
                continue
            records.append((item.labels, {"MeasureName": measure, "Dimensions": dims,
                                          "Time": str(timestamp), "MeasureValue": measure_value}))
        if too_new:
            rejected.append(Rejected(item.labels, too_new,
                                     "timestamp more than 15 minutes in the future"))
        if too_old:
            rejected.append(Rejected(item.labels, too_old,
                                     "timestamp older than the memory store retention"))
        if reserved:
            rejected.append(Rejected(item.labels, reserved, RESERVED_VALUE_REASON))
    batches = [_batch(records[i:i + MAX_RECORDS_PER_CALL])
               for i in range(0, len(records), MAX_RECORDS_PER_CALL)]
    return batches, rejected


def _target_order(series: Series) -> tuple:
    labels = dict(series.labels)
    return (labels.get("job", ""), labels.get("instance", ""), labels.get("__name__", ""),
            series.labels)


def _batch(chunk: List[Tuple[Labels, dict]]) -> Batch:
    records = [record for _, record in chunk]
    shared = set.intersection(*({(d["Name"], d["Value"]) for d in r["Dimensions"]}
                                for r in records))
    common: Dict[str, object] = {"MeasureValueType": "DOUBLE", "TimeUnit": "MILLISECONDS"}
    if shared:
        common["Dimensions"] = [{"Name": n, "Value": v} for n, v in sorted(shared)]
    names = {r["MeasureName"] for r in records}
    same_name = len(names) == 1
    if same_name:
        common["MeasureName"] = names.pop()
    slim = []
    for record in records:
        entry = {"Time": record["Time"], "MeasureValue": record["MeasureValue"]}
        own = [d for d in record["Dimensions"] if (d["Name"], d["Value"]) not in shared]
        if own:
            entry["Dimensions"] = own
        if not same_name:
            entry["MeasureName"] = record["MeasureName"]
        slim.append(entry)
    return Batch(common, slim, [labels for labels, _ in chunk])


def split_batch(batch: Batch) -> Tuple[Batch, Batch]:
    """The two halves of a batch, each with its own CommonAttributes."""
    common_dims = batch.common.get("Dimensions", [])
    full = [{"MeasureName": r.get("MeasureName", batch.common.get("MeasureName")),
             "Dimensions": common_dims + r.get("Dimensions", []), "Time": r["Time"],
             "MeasureValue": r["MeasureValue"]} for r in batch.records]
    chunk = list(zip(batch.labels, full))
    middle = len(chunk) // 2
    return _batch(chunk[:middle]), _batch(chunk[middle:])


def labels_from_row(measure_name: str, dimensions: Dict[str, Optional[str]]) -> Labels:
    """Prometheus labels of a Timestream row (NULL dimensions are absent labels; the
    ``__name__`` dimension of a label-less series is no label)."""
    pairs = [(label_name(name), value) for name, value in dimensions.items()
             if value is not None and name != LABELLESS_DIMENSION]
    pairs.append(("__name__", measure_name))
    return tuple(sorted(pairs))
