"""Counting a route's requests, and publishing them where the process runs."""
import logging

import pytest

from chalicelib.telemetry import emf, local, observe


class Answer:
    def __init__(self, status):
        self.status_code = status


def test_a_view_is_counted_with_its_status_and_published_locally_off_lambda(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    published = []
    monkeypatch.setattr(local, "record", lambda t, status, seconds: published.append(
        (t.route, t.received, status)))

    @observe.observed("/write", lambda: "dev")
    def view():
        observe.current().received = 7
        return Answer(204)
    assert view().status_code == 204
    assert published == [("/write", 7, 204)]
    assert observe.current().route == ""  # outside a request: a fresh, unpublished one


def test_an_unexpected_error_is_published_as_a_500_and_raised(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    published = []
    monkeypatch.setattr(local, "record", lambda t, status, seconds: published.append(status))

    @observe.observed("/read", lambda: "dev")
    def view():
        raise KeyError("bug")
    with pytest.raises(KeyError):
        view()
    assert published == [500]


def test_on_lambda_the_request_goes_to_emf_with_the_api_stage(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "connector")
    printed = []
    monkeypatch.setattr(emf, "record", lambda t, seconds, stage: printed.append((t.route, stage)))
    monkeypatch.setattr(local, "record", lambda *args: pytest.fail("not off Lambda"))

    @observe.observed("/read", lambda: "prod")
    def view():
        return Answer(200)
    view()
    assert printed == [("/read", "prod")]


def test_a_telemetry_failure_is_logged_and_never_fails_the_request(monkeypatch, caplog):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)

    def broken(*args):
        raise RuntimeError("registry broken")
    monkeypatch.setattr(local, "record", broken)

    @observe.observed("/write", lambda: "dev")
    def view():
        return Answer(204)
    with caplog.at_level(logging.ERROR, logger="chalicelib.telemetry.observe"):
        assert view().status_code == 204
    assert "could not record the request's metrics" in caplog.text


def test_the_time_published_is_the_views_by_the_clock(monkeypatch):
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    clock = [2.0]
    monkeypatch.setattr(observe.time, "perf_counter", lambda: clock[0])
    published = []
    monkeypatch.setattr(local, "record", lambda t, status, seconds: published.append(seconds))

    @observe.observed("/write", lambda: "dev")
    def view():
        clock[0] = 7.0  # the view takes 5 s
        return Answer(204)
    view()
    assert published == [5.0]


def test_a_view_keeps_its_name_and_docstring_which_chalice_uses():
    """Chalice names a route's view after the function, and takes the route's summary in
    the API definition it generates (``chalice package``) from the docstring."""
    @observe.observed("/read", lambda: "dev")
    def read_view():
        """Answer a remote read."""
    assert read_view.__name__ == "read_view"
    assert read_view.__doc__ == "Answer a remote read."
