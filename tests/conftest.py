import os

import pytest

from chalicelib.protocol.prompb import remote_pb2

HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"}


def write_request(*series) -> remote_pb2.WriteRequest:
    """A WriteRequest from (labels dict, [(timestamp, value), ...]) pairs."""
    request = remote_pb2.WriteRequest()
    for labels, samples in series:
        ts = request.timeseries.add()
        for name, value in sorted(labels.items()):
            ts.labels.add(name=name, value=value)
        for timestamp, value in samples:
            ts.samples.add(timestamp=timestamp, value=value)
    return request


def read_request(*queries) -> remote_pb2.ReadRequest:
    """A ReadRequest from (start, end, [(type, name, value), ...]) triples."""
    request = remote_pb2.ReadRequest()
    for start, end, matchers in queries:
        query = request.queries.add(start_timestamp_ms=start, end_timestamp_ms=end)
        for type_, name, value in matchers:
            query.matchers.add(type=type_, name=name, value=value)
    return request


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
    from tests.influx_env import INFLUXD, InfluxServer
    if INFLUXD is None and not os.environ.get("CI"):
        pytest.skip("needs influxd (apt-get install influxdb); required in CI")
    server = InfluxServer()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "timestream", "influxdb"])
def store(request, tmp_path):
    """Every storage backend, each fresh (the contract suite runs against all)."""
    if request.param == "influxdb":
        from tests.influx_env import fresh_store
        yield fresh_store(request.getfixturevalue("influx_server"))
        return
    if request.param == "sqlite":
        from chalicelib.storage.sqlite import SQLiteStore
        yield SQLiteStore(str(tmp_path / "data"))
        return
    from tests.timestream_env import timestream_env
    with timestream_env(magnetic_writes=True) as env:  # the contract writes 1970 times
        yield env.store
