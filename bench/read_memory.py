"""Peak memory of the largest read the limits allow, on the embedded store.

Each measurement runs in a fresh interpreter: it opens a store seeded beforehand,
notes its resident memory, answers the read(s) through ``handlers.read`` and
reports the peak resident memory above that. Two shapes: many samples in a few
series (the sample limit binds), and series with big labels (the byte limit binds).
"""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SEED = r"""
import sys
from chalicelib.model import Series
from chalicelib.storage.sqlite import SQLiteStore
from chalicelib.context import Limits, RequestContext
store = SQLiteStore(sys.argv[1])
series, samples, label_bytes = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for s in range(series):
    labels = (("__name__", "mem"), ("big", "x" * label_bytes), ("s", str(s)))
    for start in range(0, samples, 500_000):
        times = list(range(start, min(samples, start + 500_000)))
        store.write([Series(labels, times, [float(t) for t in times])],
                    RequestContext(Limits(deadline_seconds=3600)))
"""

MEASURE = r"""
import json, resource, sys, threading
from chalicelib import handlers
from chalicelib.protocol import codec
from chalicelib.config import Settings
from chalicelib.context import Limits
from chalicelib.errors import ConnectorError
from chalicelib.protocol.prompb import remote_pb2
from chalicelib.storage.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
settings = Settings.from_env()
concurrent, queries = int(sys.argv[2]), int(sys.argv[3])
request = remote_pb2.ReadRequest()
for _ in range(queries):
    query = request.queries.add(start_timestamp_ms=0, end_timestamp_ms=1 << 40)
    query.matchers.add(type=0, name="__name__", value="mem")
body = codec.encode_message(request)
headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}
def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS")) * 1024
before = rss()
outcomes = []
def read():
    try:
        outcomes.append(len(handlers.read(body, headers, store,
                                          Limits.from_settings(settings))[1]))
    except ConnectorError as exc:
        outcomes.append(f"{exc.status}: {str(exc)[:60]}")
threads = [threading.Thread(target=read) for _ in range(concurrent)]
for t in threads: t.start()
for t in threads: t.join()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"peak_above_idle": peak - before, "outcomes": outcomes}))
"""


def run(code: str, *args, env=None) -> str:
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT,
                            capture_output=True, text=True, env=env, check=True)
    return result.stdout


def measure(stage_env: dict, series: int, samples: int, label_bytes: int, concurrent: int,
            queries: int = 1) -> dict:
    """Peak memory above idle of ``concurrent`` reads of everything stored, under the
    limits ``stage_env`` sets (environment variables, as a stage would)."""
    with tempfile.TemporaryDirectory(prefix="bench-mem-") as data:
        run(SEED, data, series, samples, label_bytes)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("READ_", "MAX_"))}
        return json.loads(run(MEASURE, data, concurrent, queries, env={**env, **stage_env}))


def stage_env(stage: str) -> dict:
    """The stage's environment variables from .chalice/config.json."""
    with open(os.path.join(ROOT, ".chalice", "config.json")) as handle:
        config = json.load(handle)
    return config["stages"][stage].get("environment_variables", {})


def report() -> None:
    """Print the peak memory of the largest allowed reads, per stage and shape."""
    from chalicelib.config import Settings
    print(f"\n{'largest allowed read (embedded store)':58} {'peak MiB':>9}  outcome")
    for stage in ("local", "dev"):
        env = stage_env(stage)
        settings = Settings.from_env(env)
        limit = settings.read_sample_limit
        # Big labels: as many 1 MiB-label copies (queries) as the byte limit allows.
        copies = min(settings.read_query_limit, settings.read_byte_limit // (1 << 20) - 1)
        label_series = max(1, (settings.read_byte_limit // (1 << 20) - 1) // copies)
        shapes = [
            (f"{stage}: {limit:,} samples in 10 series", 10, limit // 10, 10, 1, 1),
            (f"{stage}: same, 2 concurrent reads", 10, limit // 10, 10, 2, 1),
            (f"{stage}: {label_series} series of 1 MiB labels x {copies} queries",
             label_series, 10, 1 << 20, 1, copies),
            (f"{stage}: same, 2 concurrent reads", label_series, 10, 1 << 20, 2, copies),
        ]
        for name, series, samples, label_bytes, concurrent, queries in shapes:
            got = measure(env, series, samples, label_bytes, concurrent, queries)
            outcome = ", ".join(str(o) if isinstance(o, str) else f"200 ({o:,} B)"
                                for o in got["outcomes"])
            print(f"{name:58} {got['peak_above_idle'] / 2**20:9.0f}  {outcome}")


if __name__ == "__main__":
    report()
