"""`make bench` figure: a 1-hour, 1 000-series read at a 15 s interval (240 000 samples) on
Timestream, through the Query API emulation (harness/timestream/query_service.py: 1 000-row and
1 MB pages, a first page holding only a NextToken).

Printed: the Query calls the read needs and the connector's own time (decoding, sorting; the
emulation's time excluded), against the baseline of one row per sample (samples / 1 000 pages,
what reads did before). The time a real read takes is about calls x Timestream's latency per call
plus the connector's time: with the calls counted here it fits the request deadline.
"""
import time

from chalicelib.context import Limits, RequestContext
from chalicelib.matchers import Matcher
from chalicelib.model import Query
from chalicelib.storage.timestream.reader import (TimestreamQueryRunner,
                                                  TimestreamReader)
from harness.timestream.env import DATABASE, TABLE, emulated_query_client

SERIES, INTERVAL_MS, HOUR_MS = 1000, 15_000, 3_600_000
START_MS = 1_800_000_000_000


def records():
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


def measure() -> dict:
    """Calls, samples and the connector's seconds for one read of every benchmark series."""
    stored = records()
    client, service = emulated_query_client(lambda: stored)
    service.execute(f'DESCRIBE "{DATABASE}"."{TABLE}"')  # load the table before timing
    service._connection()
    in_service = [0.0]
    answer = service._answer

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return answer(*args, **kwargs)
        finally:
            in_service[0] += time.perf_counter() - started
    service._answer = timed
    reader = TimestreamReader(TimestreamQueryRunner(client), DATABASE, TABLE)
    query = Query(START_MS, START_MS + HOUR_MS - 1, (Matcher.of(2, "__name__", "bench_.*"),))
    started = time.perf_counter()
    result = reader.read(query, RequestContext(Limits(deadline_seconds=3600, sample_limit=10 ** 7)))  # the emulation is no measure of time
    total = time.perf_counter() - started
    samples = sum(len(s.timestamps) for s in result)
    assert len(result) == SERIES and samples == SERIES * HOUR_MS // INTERVAL_MS, samples
    return {"samples": samples, "calls": len(service.calls),
            "baseline_calls": -(-samples // 1000) + 1, "connector_s": total - in_service[0]}


def report() -> None:
    """Print the figure (called by bench/run.py)."""
    figures = measure()
    print(f"\nTimestream read: 1 h x {SERIES} series at 15 s ({figures['samples']:,} samples)")
    print(f"{'measurement':48} {'Query calls':>12} {'vs baseline':>12}")
    print(f"{'one row per sample (baseline)':48} {figures['baseline_calls']:12,} {1:11.2f}x")
    print(f"{'one row per series and hour':48} {figures['calls']:12,} "
          f"{figures['calls'] / figures['baseline_calls']:11.2f}x")
    print(f"{'connector time for the read (s)':48} {figures['connector_s']:12.2f}")


if __name__ == "__main__":
    report()
