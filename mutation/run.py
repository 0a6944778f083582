"""`make mutation`: mutation testing of the core modules, each against its fast tests.

Each module runs in its own scratch copy of the project (cosmic-ray edits the source in
place), modules in parallel (``--jobs``). Mutants marked ``# pragma: no mutate`` are
equivalent (they cannot change behaviour; the comment beside the pragma says why) and are
left out of the score. Prints the score per module and every survivor; writes the whole
report to ``out/mutation/report.md`` (and each module's, as soon as it is done, beside it).

    python -m mutation.run [--jobs 2] [--min-score 90] [--sample N] [module ...]
"""
import argparse
import glob
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, NamedTuple, Sequence

from mutation.forkserver import HARNESS_LOG

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
OUT = os.path.join(ROOT, "out", "mutation")

#: Selections of the store-parametrized tests (the ``store`` fixture's ids): one backend's.
_SQLITE_ONLY = ["-k", "not timestream and not influxdb"]
_TIMESTREAM_ONLY = ["-k", "not sqlite and not influxdb"]
_INFLUXDB_ONLY = ["-k", "not sqlite and not timestream"]
_UNIT, _SYSTEM = "tests/unit", "tests/system"
_CONTRACT = "tests/contract/test_store_contract.py"
_TS, _INFLUX = f"{_UNIT}/storage/timestream", f"{_UNIT}/storage/influxdb"
_TELEMETRY = f"{_UNIT}/telemetry"
#: Not the test that compares chunks with a real Prometheus process (a subprocess).
_NO_PROMETHEUS = ["--deselect",
                  f"{_UNIT}/protocol/test_xor_chunks.py::test_chunks_equal_those_prometheus_encodes"]
#: Not the codec's round-trip properties (minutes under load; they pin no matcher).
_NO_CODEC_PROPERTIES = [
    "--deselect",
    f"{_UNIT}/test_properties.py::test_write_requests_round_trip_through_the_codec_and_translation",
    "--deselect", f"{_UNIT}/test_properties.py::test_read_responses_round_trip"]
_TIMESTREAM_TESTS = [f"{_TS}/test_store.py", _CONTRACT, f"{_TS}/test_shared_table.py",
                     f"{_TS}/test_records.py", "tests/contract/test_histogram_contract.py",
                     f"{_TS}/test_metering.py"]
_INFLUXDB_TESTS = [f"{_INFLUX}/test_store.py", f"{_INFLUX}/test_faults.py", _CONTRACT,
                   "tests/contract/test_histogram_contract.py"]
_WRITE_V1_TESTS = [f"{_UNIT}/protocol/test_write_v1.py", f"{_UNIT}/protocol/test_codec.py",
                   f"{_SYSTEM}/test_app.py", _CONTRACT, f"{_SYSTEM}/test_hostile_input.py",
                   f"{_UNIT}/test_properties.py"]

#: Core module -> the in-process tests that pin its behaviour (pytest arguments: test
#: files, then options). Each mutant runs only those of them that ran the line it changes
#: (``mutation/selection.py``), so a generous list costs little.
MODULES: Dict[str, List[str]] = {
    "chalicelib/auth.py": [f"{_UNIT}/test_auth.py"],
    "chalicelib/caches.py": [f"{_UNIT}/test_caches.py", f"{_UNIT}/storage/test_storage.py"],
    "chalicelib/context.py": [f"{_UNIT}/test_context.py", f"{_UNIT}/test_handlers.py", _CONTRACT,
                              f"{_UNIT}/storage/test_sqlite.py", *_SQLITE_ONLY],
    "chalicelib/retry.py": [f"{_UNIT}/test_retry.py", f"{_INFLUX}/test_client.py",
                            f"{_TS}/test_client.py"],
    "chalicelib/matchers.py": [f"{_UNIT}/test_matchers.py", f"{_UNIT}/test_properties.py", _CONTRACT,
                               f"{_SYSTEM}/test_hostile_input.py", f"{_UNIT}/test_caches.py",
                               *_SQLITE_ONLY, *_NO_CODEC_PROPERTIES],
    "chalicelib/protocol/codec.py": [f"{_UNIT}/protocol/test_codec.py", f"{_SYSTEM}/test_app.py",
                                     f"{_SYSTEM}/test_hostile_input.py",
                                     f"{_UNIT}/test_properties.py", *_SQLITE_ONLY],
    "chalicelib/protocol/labels.py": [*_WRITE_V1_TESTS, f"{_SYSTEM}/test_prometheus3.py",
                                      *_SQLITE_ONLY],
    "chalicelib/protocol/write_v1.py": [*_WRITE_V1_TESTS, *_SQLITE_ONLY],
    "chalicelib/protocol/write_v2.py": [f"{_SYSTEM}/test_prometheus3.py", *_SQLITE_ONLY],
    "chalicelib/protocol/histograms.py": [f"{_UNIT}/protocol/test_histograms.py",
                                          *_WRITE_V1_TESTS, f"{_SYSTEM}/test_prometheus3.py",
                                          "tests/contract/test_histogram_contract.py",
                                          *_SQLITE_ONLY],
    "chalicelib/storage/histogram_text.py": [f"{_UNIT}/storage/test_histogram_text.py",
                                             "tests/contract/test_histogram_contract.py",
                                             *_SQLITE_ONLY],
    "chalicelib/protocol/read.py": [f"{_UNIT}/protocol/test_read.py", f"{_SYSTEM}/test_app.py",
                                    *_SQLITE_ONLY],
    "chalicelib/protocol/streamed.py": [f"{_UNIT}/protocol/test_streamed.py",
                                        f"{_SYSTEM}/test_prometheus3.py", *_SQLITE_ONLY],
    "chalicelib/protocol/histogram_chunks.py": [f"{_UNIT}/protocol/test_histogram_chunks.py",
                                                f"{_UNIT}/protocol/test_streamed.py",
                                                f"{_UNIT}/backfill/test_chunks.py"],
    "chalicelib/protocol/xor_chunks.py": [f"{_UNIT}/protocol/test_xor_chunks.py",
                                          *_NO_PROMETHEUS],
    "chalicelib/storage/sqlite.py": [_CONTRACT, "tests/contract/test_histogram_contract.py", f"{_UNIT}/storage/test_storage.py",
                                     f"{_UNIT}/storage/test_sqlite.py",
                                     f"{_UNIT}/test_handlers.py", f"{_SYSTEM}/test_app.py",
                                     *_SQLITE_ONLY],
    "chalicelib/storage/timestream/store.py": [*_TIMESTREAM_TESTS,
                                               f"{_SYSTEM}/test_app_timestream.py",
                                               f"{_UNIT}/storage/test_storage.py",
                                               *_TIMESTREAM_ONLY],
    "chalicelib/storage/timestream/client.py": [f"{_TS}/test_client.py", *_TIMESTREAM_TESTS,
                                                f"{_TS}/test_reader.py", *_TIMESTREAM_ONLY],
    "chalicelib/storage/timestream/records.py": [*_TIMESTREAM_TESTS, *_TIMESTREAM_ONLY],
    "chalicelib/storage/timestream/sql.py": [f"{_TS}/test_sql.py", *_TIMESTREAM_TESTS,
                                             *_TIMESTREAM_ONLY],
    "chalicelib/storage/timestream/reader.py": [f"{_TS}/test_reader.py", *_TIMESTREAM_TESTS,
                                                *_TIMESTREAM_ONLY],
    "chalicelib/storage/timestream/java_regex.py": [f"{_TS}/test_java_regex.py"],
    "chalicelib/storage/timestream/iam.py": [f"{_SYSTEM}/test_policies.py"],
    "chalicelib/storage/influxdb/store.py": [*_INFLUXDB_TESTS, *_INFLUXDB_ONLY],
    "chalicelib/storage/influxdb/line_protocol.py": [f"{_INFLUX}/test_line_protocol.py",
                                                     f"{_INFLUX}/test_influxql.py"],
    "chalicelib/storage/influxdb/influxql.py": [f"{_INFLUX}/test_influxql.py",
                                                f"{_INFLUX}/test_line_protocol.py"],
    "chalicelib/storage/influxdb/client.py": [f"{_INFLUX}/test_client.py", *_INFLUXDB_TESTS,
                                              f"{_INFLUX}/test_credentials.py", *_INFLUXDB_ONLY],
    "chalicelib/telemetry/request.py": [f"{_TELEMETRY}/test_request.py", f"{_UNIT}/test_retry.py",
                                        f"{_UNIT}/test_handlers.py", _CONTRACT, *_SQLITE_ONLY],
    "chalicelib/telemetry/local.py": [f"{_TELEMETRY}/test_local.py", f"{_SYSTEM}/test_metrics.py"],
    "chalicelib/telemetry/emf.py": [f"{_TELEMETRY}/test_emf.py"],
    "chalicelib/telemetry/observe.py": [f"{_TELEMETRY}/test_observe.py"],
}

PYTEST_OPTIONS = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
#: In each scratch copy: the fork server's socket, the unmutated module.
SOCKET, ORIGINAL = "mutation.sock", "mutation-original.txt"

CONFIG = """[cosmic-ray]
module-path = "{module}"
timeout = {timeout}
excluded-modules = []
test-command = "{python} -I -S {client} {socket}"

[cosmic-ray.distributor]
name = "local"
"""


class Survivor(NamedTuple):
    """A mutant the tests did not kill."""

    line: int
    operator: str
    diff: str


class Score(NamedTuple):
    """Outcome of one module's run."""

    module: str
    total: int
    killed: int
    survivors: List[Survivor]
    equivalent: int
    of: int = 0  # when a sample was run: how many mutants the module has in all

    @property
    def percent(self) -> float:
        counted = self.total - self.equivalent
        return 100.0 * self.killed / counted if counted else 100.0


def _project_copy(root: str, dest: str) -> None:
    """Copy the project's files (tracked and new, not ignored) into ``dest``, and this
    runner (which the scratch copy runs)."""
    shutil.copytree(os.path.dirname(os.path.abspath(__file__)), os.path.join(dest, "mutation"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=root,
                           check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = os.path.join(root, name)
        if os.path.isfile(source):
            target = os.path.join(dest, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(source, target)


def _changed_lines(diff: str) -> str:
    return "\n".join(line for line in diff.splitlines()
                     if line.startswith(("-", "+")) and not line.startswith(("---", "+++")))


def _keep_sample(session: str, size: int) -> int:
    """Leave ``size`` mutants (a fixed pseudo-random choice) of those not yet judged in
    the session, dropping the others; returns how many mutants there were in all."""
    with sqlite3.connect(session) as db:
        total = db.execute("SELECT count(*) FROM work_items").fetchone()[0]
        pending = [row[0] for row in db.execute(
            "SELECT s.job_id FROM mutation_specs s LEFT JOIN work_results r"
            " ON r.job_id = s.job_id WHERE r.job_id IS NULL ORDER BY s.start_pos_row,"
            " s.start_pos_col, s.operator_name, s.occurrence")]
        if len(pending) > size:
            chosen = set(random.Random(0).sample(pending, size))
            dropped = [(job,) for job in pending if job not in chosen]
            db.executemany("DELETE FROM mutation_specs WHERE job_id = ?", dropped)
            db.executemany("DELETE FROM work_items WHERE job_id = ?", dropped)
    return total


def _baseline(scratch: str, module: str, tests: Sequence[str]) -> None:
    """Run the tests once on the unmutated module, recording which test ran which line
    and how long each took (``mutation.selection``); they must pass."""
    command = [sys.executable, "-m", "coverage", "run", "--data-file=.mutation-coverage",
               f"--include={module}", "-m", "pytest", *PYTEST_OPTIONS, "-p", "mutation.selection",
               "--mutation-durations=.mutation-durations", *tests]
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    run = subprocess.run(command, cwd=scratch, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"{module}: its tests fail before any mutation:\n{run.stdout[-3000:]}")
    # The .pyc files it left (the tests' as pytest rewrote them, the unchanged modules') spare
    # every mutant that work; the mutated module's own must go: Python checks a .pyc by the
    # source's size and mtime in whole seconds, which a mutant can share.
    directory, name = os.path.split(os.path.join(scratch, module))
    for stale in glob.glob(os.path.join(directory, "__pycache__", name[:-3] + ".*.pyc")):
        os.remove(stale)


def _start_server(scratch: str, module: str, tests: Sequence[str],
                  timeout: float) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, "-m", "mutation.forkserver", SOCKET, module, ORIGINAL,
         ".mutation-coverage", ".mutation-durations", str(timeout), "--", "-x", *PYTEST_OPTIONS,
         # it only warns, after collecting garbage several times: 0.5 s of every mutant
         "-p", "no:unraisableexception",
         *tests], cwd=scratch, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    if server.stdout.readline().strip() != "ready":
        server.kill()
        raise RuntimeError(f"{module}: the fork server did not start")
    return server


def run_module(module: str, tests: Sequence[str], timeout: float, sample: int = 0,
               root: str = ROOT) -> Score:
    """Mutate ``module`` and run, against every mutant (or a sample of ``sample`` of
    them), those of ``tests`` that ran the mutated statement, in a scratch copy of the
    project at ``root``."""
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        _project_copy(root, scratch)
        shutil.copy(os.path.join(scratch, module), os.path.join(scratch, ORIGINAL))
        _baseline(scratch, module, tests)
        config = os.path.join(scratch, "cosmic-ray.toml")
        with open(config, "w") as handle:
            handle.write(CONFIG.format(
                module=module, timeout=timeout + 30, python=sys.executable,
                client=os.path.join(scratch, "mutation", "client.py"), socket=SOCKET))
        session = os.path.join(scratch, "session.sqlite")

        def tool(*args: str) -> str:
            return subprocess.run([os.path.join(BIN, args[0]), *args[1:]], cwd=scratch,
                                  check=True, capture_output=True, text=True).stdout

        tool("cosmic-ray", "init", config, session)
        tool("cr-filter-pragma", session)
        of = _keep_sample(session, sample) if sample else 0
        server = _start_server(scratch, module, tests, timeout)
        try:
            tool("cosmic-ray", "exec", config, session)
        finally:
            server.kill()
            server.wait()
        errors = os.path.join(scratch, HARNESS_LOG)
        if os.path.exists(errors):
            with open(errors) as handle:
                raise RuntimeError(f"{module}: the test harness failed:\n{handle.read()[:3000]}")
        total = killed = equivalent = 0
        survivors = []
        for line in tool("cosmic-ray", "dump", session).splitlines():
            job, result = json.loads(line)
            total += 1
            if result is None:
                continue
            if result.get("worker_outcome") == "skipped":
                equivalent += 1
            elif result.get("test_outcome") == "survived":
                mutation = job["mutations"][0]
                survivors.append(Survivor(mutation["start_pos"][0], mutation["operator_name"],
                                          _changed_lines(result.get("diff", ""))))
            else:  # killed, or incompetent (the mutant broke the module): both caught
                killed += 1
        return Score(module, total, killed, sorted(survivors), equivalent,
                     of if of > total else 0)


def report(scores: Sequence[Score]) -> str:
    """Markdown: the score table, then the survivors of each module."""
    lines = ["| module | mutants | equivalent | killed | score |", "|---|---|---|---|---|"]
    for s in scores:
        name = f"{s.module} (sample of {s.of})" if s.of else s.module
        lines.append(f"| {name} | {s.total} | {s.equivalent} | {s.killed} | "
                     f"{s.percent:.1f} % |")
    for s in scores:
        if s.survivors:
            lines += ["", f"## Survivors in {s.module}"]
            for survivor in s.survivors:
                lines += [f"- line {survivor.line}, {survivor.operator}:", "```diff",
                          survivor.diff, "```"]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules to mutate (default: all core)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant")
    parser.add_argument("--min-score", type=float, default=90.0)
    parser.add_argument("--sample", type=int, default=0,
                        help="run only this many mutants per module (a fixed choice)")
    args = parser.parse_args(argv or None)
    chosen = args.modules or list(MODULES)
    unknown = [m for m in chosen if m not in MODULES]
    if unknown:
        parser.error(f"not a core module: {', '.join(unknown)} (known: {', '.join(MODULES)})")
    os.makedirs(OUT, exist_ok=True)

    def one(module: str) -> Score:
        started = time.monotonic()
        score = run_module(module, MODULES[module], args.timeout, args.sample)
        print(f"{module}: {score.percent:.1f} % of {score.total - score.equivalent} "
              f"({time.monotonic() - started:.0f} s)", flush=True)
        with open(os.path.join(OUT, module.replace("/", ".") + ".md"), "w") as handle:
            handle.write(report([score]))  # each module's as soon as it is done
        return score

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        scores = list(pool.map(one, chosen))
    text = report(scores)
    with open(os.path.join(OUT, "report.md"), "w") as handle:
        handle.write(text)
    print(text)
    low = [s.module for s in scores if s.percent < args.min_score]
    if low:
        print(f"below {args.min_score:.0f} %: {', '.join(low)}")
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
