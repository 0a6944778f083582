"""One request's context: its deadline, its read budget and its limits."""
import dataclasses
import threading

import pytest

from chalicelib import context as context_module
from chalicelib.config import Settings
from chalicelib.context import Deadline, Limits, ReadBudget, RequestContext
from chalicelib.errors import BackendUnavailable, ResponseTooLarge


@pytest.fixture
def clock(monkeypatch):
    """time.monotonic as a list the test moves."""
    now = [1000.0]
    monkeypatch.setattr(context_module.time, "monotonic", lambda: now[0])
    return now


def test_a_deadline_counts_down_from_when_it_is_made(clock):
    deadline = Deadline(25)
    clock[0] += 10
    assert deadline.remaining() == 15
    clock[0] += 20
    assert deadline.remaining() == -5


def test_a_call_starts_only_if_it_can_finish_in_time(clock):
    deadline = Deadline(7)
    deadline.check(7, "the call")  # exactly its timeouts left: it may start
    with pytest.raises(BackendUnavailable, match="^the call not started: it might not finish "
                                                 "within the request deadline; retry later$"):
        deadline.check(7.001, "the call")


def test_work_stops_once_the_deadline_has_passed(clock):
    deadline = Deadline(1)
    deadline.ensure("reading")
    clock[0] += 0.999
    deadline.ensure("reading")
    clock[0] += 0.001
    with pytest.raises(BackendUnavailable) as raised:
        deadline.ensure("reading")
    assert str(raised.value).startswith("reading did not finish within the request deadline "
                                        "(REQUEST_DEADLINE_SECONDS)")
    assert raised.value.status == 503


def test_the_budget_is_charged_to_the_sample_and_the_byte():
    budget = ReadBudget(10, 100)
    budget.take(10, 100)
    assert (budget.samples_left, budget.bytes_left) == (0, 0)
    with pytest.raises(ResponseTooLarge, match=r"more than 10 samples \(READ_SAMPLE_LIMIT\)"):
        budget.take(1, 0)
    budget = ReadBudget(10, 100)
    with pytest.raises(ResponseTooLarge, match=r"more than 100 bytes .*\(READ_BYTE_LIMIT\)"):
        budget.take(0, 101)


def test_what_a_failed_attempt_charged_is_given_back():
    budget = ReadBudget(10, 100)
    budget.take(1, 1)
    with pytest.raises(KeyError):
        with budget.refunded_on_failure() as attempt:
            attempt.take(5, 50)
            budget.take(2, 2)  # another thread of the request: kept
            raise KeyError("retried")
    assert (budget.samples_left, budget.bytes_left) == (7, 97)
    with budget.refunded_on_failure() as attempt:
        attempt.take(5, 50)
    assert (budget.samples_left, budget.bytes_left) == (2, 47)


def test_an_attempt_over_the_limit_gives_back_all_it_charged():
    budget = ReadBudget(10, 100)
    with pytest.raises(ResponseTooLarge):
        with budget.refunded_on_failure() as attempt:
            attempt.take(4, 4)
            attempt.take(7, 7)
    assert (budget.samples_left, budget.bytes_left) == (10, 100)


def test_charges_from_many_threads_add_up_exactly():
    budget = ReadBudget(10 ** 9, 10 ** 9)

    def charge():
        for _ in range(20_000):
            budget.take(1, 2)
    threads = [threading.Thread(target=charge) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (budget.samples_left, budget.bytes_left) == (10 ** 9 - 80_000, 10 ** 9 - 160_000)


def test_limits_come_from_the_settings_each_from_its_own_variable():
    settings = Settings.from_env({"REQUEST_DEADLINE_SECONDS": "12.5", "READ_SAMPLE_LIMIT": "11",
                                  "READ_BYTE_LIMIT": "22", "MAX_DECODED_BYTES": "33",
                                  "MAX_RESPONSE_BYTES": "44", "READ_QUERY_LIMIT": "55"})
    assert Limits.from_settings(settings) == Limits(
        deadline_seconds=12.5, sample_limit=11, byte_limit=22, max_decoded_bytes=33,
        max_response_bytes=44, query_limit=55)
    assert Limits.from_settings(dataclasses.replace(settings, read_query_limit=3)).query_limit == 3


def test_a_request_context_starts_its_deadline_and_budget_from_its_limits(clock):
    ctx = RequestContext(Limits(deadline_seconds=9, sample_limit=5, byte_limit=6), dot_all=False)
    assert ctx.deadline.remaining() == 9
    assert (ctx.budget.samples_left, ctx.budget.bytes_left) == (5, 6)
    assert ctx.dot_all is False
    assert RequestContext().dot_all is True


def test_a_call_with_time_to_spare_starts(clock):
    Deadline(7).check(6, "the call")


def test_the_default_limits_are_the_settings_defaults():
    assert Limits() == Limits.from_settings(Settings())


@pytest.mark.parametrize("labels", [
    (("__name__", "up"),),
    (("__name__", "m\u00e9tric"), ("job", "x" * 200), ("instance", "10.0.0.1:9100")),
    (("__name__", "m"), *((f"label{i}", "v" * 130) for i in range(20))),
])
def test_series_bytes_is_the_encoded_labels_with_room_for_framing(labels):
    """8 bytes of framing (tags and lengths) per label and 6 per
    series, plus the UTF-8 bytes of every name and value: at least the real encoding."""
    from chalicelib.protocol.prompb import types_pb2
    text = "".join(name + value for name, value in labels).encode("utf-8")
    assert context_module.series_bytes(labels) == 6 + 8 * len(labels) + len(text)
    encoded = types_pb2.TimeSeries(labels=[types_pb2.Label(name=n, value=v) for n, v in labels])
    assert len(encoded.SerializeToString()) + 6 <= context_module.series_bytes(labels)
