"""`make bench` figure: a 1-hour, 1 000-series read at a 15 s interval (240 000 samples) on
Timestream, through the Query API emulation (harness/timestream/query_service.py: 1 000-row and
1 MB pages, a first page holding only a NextToken).

The read runs twice in the same run: with no latency, and with the emulation's production-like
latency (a call that starts a query answers after FIRST_PAGE_SECONDS, each further page after
PAGE_SECONDS). Printed: the Query calls against the baseline of one row per sample (samples /
1 000 pages, what reads did before); for each run the wall time of the read and the connector's
own time (wall time minus the time calls spent in the emulation: decoding, sorting, botocore),
with their ratios; and the wall time with latency against the baseline's under the same latency
(computed from its calls, as it is not run).
"""
import time
from typing import List, Tuple

from chalicelib.context import Limits, RequestContext
from chalicelib.matchers import Matcher
from chalicelib.model import Query
from chalicelib.storage.timestream.reader import (TimestreamQueryRunner,
                                                  TimestreamReader)
from harness.timestream.env import DATABASE, TABLE, emulated_query_client

SERIES, INTERVAL_MS, HOUR_MS = 1000, 15_000, 3_600_000
START_MS = 1_800_000_000_000
# The production-like latency the system tests give the emulation.
FIRST_PAGE_SECONDS, PAGE_SECONDS = 3.0, 0.5


def records() -> List[dict]:
    """What the connector writes for the benchmark's series (CommonAttributes merged)."""
    result = []
    for s in range(SERIES):
        dims = [{"Name": "instance", "Value": f"10.0.{s % 40}.1:9100"},
                {"Name": "job", "Value": "node"}, {"Name": "series", "Value": str(s)}]
        for t in range(START_MS, START_MS + HOUR_MS, INTERVAL_MS):
            result.append({"MeasureName": f"bench_metric_{s % 50}_total", "Dimensions": dims,
                           "MeasureValueType": "DOUBLE", "MeasureValue": repr(s * 0.5 + t % 7),
                           "Time": str(t), "TimeUnit": "MILLISECONDS"})
    return result


def covered(intervals: List[Tuple[float, float]]) -> float:
    """Seconds covered by these (start, end) intervals, overlaps counted once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def measure(stored: List[dict], first_page_seconds: float = 0.0,
            page_seconds: float = 0.0) -> dict:
    """Calls, samples, wall seconds and the connector's seconds for one read of every
    benchmark series, the emulation answering with this latency."""
    client, service = emulated_query_client(lambda: stored)
    service.warm()  # load the table before timing
    service.first_page_seconds, service.page_seconds = first_page_seconds, page_seconds
    in_service: List[Tuple[float, float]] = []
    handle = service.handle

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return handle(*args, **kwargs)
        finally:
            in_service.append((started, time.perf_counter()))
    service.handle = timed
    reader = TimestreamReader(TimestreamQueryRunner(client), DATABASE, TABLE)
    query = Query(START_MS, START_MS + HOUR_MS - 1, (Matcher.of(2, "__name__", "bench_.*"),))
    # The emulation is no measure of time: no deadline or sample limit cuts the read short.
    ctx = RequestContext(Limits(deadline_seconds=3600, sample_limit=10 ** 7))
    started = time.perf_counter()
    result = reader.read(query, ctx)
    wall = time.perf_counter() - started
    samples = sum(len(s.timestamps) for s in result)
    assert len(result) == SERIES and samples == SERIES * HOUR_MS // INTERVAL_MS, samples
    return {"samples": samples, "calls": len(service.calls), "wall_s": wall,
            "connector_s": wall - covered(in_service)}


def report() -> None:
    """Print the figure (called by bench/run.py)."""
    stored = records()
    plain = measure(stored)
    slow = measure(stored, FIRST_PAGE_SECONDS, PAGE_SECONDS)
    samples = plain["samples"]
    baseline_calls = -(-samples // 1000) + 1
    baseline_wall = FIRST_PAGE_SECONDS + PAGE_SECONDS * (baseline_calls - 1)
    print(f"\nTimestream read: 1 h x {SERIES} series at 15 s ({samples:,} samples)")
    print(f"{'measurement':48} {'Query calls':>12} {'vs baseline':>12}")
    print(f"{'one row per sample (baseline)':48} {baseline_calls:12,} {1:11.2f}x")
    print(f"{'one row per series and hour':48} {plain['calls']:12,} "
          f"{plain['calls'] / baseline_calls:11.2f}x")
    print(f"\nsame read, latency {FIRST_PAGE_SECONDS:g} s to a query's first page and "
          f"{PAGE_SECONDS:g} s per further page, against none")
    print(f"{'measurement':48} {'no latency':>12} {'latency':>12} {'ratio':>12}")
    rows = [("Query calls", plain["calls"], slow["calls"]),
            ("wall time for the read (s)", plain["wall_s"], slow["wall_s"]),
            ("connector time for the read (s)", plain["connector_s"], slow["connector_s"])]
    for name, none, latency in rows:
        digits = 0 if isinstance(none, int) else 2
        print(f"{name:48} {none:12,.{digits}f} {latency:12,.{digits}f} {latency / none:11.2f}x")
    print(f"{'wall time, one row per sample (baseline, computed)':48} {'':12} "
          f"{baseline_wall:12,.2f} {1:11.2f}x")
    print(f"{'wall time, one row per series and hour':48} {'':12} "
          f"{slow['wall_s']:12,.2f} {slow['wall_s'] / baseline_wall:11.2f}x")


if __name__ == "__main__":
    report()
