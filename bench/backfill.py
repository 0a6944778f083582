"""`make bench` figure: samples/s of `make backfill` from a Prometheus into `make run`,
against the same backfill into a fresh Prometheus's own remote-write receiver (the
baseline), in the same run: what the connector's side costs a backfill."""
import contextlib
import io
import os
import time

from backfill import cli
from harness.processes import Process, free_port, wait_for_port


def run_once(source: str, target: str, start_ms: int, end_ms: int, work: str) -> float:
    """Seconds one backfill of [start_ms, end_ms] from ``source`` to ``target`` takes."""
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):  # the progress bar and summary
        code = cli.main(["--from", source, "--to", target, "--start", str(start_ms / 1000),
                         "--end", str(end_ms / 1000), "--checkpoint-dir",
                         os.path.join(work, "checkpoints"), "--slice", "10m"])
    assert code == 0, code
    return time.perf_counter() - started


def figures(prometheus: str, source: str, connector: str, start_ms: int, end_ms: int,
            samples: int, work: str) -> dict:
    """samples/s into a fresh Prometheus receiver (baseline) and into the connector."""
    port = free_port()
    receiver = Process([prometheus, f"--config.file={os.path.join(work, 'prometheus.yml')}",
                        f"--storage.tsdb.path={work}/receiver",
                        f"--web.listen-address=127.0.0.1:{port}",
                        "--web.enable-remote-write-receiver", "--log.level=error"],
                       os.path.join(work, "receiver.log"))
    try:
        wait_for_port(port, receiver.proc)
        time.sleep(1)
        baseline = run_once(source, f"http://127.0.0.1:{port}/api/v1", start_ms, end_ms, work)
    finally:
        receiver.stop()
    ours = run_once(source, connector, start_ms, end_ms, work)
    return {"backfill: into Prometheus receiver (baseline)": samples / baseline,
            "backfill: into the connector (make run)": samples / ours}
