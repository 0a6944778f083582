"""Timestream metering: writes, for this connector's WriteRecords calls and the Go connector's;
and an estimate of the query compute (TCU-seconds) its reads use.

The formula is the pricing documentation's ("Metering and pricing", Writes): an event's
size is 8 bytes of time, the UTF-8 bytes of each dimension name and value and of the
measure name, and 8 bytes for a DOUBLE value; what CommonAttributes carry (dimensions,
measure name, time) counts once per request; each request is counted in 1 KiB units,
rounded up. A native histogram's MULTI record counts, instead of that value, the name and
value of each of its measures: "measure names, and measure values", a VARCHAR's UTF-8 bytes
and 8 bytes for a DOUBLE.

The Go connector (awslabs/amazon-timestream-connector-prometheus) writes one record per
sample, every label but ``__name__`` as a dimension, the metric name as measure name,
100 records per call in the order received and no CommonAttributes. It writes no native
histograms.

Queries are billed in Timestream compute units (TCU page of the Developer Guide: one TCU is
4 vCPUs and 16 GB; "to run queries, you must set the minimum capacity to 4 TCUs"; "each TCU
is billed on an hourly basis with per-second granularity and for a minimum of 30 seconds").
How many TCUs a query uses is decided by the service and not reported per query, so
``read_tcu_seconds`` is a model, not a meter: each statement holds the 4-TCU minimum while
it runs, statements running at once each hold their own 4, and every TCU a read holds is
billed at least 30 s.
"""
import math
from typing import Iterable, List, NamedTuple, Sequence

from chalicelib.model import Series
from chalicelib.storage.timestream.records import (build_batches, dimension_name,
                                                   value_bytes)

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
        size += value_bytes(record) + 8 * ("Time" in record)
        size += _dims_bytes(record.get("Dimensions", ()))
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


# -- queries ------------------------------------------------------------------------------

TCU_PAGE = "https://docs.aws.amazon.com/timestream/latest/developerguide/tcu.html"
PRICING_PAGE = "https://aws.amazon.com/timestream/pricing/"
QUERY_MIN_TCUS = 4           # the minimum capacity that runs queries (TCU page)
TCU_MINIMUM_SECONDS = 30     # each TCU is billed for at least this long (TCU page)
TCU_PAGE_DATE = "2026-12-06"  # when the TCU page's figures above were read
# No TCU-hour price is built in (it differs per region: PRICING_PAGE). USD figures use this
# example price unless one is given; it is not AWS's price.
EXAMPLE_USD_PER_TCU_HOUR = 1.00
# The time one statement is assumed to run: until its first page, and per further page.
# These are the production-like latencies the Query API emulation is run with.
STATEMENT_FIRST_PAGE_SECONDS = 3.0
STATEMENT_PAGE_SECONDS = 0.5


class ReadQueries(NamedTuple):
    """The Query statements one read request runs: Query calls (pages) per statement, in the
    order they started, and the most statements running at once."""

    calls: Sequence[int]
    peak: int

    @property
    def statements(self) -> int:
        """Statements Timestream executes (each billed on its own)."""
        return len(self.calls)


def statement_seconds(calls: int) -> float:
    """The assumed running time of a statement answered in ``calls`` Query calls."""
    return STATEMENT_FIRST_PAGE_SECONDS + STATEMENT_PAGE_SECONDS * max(0, calls - 1)


def read_tcu_seconds(read: ReadQueries) -> float:
    """Estimated TCU-seconds of one read: 4 TCUs per statement for its assumed running time,
    and at least 30 s for each of the 4 TCUs per statement the read holds at its peak;
    0 for a read that runs no statement."""
    if not read.calls:
        return 0.0
    held = QUERY_MIN_TCUS * sum(statement_seconds(calls) for calls in read.calls)
    return max(held, QUERY_MIN_TCUS * max(1, read.peak) * TCU_MINIMUM_SECONDS)


def monthly_query_price(tcu_seconds_per_second: float, usd_per_tcu_hour: float) -> float:
    """USD per 30-day month for this many TCU-seconds a second."""
    return tcu_seconds_per_second * 30 * 86_400 / 3600 * usd_per_tcu_hour
