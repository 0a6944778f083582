"""Reads stop as soon as a limit is reached: samples and bytes (labels included) are
counted as they are gathered, queries per request are capped."""
import tracemalloc

import pytest

from chalicelib import handlers

from chalicelib.protocol import codec
from chalicelib.context import ReadBudget, encoded_bytes, series_bytes
from chalicelib.errors import BadRequest, ResponseTooLarge
from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series
from chalicelib.storage.sqlite import SQLiteStore
from tests.conftest import HEADERS, read_request

BIG = "x" * 100_000


@pytest.fixture
def store(tmp_path):
    return SQLiteStore(str(tmp_path / "data"))


def read(store, request, samples=10_000_000, nbytes=1 << 30, queries=64):
    """The body of the answer."""
    return handlers.read(codec.encode_message(request), HEADERS, store, 1 << 26, samples,
                         1 << 30, nbytes, queries)[1]


def everything(name="m"):
    return Query(0, 1 << 40, (Matcher.of(0, "__name__", name),))


def test_one_huge_series_is_refused_before_it_is_loaded(store):
    times = list(range(1_000_000))
    store.write([Series((("__name__", "m"),), times, [1.0] * len(times))])
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLarge, match="more than 1000 samples"):
            list(store.read_within(everything(), ReadBudget(1000, 1 << 30)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # all of it would be > 16 MB of arrays, > 100 MB as Python rows


def test_label_bytes_count_against_the_byte_limit(store):
    store.write([Series((("__name__", "m"), ("big", BIG), ("i", str(i))), [1], [1.0])
                 for i in range(20)])
    one = series_bytes((("__name__", "m"), ("big", BIG), ("i", "10")))
    assert len(list(store.read_within(everything(), ReadBudget(100, 20 * (one + 18))))) == 20
    with pytest.raises(ResponseTooLarge, match="READ_BYTE_LIMIT"):
        list(store.read_within(everything(), ReadBudget(100, 10 * one)))


def test_byte_limit_counts_across_the_queries_of_a_request(store):
    store.write([Series((("__name__", "m"), ("big", BIG)), [1], [1.0])])
    request = read_request(*[(0, 10, [(0, "__name__", "m")])] * 30)
    with pytest.raises(ResponseTooLarge, match="more than 1000000 bytes"):
        read(store, request, nbytes=1_000_000)
    assert len(read(store, read_request(*[(0, 10, [(0, "__name__", "m")])] * 9),
                    nbytes=1_000_000)) > 0


def test_queries_per_request_are_capped_before_any_is_run(store):
    request = read_request(*[(0, 10, [(2, "__name__", "(a+)+b")])] * 65)
    with pytest.raises(BadRequest, match="65 queries in one read request, over the limit of 64 "
                                         r"\(READ_QUERY_LIMIT\)"):
        read(store, request)
    assert read(store, read_request(*[(0, 10, [(0, "__name__", "m")])] * 64))


def test_stores_without_read_within_are_charged_as_soon_as_they_answer(store):
    class Plain:
        def read(self, query, sample_limit):
            return store.read(query, sample_limit)
    store.write([Series((("__name__", "m"), ("big", BIG)), [1, 2], [1.0, 2.0])])
    with pytest.raises(ResponseTooLarge, match="READ_BYTE_LIMIT"):
        read(Plain(), read_request(*[(0, 10, [(0, "__name__", "m")])] * 5), nbytes=300_000)
    with pytest.raises(ResponseTooLarge, match="more than 7 samples"):
        read(Plain(), read_request(*[(0, 10, [(0, "__name__", "m")])] * 5), samples=7)


def test_encoded_size_estimate_is_an_upper_bound():
    from chalicelib.protocol import write_v1 as translate
    series = [Series((("__name__", "m\u00e9"), ("k", "v" * 300)), list(range(0, 10**12, 10**10)),
                     [float(i) / 3 for i in range(100)])]
    actual = sum(len(translate.encoded_series(item)) for item in series)
    assert actual <= encoded_bytes(series) <= 2 * actual
