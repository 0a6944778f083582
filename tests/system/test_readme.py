"""The README's Prometheus configuration is valid as pasted (promtool) and points at `make run`."""
import base64
import os
import re
import subprocess
import time


from chalicelib.protocol import codec
from harness.processes import ROOT, Process, free_port, wait_for_port
from harness.remote import post, write_request


def yaml_blocks():
    with open(os.path.join(ROOT, "README.md")) as handle:
        return re.findall(r"```yaml\n(.*?)```", handle.read(), re.S)


def test_readme_has_the_two_commands():
    with open(os.path.join(ROOT, "README.md")) as handle:
        text = handle.read()
    assert "make run" in text and "make test" in text


def test_quick_start_config_is_valid_and_targets_make_run(tmp_path):
    config = next(block for block in yaml_blocks() if block.startswith("global:"))
    assert "url: http://127.0.0.1:8000/write" in config
    assert "url: http://127.0.0.1:8000/read" in config and "read_recent: true" in config
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    result = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def sh_blocks_after(heading: str):
    with open(os.path.join(ROOT, "README.md")) as handle:
        text = handle.read()
    section = text[text.index(heading):]
    section = section[:section.index("\n## ")]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def test_moto_walkthrough_as_written_shows_the_writes_arriving(tmp_path):
    """The README's "Try the Timestream backend without AWS" commands, ports made free."""
    serve, check = sh_blocks_after("### Try the Timestream backend without AWS")
    moto_port, port = free_port(), free_port()

    def ported(script: str) -> str:
        return script.replace("5000", str(moto_port)).replace("8000", str(port))

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    script = tmp_path / "serve.sh"
    script.write_text("set -e\n" + ported(serve))
    with Process(["bash", str(script)], str(tmp_path / "serve.log"), env=env) as server:
        wait_for_port(port, server.proc, timeout=120)

        def stored() -> str:
            result = subprocess.run(["bash", "-c", ported(check)], cwd=ROOT, env=env, text=True,
                                    capture_output=True, timeout=60)
            assert result.returncode == 0, result.stderr
            return result.stdout

        assert stored().startswith("PrometheusMetricsTable 0 records; last: []")
        now_ms = int(time.time() * 1000)
        request = write_request(({"__name__": "arrived", "job": "readme"}, [(now_ms, 1.5)]))
        auth = base64.b64encode(b"AKIDEXAMPLE:secret").decode()
        status, _, body = post(f"http://127.0.0.1:{port}/write", codec.encode_message(request),
                               {"Content-Type": "application/x-protobuf",
                                "Content-Encoding": "snappy", "Authorization": f"Basic {auth}"})
        assert status == 204, (body, server.log())
        shown = stored()
        # One sample: the measure name, dimensions and time all go in CommonAttributes,
        # which moto does not keep (as the README says); the value is the record's own.
        assert shown.startswith("PrometheusMetricsTable 1 records; last: [{") and \
            "'1.5'" in shown, shown
