"""Mapping Prometheus series to Timestream records, and rows back to samples.

Rules (documented in the README, "Timestream data model"):

- measure name = metric name (up to 256 bytes); dimensions = the other labels;
  time in milliseconds; finite values as DOUBLE in shortest round-trip form.
- Label names Timestream reserves (``time``, ``measure_name``, ``measure_value``,
  anything starting with ``ts_`` or ``measure_value``) and names starting with
  ``__`` are stored with a ``__`` prefix; reading strips one ``__``. Prometheus
  never sends labels starting with ``__`` besides ``__name__``, so this is reversible.
- Timestream's DOUBLE cannot hold NaN or +-Inf. Such a sample is written as
  MeasureValue ``0`` with an extra dimension ``__value`` holding the exact value
  (``+Inf``, ``-Inf``, or ``NaN:0x<64-bit pattern>``, which keeps Prometheus stale
  markers bit for bit); reading gives back the same bits.
- Samples Timestream would refuse (names or records over its limits, more than
  128 dimensions, times outside the writable window) are rejected with a reason.
"""
import math
import struct
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

from chalicelib.model import Labels, Series

MAX_RECORDS_PER_CALL = 100
MAX_DIMENSION_NAME_BYTES = 60
MAX_MEASURE_NAME_BYTES = 256
MAX_DIMENSIONS = 128
MAX_RECORD_BYTES = 2048
FUTURE_WINDOW_MS = 15 * 60 * 1000
VALUE_DIMENSION = "__value"
_RESERVED = ("time", "measure_name", "measure_value")
_RESERVED_PREFIXES = ("ts_", "measure_value", "__")


def dimension_name(label: str) -> str:
    """The dimension name a label is stored under (reversible escape)."""
    if label in _RESERVED or label.startswith(_RESERVED_PREFIXES):
        return "__" + label
    return label


def label_name(dimension: str) -> str:
    """Inverse of ``dimension_name``."""
    return dimension[2:] if dimension.startswith("__") else dimension


def encode_value(value: float) -> Tuple[str, Optional[str]]:
    """(MeasureValue, value of the ``__value`` dimension or None) for ``value``."""
    if math.isfinite(value):
        return repr(value), None
    if math.isnan(value):
        return "0", "NaN:0x%016x" % struct.unpack("<Q", struct.pack("<d", value))[0]
    return "0", "+Inf" if value > 0 else "-Inf"


def decode_value(measure_value: str, special: Optional[str]) -> float:
    """Inverse of ``encode_value``."""
    if special is None:
        return float(measure_value)
    if special.startswith("NaN:0x"):
        return struct.unpack("<d", struct.pack("<Q", int(special[6:], 16)))[0]
    return float(special.replace("Inf", "inf"))


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


def check_series(labels: Labels) -> Optional[str]:
    """Why a series can never be written to Timestream, or None."""
    dims = [(dimension_name(n), v) for n, v in labels if n != "__name__"]
    measure = dict(labels).get("__name__", "")
    if len(measure.encode()) > MAX_MEASURE_NAME_BYTES:
        return f"metric name longer than {MAX_MEASURE_NAME_BYTES} bytes"
    if len(dims) + 1 > MAX_DIMENSIONS:  # +1: room for the __value dimension
        return f"more than {MAX_DIMENSIONS - 1} labels"
    for name, _ in dims:
        if len(name.encode()) > MAX_DIMENSION_NAME_BYTES:
            return f"label name {name!r} longer than {MAX_DIMENSION_NAME_BYTES} bytes"
    size = len(measure.encode()) + sum(len(n.encode()) + len(v.encode()) for n, v in dims)
    if size + 64 > MAX_RECORD_BYTES:  # 64: time, value and the __value dimension
        return f"labels take {size} bytes, over Timestream's {MAX_RECORD_BYTES}-byte record limit"
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
        too_old = too_new = 0
        for timestamp, value in zip(item.timestamps, item.values):
            if timestamp > newest_ms:
                too_new += 1
                continue
            if oldest_ms is not None and timestamp < oldest_ms:
                too_old += 1
                continue
            measure_value, special = encode_value(value)
            record = {"MeasureName": measure, "Dimensions": dims, "Time": str(timestamp),
                      "MeasureValue": measure_value}
            if special is not None:
                record["Dimensions"] = dims + [{"Name": VALUE_DIMENSION, "Value": special}]
            records.append((item.labels, record))
        if too_new:
            rejected.append(Rejected(item.labels, too_new,
                                     "timestamp more than 15 minutes in the future"))
        if too_old:
            rejected.append(Rejected(item.labels, too_old,
                                     "timestamp older than the memory store retention"))
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


def labels_from_row(measure_name: str, dimensions: Dict[str, Optional[str]]) -> Labels:
    """Prometheus labels of a Timestream row (NULL dimensions are absent labels)."""
    pairs = [(label_name(name), value) for name, value in dimensions.items()
             if value is not None and name != VALUE_DIMENSION]
    pairs.append(("__name__", measure_name))
    return tuple(sorted(pairs))
