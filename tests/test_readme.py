"""The README's Prometheus configuration is valid as pasted (promtool) and points at `make run`."""
import os
import re
import shutil
import subprocess

import pytest

from tests.support import ROOT


def yaml_blocks():
    with open(os.path.join(ROOT, "README.md")) as handle:
        return re.findall(r"```yaml\n(.*?)```", handle.read(), re.S)


def test_readme_has_the_two_commands():
    with open(os.path.join(ROOT, "README.md")) as handle:
        text = handle.read()
    assert "make run" in text and "make test" in text


@pytest.mark.skipif(shutil.which("promtool") is None and not os.environ.get("CI"),
                    reason="needs promtool (apt-get install prometheus)")
def test_quick_start_config_is_valid_and_targets_make_run(tmp_path):
    config = next(block for block in yaml_blocks() if block.startswith("global:"))
    assert "url: http://127.0.0.1:8000/write" in config
    assert "url: http://127.0.0.1:8000/read" in config and "read_recent: true" in config
    path = tmp_path / "prometheus.yml"
    path.write_text(config)
    result = subprocess.run(["promtool", "check", "config", str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
