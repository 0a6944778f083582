"""`make run`'s HTTP server: Chalice's local server, hardened for Prometheus traffic.

It serves the app as ``chalice local --no-autoreload`` does (the stage's config from
``.chalice/config.json``, its environment variables copied over the process environment,
Chalice's ``LocalGateway`` for routing and binary bodies), with these differences:

- a body is refused (413) from its ``Content-Length`` before a byte of it is read, when it is
  larger than any body the app could accept (``MAX_DECODED_BYTES``, snappy-compressed);
- ``Transfer-Encoding: chunked`` bodies are decoded, under the same limit; other transfer
  codings, and a request with both ``Transfer-Encoding`` and ``Content-Length``, are refused;
- a ``Content-Length`` that is not a byte count is answered 400;
- the listen backlog is 1024, and a connection idle for ``--idle-timeout`` seconds is closed;
- error bodies are JSON ``{"message": ...}`` and never repeat a request header.

Run it with ``python -m localserver --stage local --port 8000`` (``make run`` does).
"""
import argparse
import functools
import json
import logging
import os
import re
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from chalice import local
from chalice.cli.factory import CLIFactory
from chalice.deploy.validate import validate_routes

PROJECT_DIR = os.path.dirname(os.path.abspath(__file__))
IDLE_TIMEOUT_SECONDS = "IDLE_TIMEOUT_SECONDS"
DEFAULT_IDLE_TIMEOUT = 60.0
LISTEN_BACKLOG = 1024
MAX_LINE = 4096          # longest chunk-size or trailer line
MAX_TRAILERS = 64        # most trailer fields after the last chunk
LINGER_SECONDS = 2.0     # how long unread body bytes are drained before a refusal's close
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")


def max_body_bytes(max_decoded_bytes: int) -> int:
    """The largest snappy block whose content fits ``max_decoded_bytes`` (snappy's
    MaxCompressedLength): anything longer cannot decode under the app's limit."""
    return 32 + max_decoded_bytes + max_decoded_bytes // 6


@dataclass(frozen=True)
class ServerLimits:
    """What one connection may cost the server."""

    max_body_bytes: int
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT


class Refused(Exception):
    """A request answered by the server itself, with a status and a JSON message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_message(message: str) -> bytes:
    """An error body: ``{"message": ...}``."""
    return json.dumps({"message": message}).encode("utf-8")


class Gateway(local.LocalGateway):
    """Chalice's LocalGateway, whose answer to an unknown path names no request header."""

    def __init__(self, app_object: local.Chalice, config: local.Config) -> None:
        super().__init__(app_object, config)
        served = ", ".join(f"{method} {path}" for path, methods in sorted(app_object.routes.items())
                           for method in sorted(methods))
        self._no_route = json_message(
            f"Missing Authentication Token: no route for this path; this server has {served}")

    def _generate_lambda_event(self, method: str, path: str, headers: Dict[str, str],
                               body: Optional[bytes]) -> Dict:
        try:
            return super()._generate_lambda_event(method, path, headers, body)
        except ValueError:  # no route: what API Gateway answers, without echoing headers
            raise local.ForbiddenError(
                {"x-amzn-RequestId": str(uuid.uuid4()),
                 "x-amzn-ErrorType": "MissingAuthenticationTokenException"},
                self._no_route) from None


class RequestHandler(local.ChaliceRequestHandler):
    """ChaliceRequestHandler that frames and bounds bodies before the gateway sees them."""

    def __init__(self, request: socket.socket, client_address: Tuple[str, int],
                 server: "Server", app_object: local.Chalice, config: local.Config,
                 limits: ServerLimits) -> None:
        self.timeout = limits.idle_timeout  # socket timeout: idle, header and body reads
        self.max_body_bytes = limits.max_body_bytes
        self._body: Optional[bytes] = None
        self.local_gateway = Gateway(app_object, config)
        local.BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    # -- framing ------------------------------------------------------------------------

    def _content_length(self) -> Optional[int]:
        """The declared body length, ``None`` without one; 400 unless a plain byte count."""
        values = self.headers.get_all("Content-Length")
        if not values:
            return None
        parts = [part.strip() for value in values for part in value.split(",")]
        if not all(_DIGITS.fullmatch(part) for part in parts):
            raise Refused(400, "malformed Content-Length: expected a byte count (digits only)")
        if len(set(int(part) for part in parts)) != 1:
            raise Refused(400, "malformed Content-Length: several different values")
        return int(parts[0])

    def _is_chunked(self) -> bool:
        """True for ``Transfer-Encoding: chunked``; refuse any other transfer coding."""
        values = self.headers.get_all("Transfer-Encoding")
        if not values:
            return False
        codings = [c.strip().lower() for value in values for c in value.split(",") if c.strip()]
        if self.headers.get_all("Content-Length"):
            raise Refused(400, "both Transfer-Encoding and Content-Length: send only one")
        if codings == ["chunked"]:
            return True
        if codings and codings[-1] == "chunked":
            raise Refused(501, "unsupported transfer coding: only chunked is accepted")
        raise Refused(400, "Transfer-Encoding does not end in chunked: the body length "
                           "cannot be determined")

    def _check_length(self, length: int) -> None:
        if length > self.max_body_bytes:
            raise Refused(413, f"request body of {length} bytes is over the limit of "
                               f"{self.max_body_bytes} (MAX_DECODED_BYTES, snappy-compressed)")

    def _check_framing(self) -> None:
        """Everything that can be refused before the body is read."""
        if not self._is_chunked():
            length = self._content_length()
            if length is not None:
                self._check_length(length)

    def _read_line(self) -> bytes:
        line = self.rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise Refused(400, f"chunked body: a line longer than {MAX_LINE} bytes")
        if not line.endswith(b"\n"):
            raise Refused(400, "chunked body: the connection ended inside the body")
        return line.rstrip(b"\r\n")

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_field = self._read_line().split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size_field):
                raise Refused(400, "chunked body: malformed chunk size")
            size = int(size_field, 16)
            if size == 0:
                break
            self._check_length(len(body) + size)
            data = self.rfile.read(size)
            if len(data) < size:
                raise Refused(400, "chunked body: the connection ended inside a chunk")
            body += data
            if self._read_line() != b"":
                raise Refused(400, "chunked body: chunk data longer than its size")
        for _ in range(MAX_TRAILERS):
            if self._read_line() == b"":
                return bytes(body)
        raise Refused(400, f"chunked body: more than {MAX_TRAILERS} trailer fields")

    def _read_body(self) -> Optional[bytes]:
        try:
            if self._is_chunked():
                return self._read_chunked()
            length = self._content_length()
            if not length:
                return None
            self._check_length(length)
            body = self.rfile.read(length)
        except TimeoutError:
            raise Refused(408, f"no body bytes for {self.timeout:g} s") from None
        if len(body) < length:
            raise Refused(400, "the connection ended inside the body")
        return body

    # -- answers ------------------------------------------------------------------------

    def _refuse(self, refused: Refused) -> None:
        """Answer with a JSON message and close (the rest of the body is never parsed)."""
        body = json_message(refused.message)
        self.close_connection = True
        try:
            self.send_response(refused.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:  # the client is gone
            return
        self._linger()

    def _linger(self) -> None:
        """Drain what the client is still sending for a moment, so that closing does not
        reset the connection before the client reads the answer. Nothing is kept."""
        try:
            self.wfile.flush()
            self.request.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            while (left := deadline - time.monotonic()) > 0:
                self.request.settimeout(left)
                if not self.request.recv(65536):
                    break
        except OSError:
            pass

    def send_error(self, code: int, message: Optional[str] = None,
                   explain: Optional[str] = None) -> None:
        """http.server's own errors (bad request line, too many headers…) as JSON."""
        try:
            short, _ = self.responses[code]
        except KeyError:
            short = "error"
        if self.request_version == "HTTP/0.9":  # an unparsable request line: answer HTTP/1.0
            self.request_version = "HTTP/1.0"
        self._refuse(Refused(code, message or short))

    def handle_expect_100(self) -> bool:
        """Refuse before the client sends the body (``Expect: 100-continue``)."""
        try:
            self._check_framing()
        except Refused as refused:
            self._refuse(refused)
            return False
        return super().handle_expect_100()

    def _parse_payload(self) -> Tuple[Dict[str, str], Optional[bytes]]:
        return dict(self.headers), self._body

    def _generic_handle(self) -> None:
        try:
            self._body = self._read_body()
        except Refused as refused:
            self._refuse(refused)
            return
        super()._generic_handle()

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_PATCH = do_OPTIONS = _generic_handle


class Server(local.ThreadedHTTPServer):
    """One thread per connection (as chalice local), with a backlog for many shards."""

    request_queue_size = LISTEN_BACKLOG


def create_server(stage: str, host: str, port: int, idle_timeout: float,
                  project_dir: str = PROJECT_DIR) -> local.LocalDevServer:
    """Load the app for ``stage`` as ``chalice local`` does and bind the hardened server."""
    os.environ["AWS_CHALICE_CLI_MODE"] = "true"
    os.chdir(project_dir)
    factory = CLIFactory(project_dir, environ=os.environ)
    config = factory.create_config_obj(chalice_stage_name=stage)
    app_obj = config.chalice_app  # imports app.py after copying the stage's variables
    validate_routes(app_obj.routes)
    from chalicelib.config import Settings  # after the stage's variables are in place
    limits = ServerLimits(max_body_bytes(Settings.from_env().max_decoded_bytes), idle_timeout)
    # As chalice.local.create_local_server: current_request becomes thread-local.
    local.CustomLocalChalice.__bases__ = (local.LocalChalice, app_obj.__class__)
    app_obj.__class__ = local.CustomLocalChalice
    return local.LocalDevServer(app_obj, config, host, port,
                                handler_cls=functools.partial(RequestHandler, limits=limits),
                                server_cls=Server)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m localserver",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--stage", default="local", help="Chalice stage (default: local)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--idle-timeout", type=float,
                        default=float(os.environ.get(IDLE_TIMEOUT_SECONDS) or DEFAULT_IDLE_TIMEOUT),
                        help="seconds a connection may stay silent before it is closed "
                             f"(default: ${IDLE_TIMEOUT_SECONDS} or {DEFAULT_IDLE_TIMEOUT:g})")
    args = parser.parse_args(argv)
    if args.idle_timeout <= 0:
        parser.error("--idle-timeout must be positive")
    # As chalice local: the app's log lines on stdout, as on Lambda.
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
    create_server(args.stage, args.host, args.port, args.idle_timeout).serve_forever()


if __name__ == "__main__":
    main()
