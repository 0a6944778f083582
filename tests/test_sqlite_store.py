"""The embedded store's own guarantees beyond the contract: its series index is
bounded in bytes, and series kept on disk behave exactly like the others."""
from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series
from chalicelib.storage.sqlite import SQLiteStore

BIG = "x" * 40_000


def labels(i, big=False):
    pairs = [("__name__", "m"), ("i", f"{i:04d}")] + ([("big", BIG)] if big else [])
    return tuple(sorted(pairs))


def query(*matchers):
    return Query(0, 10_000, tuple(Matcher.of(*m) for m in matchers))


def test_index_stays_within_its_byte_bound_and_every_series_reads_back(tmp_path):
    store = SQLiteStore(str(tmp_path), index_max_bytes=200_000, index_entry_max_bytes=1000)
    written = [Series(labels(i, big=i % 7 == 0), [i, i + 1], [float(i), float(i)])
               for i in range(400)]
    for start in range(0, 400, 50):
        store.write(written[start:start + 50])
    index = store._index
    assert index.bytes <= 200_000 and index.on_disk  # some kept on disk, by digest
    assert all(len(l) < 10 for l in index.labels.values())  # no big label set in memory
    got = store.read(query((0, "__name__", "m")), 10_000)
    assert [(s.labels, list(s.timestamps), list(s.values)) for s in got] == \
        [(s.labels, list(s.timestamps), list(s.values))
         for s in sorted(written, key=lambda s: s.labels)]
    # Rewrites of series kept on disk reuse their id; matchers see their labels.
    store.write([Series(labels(0, big=True), [50], [0.0]), Series(labels(398), [50], [398.0])])
    again = store.read(query((0, "big", BIG)), 10_000)
    assert [s.labels for s in again] == [labels(i, big=True) for i in range(0, 400, 7)]
    assert list(again[0].timestamps) == [0, 1, 50]
    assert [dict(s.labels)["i"] for s in store.read(query((2, "i", "038(5|8)")), 10)] == \
        ["0385", "0388"]  # 385 is kept on disk: its "big" label sorts it first
    assert list(store.read(query((0, "i", "0398")), 10)[0].timestamps) == [50, 398, 399]
    # A new process sees the same.
    reopened = SQLiteStore(str(tmp_path), index_max_bytes=200_000, index_entry_max_bytes=1000)
    assert len(reopened.read(query((0, "__name__", "m")), 10_000)) == 400
    assert reopened._index.bytes <= 200_000


def test_lock_timeout_leaves_nothing_behind_and_says_busy(tmp_path):
    import sqlite3

    import pytest

    from chalicelib.errors import BackendUnavailable
    store = SQLiteStore(str(tmp_path), lock_timeout=0.2)
    store.write([Series(labels(1), [1], [1.0])])
    other = sqlite3.connect(store.path, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(BackendUnavailable, match="embedded store busy: another writer held"):
        store.write([Series(labels(2), [2], [2.0]), Series(labels(1), [3], [1.0])])
    other.execute("INSERT INTO series (name, labels) VALUES ('m', '[[\"__name__\",\"other\"]]')")
    other.execute("COMMIT")
    other.close()
    # The retry gets fresh ids: series 2 is not filed under the other writer's new series.
    store.write([Series(labels(2), [2], [2.0]), Series(labels(1), [3], [1.0])])
    got = {dict(s.labels)["i"]: list(s.values) for s in store.read(query((0, "__name__", "m")), 9)}
    assert got == {"0001": [1.0, 1.0], "0002": [2.0]}
    assert [list(s.values) for s in store.read(query((0, "__name__", "other")), 9)] == []
