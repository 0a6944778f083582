"""The README's quick start, run exactly as documented: `make run` on its defaults
(data in ./data inside the project, the project's own .venv) in a copy of the
project, under write/read traffic from several clients at once. Only PORT is set,
as the README allows, so tests can run side by side."""
import os
import shutil
import subprocess
import sys
import threading
import time

import pytest

from chalicelib.protocol import codec
from harness.processes import ROOT, Process, free_port, wait_for_port
from harness.remote import post, read_request, remote_read, write_request

IGNORE = shutil.ignore_patterns(".git", ".venv", "data", "out", "__pycache__", ".pytest_cache",
                                ".hypothesis")
# As a Prometheus writes: continuously, for longer than chalice's file-watcher poll (1 s).
SECONDS, CLIENTS = 15, 4


@pytest.fixture
def project(tmp_path):
    """A copy of the project whose .venv is the venv running the tests (installed)."""
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=IGNORE)
    os.symlink(sys.prefix, copy / ".venv")
    for stamp in (".local", ".dev"):  # already installed: make must not reinstall
        assert os.path.exists(os.path.join(sys.prefix, stamp))
    return copy


def test_make_run_on_its_defaults_stays_up_under_traffic(project, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATA_DIR", "LOG_LEVEL")}
    env["PORT"] = str(port)
    env["PYTHONUNBUFFERED"] = "1"  # so the log shows every (re)start as it happens
    server = Process(["make", "run"], str(tmp_path / "server.log"), env=env, cwd=str(project))
    url = f"http://127.0.0.1:{port}"
    failures = []
    try:
        wait_for_port(port, server.proc, timeout=120)

        deadline = time.monotonic() + SECONDS
        rounds = []

        def client(worker: int) -> None:
            round_ = 0
            while time.monotonic() < deadline:
                round_ += 1
                rounds.append(round_)
                time.sleep(0.05)
                labels = {"__name__": "quick", "client": str(worker), "round": str(round_)}
                request = write_request((labels, [(t, float(t)) for t in range(100)]))
                try:
                    status, _, body = post(url + "/write", codec.encode_message(request),
                                           {"Content-Type": "application/x-protobuf",
                                            "Content-Encoding": "snappy"})
                    if status != 204:
                        failures.append((worker, round_, status, body))
                        continue
                    result = remote_read(url, read_request(
                        (0, 1000, [(0, "__name__", "quick"), (0, "client", str(worker)),
                                   (0, "round", str(round_))])))
                    samples = [s.value for ts in result.results[0].timeseries for s in ts.samples]
                    if samples != [float(t) for t in range(100)]:
                        failures.append((worker, round_, "read back", len(samples)))
                except Exception as exc:  # resets, refused connections
                    failures.append((worker, round_, repr(exc)))

        threads = [threading.Thread(target=client, args=(w,)) for w in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.proc.poll() is None, server.log()
    finally:
        server.stop()
    log = server.log()
    assert failures == [], (len(failures), len(rounds), failures[:5])
    assert len(rounds) >= 50
    assert log.count("Serving on http://") == 1, log  # it never restarted
    assert os.path.exists(project / "data" / "prometheus.sqlite3")  # the documented default


def test_make_says_clearly_when_python_is_not_one_it_installs_on(tmp_path):
    old = tmp_path / "python3.9"
    old.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.9.18" && exit 0\n'
                   'exec python3 -c "import sys; sys.exit(1)"\n')
    old.chmod(0o755)
    result = subprocess.run(["make", "--no-print-directory", "run", f"PYTHON={old}",
                             f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert (f"error: Python 3.11, 3.12 or 3.13 is needed; '{old}' is Python 3.9.18."
            in result.stderr)
    assert not os.path.exists(tmp_path / "venv")


def test_make_test_stops_saying_how_to_install_a_missing_engine(tmp_path):
    """No test is skipped for want of an engine: the suite stops and names the packages."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/unit/test_model.py"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode == 4
    assert ("apt-get install -y --no-install-recommends influxdb openjdk-17-jre-headless "
            "prometheus") in result.stdout + result.stderr
