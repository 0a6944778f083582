"""Prometheus remote read/write endpoints for Amazon Timestream (routes only)."""
import functools
import logging

from chalice import Chalice, Response
from chalice.app import CaseInsensitiveMapping

from chalicelib import auth, handlers, storage
from chalicelib.config import Settings
from chalicelib.context import Limits
from chalicelib.errors import ConnectorError
from chalicelib.quoting import escape_control
from chalicelib.telemetry import observe

app = Chalice(app_name="timestream-prometheus-connector")
# Every body is binary: API Gateway passes it through untouched (binaryMediaTypes).
app.api.binary_types = ["*/*"]

SETTINGS = Settings.from_env()
# A no-op on Lambda, whose runtime installs its own handler; makes `chalice local` show logs.
logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("chalicelib").setLevel(SETTINGS.log_level)
app.log.setLevel(SETTINGS.log_level)


@app.middleware("http")
def accept_any_response(event, get_response):
    """Prometheus sends no Accept header, and Chalice refuses a binary response
    (400) to a request without one. No Accept header means "anything" (RFC 9110)."""
    if event is not None and "accept" not in event.headers:
        event.headers = CaseInsensitiveMapping({**event.headers, "accept": "*/*"})
    return get_response(event)


def errors_as_responses(view):
    """Turn a ConnectorError into its status and a one-line text body.

    Anything else propagates to Chalice, which logs the traceback and answers a
    generic 500 (so Prometheus retries)."""
    @functools.wraps(view)
    def wrapper():
        try:
            return view()
        except ConnectorError as exc:
            message = escape_control(str(exc))  # client text never breaks a line
            log = app.log.error if exc.status >= 500 else app.log.warning
            log("%s %d: %s", app.current_request.path, exc.status, message)
            return Response(body=f"{message}\n".encode("utf-8"), status_code=exc.status,
                            headers={"Content-Type": "text/plain; charset=utf-8",
                                     **(exc.headers or {})})
    return wrapper


def api_stage() -> str:
    """The API Gateway stage serving the request (the stage's name in CloudWatch)."""
    return (app.current_request.context or {}).get("stage", "")


@app.route("/write", methods=["POST"], content_types=["*/*"])
@observe.observed("/write", api_stage)
@errors_as_responses
def write():
    """Remote write 1.0 or 2.0 (by Content-Type): store every float and native histogram sample."""
    request = app.current_request
    auth.check_caller(SETTINGS.auth_mode, request.context, writing=True)
    written = handlers.write(request.raw_body, request.headers,
                             storage.store_for_request(SETTINGS, request.headers, writing=True),
                             Limits.from_settings(SETTINGS), observe.current())
    return Response(body=b"", status_code=204, headers=written.headers)


@app.route("/read", methods=["POST"], content_types=["*/*"])
@observe.observed("/read", api_stage)
@errors_as_responses
def read():
    """Remote read (SAMPLES or STREAMED_XOR_CHUNKS): every query answered, in request order."""
    request = app.current_request
    auth.check_caller(SETTINGS.auth_mode, request.context, writing=False)
    headers, body = handlers.read(request.raw_body, request.headers,
                                  storage.store_for_request(SETTINGS, request.headers),
                                  Limits.from_settings(SETTINGS), observe.current())
    return Response(body=body, status_code=200, headers=headers)


@app.route("/metrics", methods=["GET"])
def metrics():
    """The connector's own metrics in Prometheus's text format (off Lambda; on Lambda
    they go to CloudWatch as EMF documents)."""
    if observe.on_lambda():
        return Response(body="not served on Lambda: see the stack's CloudWatch dashboard\n",
                        status_code=404, headers={"Content-Type": "text/plain"})
    from chalicelib.telemetry import local
    body, content_type = local.exposition()
    return Response(body=body, status_code=200, headers={"Content-Type": content_type})
