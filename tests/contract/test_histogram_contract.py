"""Native histograms, every backend: stored exactly, read back as written, counted like
float samples."""
import pytest

from chalicelib.errors import ResponseTooLarge
from chalicelib.model import Histogram, RESET_GAUGE, RESET_NO, RESET_YES, Series
from chalicelib.protocol.write_v1 import validate_labels
from chalicelib.storage.histogram_text import dumps
from tests.contract.test_store_contract import PROMETHEUS_NAN, STALE_NAN, query, read_one, series
from tests.support import context

INT = Histogram(0, 17, 27.5, 3, 2.938735877055719e-39, 2,
                positive_spans=((-2, 2), (1, 3)), positive=(1, 2, -1, 0, 3),
                negative_spans=((0, 1),), negative=(2,), reset_hint=RESET_NO)
FLOAT = Histogram(0, 7.25, -1.5, -2, 0.001, 0.25, positive_spans=((0, 2),),
                  positive=(1.5, 0.0), negative_spans=((3, 1), (2, 1)), negative=(4.5, 1.0),
                  reset_hint=RESET_GAUGE, is_float=True)
CUSTOM = Histogram(0, 6, 12.0, -53, 0.0, 0, positive_spans=((0, 3),), positive=(1, 2, 0),
                   custom_values=(0.1, 0.5, 2.5))
EMPTY = Histogram(0, 0, 0.0, 0, 0.0, 0)
STALE = Histogram(0, 0, STALE_NAN, 0, 0.0, 0)
ODD = Histogram(0, 3.0, float("inf"), 8, 0.0, PROMETHEUS_NAN, is_float=True,
                reset_hint=RESET_YES)


def at(histogram: Histogram, timestamp: int) -> Histogram:
    return histogram._replace(timestamp=timestamp)


def histogram_series(labels: dict, histograms, samples=()) -> Series:
    return Series(validate_labels(tuple(sorted(labels.items()))), [t for t, _ in samples],
                  [v for _, v in samples], list(histograms))


def exact(histograms):
    """Comparable histograms: every float by its bits (NaN payloads included)."""
    return [(h.timestamp, dumps(h)) for h in histograms]


def test_histograms_come_back_exactly(store):
    written = [at(INT, 1000), at(FLOAT, 2000), at(CUSTOM, 3000), at(EMPTY, 4000),
               at(ODD, 5000), at(STALE, 6000)]
    result = store.write([histogram_series({"__name__": "h", "job": "j"}, written)], context())
    assert (result.stored, result.histograms, result.rejected) == (6, 6, 0)
    [found] = read_one(store, 0, 10_000, (0, "__name__", "h"))
    assert found.labels == (("__name__", "h"), ("job", "j"))
    assert exact(found.histograms) == exact(written)
    assert list(found.timestamps) == [] and list(found.values) == []


def test_histogram_writes_are_idempotent_and_ranges_inclusive(store):
    batch = [histogram_series({"__name__": "h"}, [at(INT, t) for t in (999, 1000, 2000, 2001)])]
    store.write(batch, context())
    store.write(batch, context())
    [found] = read_one(store, 1000, 2000, (0, "__name__", "h"))
    assert [h.timestamp for h in found.histograms] == [1000, 2000]


def test_a_series_keeps_its_float_and_histogram_samples_apart(store):
    """A series may switch between float and histogram samples (Prometheus allows it):
    both come back, each sorted by time, and float series beside it are untouched."""
    store.write([histogram_series({"__name__": "mixed", "i": "1"}, [at(INT, 30), at(INT, 10)],
                                  [(20, 2.0), (40, 4.0)]),
                 series({"__name__": "mixed", "i": "2"}, [(10, 1.0)])], context())
    first, second = read_one(store, 0, 100, (0, "__name__", "mixed"))
    assert (list(first.timestamps), list(first.values)) == ([20, 40], [2.0, 4.0])
    assert [h.timestamp for h in first.histograms] == [10, 30]
    assert (list(second.timestamps), list(second.values), list(second.histograms)) == (
        [10], [1.0], [])


def test_matchers_select_histogram_series_like_any(store):
    store.write([histogram_series({"__name__": "latency", "path": p}, [at(INT, 5)])
                 for p in ("/a", "/b", "/c")], context())
    found = read_one(store, 0, 10, (2, "__name__", "lat.*"), (3, "path", "/b"))
    assert [dict(s.labels)["path"] for s in found] == ["/a", "/c"]
    assert read_one(store, 0, 10, (0, "__name__", "latency"), (0, "path", "/d")) == []


def test_histogram_samples_count_against_the_sample_limit(store):
    store.write([histogram_series({"__name__": "h"}, [at(INT, t) for t in range(1, 11)],
                                  [(t, 1.0) for t in range(11, 21)])], context())
    everything = query(0, 100, (0, "__name__", "h"))
    with pytest.raises(ResponseTooLarge, match="more than 19 samples"):
        list(store.read(everything, context(19)))
    [found] = store.read(everything, context(20))
    assert (len(found.timestamps), len(found.histograms)) == (10, 10)
