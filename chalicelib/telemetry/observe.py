"""Counting a route's requests: each gets a ``RequestTelemetry`` (``current()`` while it
runs), published once it is answered: to the local registry off Lambda (``GET /metrics``),
as an EMF document on Lambda. Telemetry never fails a request: its errors are logged."""
import contextvars
import functools
import logging
import os
import time
from typing import Callable

from chalicelib.telemetry.request import RequestTelemetry

LOG = logging.getLogger(__name__)
_CURRENT: contextvars.ContextVar = contextvars.ContextVar("request_telemetry")


def on_lambda() -> bool:
    """Whether this process is a Lambda function (its runtime sets this variable)."""
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


def current() -> RequestTelemetry:
    """The telemetry of the request being handled (a fresh one outside a route)."""
    telemetry = _CURRENT.get(None)
    return telemetry if telemetry is not None else RequestTelemetry("")


def observed(route: str, stage: Callable[[], str]) -> Callable:
    """Decorate a Chalice view: count its request and publish the counts when answered
    (``stage``: the API stage's name, for the EMF dimension)."""
    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            telemetry = RequestTelemetry(route)
            token = _CURRENT.set(telemetry)
            started = time.perf_counter()
            status = 500  # unless the view answers
            try:
                response = view(*args, **kwargs)
                status = response.status_code
                return response
            finally:
                _CURRENT.reset(token)
                publish(telemetry, status, time.perf_counter() - started, stage)
        return wrapper
    return decorate


def publish(telemetry: RequestTelemetry, status: int, seconds: float,
            stage: Callable[[], str]) -> None:
    """Publish one answered request; an error here is logged, never raised."""
    try:
        if on_lambda():
            from chalicelib.telemetry import emf
            emf.record(telemetry, seconds, stage())
        else:
            from chalicelib.telemetry import local
            local.record(telemetry, status, seconds)
    except Exception:  # noqa: BLE001 -- telemetry must not fail the request
        LOG.exception("could not record the request's metrics")
