"""Fixtures shared by every test, and the engines the suite runs against."""
import shutil

import pytest

from harness.remote import HEADERS

#: Real engines the suite runs (command -> the Debian package that has it).
ENGINES = {"prometheus": "prometheus", "promtool": "prometheus", "influxd": "influxdb",
           "java": "openjdk-17-jre-headless"}


def pytest_sessionstart(session):
    """Stop at once, saying how to install them, if an engine the tests need is missing:
    a suite that skips what it cannot run would pass without proving anything."""
    missing = sorted({package for command, package in ENGINES.items()
                      if shutil.which(command) is None})
    if missing:
        pytest.exit("the tests run real engines that are not installed: "
                    f"apt-get install -y --no-install-recommends {' '.join(missing)} "
                    "(what .ci/run does), then run make test again", returncode=4)


@pytest.fixture
def headers():
    return dict(HEADERS)


@pytest.fixture(autouse=True)
def aws_test_credentials(monkeypatch):
    """Fake credentials so nothing in the tests can reach a real AWS account."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="session")
def influx_server():
    """One real influxd (Debian's 1.6.7) for the session; tests use their own databases."""
    from harness.influxd import InfluxServer
    server = InfluxServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "timestream", "influxdb"])
def store(request, tmp_path):
    """Every storage backend, each fresh (the contract suite runs against all)."""
    if request.param == "influxdb":
        from harness.influxd import fresh_store
        yield fresh_store(request.getfixturevalue("influx_server"))
        return
    if request.param == "sqlite":
        from chalicelib.storage.sqlite import SQLiteStore
        yield SQLiteStore(str(tmp_path / "data"))
        return
    from harness.timestream.env import timestream_env
    with timestream_env(magnetic_writes=True) as env:  # the contract writes 1970 times
        yield env.store
