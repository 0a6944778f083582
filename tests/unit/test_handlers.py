"""Reads stop as soon as a limit is reached: samples and bytes (labels included) are
counted as they are gathered, queries per request are capped."""
import tracemalloc

import pytest

from chalicelib import handlers
from chalicelib.context import Limits, encoded_bytes, series_bytes
from chalicelib.errors import BadRequest, ResponseTooLarge
from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series
from chalicelib.protocol import codec
from chalicelib.storage.sqlite import SQLiteStore
from harness.remote import HEADERS, read_request
from tests.support import context

BIG = "x" * 100_000


@pytest.fixture
def store(tmp_path):
    return SQLiteStore(str(tmp_path / "data"))


def read(store, request, samples=10_000_000, nbytes=1 << 30, queries=64):
    """The body of the answer."""
    return handlers.read(codec.encode_message(request), HEADERS, store,
                         Limits(sample_limit=samples, byte_limit=nbytes, query_limit=queries))[1]


def everything(name="m"):
    return Query(0, 1 << 40, (Matcher.of(0, "__name__", name),))


def test_one_huge_series_is_refused_before_it_is_loaded(store):
    times = list(range(1_000_000))
    store.write([Series((("__name__", "m"),), times, [1.0] * len(times))], context())
    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLarge, match="more than 1000 samples"):
            list(store.read(everything(), context(1000, 1 << 30)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # all of it would be > 16 MB of arrays, > 100 MB as Python rows


def test_label_bytes_count_against_the_byte_limit(store):
    store.write([Series((("__name__", "m"), ("big", BIG), ("i", str(i))), [1], [1.0])
                 for i in range(20)], context())
    one = series_bytes((("__name__", "m"), ("big", BIG), ("i", "10")))
    assert len(list(store.read(everything(), context(100, 20 * (one + 18))))) == 20
    with pytest.raises(ResponseTooLarge, match="READ_BYTE_LIMIT"):
        list(store.read(everything(), context(100, 10 * one)))


def test_byte_limit_counts_across_the_queries_of_a_request(store):
    store.write([Series((("__name__", "m"), ("big", BIG)), [1], [1.0])], context())
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


def test_encoded_size_estimate_is_an_upper_bound():
    from chalicelib.protocol import read as remote_read
    series = [Series((("__name__", "m\u00e9"), ("k", "v" * 300)), list(range(0, 10**12, 10**10)),
                     [float(i) / 3 for i in range(100)])]
    actual = sum(len(remote_read.encoded_series(item)) for item in series)
    assert actual <= encoded_bytes(series) <= 2 * actual


class Failing:
    """A store whose writes fail with ``error`` after counting a rejection."""

    def __init__(self, error):
        self.error = error

    def write(self, series, ctx):
        ctx.telemetry.reject("duplicate", 1)
        raise self.error


@pytest.mark.parametrize("error", [__import__("chalicelib.errors", fromlist=["x"])
                                   .BackendUnavailable("down"), RuntimeError("bug")])
def test_a_write_answered_5xx_counts_every_sample_received_as_failed(error):
    from chalicelib.telemetry.request import RequestTelemetry
    from harness.remote import write_request
    body = codec.encode_message(write_request(({"__name__": "m"}, [(1, 1.0), (2, 2.0)]),
                                              ({"k": "no name"}, [(1, 1.0)])))
    telemetry = RequestTelemetry("/write")
    with pytest.raises(type(error)):
        handlers.write(body, HEADERS, Failing(error), Limits(), telemetry)
    assert (telemetry.received, telemetry.failed, telemetry.stored) == (3, 3, 0)
    assert sum(telemetry.rejected.values()) == 0  # Prometheus sends them all again
