"""``make backfill``: copy a Prometheus's history into the connector.

Reads the source's ``/api/v1/read`` one time slice at a time (the next slice is read
while the current one is sent), sends each slice through the connector's ``/write`` from
a few concurrent shards, records each completed slice in a checkpoint, and prints a
summary. ``--dry-run`` counts and prices instead of sending.
"""
import argparse
import concurrent.futures
import datetime
import sys
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

from backfill import retention
from backfill.batches import MAX_SAMPLES, sharded
from backfill.checkpoint import Checkpoint, key
from backfill.selector import EVERY_SERIES, SelectorError, parse
from backfill.sender import Sender, Stop
from backfill.source import Source, SourceError
from chalicelib.model import Series
from chalicelib.protocol import codec

DEFAULT_TABLE = "PrometheusDatabase.PrometheusMetricsTable"
REASONS_KEPT = 20


def parse_time(text: str) -> int:
    """Unix seconds or RFC 3339 as milliseconds."""
    text = text.strip()
    try:
        return round(float(text) * 1000)
    except ValueError:
        pass
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither Unix seconds nor RFC 3339 (2026-12-01T00:00:00Z)") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add Z or +00:00)")
    return round(parsed.timestamp() * 1000)


def parse_duration(text: str) -> int:
    """``90s``, ``30m``, ``2h``, ``1d`` as milliseconds."""
    units = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
    try:
        return round(float(text[:-1]) * units[text[-1]]) if text[-1] in units \
            else round(float(text) * 1000)
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 2h") from None


def slices(start_ms: int, end_ms: int, size_ms: int) -> List[Tuple[int, int]]:
    """Inclusive [first, last] millisecond ranges covering [start_ms, end_ms]."""
    return [(first, min(first + size_ms - 1, end_ms))
            for first in range(start_ms, end_ms + 1, size_ms)]


def iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(
        timespec="seconds").replace("+00:00", "Z")


def arguments(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make backfill", description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="source", required=True,
                        help="the source Prometheus's base URL")
    parser.add_argument("--to", dest="target", required=True, help="the connector's base URL")
    parser.add_argument("--start", required=True, type=parse_time,
                        help="Unix seconds or RFC 3339")
    parser.add_argument("--end", required=True, type=parse_time,
                        help="Unix seconds or RFC 3339 (inclusive)")
    parser.add_argument("--match", default="", help=f"series selector (default {EVERY_SERIES})")
    parser.add_argument("--to-user", default="", help="basic-auth user (an IAM access key id)")
    parser.add_argument("--to-password-file", default="",
                        help="file holding the basic-auth password (the secret access key)")
    parser.add_argument("--to-session-token-file", default="",
                        help="file holding an AWS session token (X-AWS-Session-Token)")
    parser.add_argument("--rate", type=float, default=0,
                        help="most samples sent per second (0: no limit)")
    parser.add_argument("--shards", type=int, default=4, help="concurrent senders")
    parser.add_argument("--slice", type=parse_duration, default=parse_duration("2h"),
                        help="history read at once (default 2h)")
    parser.add_argument("--batch-samples", type=int, default=MAX_SAMPLES,
                        help=f"most samples per request (default {MAX_SAMPLES})")
    parser.add_argument("--checkpoint-dir", default=".backfill")
    parser.add_argument("--dry-run", action="store_true",
                        help="count series and samples and price the Timestream writes")
    parser.add_argument("--timestream-table", default="",
                        help="DATABASE.TABLE to check retention on (default, when --to-user "
                             f"is given: {DEFAULT_TABLE}); 'none' skips the check")
    parser.add_argument("--ignore-retention", action="store_true",
                        help="send even when the table would reject the older samples")
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error("END is before START")
    if args.shards < 1 or args.batch_samples < 1 or args.slice < 1:
        parser.error("--shards, --batch-samples and --slice must be positive")
    try:
        args.matchers = parse(args.match or EVERY_SERIES)
    except SelectorError as err:
        parser.error(str(err))
    return args


def read_secret(path: str) -> Optional[str]:
    if not path:
        return None
    with open(path, encoding="utf-8") as handle:
        return handle.read().rstrip("\r\n")


class Totals:
    """What this run sent, shared by the senders."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples = self.stored = self.rejected = 0
        self.reasons: Dict[str, int] = {}
        self.series: set = set()

    def as_dict(self) -> Dict[str, int]:
        return {"samples": self.samples, "stored": self.stored, "rejected": self.rejected}


def check_retention(args, password: Optional[str], token: Optional[str]) -> Optional[str]:
    """A reason to stop before sending, or None; prints what it could not check."""
    table = args.timestream_table or (DEFAULT_TABLE if args.to_user else "")
    if not table or table == "none":
        return None
    database, _, name = table.partition(".")
    try:
        found = retention.describe(database, name, args.to_user, password or "", token)
    except Exception as err:  # any failure: say so and let Timestream judge
        print(f"warning: cannot read the retention of {table} ({type(err).__name__}: {err}); "
              "going on: Timestream judges each sample, rejected ones are counted below",
              file=sys.stderr)
        return None
    return retention.problem(found, args.start, int(time.time() * 1000))


def send_slice(series: List[Series], sender: Sender, shards: int, batch_samples: int,
               totals: Totals, bar: tqdm) -> None:
    """Send one slice from ``shards`` threads; raise Stop if any stopped."""
    stopped = threading.Event()

    def run(batches) -> None:
        for batch in batches:
            if stopped.is_set():
                return
            outcome = sender.send(codec.encode_message(batch.request), batch.samples)
            with totals.lock:
                totals.samples += batch.samples
                totals.stored += outcome.stored
                totals.rejected += outcome.rejected
                if outcome.rejected and (outcome.reasons in totals.reasons
                                         or len(totals.reasons) < REASONS_KEPT):
                    totals.reasons[outcome.reasons] = (totals.reasons.get(outcome.reasons, 0)
                                                       + outcome.rejected)
                bar.update(batch.samples)

    parts = [part for part in sharded(series, shards, max_samples=batch_samples) if part]
    with concurrent.futures.ThreadPoolExecutor(max(1, len(parts))) as pool:
        futures = [pool.submit(run, part) for part in parts]
        errors = []
        try:
            for future in concurrent.futures.as_completed(futures):
                try:
                    future.result()
                except Exception as err:
                    stopped.set()
                    errors.append(err)
        except BaseException:  # Ctrl-C: the senders stop after their current request
            stopped.set()
            raise
    if errors:
        raise errors[0]


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = arguments(argv)
    password = read_secret(args.to_password_file)
    token = read_secret(args.to_session_token_file)
    match = args.match or EVERY_SERIES
    run_key = key(args.source, args.target, match, args.start, args.end)
    checkpoint = Checkpoint(args.checkpoint_dir, run_key, {
        "from": args.source, "to": args.target, "match": match,
        "start": iso(args.start), "end": iso(args.end)})
    pieces = slices(args.start, args.end, args.slice)
    todo = [piece for piece in pieces if not checkpoint.is_done(piece)]
    print(f"backfill {iso(args.start)} .. {iso(args.end)} {match} from {args.source} "
          f"to {args.target}: {len(pieces)} slices of {args.slice / 3_600_000:g} h",
          file=sys.stderr)
    if not args.dry_run and not todo:
        print(f"nothing left to send: every slice of this range was sent already "
              f"(checkpoint {checkpoint.path}; delete it to send again)", file=sys.stderr)
        return 0

    problem = check_retention(args, password, token)
    if problem and not (args.dry_run or args.ignore_retention):
        print(f"error: nothing sent: {problem} (--ignore-retention / IGNORE_RETENTION=1 sends "
              "anyway)", file=sys.stderr)
        return 2
    if problem:
        print(f"warning: {problem}", file=sys.stderr)

    source = Source(args.source, args.matchers)
    if args.dry_run:
        return dry_run(source, pieces, checkpoint)
    if len(todo) < len(pieces):
        print(f"resuming: {len(pieces) - len(todo)} of {len(pieces)} slices were sent already "
              f"(checkpoint {checkpoint.path})", file=sys.stderr)
    sender = Sender(args.target, args.to_user or None, password, token, args.rate or None)
    return send_all(args, source, sender, checkpoint, todo)


def send_all(args, source: Source, sender: Sender, checkpoint: Checkpoint,
             todo: List[Tuple[int, int]]) -> int:
    totals = Totals()
    previous = dict(checkpoint.totals)
    started = time.monotonic()
    history_ms = sum(last - first + 1 for first, last in todo)
    done_ms = 0
    stop: Optional[BaseException] = None
    bar = tqdm(total=None, unit=" samples", unit_scale=True, dynamic_ncols=True,
               mininterval=0.5, file=sys.stderr)
    with concurrent.futures.ThreadPoolExecutor(1) as reader:
        upcoming = reader.submit(source.read, *todo[0])
        try:
            for index, piece in enumerate(todo):
                series = upcoming.result()
                if index + 1 < len(todo):
                    upcoming = reader.submit(source.read, *todo[index + 1])
                totals.series.update(hash(item.labels) for item in series)
                send_slice(series, sender, args.shards, args.batch_samples, totals, bar)
                checkpoint.complete(piece, {name: previous.get(name, 0) + value
                                            for name, value in totals.as_dict().items()})
                done_ms += piece[1] - piece[0] + 1
                bar.total = round(totals.samples * history_ms / done_ms)
                bar.set_postfix_str(f"{index + 1}/{len(todo)} slices, to {iso(piece[1])}")
                bar.refresh()
        except (Stop, SourceError) as err:
            stop = err
        except KeyboardInterrupt:
            stop = KeyboardInterrupt("interrupted")
        finally:
            bar.close()
            upcoming.cancel()
    summary(totals, sender, time.monotonic() - started, checkpoint, len(todo), stop)
    return 1 if stop else 0


def summary(totals: Totals, sender: Sender, took: float, checkpoint: Checkpoint,
            todo: int, stop: Optional[BaseException]) -> None:
    rate = totals.samples / took if took else 0.0
    lines = [f"{len(totals.series)} series, {totals.samples} samples sent "
             f"({totals.stored} stored, {totals.rejected} rejected) in {sender.requests} "
             f"requests ({sender.retries} retried) in {took:.1f} s ({rate:.0f} samples/s)"]
    if sender.failures:
        lines.append("retried answers: " + ", ".join(
            f"{status}: {count}" for status, count in sorted(sender.failures.items(),
                                                              key=str)))
    for reason, count in sorted(totals.reasons.items(), key=lambda item: -item[1]):
        lines.append(f"rejected {count}: {reason}")
    done = len(checkpoint.done)
    if stop:
        lines.append(f"stopped: {stop}")
        lines.append(f"checkpoint {checkpoint.path}: run the same command again to resume "
                     "after the slices already sent")
    else:
        lines.append(f"done: {done} slices sent; checkpoint {checkpoint.path}")
    print("summary: " + "\n  ".join(lines), file=sys.stderr)


def dry_run(source: Source, pieces: List[Tuple[int, int]], checkpoint: Checkpoint) -> int:
    """Count series and samples of the range and meter what Timestream would bill."""
    from chalicelib.storage.timestream import metering

    started = time.monotonic()
    series_seen: set = set()
    samples = units = 0
    now_ms = int(time.time() * 1000)
    try:
        for piece in tqdm(pieces, unit=" slices", file=sys.stderr, mininterval=0.5):
            series = source.read(*piece)
            series_seen.update(hash(item.labels) for item in series)
            samples += sum(len(item.timestamps) for item in series)
            units += metering.connector_units(series, now_ms)
    except SourceError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    price = units / 1e6 * metering.PRICE_PER_MILLION_WRITES_USD
    already = sum(1 for piece in pieces if checkpoint.is_done(piece))
    print(f"dry run ({time.monotonic() - started:.1f} s, nothing sent): {len(series_seen)} "
          f"series, {samples} samples in {len(pieces)} slices"
          + (f" ({already} already sent per the checkpoint)" if already else ""))
    print(f"Timestream write cost: {units} write units of 1 KiB, about USD {price:.4f} "
          f"({metering.PRICE_TABLE}, {metering.PRICE_DATE}; the metering `make cost` uses)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
