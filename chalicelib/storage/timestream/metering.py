"""Timestream write metering, for this connector's WriteRecords calls and the Go connector's.

The formula is the pricing documentation's ("Metering and pricing", Writes): an event's
size is 8 bytes of time, the UTF-8 bytes of each dimension name and value and of the
measure name, and 8 bytes for a DOUBLE value; what CommonAttributes carry (dimensions,
measure name, time) counts once per request; each request is counted in 1 KiB units,
rounded up.

The Go connector (awslabs/amazon-timestream-connector-prometheus) writes one record per
sample, every label but ``__name__`` as a dimension, the metric name as measure name,
100 records per call in the order received and no CommonAttributes.
"""
import math
from typing import Iterable, List, Sequence

from chalicelib.model import Series
from chalicelib.storage.timestream.records import build_batches, dimension_name

KIB = 1024
RECORDS_PER_CALL = 100
# The price of writes, per million 1 KiB write units (docs/timestream-data-model.md, "What it costs").
PRICE_PER_MILLION_WRITES_USD = 0.50
PRICE_TABLE = "US East (N. Virginia, Ohio): USD 0.50 per million 1 KiB writes"
PRICE_DATE = "2026-12-01"


def _dims_bytes(dims: Iterable[dict]) -> int:
    return sum(len(d["Name"].encode()) + len(d["Value"].encode()) for d in dims)


def call_units(common: dict, records: Sequence[dict]) -> int:
    """Metered 1 KiB write units of one WriteRecords call."""
    size = _dims_bytes(common.get("Dimensions", ())) + len(common.get("MeasureName", "").encode())
    size += 8 * ("Time" in common)
    for record in records:
        size += 8 + 8 * ("Time" in record) + _dims_bytes(record.get("Dimensions", ()))
        size += len(record.get("MeasureName", "").encode())
    return math.ceil(size / KIB)


def connector_units(series: List[Series], now_ms: int) -> int:
    """Units this connector's calls for ``series`` are metered."""
    batches, _ = build_batches(series, now_ms, None)
    return sum(call_units(batch.common, batch.records) for batch in batches)


def go_units(series: Iterable[Series]) -> int:
    """Units the Go connector's calls for the same samples are metered."""
    sizes = []
    for item in series:
        labels = dict(item.labels)
        size = 16 + len(labels.get("__name__", "").encode()) + sum(
            len(dimension_name(n).encode()) + len(v.encode())
            for n, v in item.labels if n != "__name__")
        sizes.extend([size] * len(item.timestamps))
    return sum(math.ceil(sum(sizes[i:i + RECORDS_PER_CALL]) / KIB)
               for i in range(0, len(sizes), RECORDS_PER_CALL))


def monthly_price(units_per_second: float) -> float:
    """USD per 30-day month for this many write units a second."""
    return units_per_second * 30 * 86_400 / 1e6 * PRICE_PER_MILLION_WRITES_USD
