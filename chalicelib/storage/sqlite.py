"""The embedded store: SQLite (standard library) in WAL mode, on local disk.

Schema: ``series`` (id, metric name, canonical labels as JSON), ``samples``
keyed by (series id, timestamp) and ``histograms`` (native histogram samples, keyed
the same way, each as ``histogram_text``'s exact JSON). Values are stored as the 64-bit
pattern of the float so NaN payloads (stale markers) survive: SQLite would turn a NaN
REAL into NULL. Series ids are cached in memory with an index by metric name, so a
write touches the series table only for series it has never seen.

Concurrency: one connection per thread; writes are serialised by a lock (SQLite
allows one writer at a time anyway) and reads run beside them under WAL.
"""
import hashlib
import json
import os
import sqlite3
import threading
from array import array
from itertools import chain, groupby, repeat
from operator import attrgetter, itemgetter
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from chalicelib.context import SAMPLE_BYTES, RequestContext, histogram_bytes, series_bytes
from chalicelib.errors import BackendUnavailable
from chalicelib.matchers import Matcher, matches_all
from chalicelib.model import Histogram, Labels, Query, Series, WriteResult, metric_name
from chalicelib.storage import histogram_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL,
    labels TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS series_by_name ON series (name);
CREATE TABLE IF NOT EXISTS samples (
    series_id INTEGER NOT NULL,
    t         INTEGER NOT NULL,
    v         INTEGER NOT NULL,
    PRIMARY KEY (series_id, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS histograms (
    series_id INTEGER NOT NULL,
    t         INTEGER NOT NULL,
    h         TEXT NOT NULL,
    PRIMARY KEY (series_id, t)
) WITHOUT ROWID;
"""
DB_FILE = "prometheus.sqlite3"
#: Series ids per SELECT (SQLite allows 32766 parameters); any size gives the same answer.
READ_CHUNK = 500  # pragma: no mutate (a batch size: answers are the same)
#: Metric names matched between two looks at the request deadline.
NAMES_PER_DEADLINE_CHECK = 256  # pragma: no mutate (how often: answers are the same)
#: Series written between two looks at the request's deadline (one transaction for all).
SERIES_PER_CHUNK = 20_000  # pragma: no mutate (how often: answers are the same)
#: Sample rows fetched (and charged to the read budget) at a time.
FETCH_ROWS = 8192  # pragma: no mutate (a batch size: answers are the same)
_SERIES_ID, _TIME, _BITS = itemgetter(0), itemgetter(1), itemgetter(2)
_LABELS = itemgetter(1)
_SERIES_LABELS, _SERIES_TIMESTAMPS, _SERIES_VALUES = (
    attrgetter("labels"), attrgetter("timestamps"), attrgetter("values"))


def floats_to_bits(values: array) -> array:
    """The int64 bit patterns of the doubles ``values`` (bulk, no per-value Python work)."""
    return array("q", values.tobytes())


def bits_to_floats(bits: array) -> array:
    """Inverse of ``floats_to_bits``."""
    return array("d", bits.tobytes())


#: The series index keeps label sets in memory up to this many bytes in all...
INDEX_MAX_BYTES = 256 << 20  # pragma: no mutate (a memory budget, tested with small ones)
#: ...and only those whose stored (JSON) form is at most this long. The others stay on
#: disk: the index knows them by a digest, and a read loads their labels when it needs them.
INDEX_ENTRY_MAX_BYTES = 16 << 10  # pragma: no mutate (a memory budget, tested with small ones)
#: Estimated bytes of the tuples and dict slots of one label set kept in memory.
_ENTRY_SLOTS_BYTES = 200  # pragma: no mutate (an estimate: 199 or 201 keep as many)


_JSON = json.JSONEncoder(ensure_ascii=False)


def labels_json(labels: Labels) -> str:
    """The stored form of a label set (the ``series.labels`` column): what
    ``json.dumps(labels, ensure_ascii=False)`` writes, without building an encoder per call."""
    return _JSON.encode(labels)


def labels_digest(text: str) -> bytes:
    """Key of a label set kept on disk: the SHA-256 of its stored form."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def parse_labels(text: str) -> Labels:
    """Inverse of ``labels_json``."""
    return tuple(tuple(pair) for pair in json.loads(text))


class SeriesIndex:
    """In-memory view of the series table, bounded in bytes: ids by labels, labels by id
    and by name for label sets that fit; ids by digest and by name for the others
    (``on_disk``), so a query loads only those of the metric names it selects."""

    def __init__(self, max_bytes: int = INDEX_MAX_BYTES,
                 entry_max_bytes: int = INDEX_ENTRY_MAX_BYTES) -> None:
        self.ids: Dict[Labels, int] = {}
        self.labels: Dict[int, Labels] = {}
        self.by_name: Dict[str, List[int]] = {}
        self.digests: Dict[bytes, int] = {}
        self.on_disk: Dict[str, List[int]] = {}
        self.max_id = 0  # pragma: no mutate (ids start at 1: "id > -1" reads the same rows)
        self.bytes = 0  # pragma: no mutate (a byte more or less of a memory budget)
        self.max_bytes = max_bytes
        self.entry_max_bytes = entry_max_bytes

    def load(self, conn: sqlite3.Connection) -> None:
        """Pick up series added since the last load (by this or another process)."""
        self.add(conn.execute("SELECT id, name, labels FROM series WHERE id > ? ORDER BY id",
                              (self.max_id,)).fetchall())

    def add(self, rows: Iterable[Tuple[int, str, str]],
            known: Optional[Dict[str, Labels]] = None) -> None:
        """Index rows (id, name, labels text) of the series table, in id order, all those
        past ``max_id``; ``known``: labels already parsed, by text."""
        known = known or {}
        for series_id, name, text in rows:
            # Python objects: ~3x the text, plus the tuples and dict slots.
            cost = 3 * len(text) + _ENTRY_SLOTS_BYTES
            if len(text) <= self.entry_max_bytes and self.bytes + cost <= self.max_bytes:
                labels = known.get(text) or parse_labels(text)
                self.ids[labels] = series_id
                self.labels[series_id] = labels
                self.by_name.setdefault(metric_name(labels), []).append(series_id)
                self.bytes += cost
            else:
                self.digests[labels_digest(text)] = series_id
                self.on_disk.setdefault(name, []).append(series_id)
            self.max_id = series_id

    def id_of(self, labels: Labels) -> Optional[int]:
        """The id of a known series, or None."""
        series_id = self.ids.get(labels)
        if series_id is None and self.digests:
            series_id = self.digests.get(labels_digest(labels_json(labels)))
        return series_id

    def ids_of(self, labels: Iterable[Labels]) -> List[Optional[int]]:
        """``id_of`` for each label set, in order (one C-level pass when no label set
        is kept on disk)."""
        if self.digests:
            return [self.id_of(item) for item in labels]
        return list(map(self.ids.get, labels))


def _rows(conn: sqlite3.Connection, table: str, column: str, ids: Iterable[int],
          query: Query) -> Iterator[list]:
    """Rows (series id, time, ``column``) of ``table`` ("samples" or "histograms") for the
    series ``ids`` in the query's range, by series and time, FETCH_ROWS at a time."""
    ids = list(ids)
    cursor = conn.execute(
        f"SELECT series_id, t, {column} FROM {table} WHERE series_id IN "
        f"({','.join('?' * len(ids))}) AND t BETWEEN ? AND ? ORDER BY series_id, t",
        (*ids, query.start_ms, query.end_ms))
    while True:
        rows = cursor.fetchmany(FETCH_ROWS)
        if not rows:
            return
        yield rows


def store_failure(exc: sqlite3.Error, path: str) -> BackendUnavailable:
    """A 503 (Prometheus retries) whose message names the cause."""
    code = getattr(exc, "sqlite_errorname", "") or ""
    if code.startswith("SQLITE_FULL"):
        cause = f"disk full: no space left for {path}"
    elif code.startswith("SQLITE_IOERR"):
        cause = f"I/O error writing {path} (disk full, file size limit or failing disk?)"
    elif code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        cause = f"busy: another writer held {path} too long"
    else:
        cause = f"failed on {path}"
    return BackendUnavailable(f"embedded store {cause} [{code or type(exc).__name__}: {exc}]; "
                              "nothing of this request was stored, retry later")


class SQLiteStore:
    """Durable embedded store in ``data_dir``."""

    def __init__(self, data_dir: str, index_max_bytes: int = INDEX_MAX_BYTES,
                 index_entry_max_bytes: int = INDEX_ENTRY_MAX_BYTES,
                 lock_timeout: float = 30.0) -> None:  # pragma: no mutate (a patience)
        os.makedirs(data_dir, exist_ok=True)
        self.lock_timeout = lock_timeout  # seconds a write waits for another process's lock
        self.path = os.path.join(data_dir, DB_FILE)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._index = SeriesIndex(index_max_bytes, index_entry_max_bytes)
        conn = self._conn()
        conn.executescript(SCHEMA)
        self._refresh()

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.lock_timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _refresh(self) -> None:
        with self._index_lock:
            self._index.load(self._conn())

    def write(self, series: Sequence[Series], ctx: RequestContext) -> WriteResult:
        """Store every sample of ``series``; duplicates (same series and time) are kept once.

        All or nothing: on any failure (disk full, I/O error, lock timeout) nothing of
        the request is stored and the in-memory index is untouched (it only ever learns
        ids that are committed), so a retry can never file samples under a dead id. A
        write still waiting for another writer when the request deadline passes is a 503."""
        stats = ctx.telemetry.calls("embedded", "write")
        stats.call()
        try:
            return self._write(series, ctx)
        except BaseException:
            stats.failed()
            raise

    def _write(self, series: Sequence[Series], ctx: RequestContext) -> WriteResult:
        ctx.deadline.ensure("writing to the embedded store")
        conn = self._conn()
        if not self._write_lock.acquire(timeout=max(0.0, ctx.deadline.remaining())):
            raise BackendUnavailable("embedded store busy: other writes held it until the "
                                     "request deadline (REQUEST_DEADLINE_SECONDS); nothing of "
                                     "this request was stored, retry later")
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    stored, histograms, rows, texts = self._insert(conn, series, ctx)
                    conn.execute("COMMIT")
                except BaseException:
                    # SQLite may have rolled back already (SQLITE_FULL, IOERR do).
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                # The series this write added, now committed: every row past the index's
                # last id, read under the write lock (no other writer could add one).
                if rows:
                    with self._index_lock:
                        self._index.add(rows, texts)
            finally:
                self._write_lock.release()
        except sqlite3.Error as exc:
            raise store_failure(exc, self.path) from None
        return WriteResult(stored + histograms, histograms=histograms)

    def _insert(self, conn: sqlite3.Connection, series: Sequence[Series],
                ctx: RequestContext) -> Tuple[int, int, list, Dict[str, Labels]]:
        """Insert ``series`` (inside the caller's transaction), SERIES_PER_CHUNK at a time
        with a look at the deadline between chunks; the float and histogram samples
        stored, and what the index is to learn once the transaction commits (the new rows,
        their labels by text)."""
        stored = histograms = 0
        rows: list = []
        texts: Dict[str, Labels] = {}
        pending: Dict[Labels, int] = {}
        for first in range(0, len(series), SERIES_PER_CHUNK):
            ctx.deadline.ensure("writing to the embedded store")
            chunk = series[first:first + SERIES_PER_CHUNK]
            ids = self._series_ids(conn, chunk, pending, rows, texts)
            # C-level passes (map, chain), no Python code per series or sample.
            series_ids = chain.from_iterable(map(
                repeat, ids, map(len, map(_SERIES_TIMESTAMPS, chunk))))
            timestamps = chain.from_iterable(map(_SERIES_TIMESTAMPS, chunk))
            bits = floats_to_bits(array("d", chain.from_iterable(map(_SERIES_VALUES, chunk))))
            conn.executemany("INSERT OR IGNORE INTO samples (series_id, t, v) VALUES (?, ?, ?)",
                             zip(series_ids, timestamps, bits))
            stored += len(bits)
            histogram_rows = [(series_id, h.timestamp, histogram_text.dumps(h))
                              for item, series_id in zip(chunk, ids) if item.histograms
                              for h in item.histograms]
            if histogram_rows:
                conn.executemany("INSERT OR IGNORE INTO histograms (series_id, t, h) "
                                 "VALUES (?, ?, ?)", histogram_rows)
                histograms += len(histogram_rows)
        return stored, histograms, rows, texts

    def _series_ids(self, conn: sqlite3.Connection, series: Sequence[Series],
                    pending: Dict[Labels, int], rows: list,
                    texts: Dict[str, Labels]) -> List[int]:
        """Ids of ``series``, inserting new ones (inside the caller's transaction, which
        holds the write lock). The index learns new ids only once the transaction commits;
        until then they are in ``pending`` (by labels), their rows in ``rows`` (this
        write's new series, and any another process committed meanwhile), and the labels
        of this write's new series in ``texts`` (by their text)."""
        index = self._index
        ids = index.ids_of(map(_SERIES_LABELS, series))
        if None in ids and pending:
            ids = [pending.get(s.labels) if series_id is None else series_id
                   for s, series_id in zip(series, ids)]
        if None not in ids:
            return ids
        missing = [s.labels for s, series_id in zip(series, ids) if series_id is None]
        new = {labels_json(labels): labels for labels in dict.fromkeys(missing)}
        conn.executemany("INSERT OR IGNORE INTO series (name, labels) VALUES (?, ?)",
                         ((metric_name(labels), text) for text, labels in new.items()))
        texts.update(new)
        found = conn.execute("SELECT id, name, labels FROM series WHERE id > ? ORDER BY id",
                             (rows[-1][0] if rows else index.max_id,)).fetchall()
        rows.extend(found)
        pending.update((texts.get(text) or parse_labels(text), series_id)
                       for series_id, _, text in found)
        return [pending[s.labels] if series_id is None else series_id
                for s, series_id in zip(series, ids)]

    def check_credentials(self, ctx: RequestContext) -> None:
        """Nothing to check: the embedded store takes no credentials."""

    def read(self, query: Query, ctx: RequestContext) -> Iterator[Series]:
        """Series matching ``query`` with their samples in range, sorted by labels, one
        series at a time, charging the request's budget as rows arrive (every FETCH_ROWS
        rows, and each series' labels): a read past a limit stops before it holds the
        data, at most READ_CHUNK series are held at once, and a read still running at the
        request deadline stops there (503)."""
        budget = ctx.budget
        ctx.telemetry.calls("embedded", "read").call()
        self._refresh()
        conn = self._conn()
        selected = sorted(self._select(conn, query, ctx), key=_LABELS)
        for start in range(0, len(selected), READ_CHUNK):
            ctx.deadline.ensure("reading the embedded store")
            chunk = dict(selected[start:start + READ_CHUNK])  # in label order
            gathered: Dict[int, Tuple[array, array]] = {}
            for rows in _rows(conn, "samples", "v", chunk, query):
                budget.take(len(rows), SAMPLE_BYTES * len(rows))
                for series_id, group in groupby(rows, key=_SERIES_ID):
                    arrays = gathered.get(series_id)
                    if arrays is None:
                        budget.take(0, series_bytes(chunk[series_id]))
                        arrays = gathered[series_id] = (array("q"), array("q"))
                    group = list(group)
                    arrays[0].extend(map(_TIME, group))
                    arrays[1].extend(map(_BITS, group))
            histograms = self._histograms(conn, chunk, query, ctx, gathered)
            for series_id, labels in chunk.items():
                arrays = gathered.pop(series_id, None)
                if arrays is not None:
                    yield Series(labels, arrays[0], bits_to_floats(arrays[1]),
                                 histograms.get(series_id, ()))

    @staticmethod
    def _histograms(conn: sqlite3.Connection, chunk: Dict[int, Labels], query: Query,
                    ctx: RequestContext, gathered: Dict[int, Tuple[array, array]]
                    ) -> Dict[int, List[Histogram]]:
        """The histogram samples in range of the series of ``chunk``, by series id, charged
        to the budget as they arrive; a series that has only histograms joins ``gathered``
        (with no float samples), its labels charged once."""
        found: Dict[int, List[Histogram]] = {}
        for rows in _rows(conn, "histograms", "h", chunk, query):
            for series_id, t, text in rows:
                histogram = histogram_text.loads(text, t)
                if series_id not in gathered:
                    ctx.budget.take(0, series_bytes(chunk[series_id]))
                    gathered[series_id] = (array("q"), array("q"))
                ctx.budget.take(1, histogram_bytes(histogram))
                found.setdefault(series_id, []).append(histogram)
        return found

    def _select(self, conn: sqlite3.Connection, query: Query,
                ctx: RequestContext) -> List[Tuple[int, Labels]]:
        """(id, labels) of the series the matchers select: metric-name matchers are
        decided once per distinct name, the others per series; series whose labels
        stay on disk are loaded READ_CHUNK at a time and only kept if selected. The index
        lock (which every write needs) is held only to take a view of the index, never
        while matching; matching stops at the request deadline."""
        on_name: List[Matcher] = []
        others: List[Matcher] = []
        for matcher in query.matchers:
            (on_name if matcher.name == "__name__" else others).append(matcher)
        with self._index_lock:
            names = list(self._index.by_name.items())
            labels_of = self._index.labels  # only grows; every id of by_name is in it
            on_disk_names = list(self._index.on_disk.items())
        selected: List[Tuple[int, Labels]] = []
        for name, ids in self._named(names, on_name, ctx):
            for series_id in ids:
                labels = labels_of[series_id]
                if not others or matches_all(others, dict(labels)):
                    selected.append((series_id, labels))
        on_disk = [i for _, ids in self._named(on_disk_names, on_name, ctx) for i in ids]
        for start in range(0, len(on_disk), READ_CHUNK):
            ctx.deadline.ensure("reading the embedded store")
            chunk = on_disk[start:start + READ_CHUNK]
            for series_id, text in conn.execute(
                    f"SELECT id, labels FROM series WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk):
                labels = parse_labels(text)
                if matches_all(query.matchers, dict(labels)):
                    selected.append((series_id, labels))
        return selected

    @staticmethod
    def _named(names: List[Tuple[str, List[int]]], on_name: List[Matcher],
               ctx: RequestContext) -> Iterator[Tuple[str, List[int]]]:
        """The (name, ids) whose metric name the name matchers select (a copy of the ids:
        a write may add to them meanwhile); the request deadline looked at as it goes."""
        for count, (name, ids) in enumerate(names):
            if count % NAMES_PER_DEADLINE_CHECK == 0:
                ctx.deadline.ensure("reading the embedded store")
            if all(m.matches_value(name) for m in on_name):
                yield name, list(ids)
