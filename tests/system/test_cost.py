"""`make cost`: the write cost of a Prometheus's traffic, listened to or captured."""
import subprocess
import threading
import time

from bench import cost
from chalicelib.storage.timestream import metering
from chalicelib.protocol import codec
from harness.processes import ROOT, free_port
from harness.remote import post, write_request


def body(n: int = 50) -> bytes:
    now = int(time.time() * 1000)
    return codec.encode_message(write_request(*[
        ({"__name__": "node_load1", "job": "node", "instance": f"10.0.0.{i}:9100"}, [(now, 1.0)])
        for i in range(n)]))


def test_make_cost_reads_captured_payloads(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"body{i}"
        path.write_bytes(body())
        paths.append(str(path))
    result = subprocess.run(["make", "-s", "cost", "COST_SECONDS=10",
                             f"COST_PAYLOADS={' '.join(paths)}"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "3 requests, 150 samples in 10 s: 15.0 samples/s" in result.stdout
    assert "this connector" in result.stdout and "Go connector" in result.stdout
    assert metering.PRICE_DATE in result.stdout


def test_listening_counts_what_a_sender_writes_and_prices_it():
    port = free_port()
    bodies = []
    listener = threading.Thread(target=lambda: bodies.extend(cost.listen(port, 2)))
    listener.start()
    time.sleep(0.5)
    assert post(f"http://127.0.0.1:{port}/write", body(), {})[0] == 204
    listener.join()
    text = cost.report(bodies, 2)
    assert "1 requests, 50 samples in 2 s: 25.0 samples/s" in text
    go_units = metering.go_units(cost.series_of(bodies[0]))
    go_month = go_units / 2 * 30 * 86_400
    assert f"{go_month:16,.0f} {metering.monthly_price(go_units / 2):12,.2f}" in text
