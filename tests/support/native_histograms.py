"""A fixture exporter of native histograms in Prometheus's protobuf exposition format, and
the histograms as Prometheus's query API shows them (to compare with remote read)."""
import math
from typing import Dict, List, Tuple

from google.protobuf.internal.encoder import _VarintBytes

from chalicelib.model import Histogram
from tests.support.exposition import metrics_pb2
from tests.support.prometheus import Exporter

CONTENT_TYPE = ("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; "
                "encoding=delimited")
SCRAPES = 14  # scrapes served before the histograms vanish (then: stale markers)
RESET_AT = 8  # the scrape at which the latency histogram's counts restart (a counter reset)


def _int_buckets(counts: List[int]) -> List[int]:
    """Absolute bucket counts as the deltas the format carries."""
    return [count - previous for previous, count in zip([0] + counts, counts)]


def families(scrape: int) -> List[metrics_pb2.MetricFamily]:
    """What the exporter serves at its ``scrape``-th scrape: an integer histogram that grows
    a bucket and later restarts, one with negative buckets and a zero bucket, and a float
    histogram."""
    n = scrape if scrape < RESET_AT else scrape - RESET_AT
    latency = metrics_pb2.MetricFamily(name="e2e_latency_seconds", help="latency",
                                       type=metrics_pb2.HISTOGRAM)
    h = latency.metric.add(label=[metrics_pb2.LabelPair(name="path", value="/a")]).histogram
    counts = [n + 1, 2 * n]
    h.positive_span.add(offset=-3, length=2)
    if n >= 3:  # a new bucket appears
        counts.append(n - 2)
        h.positive_span.add(offset=4, length=1)
    h.positive_delta.extend(_int_buckets(counts))
    h.schema, h.zero_threshold, h.zero_count = 3, 2.938735877055719e-39, n
    h.sample_count, h.sample_sum = sum(counts) + n, 0.25 * n + 0.125
    balance = metrics_pb2.MetricFamily(name="e2e_balance", help="balance",
                                       type=metrics_pb2.HISTOGRAM)
    b = balance.metric.add(label=[metrics_pb2.LabelPair(name="account", value="x")]).histogram
    b.schema, b.zero_threshold, b.zero_count = 0, 0.001, 3
    b.negative_span.add(offset=-1, length=2)
    b.negative_delta.extend(_int_buckets([scrape, 1]))
    b.positive_span.add(offset=0, length=1)
    b.positive_delta.extend([2 * scrape + 1])
    # never -0.0: Prometheus's remote write drops a zero sum's sign (proto3 omits it)
    b.sample_count, b.sample_sum = scrape + 1 + 2 * scrape + 1 + 3, -1.5 * scrape - 0.25
    weights = metrics_pb2.MetricFamily(name="e2e_weights", help="weights",
                                       type=metrics_pb2.HISTOGRAM)
    w = weights.metric.add().histogram
    w.schema, w.zero_threshold, w.zero_count_float = -1, 0.5, 0.25
    w.positive_span.add(offset=1, length=2)
    w.positive_count.extend([0.5 * scrape + 0.5, float(scrape)])
    w.sample_count_float, w.sample_sum = 1.5 * scrape + 0.75, 3.25 * scrape
    return [latency, balance, weights]


class NativeHistogramExporter(Exporter):
    """Serves ``families`` in the protobuf exposition format, SCRAPES times, then nothing."""

    def __init__(self) -> None:
        self.scrapes = 0

        def answer():
            served = families(self.scrapes) if self.scrapes < SCRAPES else []
            self.scrapes += 1
            return b"".join(_VarintBytes(f.ByteSize()) + f.SerializeToString()
                            for f in served), CONTENT_TYPE

        super().__init__(answer)


def _bound(index: int, schema: int) -> float:
    return 2.0 ** (index * 2.0 ** -schema)


def api_view(histogram: Histogram) -> Tuple[float, float, List[Tuple[float, float, float]]]:
    """``histogram`` as Prometheus's query API shows it: count, sum and the buckets that
    are not empty as (lower, upper, count), by lower bound."""
    buckets: Dict[Tuple[float, float], float] = {}
    for side, sign in (("positive", 1), ("negative", -1)):
        index, count = 0, 0
        values = iter(getattr(histogram, side))
        for number, (offset, length) in enumerate(getattr(histogram, f"{side}_spans")):
            index += offset
            for _ in range(length):
                value = next(values)
                count = value if histogram.is_float else count + value
                if count:
                    low, high = _bound(index - 1, histogram.schema), _bound(index, histogram.schema)
                    buckets[(low, high) if sign > 0 else (-high, -low)] = float(count)
                index += 1
    if histogram.zero_count:
        buckets[(-histogram.zero_threshold, histogram.zero_threshold)] = float(
            histogram.zero_count)
    return (float(histogram.count), histogram.sum,
            sorted((low, high, count) for (low, high), count in buckets.items()))


def api_histograms(result: List[dict]) -> Dict[Tuple, List[Tuple[int, Tuple]]]:
    """A range-vector answer of the query API as {labels: [(ms, api view)]}."""
    found = {}
    for item in result:
        labels = tuple(sorted(item["metric"].items()))
        found[labels] = [
            (round(at * 1000), (float(h["count"]), float(h["sum"]), sorted(
                (float(low), float(high), float(count))
                for _, low, high, count in h.get("buckets", []))))
            for at, h in item.get("histograms", [])]
    return found


def close(mine: Tuple, theirs: Tuple) -> bool:
    """Two API views alike: counts and sums exactly, bucket bounds to the last bits
    (Prometheus computes them from tables, Python with pow)."""
    return mine[:2] == theirs[:2] and len(mine[2]) == len(theirs[2]) and all(
        a[2] == b[2] and math.isclose(a[0], b[0], rel_tol=1e-12)
        and math.isclose(a[1], b[1], rel_tol=1e-12) for a, b in zip(mine[2], theirs[2]))
