"""Per-request store selection and the bounded per-credential cache."""
import dataclasses

from chalicelib import stores
from chalicelib.auth import Credentials
from chalicelib.config import Settings
from chalicelib.storage.timestream import TimestreamStore

SETTINGS = Settings(backend="timestream", region="us-east-1", endpoint_url="http://127.0.0.1:1")


def test_same_credentials_share_one_store_and_clients():
    a = stores.timestream_store(SETTINGS, Credentials("AKID", "s1"))
    assert stores.timestream_store(SETTINGS, Credentials("AKID", "s1")) is a
    assert stores.timestream_store(SETTINGS, Credentials("AKID", "s2")) is not a
    assert isinstance(a, TimestreamStore)
    assert a.write_client.meta.endpoint_url == "http://127.0.0.1:1"


def test_cache_is_bounded_and_keeps_no_secret_in_clear(monkeypatch):
    monkeypatch.setattr(stores, "MAX_CACHED_CREDENTIALS", 3)
    for i in range(10):
        stores.timestream_store(SETTINGS, Credentials("AKID", f"secret-{i}"))
    assert len(stores._timestream) == 3
    assert not any("secret-" in key for key in stores._timestream)


def test_role_mode_needs_no_credentials_in_the_request():
    settings = dataclasses.replace(SETTINGS, auth_mode="role")
    assert isinstance(stores.store_for_request(settings, {}).store, TimestreamStore)


def test_embedded_store_is_one_per_data_dir(tmp_path):
    settings = Settings(data_dir=str(tmp_path / "a"))
    assert stores.store_for_request(settings, {}) is stores.embedded_store(settings)
    other = dataclasses.replace(settings, data_dir=str(tmp_path / "b"))
    assert stores.embedded_store(other) is not stores.embedded_store(settings)
