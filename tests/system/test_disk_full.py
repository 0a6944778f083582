"""The embedded store on a disk that fills up, through the real server (`make run`):
failed writes answer 503 naming the cause, and every acknowledged sample reads back
under its own series — after space returns, and after a restart. Also kill -9."""
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.processes import Process, free_port, wait_for_port
from harness.remote import (read_request, remote_read, remote_write,
                            write_request)

PAD = "x" * 150  # makes each series row a few hundred bytes


def start(tmp_path, data_dir, prefix=()):
    port = free_port()
    env = dict(os.environ, PORT=str(port), DATA_DIR=str(data_dir))
    proc = Process([*prefix, "make", "--no-print-directory", "run", f"VENV={sys.prefix}"],
                   str(tmp_path / f"server-{port}.log"), env=env)
    try:
        wait_for_port(port, proc.proc, timeout=120)
    except Exception:
        proc.stop()
        raise
    return proc, f"http://127.0.0.1:{port}"


def request_for(i: int):
    """Series i is new (200 samples of value i); series i-1 gets one more sample."""
    new = ({"__name__": "df", "i": str(i), "pad": PAD}, [(t, float(i)) for t in range(200)])
    more = ({"__name__": "df", "i": str(i - 1), "pad": PAD}, [(1000 + i, float(i - 1))])
    return write_request(new, more) if i else write_request(new), [(i, new[1]), (i - 1, more[1])]


def fill(url, acked, start_at=0, tries=3000):
    """Write until the disk is full and a few more times (retries, new series);
    returns the failure bodies. ``acked``: series -> {timestamp: value} answered 204."""
    failures = []
    i = start_at
    while i < start_at + tries and len(failures) < 8:
        request, parts = request_for(i)
        status, body = remote_write(url, request)
        if status == 204:
            for series, samples in parts:
                if series >= 0:
                    acked.setdefault(series, {}).update(samples)
        else:
            assert status == 503, (status, body)
            failures.append(body.decode())
            if len(failures) % 2:
                continue  # Prometheus retries the same batch
        i += 1
    return failures, i


def check(url, acked, exact=True):
    """Every acknowledged sample, under its own series (all samples of series i have
    the value i, so a misfiled one shows); with ``exact``, nothing else either."""
    result = remote_read(url, read_request((0, 10_000, [(0, "__name__", "df")])))
    stored = {}
    for ts in result.results[0].timeseries:
        labels = {l.name: l.value for l in ts.labels}
        stored[int(labels["i"])] = {s.timestamp: s.value for s in ts.samples}
    misfiled = {i: sorted(set(samples.values()) - {float(i)}) for i, samples in stored.items()}
    assert {i: v for i, v in misfiled.items() if v} == {}
    lost = {i: len(samples.keys() - stored.get(i, {}).keys()) for i, samples in acked.items()}
    assert {i: n for i, n in lost.items() if n} == {}
    if exact:
        assert stored == acked


@pytest.fixture
def tmpfs(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                            capture_output=True)
    if result.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.decode().strip()}); "
                    "the file-size-limit test covers the same path")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_full_tmpfs_loses_and_misfiles_nothing(tmp_path, tmpfs):
    acked = {}
    proc, url = start(tmp_path, tmpfs / "data")
    try:
        failures, next_i = fill(url, acked)
        assert failures and all("embedded store disk full" in f for f in failures), failures
        assert len(acked) > 5
        check(url, acked)
        subprocess.run(["mount", "-o", "remount,size=16m", str(tmpfs)], check=True)
        more, _ = fill(url, acked, start_at=next_i, tries=20)  # space is back
        assert more == []
        check(url, acked)
    finally:
        proc.stop()
    proc, url = start(tmp_path, tmpfs / "data")
    try:
        check(url, acked)
    finally:
        proc.stop()


def test_file_size_limit_loses_and_misfiles_nothing(tmp_path):
    acked = {}
    data = tmp_path / "data"
    proc, url = start(tmp_path, data, prefix=("prlimit", "--fsize=400000"))
    try:
        failures, next_i = fill(url, acked)
        assert failures and all("embedded store I/O error" in f for f in failures), failures
        check(url, acked)
    finally:
        proc.stop()
    proc, url = start(tmp_path, data)  # no limit any more
    try:
        check(url, acked)
        more, _ = fill(url, acked, start_at=next_i, tries=20)
        assert more == []
        check(url, acked)
    finally:
        proc.stop()


def test_kill_9_during_writes_loses_no_acknowledged_sample(tmp_path):
    acked = {}
    data = tmp_path / "data"
    for round_ in range(3):
        proc, url = start(tmp_path, data)
        try:
            start_at = round_ * 1000
            deadline = time.monotonic() + 2 + round_
            i = start_at
            while time.monotonic() < deadline:
                request, parts = request_for(i)
                if remote_write(url, request)[0] == 204:
                    for series, samples in parts:
                        if series >= 0:
                            acked.setdefault(series, {}).update(samples)
                i += 1
        finally:
            os.killpg(proc.proc.pid, signal.SIGKILL)
            proc.stop()
    proc, url = start(tmp_path, data)
    try:
        check(url, acked, exact=False)  # a write in flight at the kill may be stored unanswered
    finally:
        proc.stop()
