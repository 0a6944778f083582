"""Per-request store selection and the bounded per-credential cache."""
import dataclasses

from chalicelib import storage as stores
from chalicelib.auth import Credentials
from chalicelib.caches import LeastRecentlyUsed
from chalicelib.config import Settings
from chalicelib.storage import timestream
from chalicelib.storage.timestream.store import TimestreamStore
from tests.support import context

SETTINGS = Settings(backend="timestream", region="us-east-1", endpoint_url="http://127.0.0.1:1")


def test_same_credentials_share_one_store_and_clients():
    a = timestream.store_for(SETTINGS, Credentials("AKID", "s1"))
    assert timestream.store_for(SETTINGS, Credentials("AKID", "s1")) is a
    assert timestream.store_for(SETTINGS, Credentials("AKID", "s2")) is not a
    assert isinstance(a, TimestreamStore)
    assert a.write_client.meta.endpoint_url == "http://127.0.0.1:1"


def test_cache_is_bounded_and_keeps_no_secret_in_clear(monkeypatch):
    monkeypatch.setattr(timestream, "_STORES", LeastRecentlyUsed(3))
    for i in range(10):
        timestream.store_for(SETTINGS, Credentials("AKID", f"secret-{i}"))
    assert len(timestream._STORES._entries) == 3
    assert not any("secret-" in key for key in timestream._STORES._entries)


def test_role_mode_needs_no_credentials_in_the_request():
    settings = dataclasses.replace(SETTINGS, auth_mode="role")
    assert isinstance(stores.store_for_request(settings, {}), TimestreamStore)


def test_embedded_store_is_one_per_data_dir(tmp_path):
    settings = Settings(data_dir=str(tmp_path / "a"))
    assert stores.store_for_request(settings, {}) is stores.embedded_store(settings)
    other = dataclasses.replace(settings, data_dir=str(tmp_path / "b"))
    assert stores.embedded_store(other) is not stores.embedded_store(settings)


def test_writes_hanging_with_one_key_do_not_hold_the_threads_of_another(monkeypatch):
    """8 requests whose calls hang (an unreachable endpoint, a key AWS is slow to refuse)
    must not delay a valid key's write: each credential has its own pool."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    import boto3
    from moto import mock_aws

    from chalicelib.model import Series
    with mock_aws():
        settings = dataclasses.replace(SETTINGS, endpoint_url=None, write_concurrency=2)
        admin = boto3.client("timestream-write", region_name="us-east-1")
        admin.create_database(DatabaseName=settings.database)
        admin.create_table(DatabaseName=settings.database, TableName=settings.table)
        release = threading.Event()
        stuck = timestream.store_for(settings, Credentials("AKIDSTUCK", "s"))
        stuck.write_client.meta.events.register(
            "before-call.timestream-write.WriteRecords", lambda **kwargs: release.wait(30) and None)
        good = timestream.store_for(settings, Credentials("AKIDGOOD", "s"))
        now = int(time.time() * 1000)
        batch = [Series((("__name__", "m"), ("i", str(i))), [now], [1.0]) for i in range(300)]
        with ThreadPoolExecutor(8) as requests:
            hanging = [requests.submit(stuck.write, batch, context()) for _ in range(8)]
            time.sleep(0.5)  # the stuck key's calls now hold its threads
            started = time.monotonic()
            assert good.write(batch, context()).stored == 300
            elapsed = time.monotonic() - started
            release.set()
            for future in hanging:
                future.result()
    assert elapsed < 10  # on one shared pool it waits for the stuck calls (30 s)


def test_ingest_and_query_each_have_their_own_endpoint():
    """Timestream serves ingest and query on separate endpoints (and VPC interface endpoints):
    each can be named; the one endpoint for both stays for emulators; none means discovery."""
    both = dataclasses.replace(SETTINGS, endpoint_url="http://emulator:1")
    split = dataclasses.replace(both, write_endpoint_url="https://ingest-cell1.example",
                                query_endpoint_url="https://query-cell1.example")
    store = timestream.store_for(split, Credentials("AKID", "split"))
    assert store.write_client.meta.endpoint_url == "https://ingest-cell1.example"
    assert store.reader.runner.client.meta.endpoint_url == "https://query-cell1.example"
    store = timestream.store_for(dataclasses.replace(both, query_endpoint_url="https://q.example"),
                                 Credentials("AKID", "query only"))
    assert store.write_client.meta.endpoint_url == "http://emulator:1"
    assert store.reader.runner.client.meta.endpoint_url == "https://q.example"
    discovered = timestream.store_for(dataclasses.replace(SETTINGS, endpoint_url=None),
                                      Credentials("AKID", "discovered"))
    assert discovered.write_client.meta.endpoint_url.startswith("https://ingest.timestream.")


def test_endpoints_come_from_their_own_variables():
    settings = Settings.from_env({"TIMESTREAM_ENDPOINT_URL": "http://e:1",
                                  "TIMESTREAM_WRITE_ENDPOINT_URL": "https://w",
                                  "TIMESTREAM_QUERY_ENDPOINT_URL": "https://q"})
    assert (settings.endpoint_url, settings.write_endpoint_url, settings.query_endpoint_url) == \
        ("http://e:1", "https://w", "https://q")
    assert Settings.from_env({}).write_endpoint_url is None
