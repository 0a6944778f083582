"""The embedded store's own guarantees beyond the contract: its series index is
bounded in bytes, and series kept on disk behave exactly like the others."""
import pytest

from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series
from chalicelib.storage.sqlite import SQLiteStore
from tests.support import context

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
        store.write(written[start:start + 50], context())
    index = store._index
    assert index.bytes <= 200_000 and index.on_disk  # some kept on disk, by digest
    assert all(len(l) < 10 for l in index.labels.values())  # no big label set in memory
    got = list(store.read(query((0, "__name__", "m")), context(10_000)))
    assert [(s.labels, list(s.timestamps), list(s.values)) for s in got] == \
        [(s.labels, list(s.timestamps), list(s.values))
         for s in sorted(written, key=lambda s: s.labels)]
    # Rewrites of series kept on disk reuse their id; matchers see their labels.
    store.write([Series(labels(0, big=True), [50], [0.0]), Series(labels(398), [50], [398.0])], context())
    again = list(store.read(query((0, "big", BIG)), context(10_000)))
    assert [s.labels for s in again] == [labels(i, big=True) for i in range(0, 400, 7)]
    assert list(again[0].timestamps) == [0, 1, 50]
    assert [dict(s.labels)["i"] for s in list(store.read(query((2, "i", "038(5|8)")), context(10)))] == \
        ["0385", "0388"]  # 385 is kept on disk: its "big" label sorts it first
    assert list(list(store.read(query((0, "i", "0398")), context(10)))[0].timestamps) == [50, 398, 399]
    # A new process sees the same.
    reopened = SQLiteStore(str(tmp_path), index_max_bytes=200_000, index_entry_max_bytes=1000)
    assert len(list(reopened.read(query((0, "__name__", "m")), context(10_000)))) == 400
    assert reopened._index.bytes <= 200_000


def test_lock_timeout_leaves_nothing_behind_and_says_busy(tmp_path):
    import sqlite3


    from chalicelib.errors import BackendUnavailable
    store = SQLiteStore(str(tmp_path), lock_timeout=0.2)
    store.write([Series(labels(1), [1], [1.0])], context())
    other = sqlite3.connect(store.path, isolation_level=None)  # another process's writer
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(BackendUnavailable, match="embedded store busy: another writer held"):
        store.write([Series(labels(2), [2], [2.0]), Series(labels(1), [3], [1.0])], context())
    other.execute("INSERT INTO series (name, labels) VALUES ('m', '[[\"__name__\",\"other\"]]')")
    other.execute("COMMIT")
    other.close()
    # The retry gets fresh ids: series 2 is not filed under the other writer's new series.
    store.write([Series(labels(2), [2], [2.0]), Series(labels(1), [3], [1.0])], context())
    got = {dict(s.labels)["i"]: list(s.values) for s in list(store.read(query((0, "__name__", "m")), context(9)))}
    assert got == {"0001": [1.0, 1.0], "0002": [2.0]}
    assert [list(s.values) for s in list(store.read(query((0, "__name__", "other")), context(9)))] == []


def test_reads_of_more_series_than_one_select_takes_return_each_once_in_label_order(tmp_path):
    """Series ids are read READ_CHUNK (500) at a time: 1001 series take three SELECTs,
    whether their labels are kept in memory or on disk."""
    for entry_max_bytes in (1000, 0):  # 0: every label set stays on disk
        store = SQLiteStore(str(tmp_path / str(entry_max_bytes)),
                            index_entry_max_bytes=entry_max_bytes)
        written = [Series(labels(i), [i, 5000 + i], [float(i), -float(i)])
                   for i in reversed(range(1001))]
        store.write(written, context())
        got = list(store.read(query((0, "__name__", "m")), context(10_000)))
        assert [(s.labels, list(s.timestamps), list(s.values)) for s in got] == \
            [(labels(i), [i, 5000 + i], [float(i), -float(i)]) for i in range(1001)]
        assert [dict(s.labels)["i"] for s in list(store.read(query((2, "i", "0(0|5|9)00")), context(10)))] \
            == ["0000", "0500", "0900"]


def test_a_series_longer_than_one_fetch_reads_back_whole(tmp_path):
    """Sample rows arrive FETCH_ROWS (8192) at a time; a series spanning several
    fetches, between two others, comes back whole and in order."""
    store = SQLiteStore(str(tmp_path))
    times = list(range(10_001))
    store.write([Series(labels(1), times, [float(t) for t in times]),
                 Series(labels(0), [5], [0.5]), Series(labels(2), [7, 9], [2.0, 2.5])], context())
    got = list(store.read(query((0, "__name__", "m")), context(100_000)))
    assert [(s.labels, len(s.timestamps)) for s in got] == \
        [(labels(0), 1), (labels(1), 10_001), (labels(2), 2)]
    assert list(got[1].timestamps) == times and list(got[1].values) == [float(t) for t in times]
    assert list(got[2].values) == [2.0, 2.5]


def test_a_write_failing_midway_stores_nothing_and_the_next_write_works(tmp_path):
    """A statement failing inside the write's transaction (here: a label set over
    SQLite's length limit) leaves SQLite's transaction open: it is rolled back, the
    client gets a 503 naming the cause, and the store takes the next write."""
    import sqlite3


    from chalicelib.errors import BackendUnavailable
    store = SQLiteStore(str(tmp_path))
    store.write([Series(labels(1), [1], [1.0])], context())
    store._conn().setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)
    with pytest.raises(BackendUnavailable) as caught:
        store.write([Series(labels(1), [2], [1.0]), Series(labels(2), [2], [2.0]),
                     Series(labels(3, big=True), [2], [3.0])], context())
    assert str(caught.value) == (
        f"embedded store failed on {store.path} [SQLITE_TOOBIG: string or blob too big]; "
        "nothing of this request was stored, retry later")
    assert caught.value.status == 503
    store.write([Series(labels(4), [4], [4.0])], context())
    got = {dict(s.labels)["i"]: list(s.timestamps)
           for s in list(store.read(query((0, "__name__", "m")), context(9)))}
    assert got == {"0001": [1], "0004": [4]}
    reopened = SQLiteStore(str(tmp_path))
    assert [list(s.timestamps) for s in list(reopened.read(query((0, "i", "0002")), context(9)))] == []


def test_a_full_disk_is_a_503_that_says_so_and_stores_nothing(tmp_path):

    from chalicelib.errors import BackendUnavailable
    store = SQLiteStore(str(tmp_path))
    store.write([Series(labels(1), [1], [1.0])], context())
    conn = store._conn()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 1}")  # the disk fills up
    batch = [Series(labels(i), list(range(100)), [1.0] * 100) for i in range(100)]
    with pytest.raises(BackendUnavailable) as caught:
        store.write(batch, context())
    assert str(caught.value) == (
        f"embedded store disk full: no space left for {store.path} [SQLITE_FULL: database "
        "or disk is full]; nothing of this request was stored, retry later")
    assert [list(s.timestamps) for s in list(store.read(query((0, "__name__", "m")), context(9)))] == [[1]]
    conn.execute("PRAGMA max_page_count = 1000000")  # space freed
    assert store.write(batch, context()).stored == 10_000
    assert len(list(store.read(query((0, "__name__", "m")), context(10_000)))) == 100


def test_an_io_error_is_a_503_that_names_the_likely_causes():
    import sqlite3

    from chalicelib.storage.sqlite import store_failure
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorname = "SQLITE_IOERR_WRITE"
    failure = store_failure(exc, "/data/prometheus.sqlite3")
    assert failure.status == 503
    assert str(failure) == (
        "embedded store I/O error writing /data/prometheus.sqlite3 (disk full, file size limit "
        "or failing disk?) [SQLITE_IOERR_WRITE: disk I/O error]; nothing of this request was "
        "stored, retry later")
    assert str(store_failure(sqlite3.OperationalError("locked"), "/d")) == (
        "embedded store failed on /d [OperationalError: locked]; nothing of this request "
        "was stored, retry later")


def test_the_index_fills_its_byte_budget_and_no_more(tmp_path):
    """Label sets are kept in memory while they fit the budget (each costs about three
    times its stored text), the rest stay on disk; the budget is used, not exceeded."""
    from chalicelib.storage.sqlite import labels_json
    store = SQLiteStore(str(tmp_path), index_max_bytes=60_000)
    written = [Series(tuple(sorted(labels(i) + (("pad", "p" * 500),))), [i], [float(i)])
               for i in range(100)]
    store.write(written, context())
    index = store._index
    in_memory = sum(len(labels_json(l)) for l in index.labels.values())
    assert 45_000 < 3 * in_memory <= 60_000 and index.bytes <= 60_000
    assert len(index.labels) + sum(map(len, index.on_disk.values())) == 100
    assert [s.labels for s in list(store.read(query((0, "__name__", "m")), context(1000)))] == \
        sorted(s.labels for s in written)


def test_a_read_exactly_at_the_byte_limit_is_answered_and_one_byte_less_refused(tmp_path):
    """Samples count against READ_BYTE_LIMIT as well as labels: the limit is the
    encoded size of the answer, upper estimate (``encoded_bytes``)."""

    from chalicelib.context import encoded_bytes
    from chalicelib.errors import ResponseTooLarge
    store = SQLiteStore(str(tmp_path))
    store.write([Series(labels(1), list(range(1000)), [1.0] * 1000),
                 Series(labels(2), [5, 6], [2.0, 3.0])], context())
    answer = list(store.read(query((0, "__name__", "m")), context(10_000)))
    size = encoded_bytes(answer)
    assert len(list(store.read(query((0, "__name__", "m")), context(1002, size)))) == 2
    with pytest.raises(ResponseTooLarge, match="more than 1001 samples"):
        list(store.read(query((0, "__name__", "m")), context(1001, size)))
    with pytest.raises(ResponseTooLarge, match=f"more than {size - 1} bytes"):
        list(store.read(query((0, "__name__", "m")), context(1002, size - 1)))


def test_a_label_set_exactly_at_the_entry_limit_stays_in_memory(tmp_path):
    from chalicelib.storage.sqlite import labels_json
    small, large = labels(1), tuple(sorted(labels(2) + (("pad", "p"),)))
    store = SQLiteStore(str(tmp_path), index_entry_max_bytes=len(labels_json(small)))
    assert len(labels_json(large)) > len(labels_json(small))
    store.write([Series(small, [1], [1.0]), Series(large, [2], [2.0])], context())
    assert list(store._index.labels.values()) == [small]
    assert [s.labels for s in list(store.read(query((0, "__name__", "m")), context(10)))] == [small, large]


def test_an_empty_write_stores_nothing(tmp_path):
    store = SQLiteStore(str(tmp_path))
    assert store.write([], context()).stored == 0
    assert list(store.read(query((2, "__name__", ".*")), context(10))) == []


def test_a_metric_name_matcher_decoded_from_a_request_selects_that_metric_only(tmp_path):
    """Names decoded from the wire are new strings (not the interned literal)."""
    from chalicelib.protocol.prompb import remote_pb2
    from harness.remote import read_request
    store = SQLiteStore(str(tmp_path))
    store.write([Series(labels(1), [1], [1.0]), Series((("__name__", "n"), ("i", "0001")), [1],
                                                       [2.0])], context())
    wire = remote_pb2.ReadRequest.FromString(
        read_request((0, 10, [(0, "__name__", "m"), (0, "i", "0001")])).SerializeToString())
    matchers = tuple(Matcher.of(m.type, m.name, m.value) for m in wire.queries[0].matchers)
    assert [s.labels for s in list(store.read(Query(0, 10, matchers), context(10)))] == [labels(1)]


def test_the_database_file_holds_labels_as_utf8_json_and_values_as_their_bits(tmp_path):
    """What is on disk, for anyone reading the file with sqlite3 (and for the files
    earlier versions wrote, which later ones must keep reading)."""
    import sqlite3
    import struct
    store = SQLiteStore(str(tmp_path))
    store.write([Series((("__name__", "m"), ("v", "\u00fc \u65e5\u672c \"q\"")), [7], [-0.5])], context())
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT name, labels FROM series").fetchall() == [
            ("m", '[["__name__", "m"], ["v", "\u00fc \u65e5\u672c \\"q\\""]]')]
        assert db.execute("SELECT t, v FROM samples").fetchall() == [
            (7, struct.unpack("<q", struct.pack("<d", -0.5))[0])]


def test_the_sample_limit_holds_across_fetches_of_many_series(tmp_path):
    """8193 one-sample series: rows arrive in two fetches; the limit counts every row."""

    from chalicelib.errors import ResponseTooLarge
    store = SQLiteStore(str(tmp_path))
    store.write([Series(labels(i), [1], [1.0]) for i in range(8193)], context())
    with pytest.raises(ResponseTooLarge, match="more than 8192 samples"):
        list(store.read(query((0, "__name__", "m")), context(8192, 1 << 40)))
    assert len(list(store.read(query((0, "__name__", "m")), context(8193, 1 << 40)))) \
        == 8193


def test_a_read_matching_names_never_holds_back_a_write(tmp_path, monkeypatch):
    """The index lock every write needs is not held while a read's matchers run."""
    import threading
    import time as clock

    from chalicelib.matchers import Matcher as MatcherClass
    store = SQLiteStore(str(tmp_path))
    store.write([Series(labels(i), [1], [1.0]) for i in range(3)], context())
    matching, release = threading.Event(), threading.Event()
    original = MatcherClass.matches_value

    def slow(self, value):
        matching.set()
        release.wait(10)
        return original(self, value)
    monkeypatch.setattr(MatcherClass, "matches_value", slow)
    reader = threading.Thread(target=lambda: list(store.read(query((2, "__name__", "m.*")),
                                                             context())))
    reader.start()
    try:
        assert matching.wait(5)
        started = clock.monotonic()
        assert store.write([Series(labels(9), [2], [2.0])], context()).stored == 1
        assert clock.monotonic() - started < 5  # not the 10 s the read is held for
    finally:
        release.set()
        reader.join(15)


def test_matching_names_stops_at_the_request_deadline(tmp_path, monkeypatch):
    import time as clock


    from chalicelib.errors import BackendUnavailable
    from chalicelib.matchers import Matcher as MatcherClass
    from chalicelib.storage import sqlite
    store = SQLiteStore(str(tmp_path))
    store.write([Series((("__name__", f"n{i}"),), [1], [1.0]) for i in range(40)], context())
    monkeypatch.setattr(sqlite, "NAMES_PER_DEADLINE_CHECK", 4)
    original = MatcherClass.matches_value
    monkeypatch.setattr(MatcherClass, "matches_value",
                        lambda self, value: clock.sleep(0.05) or original(self, value))
    with pytest.raises(BackendUnavailable, match="reading the embedded store did not finish"):
        list(store.read(query((2, "__name__", "n.*")), context(deadline_seconds=0.5)))


def test_series_kept_on_disk_are_read_only_for_the_names_a_query_selects(tmp_path, monkeypatch):
    """Label sets over the in-memory entry limit stay on disk, known by name: a query of
    another metric does not load (and parse) them."""
    from chalicelib.storage import sqlite
    store = SQLiteStore(str(tmp_path), index_entry_max_bytes=1000)
    store.write([Series((("__name__", "huge"), ("blob", "x" * 5000), ("i", str(i))), [1], [1.0])
                 for i in range(5)] + [Series((("__name__", "small"),), [1], [2.0])], context())
    parsed = []
    original = sqlite.parse_labels
    monkeypatch.setattr(sqlite, "parse_labels", lambda text: parsed.append(1) or original(text))
    assert [s.values[0] for s in store.read(query((0, "__name__", "small")), context())] == [2.0]
    assert parsed == []
    assert len(list(store.read(query((2, "__name__", "hu.*")), context()))) == 5
    assert len(parsed) == 5


def test_the_index_charges_each_label_set_three_times_its_text_and_200_bytes(tmp_path):
    """Exactly at the budget a label set is kept in memory; a byte over, it stays on disk."""
    from chalicelib.storage.sqlite import labels_json
    one = Series((("__name__", "m"), ("i", "0001")), [1], [1.0])
    cost = 3 * len(labels_json(one.labels)) + 200
    store = SQLiteStore(str(tmp_path / "a"), index_max_bytes=2 * cost)
    two = Series((("__name__", "m"), ("i", "0002")), [1], [1.0])
    three = Series((("__name__", "m"), ("i", "0003")), [1], [1.0])
    store.write([one, two, three], context())
    assert store._index.bytes == 2 * cost and len(store._index.labels) == 2
    assert sum(map(len, store._index.on_disk.values())) == 1


def test_a_write_waits_for_another_writer_only_until_the_deadline(tmp_path):
    import time as clock


    from chalicelib.errors import BackendUnavailable
    store = SQLiteStore(str(tmp_path))
    with store._write_lock:  # another write holds the store
        started = clock.monotonic()
        with pytest.raises(BackendUnavailable, match="embedded store busy"):
            store.write([Series(labels(1), [1], [1.0])], context(deadline_seconds=0.3))
        assert 0.25 < clock.monotonic() - started < 0.9
    assert list(store.read(query((0, "__name__", "m")), context())) == []


def test_the_deadline_is_looked_at_every_so_many_names_while_matching(tmp_path, monkeypatch):
    from chalicelib.matchers import Matcher as MatcherClass
    from chalicelib.storage import sqlite
    store = SQLiteStore(str(tmp_path))
    store.write([Series((("__name__", f"n{i:02d}"),), [1], [1.0]) for i in range(10)], context())
    monkeypatch.setattr(sqlite, "NAMES_PER_DEADLINE_CHECK", 4)
    matched, looked = [], []
    original = MatcherClass.matches_value
    monkeypatch.setattr(MatcherClass, "matches_value",
                        lambda self, value: matched.append(1) or original(self, value))

    class Watched:
        def ensure(self, what):
            looked.append(len(matched))
    ctx = context()
    ctx.deadline = Watched()
    assert len(list(store.read(query((2, "__name__", "n.*")), ctx))) == 10
    assert looked[:3] == [0, 4, 8] and looked[3] == 10  # then before the samples are read


def test_a_metric_name_matcher_decoded_from_a_request_is_one(tmp_path):
    store = SQLiteStore(str(tmp_path))
    store.write([Series(labels(1), [1], [1.0]), Series(labels(2), [1], [2.0])], context())
    name = "".join(list("__name__"))  # a new string object, as protobuf decodes it
    found = list(store.read(Query(0, 10, (Matcher.of(0, name, "m"),
                                          Matcher.of(0, "i", "0002"))), context()))
    assert [s.values[0] for s in found] == [2.0]


class PassesAfter:
    """A deadline that passes after ``looks`` looks at it (ensure), and stays passed."""

    def __init__(self, looks):
        self.looks = looks

    def remaining(self):
        return 60.0 if self.looks > 0 else -1.0

    def ensure(self, what):
        self.looks -= 1
        if self.looks < 0:
            from chalicelib.errors import BackendUnavailable
            raise BackendUnavailable(f"{what} did not finish within the request deadline")


def test_a_write_is_cut_in_chunks_and_a_deadline_between_them_stores_nothing(tmp_path,
                                                                              monkeypatch):
    from chalicelib.errors import BackendUnavailable
    from chalicelib.storage import sqlite
    monkeypatch.setattr(sqlite, "SERIES_PER_CHUNK", 2)
    store = SQLiteStore(str(tmp_path))
    batch = [Series((("__name__", "m"), ("i", str(i))), [1], [float(i)]) for i in range(5)]
    ctx = context()
    ctx.deadline = PassesAfter(2)  # the write's first look, the first chunk; not the second
    with pytest.raises(BackendUnavailable, match="writing to the embedded store"):
        store.write(batch, ctx)
    assert list(store.read(query((0, "__name__", "m")), context())) == []
    assert store.write(batch, context()).stored == 5  # the index learned nothing dead
    found = list(store.read(query((0, "__name__", "m")), context()))
    assert [list(s.values) for s in found] == [[0.0], [1.0], [2.0], [3.0], [4.0]]


def test_a_series_new_in_one_chunk_and_repeated_in_the_next_is_one_series(tmp_path,
                                                                          monkeypatch):
    from chalicelib.storage import sqlite
    monkeypatch.setattr(sqlite, "SERIES_PER_CHUNK", 2)
    store = SQLiteStore(str(tmp_path))
    a, b = (("__name__", "m"), ("i", "a")), (("__name__", "m"), ("i", "b"))
    assert store.write([Series(a, [1], [1.0]), Series(b, [1], [2.0]),
                        Series(a, [2], [3.0])], context()).stored == 3
    found = list(store.read(query((0, "__name__", "m")), context()))
    assert [(s.labels, list(s.timestamps)) for s in found] == [(a, [1, 2]), (b, [1])]
    assert SQLiteStore(str(tmp_path))._index.ids == store._index.ids  # as a restart sees it


def test_a_chunk_of_known_pending_and_new_series_finds_each_ones_id(tmp_path, monkeypatch):
    """Chunks of two: [n, x] new; [k, n], k stored by an earlier write, n by this one (not
    committed yet); [y] new after them."""
    from chalicelib.storage import sqlite
    monkeypatch.setattr(sqlite, "SERIES_PER_CHUNK", 2)
    store = SQLiteStore(str(tmp_path))
    k, n, x, y = ((("__name__", "m"), ("i", name)) for name in "knxy")
    store.write([Series(k, [1], [0.0])], context())
    assert store.write([Series(n, [1], [1.0]), Series(x, [1], [2.0]), Series(k, [2], [3.0]),
                        Series(n, [2], [4.0]), Series(y, [1], [5.0])], context()).stored == 5
    found = list(store.read(query((0, "__name__", "m")), context()))
    assert [(s.labels, list(s.values)) for s in found] == [
        (k, [0.0, 3.0]), (n, [1.0, 4.0]), (x, [2.0]), (y, [5.0])]
    assert SQLiteStore(str(tmp_path))._index.ids == store._index.ids  # as a restart sees it
