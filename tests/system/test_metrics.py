"""The connector's own metrics, as the README shows them: a real Prometheus scrapes
`make run`'s /metrics (the README's scrape job) while another Prometheus writes through it;
the exposition is clean under `promtool check metrics`, and the counters add up."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from harness.processes import ROOT, Process, free_port, wait_for_port
from tests.support.prometheus import FixtureExporter, start_prometheus, writer_config


def readme_scrape_job(port: int) -> str:
    with open(os.path.join(ROOT, "README.md")) as handle:
        [block] = [b for b in re.findall(r"```yaml\n(.*?)```", handle.read(), re.S)
                   if "job_name: connector" in b]
    assert '"127.0.0.1:8000"' in block
    return block.replace('"127.0.0.1:8000"', f'"127.0.0.1:{port}"')


def scraped(prometheus_url: str, query: str) -> float:
    url = prometheus_url + "/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as response:
        result = json.load(response)["data"]["result"]
    return sum(float(item["value"][1]) for item in result)


def exposition(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        return response.read().decode()


def value(text: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def test_a_prometheus_scrapes_the_connector_while_another_writes_through_it(tmp_path):
    processes, exporter = [], FixtureExporter()
    try:
        port = free_port()
        env = dict(os.environ, PORT=str(port), DATA_DIR=str(tmp_path / "data"))
        connector = Process(["make", "--no-print-directory", "run", f"VENV={sys.prefix}"],
                            str(tmp_path / "connector.log"), env=env)
        processes.append(connector)
        wait_for_port(port, connector.proc, timeout=300)
        url = f"http://127.0.0.1:{port}"
        writer_port, scraper_port = free_port(), free_port()
        processes.append(start_prometheus(tmp_path, "writer", writer_port, writer_config(
            writer_port, exporter.port, url + "/write")))
        processes.append(start_prometheus(
            tmp_path, "scraper", scraper_port,
            "global: {scrape_interval: 1s}\n" + readme_scrape_job(port)))
        scraper = f"http://127.0.0.1:{scraper_port}"
        deadline = time.monotonic() + 120
        while scraped(scraper, "connector_samples_stored_total") < 100:
            assert time.monotonic() < deadline, connector.log()
            time.sleep(1)
        assert scraped(scraper, 'up{job="connector"}') == 1
        assert scraped(scraper, 'connector_requests_total{route="/write",code="204"}') >= 1
        assert scraped(scraper, 'connector_backend_calls_total{backend="embedded",'
                                'operation="write"}') >= 1

        text = exposition(url)
        check = subprocess.run(["promtool", "check", "metrics"], input=text,
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        received = value(text, "connector_samples_received_total")
        assert received > 0
        assert received == value(text, "connector_samples_stored_total") \
            + value(text, "connector_samples_rejected_total") \
            + value(text, "connector_samples_failed_total")
        # Bounded cardinality: no label from the written data.
        assert "fixture_" not in text and 'job="fixture"' not in text
    finally:
        for proc in reversed(processes):
            proc.stop()
        exporter.stop()
