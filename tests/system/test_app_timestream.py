"""The routes on the Timestream backend (moto): auth, status codes, no secrets in logs."""
import base64
import dataclasses
import logging

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

import app as app_module
from chalicelib import retry, storage as stores
from chalicelib.caches import LeastRecentlyUsed
from chalicelib.protocol import codec
from chalicelib.storage import timestream as timestream_backend
from harness.remote import HEADERS, read_request, write_request
from harness.timestream.env import WireLog
from harness.timestream.faults import FaultInjector
from harness.timestream.write_rules import WriteRules

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"AKIDEXAMPLE:{SECRET}".encode()).decode()}


@pytest.fixture
def client(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(retry, "sleep", lambda s: None)
    settings = dataclasses.replace(app_module.SETTINGS, backend="timestream", auth_mode="basic",
                                   region="us-east-1", endpoint_url=None,
                                   request_deadline_seconds=8.0)  # one 7-s call fits
    monkeypatch.setattr(app_module, "SETTINGS", settings)
    monkeypatch.setattr(timestream_backend, "_STORES", LeastRecentlyUsed(32))
    with mock_aws():
        admin = boto3.client("timestream-write", region_name="us-east-1")
        admin.create_database(DatabaseName=settings.database)
        admin.create_table(DatabaseName=settings.database, TableName=settings.table)
        with Client(app_module.app, stage_name="dev") as client:
            yield client
    assert SECRET not in caplog.text


def write(client, request, headers=None):
    headers = {**HEADERS, **AUTH} if headers is None else headers
    return client.http.post("/write", headers=headers, body=codec.encode_message(request))


def stored_records():
    from moto.timestreamwrite.models import timestreamwrite_backends
    backend = timestreamwrite_backends["123456789012"]["us-east-1"]
    return backend.databases["PrometheusDatabase"].tables["PrometheusMetricsTable"].records


def now_ms():
    import time
    return int(time.time() * 1000)


def read(client, headers):
    body = codec.encode_message(read_request((0, 1, [(0, "__name__", "up")])))
    return client.http.post("/read", headers=headers, body=body)


def test_no_credentials_is_500_on_write_so_prometheus_keeps_the_samples_and_401_on_read(
        client, caplog):
    response = write(client, write_request(({"__name__": "up"}, [(now_ms(), 1.0)])),
                     headers=HEADERS)
    assert response.status_code == 500
    assert b"basic_auth" in response.body
    assert any(r.levelname == "ERROR" and "basic_auth" in r.getMessage() for r in caplog.records)
    response = read(client, HEADERS)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("authorization,message", [
    ("Basic " + base64.b64encode("AKIDEXAMPLE:sécret".encode()).decode(), b"secret access key"),
    ("Basic " + base64.b64encode(b"AKIDEXAMPLE:secret\r\n").decode(), b"line breaks"),
    ("Basic " + base64.b64encode(b"AKID\nEXAMPLE:secret").decode(), b"access key id"),
    ("Basic c2Vj\u00e9cmV0", b"not base64"),
])
def test_a_malformed_authorization_header_is_refused_at_once_without_calling_aws(
        client, monkeypatch, authorization, message):
    monkeypatch.setattr(timestream_backend, "build",
                        lambda *args: pytest.fail("no store (no AWS call) for bad credentials"))
    headers = {**HEADERS, "Authorization": authorization}
    response = write(client, write_request(({"__name__": "up"}, [(now_ms(), 1.0)])), headers)
    assert response.status_code == 500 and message in response.body
    assert read(client, headers).status_code == 401


def test_a_series_without_labels_is_stored_through_the_route(client):
    store = stores.store_for_request(app_module.SETTINGS, AUTH)
    rules = WriteRules()
    WireLog(store.write_client, rules)
    request = write_request(({"__name__": "cluster:http_requests:rate5m"}, [(now_ms(), 1.0)]),
                            ({"__name__": "up", "job": "a"}, [(now_ms(), 1.0)]))
    response = write(client, request)
    assert response.status_code == 204, response.body
    assert sorted(r["MeasureName"] for r in rules.records()) == [
        "cluster:http_requests:rate5m", "up"]


def test_write_lands_as_records(client):
    response = write(client, write_request(({"__name__": "up", "job": "a"}, [(now_ms(), 1.0)])))
    assert response.status_code == 204, response.body
    assert [r["MeasureValue"] for r in stored_records()] == ["1.0"]


def test_invalid_samples_are_400_with_counts_after_valid_ones_are_written(client):
    request = write_request(({"__name__": "ok"}, [(now_ms(), 1.0)]),
                            ({"__name__": "bad", "x" * 61: "v"}, [(now_ms(), 2.0)]))
    response = write(client, request)
    assert response.status_code == 400
    assert response.body.decode().startswith("1 of 2 samples rejected (1 stored): bad{")
    assert len(stored_records()) == 1


def test_throttling_is_503_so_prometheus_retries(client):
    store = stores.store_for_request(app_module.SETTINGS, AUTH)
    FaultInjector(store.write_client, "WriteRecords", [(400, "ThrottlingException")] * 10 ** 6)
    response = write(client, write_request(({"__name__": "up"}, [(now_ms(), 1.0)])))
    assert response.status_code == 503
    assert b"ThrottlingException" in response.body


def test_missing_table_is_500_naming_what_to_create(client):
    boto3.client("timestream-write", region_name="us-east-1").delete_table(
        DatabaseName="PrometheusDatabase", TableName="PrometheusMetricsTable")
    response = write(client, write_request(({"__name__": "up"}, [(now_ms(), 1.0)])))
    assert response.status_code == 500
    assert b"PrometheusDatabase.PrometheusMetricsTable does not exist" in response.body
    assert b"create-table" in response.body


def test_refused_credentials_and_denied_access_on_write_are_500_logged_at_error(client, caplog):
    store = stores.store_for_request(app_module.SETTINGS, AUTH)
    FaultInjector(store.write_client, "WriteRecords",
                  [(400, "UnrecognizedClientException"), (400, "AccessDeniedException")])
    request = write_request(({"__name__": "up", "job": "a"}, [(now_ms(), 1.0)]))
    response = write(client, request)
    assert response.status_code == 500 and b"refused the credentials" in response.body
    response = write(client, request)
    assert response.status_code == 500 and b"access denied" in response.body
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("refused the credentials" in m for m in errors)
    assert any("access denied" in m for m in errors)


def test_refused_credentials_on_read_stay_401_and_denied_access_403(client, monkeypatch):
    monkeypatch.setattr(app_module, "SETTINGS", dataclasses.replace(  # a query call must fit
        app_module.SETTINGS, request_deadline_seconds=25.0))
    store = stores.store_for_request(app_module.SETTINGS, AUTH)
    FaultInjector(store.reader.runner.client, "Query",
                  [(400, "UnrecognizedClientException"), (400, "AccessDeniedException")])
    assert read(client, {**HEADERS, **AUTH}).status_code == 401
    assert read(client, {**HEADERS, **AUTH}).status_code == 403


def test_unknown_keys_are_refused_before_any_matcher_is_compiled(client, monkeypatch):
    """A small read of expensive regexes with made-up keys costs one refused AWS call, and
    no regex compilation; known keys are checked once."""
    from chalicelib import matchers as matchers_module
    monkeypatch.setattr(app_module, "SETTINGS", dataclasses.replace(
        app_module.SETTINGS, request_deadline_seconds=25.0))
    compiled = []
    compile_ = matchers_module.re2.compile
    monkeypatch.setattr(matchers_module.re2, "compile",
                        lambda *args: compiled.append(args) or compile_(*args))
    store = stores.store_for_request(app_module.SETTINGS, AUTH)
    queries = FaultInjector(store.reader.runner.client, "Query",
                            [(400, "UnrecognizedClientException")])
    body = codec.encode_message(read_request(
        (0, 1, [(0, "__name__", "up")] + [(3, "job", r"\pL{30}q%d" % i) for i in range(20)])))
    refused = client.http.post("/read", headers={**HEADERS, **AUTH}, body=body)
    assert refused.status_code == 401 and compiled == [] and queries.calls == 1
    answered = client.http.post("/read", headers={**HEADERS, **AUTH}, body=body)
    assert answered.status_code == 200 and len(compiled) == 20
    calls = queries.calls
    assert client.http.post("/read", headers={**HEADERS, **AUTH}, body=body).status_code == 200
    checks = queries.calls - calls
    assert checks == 1  # the read's own SHOW MEASURES: the keys were checked once, before
