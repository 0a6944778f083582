"""`make cost`: what Timestream writes will cost for your Prometheus's remote-write traffic.

Either listen for remote-write requests for a while (point a Prometheus's ``remote_write``
at ``http://127.0.0.1:PORT/write``), or read captured request bodies (snappy-compressed
``WriteRequest``s, one per file). Prints samples/s, metered 1 KiB writes per month and
their price, for this connector's WriteRecords calls and for the Go connector's encoding
of the same samples (formula and price table: chalicelib/storage/timestream/metering.py,
docs/timestream-data-model.md "What it costs").
"""
import argparse
import http.server
import sys
import threading
import time
from typing import List

from chalicelib.storage.timestream import metering
from chalicelib.model import Series
from chalicelib.protocol import codec, write_v1
from harness.remote import HEADERS


def series_of(body: bytes) -> List[Series]:
    """The series of one remote-write body."""
    request = codec.decode_write_request(body, HEADERS, 1 << 30)
    return write_v1.series_from_write_request(request).series


def listen(port: int, seconds: float) -> List[bytes]:
    """Remote-write bodies received on 127.0.0.1:``port`` during ``seconds``."""
    bodies: List[bytes] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/write for {seconds:g} s",
          file=sys.stderr)
    time.sleep(seconds)
    server.shutdown()
    server.server_close()
    return bodies


def report(bodies: List[bytes], seconds: float) -> str:
    """The cost table for these request bodies, received over ``seconds``."""
    now_ms = int(time.time() * 1000)
    samples = ours = go = 0
    for body in bodies:
        series = series_of(body)
        samples += sum(len(s.timestamps) for s in series)
        ours += metering.connector_units(series, now_ms)
        go += metering.go_units(series)
    rate = samples / seconds
    lines = [f"{len(bodies)} requests, {samples} samples in {seconds:g} s: "
             f"{rate:,.1f} samples/s",
             f"price table: {metering.PRICE_TABLE} (as of {metering.PRICE_DATE})",
             f"{'encoding':28} {'writes/month':>16} {'USD/month':>12} {'per M samples':>14}"]
    for name, units in (("this connector", ours), ("Go connector", go)):
        per_second = units / seconds
        per_million = units / samples * 1e6 if samples else 0
        lines.append(f"{name:28} {per_second * 30 * 86_400:16,.0f} "
                     f"{metering.monthly_price(per_second):12,.2f} {per_million:14,.0f}")
    if go:
        lines.append(f"ratio: {ours / go:.2f}x the Go connector's metered writes")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("payloads", nargs="*", help="captured remote-write bodies (files)")
    parser.add_argument("--listen", type=int, metavar="PORT",
                        help="listen for remote writes on this port (0: any free port)")
    parser.add_argument("--seconds", type=float, default=60,
                        help="how long to listen, or the time the payload files span")
    args = parser.parse_args()
    if args.listen is not None:
        bodies = listen(args.listen, args.seconds)
    elif args.payloads:
        bodies = []
        for path in args.payloads:
            with open(path, "rb") as handle:
                bodies.append(handle.read())
    else:
        parser.error("give --listen PORT or payload files")
    print(report(bodies, args.seconds))


if __name__ == "__main__":
    main()
