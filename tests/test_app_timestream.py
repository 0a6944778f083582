"""The routes on the Timestream backend (moto): auth, status codes, no secrets in logs."""
import base64
import dataclasses
import logging

import boto3
import pytest
from chalice.test import Client
from moto import mock_aws

import app as app_module
from chalicelib import codec, stores
from chalicelib.storage import timestream
from tests.conftest import HEADERS, write_request
from tests.faults import FaultInjector

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"AKIDEXAMPLE:{SECRET}".encode()).decode()}


@pytest.fixture
def client(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(timestream.time, "sleep", lambda s: None)
    settings = dataclasses.replace(app_module.SETTINGS, backend="timestream", auth_mode="basic",
                                   region="us-east-1", endpoint_url=None,
                                   request_deadline_seconds=1.0)
    monkeypatch.setattr(app_module, "SETTINGS", settings)
    monkeypatch.setattr(stores, "_timestream", type(stores._timestream)())
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


def test_no_credentials_is_401_with_challenge(client):
    response = write(client, write_request(), headers=HEADERS)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert b"basic_auth" in response.body


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
    store = stores.store_for_request(app_module.SETTINGS, AUTH).store
    FaultInjector(store.write_client, "WriteRecords", [(400, "ThrottlingException")] * 100)
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


def test_refused_credentials_are_401_and_denied_access_403(client):
    store = stores.store_for_request(app_module.SETTINGS, AUTH).store
    FaultInjector(store.write_client, "WriteRecords",
                  [(400, "UnrecognizedClientException"), (400, "AccessDeniedException")])
    request = write_request(({"__name__": "up"}, [(now_ms(), 1.0)]))
    assert write(client, request).status_code == 401
    assert write(client, request).status_code == 403
