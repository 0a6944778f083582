"""`make cost`: what Timestream will cost for your Prometheus's remote-write and remote-read
traffic.

Either listen for a while (point a Prometheus's ``remote_write`` at
``http://127.0.0.1:PORT/write`` and its ``remote_read`` at ``http://127.0.0.1:PORT/read``;
reads are answered with no series), or read captured request bodies (snappy-compressed
``WriteRequest``s and ``ReadRequest``s, one per file).

Writes: samples/s, metered 1 KiB writes per month and their price, for this connector's
WriteRecords calls and for the Go connector's encoding of the same samples (it writes no
native histograms: it is compared on the float samples).

Reads: each read is run by the connector's own reader on the Query API emulation, its table
loaded with the captured writes (so SHOW MEASURES lists the measures and dimensions your
Prometheus writes). Printed per read: Query statements and calls, and TCU-seconds by the model
of ``metering.read_tcu_seconds``; per month at the observed read rate. Formulas and sources:
chalicelib/storage/timestream/metering.py, docs/timestream-data-model.md "What it costs".
"""
import argparse
import http.server
import sys
import threading
import time
from typing import Dict, List, NamedTuple, Optional, Tuple

from chalicelib.context import Limits, RequestContext
from chalicelib.errors import BadRequest
from chalicelib.model import Series, histogram_count, sample_count
from chalicelib.protocol import codec, write_v1
from chalicelib.protocol import read as remote_read
from chalicelib.protocol.prompb import remote_pb2
from chalicelib.storage.timestream import metering
from chalicelib.storage.timestream.reader import (READ_CONCURRENCY, TimestreamQueryRunner,
                                                  TimestreamReader)
from chalicelib.storage.timestream.records import build_batches
from harness.remote import HEADERS
from harness.timestream.env import DATABASE, TABLE, emulated_query_client, stored_records

MONTH_SECONDS = 30 * 86_400


class Read(NamedTuple):
    """One captured remote-read request: its body and the headers it came with."""

    body: bytes
    headers: Dict[str, str]


class Traffic(NamedTuple):
    """Remote-write bodies and remote-read requests received."""

    writes: List[bytes]
    reads: List[Read]


def series_of(body: bytes) -> List[Series]:
    """The series of one remote-write body."""
    request = codec.decode_write_request(body, HEADERS, 1 << 30)
    return write_v1.series_from_write_request(request).series


def empty_read_response(body: bytes) -> Tuple[Dict[str, str], bytes]:
    """The headers and body of an answer with no series to this remote-read request, in the
    response type the client prefers (``codec.read_response_type``): a SAMPLES ReadResponse
    with one empty result per query, or a stream of no frames."""
    request = codec.decode_read_request(body, HEADERS, 1 << 30)
    if codec.read_response_type(request) == codec.STREAMED_XOR_CHUNKS:
        return dict(codec.STREAMED_READ_HEADERS), b""
    response = remote_pb2.ReadResponse()
    for _ in request.queries:
        response.results.add()
    return dict(codec.READ_RESPONSE_HEADERS), codec.encode_read_response(response)


def listen(port: int, seconds: float) -> Traffic:
    """Remote writes (any path but ``/read``) and remote reads (``/read``, answered with no
    series) received on 127.0.0.1:``port`` during ``seconds``."""
    traffic = Traffic([], [])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path.rstrip("/").endswith("/read"):
                try:
                    headers, answer = empty_read_response(body)
                except BadRequest as exc:
                    self.send_error(400, str(exc))
                    return
                traffic.reads.append(Read(body, dict(self.headers.items())))
                self.send_response(200)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                return
            traffic.writes.append(body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    address = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"listening on {address}/write and {address}/read for {seconds:g} s", file=sys.stderr)
    time.sleep(seconds)
    server.shutdown()
    server.server_close()
    return traffic


def table_records(writes: List[bytes], now_ms: int) -> List[dict]:
    """The records this connector's WriteRecords calls for these bodies store."""
    series = [item for body in writes for item in series_of(body)]
    batches, _ = build_batches(series, now_ms, None)
    return stored_records([{"CommonAttributes": batch.common, "Records": batch.records}
                           for batch in batches])


def _calls_per_statement(calls: List[dict]) -> Dict[str, int]:
    """Query calls per statement, in the order the statements started (the calls of one
    Prometheus query: its statements' texts differ)."""
    counts: Dict[str, int] = {}
    for call in calls:
        if call["Operation"] == "Query":
            counts[call["QueryString"]] = counts.get(call["QueryString"], 0) + 1
    return counts


def read_queries(writes: List[bytes], reads: List[Read], now_ms: int
                 ) -> Tuple[List[metering.ReadQueries], List[str]]:
    """What each read runs on Timestream: the connector's reader on the Query API emulation,
    its table holding the captured writes. Also the reasons of the reads that failed."""
    stored = table_records(writes, now_ms)
    client, service = emulated_query_client(lambda: stored)
    reader = TimestreamReader(TimestreamQueryRunner(client), DATABASE, TABLE)
    limits = Limits(deadline_seconds=3600, sample_limit=1 << 62, byte_limit=1 << 62)
    counted: List[metering.ReadQueries] = []
    failures: List[str] = []
    for read in reads:
        ctx = RequestContext(limits, remote_read.dot_matches_newline(read.headers))
        calls: List[int] = []
        peak = 0
        try:
            request = codec.decode_read_request(read.body, HEADERS, 1 << 30)
            for query in remote_read.queries_from_read_request(request, ctx.dot_all,
                                                               ctx.regexes):
                before = len(service.calls)
                try:
                    reader.read(query, ctx)
                finally:
                    query_calls = _calls_per_statement(service.calls[before:])
                    calls += query_calls.values()
                    selects = sum(1 for sql in query_calls if sql.startswith("SELECT"))
                    peak = max(peak, 1, min(READ_CONCURRENCY, selects))
        except Exception as exc:  # noqa: BLE001 -- counted and reported, not fatal
            failures.append(f"{type(exc).__name__}: {exc}")
        counted.append(metering.ReadQueries(calls, peak))
    return counted, failures


def write_report(writes: List[bytes], seconds: float, now_ms: int) -> List[str]:
    """The write-cost lines for these remote-write bodies, received over ``seconds``."""
    return write_lines([series_of(body) for body in writes], seconds, now_ms)


def write_lines(requests: List[List[Series]], seconds: float, now_ms: int) -> List[str]:
    """The write-cost lines for the series of these remote-write requests, received over
    ``seconds``. Native histogram samples are metered as this connector writes them (one
    MULTI record each); the Go connector writes none, so it is compared on the float
    samples alone."""
    samples = histograms = ours = floats_only = go = 0
    for series in requests:
        samples += sample_count(series)
        histograms += histogram_count(series)
        units = metering.connector_units(series, now_ms)
        ours += units
        floats_only += metering.connector_units(
            [s._replace(histograms=()) for s in series], now_ms) if any(
                s.histograms for s in series) else units
        go += metering.go_units(series)
    rate = samples / seconds
    lines = [f"{len(requests)} requests, {samples} samples in {seconds:g} s: "
             f"{rate:,.1f} samples/s"
             + (f" ({histograms} of them native histogram samples)" if histograms else ""),
             f"price table: {metering.PRICE_TABLE} (as of {metering.PRICE_DATE})",
             f"{'encoding':28} {'writes/month':>16} {'USD/month':>12} {'per M samples':>14}"]
    rows = [("this connector", ours, samples), ("Go connector", go, samples - histograms)]
    if histograms:
        rows.insert(1, ("this connector, floats only", floats_only, samples - histograms))
    for name, units, counted in rows:
        per_second = units / seconds
        per_million = units / counted * 1e6 if counted else 0
        lines.append(f"{name:28} {per_second * MONTH_SECONDS:16,.0f} "
                     f"{metering.monthly_price(per_second):12,.2f} {per_million:14,.0f}")
    if histograms:
        lines.append("the Go connector writes no native histograms: it is compared on the "
                     f"{samples - histograms} float samples")
    if go:
        lines.append(f"ratio: {floats_only / go:.2f}x the Go connector's metered writes")
    return lines


def read_report(writes: List[bytes], reads: List[Read], seconds: float, now_ms: int,
                usd_per_tcu_hour: Optional[float] = None) -> List[str]:
    """The query-cost lines for these remote reads, received over ``seconds``."""
    price = metering.EXAMPLE_USD_PER_TCU_HOUR if usd_per_tcu_hour is None else usd_per_tcu_hour
    price_note = f"USD {price:g} per TCU-hour" + (", as given" if usd_per_tcu_hour is not None
                                                   else " (an EXAMPLE price)")
    lines = [f"{len(reads)} read requests in {seconds:g} s: {len(reads) / seconds:,.3f} reads/s"]
    if not reads:
        return lines + ["no remote reads: no query cost (point remote_read at /read to see it)"]
    counted, failures = read_queries(writes, reads, now_ms)
    tcu = [metering.read_tcu_seconds(read) for read in counted]
    per_read = [(read.statements, sum(read.calls), read.peak, t) for read, t in zip(counted, tcu)]
    lines.append(f"{'per read':28} {'statements':>10} {'Query calls':>12} {'at once':>8} "
                 f"{'TCU-s':>10}")
    count = len(per_read)
    mean = [sum(row[i] for row in per_read) / count for i in range(4)]
    top = [max(row[i] for row in per_read) for i in range(4)]
    for name, row in (("mean", mean), ("max", top)):
        lines.append(f"{name:28} {row[0]:10,.1f} {row[1]:12,.1f} {row[2]:8,.1f} {row[3]:10,.1f}")
    tcu_per_second = sum(tcu) / seconds
    tcu_hours = tcu_per_second * MONTH_SECONDS / 3600
    lines.append(f"per month at this rate: {len(reads) / seconds * MONTH_SECONDS:,.0f} reads, "
                 f"{tcu_hours:,.1f} TCU-hours, USD "
                 f"{metering.monthly_query_price(tcu_per_second, price):,.2f} at {price_note}")
    if usd_per_tcu_hour is None:
        lines.append("  not AWS's price: give your region's TCU-hour price with COST_TCU_HOUR_USD "
                     f"(--tcu-hour-usd), from {metering.PRICING_PAGE}")
    lines += [
        f"TCU model ({metering.TCU_PAGE}, read {metering.TCU_PAGE_DATE}): each statement "
        f"holds {metering.QUERY_MIN_TCUS} TCUs",
        f"  (the minimum that runs queries) for {metering.STATEMENT_FIRST_PAGE_SECONDS:g} s + "
        f"{metering.STATEMENT_PAGE_SECONDS:g} s per further Query call; statements running at "
        f"once hold {metering.QUERY_MIN_TCUS} each;",
        f"  each TCU a read holds is billed at least {metering.TCU_MINIMUM_SECONDS} s. "
        "Timestream decides the TCUs a query really uses and reports them",
        "  only per account (CloudWatch QueryTCU): this is an estimate, not a meter."]
    if len(reads) / seconds > 1 / metering.TCU_MINIMUM_SECONDS:
        lines.append(f"reads come more often than every {metering.TCU_MINIMUM_SECONDS} s: "
                     "reads that close together may share TCUs and their minimum, so this "
                     "may overestimate")
    lines.append("Query calls come from a table holding only the captured writes: on a table "
                 "with more history, reads over longer ranges page more")
    if not writes:
        lines.append("no writes captured: the table is empty, so only SHOW MEASURES runs")
    if failures:
        lines.append(f"{len(failures)} reads failed on the emulation (counted up to the "
                     f"failure): {failures[0]}")
    return lines


def report(traffic: Traffic, seconds: float, usd_per_tcu_hour: Optional[float] = None) -> str:
    """The cost table for this traffic, received over ``seconds``."""
    now_ms = int(time.time() * 1000)
    lines = write_report(traffic.writes, seconds, now_ms)
    lines.append("")
    lines += read_report(traffic.writes, traffic.reads, seconds, now_ms, usd_per_tcu_hour)
    return "\n".join(lines)


def _read_files(paths: List[str]) -> List[bytes]:
    bodies = []
    for path in paths:
        with open(path, "rb") as handle:
            bodies.append(handle.read())
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("payloads", nargs="*", help="captured remote-write bodies (files)")
    parser.add_argument("--reads", nargs="+", default=[], metavar="FILE",
                        help="captured remote-read bodies (files)")
    parser.add_argument("--listen", type=int, metavar="PORT",
                        help="listen for remote writes and reads on this port (0: any free port)")
    parser.add_argument("--seconds", type=float, default=60,
                        help="how long to listen, or the time the payload files span")
    parser.add_argument("--tcu-hour-usd", type=float, metavar="USD",
                        help="your region's price of a TCU-hour (default: an example price)")
    args = parser.parse_args()
    if args.listen is not None:
        traffic = listen(args.listen, args.seconds)
    elif args.payloads or args.reads:
        traffic = Traffic(_read_files(args.payloads),
                          [Read(body, {}) for body in _read_files(args.reads)])
    else:
        parser.error("give --listen PORT, or payload files and/or --reads files")
    print(report(traffic, args.seconds, args.tcu_hour_usd))


if __name__ == "__main__":
    main()
