"""`make backfill` on the `dev` stage (`make run STAGE=dev` against the Timestream emulation,
basic auth with IAM keys): two days of history into a table that takes magnetic-store
writes (one WriteRecords call in three failing, retried), read back by a Prometheus through
the stage exactly as the source answers; and into a table without magnetic-store writes,
where the backfill says so before sending anything."""
import os
import subprocess
import time

from harness.processes import ROOT, free_port
from harness.timestream.env import DATABASE, TABLE, install_sql_functions
from harness.timestream.query_service import QueryService
from harness.timestream.server import TimestreamServer
from harness.timestream.write_rules import WriteRules
from tests.support.prometheus import start_prometheus
from tests.system.test_backfill import backfill, query_range, source_prometheus
from tests.system.test_e2e_timestream import FAULTS, SECRET, dev_stage

MATCH = '{__name__=~"history_special|history_load"}'


def emulated(rules: WriteRules, faults=None) -> TimestreamServer:
    return TimestreamServer(DATABASE, TABLE, rules,
                            QueryService(DATABASE, TABLE, rules.records, install_sql_functions),
                            write_faults=faults)


def test_backfill_into_the_dev_stage(tmp_path):
    end = int(time.time()) // 60 * 60 - 600
    start = end - 2 * 86_400 + 60
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    auth = {"TO_USER": "AKIDEXAMPLE", "TO_PASSWORD_FILE": secret_file, "MATCH": MATCH}
    stoppers = []
    try:
        source, source_url = source_prometheus(tmp_path, end)
        stoppers.append(source.stop)
        magnetic, memory_only = (emulated(WriteRules(magnetic_writes=True), FAULTS),
                                 emulated(WriteRules(memory_hours=6)))
        stoppers += [magnetic.stop, memory_only.stop]

        def run(server, checkpoints, **extra):
            env = dict(os.environ, TIMESTREAM_WRITE_ENDPOINT_URL=server.ingest_url,
                       AWS_DEFAULT_REGION="us-east-1")
            return subprocess.run(backfill(source_url, url, start, end, checkpoints,
                                           **auth, **extra),
                                  cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)

        connector, url = dev_stage(tmp_path, memory_only)
        stoppers.append(connector.stop)
        refused = run(memory_only, tmp_path / "memory-only")
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "nothing sent: the table keeps 6 h in its memory store and does not take " \
               "magnetic-store writes" in refused.stderr
        assert memory_only.count("WriteRecords") == 0
        connector.stop()

        connector, url = dev_stage(_fresh(tmp_path, "magnetic"), magnetic)
        stoppers.append(connector.stop)
        done = run(magnetic, tmp_path / "magnetic")
        assert done.returncode == 0, done.stdout + done.stderr + connector.log()[-3000:]
        assert "57600 samples sent (57600 stored, 0 rejected)" in done.stderr, done.stderr
        assert magnetic.faults >= 3 and magnetic.refusals == []
        stored = len(magnetic.rules.records())
        again = run(magnetic, tmp_path / "magnetic")
        assert "nothing left to send" in again.stderr and len(magnetic.rules.records()) == stored

        reader_port = free_port()
        stoppers.append(start_prometheus(tmp_path, "reader", reader_port, f"""
global: {{scrape_interval: 1m}}
remote_read:
  - url: {url}/read
    read_recent: true
    basic_auth: {{username: AKIDEXAMPLE, password: "{SECRET}"}}
""").stop)
        reader_url = f"http://127.0.0.1:{reader_port}"
        for query in ("history_load", 'history_load{instance="host-04"}', "history_special",
                      'history_special{kind=~"n?inf|nan"}', 'history_special{v=~"ü.*"}'):
            expected = query_range(source_url, query, start, end)
            assert expected, query
            assert query_range(reader_url, query, start, end) == expected, query
    finally:
        for stop in reversed(stoppers):
            stop()


def _fresh(tmp_path, name):
    """A directory of its own for the second connector's log."""
    directory = tmp_path / name
    directory.mkdir()
    return directory
