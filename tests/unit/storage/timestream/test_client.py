"""The Timestream clients' calls: which failures are retried, how (backoff within the
request deadline), and how AWS's errors map to the connector's."""
import struct

import pytest

from chalicelib import retry
from chalicelib.errors import (BackendError, BackendUnavailable,
                               CredentialsFailed)
from chalicelib.model import Series
from chalicelib.protocol.labels import validate_labels
from chalicelib.storage.timestream import client as timestream
from harness.timestream.env import NOW_MS
from harness.timestream.faults import FaultInjector
from tests.support import context

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]





def series(labels, samples):
    return Series(validate_labels(tuple(sorted(labels.items()))), [t for t, _ in samples],
                  [v for _, v in samples])


def test_connection_errors_are_retried(env, monkeypatch):
    from botocore.exceptions import EndpointConnectionError
    original = env.write_client.write_records
    failures = [EndpointConnectionError(endpoint_url="http://x")]

    def flaky(**kwargs):
        if failures:
            raise failures.pop()
        return original(**kwargs)
    monkeypatch.setattr(env.write_client, "write_records", flaky)
    assert env.store.write([series({"__name__": "m"}, [(NOW_MS, 1.0)])], context()).stored == 1
    assert len(env.wire.records()) == 1


@pytest.mark.parametrize("status,code,error,message", [
    (404, "ResourceNotFoundException", BackendError,
     "PrometheusDatabase.PrometheusMetricsTable does not exist"),
    (403, "AccessDeniedException", CredentialsFailed, "access denied"),
    (400, "UnrecognizedClientException", CredentialsFailed, "refused the credentials"),
    (403, "InvalidSignatureException", CredentialsFailed, "refused the credentials"),
    (400, "ExpiredTokenException", CredentialsFailed, "refused the credentials"),
])
def test_configuration_and_credential_errors_on_write_are_5xx(env, status, code, error,
                                                              message):
    """Prometheus drops a batch answered 4xx: refused credentials must not lose samples."""
    FaultInjector(env.write_client, "WriteRecords", [(status, code)])
    with pytest.raises(error, match=message) as raised:
        env.store.write([series({"__name__": "m"}, [(NOW_MS, 1.0)])], context())
    assert raised.value.status == 500


def test_a_retry_starts_only_if_another_call_fits_before_the_deadline():
    from botocore.exceptions import ClientError
    calls = []

    def throttled():
        calls.append(1)
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "WriteRecords")
    with pytest.raises(BackendUnavailable, match="after 1 attempts"):
        timestream.with_retries(throttled, timestream.Deadline(5), "x", attempt_seconds=7)
    assert len(calls) == 1
    calls.clear()
    with pytest.raises(BackendUnavailable):
        timestream.with_retries(throttled, timestream.Deadline(7.5), "x", attempt_seconds=7)
    assert len(calls) >= 2


def test_an_unreachable_endpoint_is_503_blaming_the_endpoint_not_the_table(env, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    def down(**kwargs):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:9")
    env.store.table_facts(timestream.Deadline(60))
    monkeypatch.setattr(env.write_client, "write_records", down)
    with pytest.raises(BackendUnavailable) as raised:
        env.store.write([series({"__name__": "m"}, [(NOW_MS, 1.0)])], context(deadline_seconds=8.0))
    assert "cannot reach Timestream at http://127.0.0.1:9" in str(raised.value)
    assert "PrometheusMetricsTable" not in str(raised.value)


def throttled_then(result, failures: int, code="ThrottlingException", status=400):
    """A call failing ``failures`` times with ``code``, then answering ``result``."""
    from botocore.exceptions import ClientError
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= failures:
            raise ClientError({"Error": {"Code": code, "Message": "m"},
                               "ResponseMetadata": {"HTTPStatusCode": status}}, "WriteRecords")
        return result
    return call, calls


@pytest.mark.parametrize("jitter,delays", [
    (0.0, [0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]),
    (0.999999, [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]),
])
def test_retries_back_off_exponentially_with_jitter_up_to_2_seconds(monkeypatch, caplog, jitter,
                                                                     delays):
    caplog.set_level("INFO")
    slept = []
    monkeypatch.setattr(retry, "sleep", slept.append)
    monkeypatch.setattr(retry.random, "random", lambda: jitter)
    call, calls = throttled_then("done", 8)
    assert timestream.with_retries(call, timestream.Deadline(60), "t", attempt_seconds=7) == "done"
    assert len(calls) == 9
    assert slept == pytest.approx(delays, rel=1e-5)
    retries = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert retries[0] == "retrying t after ThrottlingException (attempt 1)"
    assert retries[7] == "retrying t after ThrottlingException (attempt 8)" and len(retries) == 8


def test_a_retry_starts_when_the_backoff_and_one_more_call_fit_exactly(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    monkeypatch.setattr(retry.random, "random", lambda: 1.0)  # backoff 0.05 s
    call, calls = throttled_then("done", 1)
    assert timestream.with_retries(call, timestream.Deadline(8.0), "t",
                                   attempt_seconds=7.95) == "done"
    call, calls = throttled_then("done", 1)
    with pytest.raises(BackendUnavailable, match="t still failing after 1 attempts "
                                                 r"\(ThrottlingException\); retry later"):
        timestream.with_retries(call, timestream.Deadline(8.0), "t", attempt_seconds=7.96)


@pytest.mark.parametrize("status,code", [(500, "SomethingNew"), (502, ""), (400, "RequestTimeout"),
                                         (400, "InternalFailure")])
def test_server_errors_and_transient_codes_are_retried(status, code):
    call, calls = throttled_then("done", 2, code, status)
    assert timestream.with_retries(call, timestream.Deadline(60), "t", attempt_seconds=7) == "done"
    assert len(calls) == 3


def test_a_server_error_without_a_code_is_named_by_its_status():
    call, calls = throttled_then("done", 10 ** 6, "", 502)
    with pytest.raises(BackendUnavailable, match=r"\(HTTP 502\)"):
        timestream.with_retries(call, timestream.Deadline(7.5), "t", attempt_seconds=7)


def test_a_client_error_below_500_is_not_retried():
    call, calls = throttled_then("done", 1, "SomethingNew", 499)
    with pytest.raises(BackendError, match=r"Timestream refused the request to t \(SomethingNew\)"):
        timestream.with_retries(call, timestream.Deadline(60), "t", attempt_seconds=7)
    assert len(calls) == 1


def test_a_botocore_failure_that_is_no_connection_error_is_500_at_once():
    from botocore.exceptions import NoCredentialsError
    calls = []

    def call():
        calls.append(1)
        raise NoCredentialsError()
    with pytest.raises(BackendError, match="calling Timestream for t failed: Unable to locate "
                                           "credentials"):
        timestream.with_retries(call, timestream.Deadline(60), "t", attempt_seconds=7)
    assert len(calls) == 1


def test_the_clients_never_retry_on_their_own_and_validate_nothing_locally():
    """The store retries within the request deadline; botocore must not retry inside a call
    (its retries would outlast the deadline) nor spend CPU validating what Timestream checks."""
    from chalicelib.storage.timestream.client import client_config
    config = client_config(8, 5)
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert config.max_pool_connections == 16  # two connections per write thread
    assert config.parameter_validation is False
    assert (config.connect_timeout, config.read_timeout) == (2, 5)
    assert client_config(3, 4.5).max_pool_connections == 6
    assert client_config(3, 4.5).read_timeout == 4.5


def test_a_missing_table_named_by_the_code_as_it_arrives_on_the_wire():
    """The code is compared by value: one parsed from a response is a new string object."""
    from botocore.exceptions import ClientError

    from chalicelib.storage.timestream.client import error_for
    code = "".join(["ResourceNotFound", "Exception"])
    error = error_for(ClientError({"Error": {"Code": code, "Message": "no table"}}, "WriteRecords"),
                      "Timestream table d.t")
    assert isinstance(error, BackendError)
    assert str(error).startswith("Timestream table d.t does not exist (no table): create it")


def test_a_throttled_call_reaches_timestream_once(monkeypatch):
    """botocore's own retry count excludes the first call: only ``total_max_attempts`` of 1
    leaves every retry to the store (over HTTP, on the emulated ingest endpoint)."""
    import boto3
    from chalicelib.storage.timestream.client import client_config
    from harness.timestream.env import DATABASE, TABLE, install_sql_functions
    from harness.timestream.query_service import QueryService
    from harness.timestream.server import TimestreamServer
    from harness.timestream.write_rules import WriteRules
    rules = WriteRules()
    server = TimestreamServer(DATABASE, TABLE, rules,
                              QueryService(DATABASE, TABLE, rules.records, install_sql_functions),
                              describe_throttled=True)
    try:
        client = boto3.client("timestream-write", region_name="us-east-1",
                              endpoint_url=server.ingest_url, aws_access_key_id="AKID",
                              aws_secret_access_key="secret", config=client_config(1, 5))
        with pytest.raises(Exception, match="ThrottlingException"):
            client.describe_table(DatabaseName=DATABASE, TableName=TABLE)
        assert server.count("DescribeTable") == 1
    finally:
        server.stop()
