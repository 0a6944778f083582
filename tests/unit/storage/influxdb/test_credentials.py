"""Credentials for InfluxDB on a real influxd with authentication on: the connector's own
(environment or an AWS Secrets Manager secret, on moto) or Prometheus's, passed through."""
import base64
import json
import logging

import boto3
import pytest
from moto import mock_aws

from chalicelib import storage as stores
from chalicelib.caches import LeastRecentlyUsed
from chalicelib.config import Settings
from chalicelib.errors import BackendError, Forbidden, Unauthorized
from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series
from chalicelib.storage import influxdb
from chalicelib.storage.influxdb.credentials import (InfluxCredentials, SecretCache,
                                                     from_secret_string)
from harness.influxd import InfluxServer
from tests.support import context

PASSWORD = "admin-secret"
SAMPLE = [Series((("__name__", "m"),), [1], [1.0])]


@pytest.fixture(scope="module")
def secured():
    server = InfluxServer(auth=True)
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def fresh_caches(monkeypatch):
    monkeypatch.setattr(influxdb, "_SECRETS", SecretCache())
    monkeypatch.setattr(influxdb, "_STORES", LeastRecentlyUsed(32))


def settings(server, **env):
    return Settings.from_env({"STORAGE_BACKEND": "influxdb", "INFLUXDB_URL": server.url,
                              "INFLUXDB_DATABASE": "creds", "AWS_DEFAULT_REGION": "us-east-1",
                              **env})


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_role_is_the_default_and_uses_the_environment(secured):
    config = settings(secured, INFLUXDB_USERNAME="admin", INFLUXDB_PASSWORD=PASSWORD)
    assert config.auth_mode == "role" and PASSWORD not in repr(config)
    assert stores.store_for_request(config, {}).write(SAMPLE, context()).stored == 1


def test_wrong_password_is_a_clear_5xx_that_never_shows_the_password(secured, caplog):
    caplog.set_level(logging.DEBUG, logger="chalicelib")
    config = settings(secured, INFLUXDB_USERNAME="admin", INFLUXDB_PASSWORD="wrong-pass")
    with pytest.raises(BackendError) as raised:
        stores.store_for_request(config, {}).write(SAMPLE, context())
    message = str(raised.value)
    assert raised.value.status == 500  # Prometheus keeps the data and retries
    assert "refused the connector's credentials (INFLUXDB_USERNAME/INFLUXDB_PASSWORD)" in message
    assert "wrong-pass" not in message + caplog.text


def test_basic_auth_from_prometheus_is_passed_through(secured):
    config = settings(secured, AUTH_MODE="basic")
    assert stores.store_for_request(config, basic("admin", PASSWORD)).write(SAMPLE, context()).stored == 1
    refused = stores.store_for_request(config, basic("admin", "nope"))
    with pytest.raises(Unauthorized, match="refused the credentials in Prometheus's basic_auth"):
        refused.write(SAMPLE, context())
    with pytest.raises(Unauthorized, match="for query"):
        list(refused.read(Query(0, 10, (Matcher.of(0, "__name__", "m"),)), context(10)))
    with pytest.raises(Unauthorized, match="configure basic_auth"):
        stores.store_for_request(config, {})


@mock_aws
def test_secret_is_kept_between_requests(secured):
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="InfluxDB-auth-parameters-abc", SecretString=json.dumps(
        {"engine": "timestream-influxdb", "username": "admin", "password": PASSWORD,
         "dbIdentifier": "abc"}))["ARN"]
    config = settings(secured, INFLUXDB_SECRET_ARN=arn)
    assert stores.store_for_request(config, {}).write(SAMPLE, context()).stored == 1
    client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    other = settings(secured, INFLUXDB_SECRET_ARN=arn, INFLUXDB_DATABASE="creds2")
    assert stores.store_for_request(other, {}).write(SAMPLE, context()).stored == 1  # cached


@mock_aws
def test_missing_secret_says_which_and_what_to_set(secured):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:absent-AbCdEf"
    with pytest.raises(BackendError, match="secret .*absent-AbCdEf does not exist: set "
                                           "INFLUXDB_SECRET_ARN"):
        stores.store_for_request(settings(secured, INFLUXDB_SECRET_ARN=arn), {})


@mock_aws
def test_wrong_password_in_the_secret_names_the_secret(secured, caplog):
    caplog.set_level(logging.DEBUG, logger="chalicelib")
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="influx", SecretString=json.dumps(
        {"engine": "timestream-influxdb", "username": "admin", "password": "stale-pass"}))["ARN"]
    with pytest.raises(BackendError, match=f"credentials \\(secret {arn}\\)") as raised:
        stores.store_for_request(settings(secured, INFLUXDB_SECRET_ARN=arn), {}).write(SAMPLE, context())
    assert "stale-pass" not in str(raised.value) + caplog.text


def test_secret_shapes():
    token = from_secret_string('{"engine": "timestream-influxdb", "token": "t0k"}', "arn")
    assert token.headers() == {"Authorization": "Token t0k"} and "t0k" not in repr(token)
    user = from_secret_string('{"username": "u", "password": "p"}', "arn")
    assert user.headers() == {"Authorization": "Basic dTpw"}
    for bad in ("not json", "[]", '{"username": "u"}'):
        with pytest.raises(BackendError, match="secret arn"):
            from_secret_string(bad, "arn")
    assert InfluxCredentials().headers() == {}


def test_a_user_without_write_rights_is_forbidden(secured):
    secured.query('CREATE DATABASE "creds"')
    secured.query("CREATE USER reader WITH PASSWORD 'r-pass'")
    secured.query('GRANT READ ON "creds" TO reader')
    config = settings(secured, AUTH_MODE="basic")
    store = stores.store_for_request(config, basic("reader", "r-pass"))
    with pytest.raises(Forbidden, match="HTTP 403"):
        store.write(SAMPLE, context())
    assert list(store.read(Query(0, 10, (Matcher.of(0, "__name__", "m"),)), context(10))) is not None
    role = settings(secured, INFLUXDB_USERNAME="reader", INFLUXDB_PASSWORD="r-pass")
    with pytest.raises(BackendError, match="refused the connector's credentials .*HTTP 403"):
        stores.store_for_request(role, {}).write(SAMPLE, context())


@mock_aws
def test_a_rotated_password_is_picked_up_after_the_first_refusal(secured):
    """Secrets Manager rotation: InfluxDB refuses the password the connector holds; that
    request is a 500 (Prometheus keeps the samples) and the next one fetches the new secret."""
    secured.query("CREATE USER rotating WITH PASSWORD 'old-pass' WITH ALL PRIVILEGES")
    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="rotating", SecretString=json.dumps(
        {"engine": "timestream-influxdb", "username": "rotating", "password": "old-pass"}))["ARN"]
    config = settings(secured, INFLUXDB_SECRET_ARN=arn)
    assert stores.store_for_request(config, {}).write(SAMPLE, context()).stored == 1
    secured.query("SET PASSWORD FOR rotating = 'new-pass'")
    client.put_secret_value(SecretId=arn, SecretString=json.dumps(
        {"engine": "timestream-influxdb", "username": "rotating", "password": "new-pass"}))
    with pytest.raises(BackendError, match="refused the connector's credentials"):
        stores.store_for_request(config, {}).write(SAMPLE, context())
    assert stores.store_for_request(config, {}).write(SAMPLE, context()).stored == 1


def test_a_secret_is_fetched_again_once_it_is_five_minutes_old(monkeypatch):
    from chalicelib.storage.influxdb import credentials
    clock = [1000.0]
    monkeypatch.setattr(credentials.time, "monotonic", lambda: clock[0])
    fetched = []

    def fetch(arn, client):
        fetched.append(arn)
        return InfluxCredentials("u", f"p{len(fetched)}", origin="test")
    monkeypatch.setattr(credentials, "fetch_secret", fetch)
    cache = credentials.SecretCache()
    assert cache.get("arn", lambda: None).password == "p1"
    clock[0] += 299.9
    assert cache.get("arn", lambda: None).password == "p1"
    clock[0] += 0.1
    assert cache.get("arn", lambda: None).password == "p2"
    cache.forget("arn")
    assert cache.get("arn", lambda: None).password == "p3"
    cache.forget("unknown")  # nothing to forget: no error
    assert fetched == ["arn", "arn", "arn"]
