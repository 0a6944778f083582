"""Retries inside the request deadline: backoff, jitter, the time each attempt gets, when
to give up, and the 503 that says why."""
import logging

import pytest

from chalicelib import retry
from chalicelib.errors import BackendUnavailable
from chalicelib.retry import Transient
from tests.support import FakeDeadline


@pytest.fixture
def backoff(monkeypatch):
    """Sleeps recorded (and spent on the FakeDeadline given to ``run``), jitter fixed."""
    sleeps = []

    def run(deadline, failures, jitter=1.0, timeout=10.0):
        monkeypatch.setattr(retry.random, "random", lambda: jitter)

        def sleep(seconds):
            sleeps.append(seconds)
            deadline.left -= seconds
        monkeypatch.setattr(retry, "sleep", sleep)
        timeouts = []

        def call(attempt_timeout):
            timeouts.append(attempt_timeout)
            if len(timeouts) <= failures:
                raise Transient(f"HTTP 503: failure {len(timeouts)}")
            return "done"
        return retry.with_retries(call, deadline, "InfluxDB write", timeout, 0.5), timeouts
    run.sleeps = sleeps
    return run


def test_retries_back_off_exponentially_up_to_two_seconds(backoff, caplog):
    caplog.set_level(logging.INFO, logger="chalicelib")
    deadline = FakeDeadline(100.0)
    assert backoff(deadline, failures=8)[0] == "done"
    assert backoff.sleeps == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]
    assert caplog.messages[0] == "retrying InfluxDB write after HTTP 503: failure 1 (attempt 1)"
    assert len(caplog.messages) == 8


def test_jitter_shortens_a_backoff_by_at_most_half(backoff):
    backoff(FakeDeadline(100.0), failures=3, jitter=0.0)
    assert backoff.sleeps == [0.025, 0.05, 0.1]


def test_each_attempt_gets_the_time_left_but_at_least_half_a_second(backoff):
    _, timeouts = backoff(FakeDeadline(2.0), failures=2)
    assert timeouts == pytest.approx([2.0, 1.95, 1.85])
    _, timeouts = backoff(FakeDeadline(0.2), failures=0)
    assert timeouts == [0.5]


def test_no_retry_starts_with_less_than_half_a_second_left(backoff):
    with pytest.raises(BackendUnavailable) as raised:
        backoff(FakeDeadline(0.54), failures=1)
    assert str(raised.value) == ("InfluxDB write still failing after 1 attempts "
                                 "(HTTP 503: failure 1); retry later")
    assert raised.value.status == 503 and backoff.sleeps == []
    # Exactly half a second left after the backoff: one more attempt.
    assert backoff(FakeDeadline(0.55), failures=1)[0] == "done"
    assert backoff.sleeps == [0.05]


def test_a_failure_can_say_why_it_gives_up():
    deadline = FakeDeadline(0.1)

    def unreachable(timeout):
        raise Transient("ConnectionError", lambda attempts: f"down after {attempts} attempts")
    with pytest.raises(BackendUnavailable, match="^down after 1 attempts$"):
        retry.with_retries(unreachable, deadline, "the call", 1.0, 0.5)


def test_an_attempt_is_given_the_time_left_up_to_its_own_limit():
    timeouts = []

    def call(timeout):
        timeouts.append(timeout)
        return "done"
    assert retry.with_retries(call, FakeDeadline(3.0), "the call", 7.0, 0.5) == "done"
    assert retry.with_retries(call, FakeDeadline(30.0), "the call", 7.0, 0.5) == "done"
    assert timeouts == [3.0, 7.0]


def test_backoff_doubles_from_50_ms_to_at_most_2_s(monkeypatch):
    monkeypatch.setattr(retry.random, "random", lambda: 1.0)
    assert [retry.backoff_seconds(n) for n in (1, 2, 3, 6, 7, 20)] == [0.05, 0.1, 0.2, 1.6, 2.0,
                                                                      2.0]
    monkeypatch.setattr(retry.random, "random", lambda: 0.0)
    assert retry.backoff_seconds(1) == 0.025


def test_backoff_stays_two_seconds_however_many_attempts_failed(monkeypatch):
    monkeypatch.setattr(retry.random, "random", lambda: 1.0)
    assert retry.backoff_seconds(17) == retry.backoff_seconds(5000) == 2.0


def test_attempts_retries_throttles_and_the_failure_are_counted(monkeypatch):
    from chalicelib.telemetry.request import RequestTelemetry
    monkeypatch.setattr(retry, "sleep", lambda seconds: None)
    stats = RequestTelemetry("/write").calls("influxdb", "write")
    answers = [Transient("HTTP 429", throttled=True), Transient("HTTP 503"), "done"]

    def call(timeout):
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer
    assert retry.with_retries(call, FakeDeadline(30.0), "w", 5.0, 0.5, stats) == "done"
    assert (stats.calls, stats.retries, stats.throttles, stats.failures) == (3, 2, 1, 0)
    with pytest.raises(BackendUnavailable):
        retry.with_retries(lambda timeout: (_ for _ in ()).throw(
            Transient("ThrottlingException", throttled=True)), FakeDeadline(0.5), "w", 5.0, 0.5,
            stats)
    assert (stats.calls, stats.throttles, stats.failures) == (4, 2, 1)
    with pytest.raises(KeyError):
        retry.with_retries(lambda timeout: {}["refused"], FakeDeadline(30.0), "w", 5.0, 0.5,
                           stats)
    assert (stats.calls, stats.throttles, stats.failures) == (5, 2, 2)  # a refusal: no throttle
