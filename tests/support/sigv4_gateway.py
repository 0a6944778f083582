"""A verifying stand-in for API Gateway's ``AWS_IAM`` authorization (``EnableSigV4Auth=true``),
and for the IAM check of an AWS service the function calls.

``verify`` checks a request's Signature Version 4 as AWS does, from the request alone and the
secret of the access key it names ("Create a signed AWS API request", IAM User Guide): the
``Authorization`` header's form; the credential scope (the date of ``X-Amz-Date``, this
region, this service, ``aws4_request``); the time, at most 5 minutes from now; a session
token, when the key has one, in ``X-Amz-Security-Token`` and signed; ``host`` and
``x-amz-date`` among the signed headers; a body that hashes to ``X-Amz-Content-SHA256`` if
that is sent. It then computes the canonical request (from the signed headers only), the
string to sign and the signature with botocore's ``SigV4Auth`` and the known secret, and
compares. Anything else is refused 403, with an error type and message modelled on API
Gateway's (``Missing Authentication Token``, ``The request signature we calculated does not
match…``, ``Signature expired…``).

``Gateway`` serves ``POST /<stage>/write`` and ``/read`` like a REST API whose methods use
``AWS_IAM``: verified, then allowed by the signer's identity policy (``execute-api:Invoke`` on
``arn:aws:execute-api:<region>:<account>:<api id>/<stage>/POST/<route>``), it hands the
request to the app as a Lambda proxy event whose ``requestContext.identity`` names the signer;
refused, the app never runs. ``SigningProxy`` verifies the calls the function makes (service
``timestream``) and forwards them to an emulation, recording who signed each.

``python -I -S sigv4_gateway.py PORT STAGE IDENTITIES.json`` runs the gateway in front of the
``app`` of the current directory (an extracted deployment.zip): standard library and botocore
only, both in the zip.
"""
import base64
import datetime
import fnmatch
import hashlib
import hmac
import http.client
import http.server
import json
import re
import sys
import threading
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Tuple
from urllib.parse import urlsplit

if __name__ == "__main__":  # run from an extracted deployment.zip, without site-packages
    sys.path.insert(0, ".")
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_SKEW = datetime.timedelta(minutes=5)
AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),"
                           r"\s*Signature=([0-9a-f]{64})")


class Identity(NamedTuple):
    """An IAM identity: its access key, and the policy attached to it."""

    access_key: str
    secret_key: str
    user_arn: str
    session_token: Optional[str] = None
    policy: Optional[dict] = None

    @property
    def account(self) -> str:
        return self.user_arn.split(":")[4]


class Refused(Exception):
    """What API Gateway answers a request it does not authorize: 403, its error type
    (``x-amzn-ErrorType``) and its message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type, self.message = error_type, message


def verify(method: str, url: str, headers: Mapping[str, str], body: bytes,
           identities: Mapping[str, Identity], region: str, service: str,
           now: Optional[datetime.datetime] = None) -> Identity:
    """The identity that signed the request; Refused if the signature is missing or wrong."""
    lowered = {name.lower(): value for name, value in headers.items()}
    authorization = lowered.get("authorization")
    if not authorization:
        raise Refused("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = AUTHORIZATION.fullmatch(authorization.strip())
    if not match:
        raise Refused("IncompleteSignatureException",
                      f"Authorization header requires 'Credential', 'Signature' and "
                      f"'SignedHeaders' parameters of the {ALGORITHM} algorithm.")
    credential, signed_names, signature = match.groups()
    access_key, *scope = credential.split("/")
    stamp = lowered.get("x-amz-date", "")
    try:
        signed_at = datetime.datetime.strptime(stamp, TIMESTAMP).replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise Refused("IncompleteSignatureException",
                      "Authorization header requires existence of either a 'X-Amz-Date' or a "
                      "'Date' header.") from None
    if len(scope) != 4 or scope[3] != "aws4_request":
        raise Refused("IncompleteSignatureException", "Credential should be scoped correctly.")
    if scope[0] != stamp[:8]:
        raise Refused("InvalidSignatureException",
                      f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version "
                      f"of date from HTTP: '{scope[0]}' != '{stamp[:8]}'")
    if scope[1] != region:
        raise Refused("InvalidSignatureException",
                      f"Credential should be scoped to a valid region, not '{scope[1]}'.")
    if scope[2] != service:
        raise Refused("InvalidSignatureException",
                      f"Credential should be scoped to correct service: '{service}'.")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if abs(now - signed_at) > MAX_SKEW:
        raise Refused("InvalidSignatureException",
                      f"Signature expired: {stamp} is now earlier than "
                      f"{(now - MAX_SKEW).strftime(TIMESTAMP)} ({now.strftime(TIMESTAMP)} - "
                      "5 min.)" if signed_at < now else
                      f"Signature not yet current: {stamp} is still later than "
                      f"{(now + MAX_SKEW).strftime(TIMESTAMP)} ({now.strftime(TIMESTAMP)} + "
                      "5 min.)")
    identity = identities.get(access_key)
    if identity is None:
        raise Refused("UnrecognizedClientException",
                      "The security token included in the request is invalid.")
    names = signed_names.split(";")
    if names != sorted(set(names)) or not {"host", "x-amz-date"} <= set(names) \
            or any(name not in lowered for name in names):
        raise Refused("IncompleteSignatureException",
                      "'Host' and 'X-Amz-Date' must be signed, and every signed header sent.")
    if identity.session_token is not None and (
            lowered.get("x-amz-security-token") != identity.session_token
            or "x-amz-security-token" not in names):
        raise Refused("UnrecognizedClientException",
                      "The security token included in the request is invalid.")
    if "x-amz-content-sha256" in lowered and \
            lowered["x-amz-content-sha256"] != hashlib.sha256(body).hexdigest():
        raise Refused("InvalidSignatureException",
                      "The provided 'x-amz-content-sha256' header does not match what was "
                      "computed.")
    expected = signature_of(method, url, {name: lowered[name] for name in names}, body,
                            identity, region, service, stamp)
    if not hmac.compare_digest(expected, signature):
        raise Refused("InvalidSignatureException",
                      "The request signature we calculated does not match the signature you "
                      "provided. Check your AWS Secret Access Key and signing method. Consult "
                      "the service documentation for details.")
    return identity


def signature_of(method: str, url: str, signed: Dict[str, str], body: bytes,
                 identity: Identity, region: str, service: str, stamp: str) -> str:
    """The signature of a request with these signed headers, computed with the identity's
    secret: the canonical request, the string to sign and the signing key of SigV4
    (botocore's ``SigV4Auth``)."""
    request = AWSRequest(method=method, url=url, headers=signed, data=body)
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(identity.access_key, identity.secret_key,
                                   identity.session_token), service, region)
    if signer.signed_headers(signer.headers_to_sign(request)) != ";".join(sorted(signed)):
        raise Refused("IncompleteSignatureException", "Unsupported signed header.")
    canonical = signer.canonical_request(request)
    return signer.signature(signer.string_to_sign(request, canonical), request)


def allowed(policy: Optional[dict], action: str, resource: str) -> bool:
    """Whether an identity policy's Allow statements grant ``action`` on ``resource`` (the
    policies here have no Deny and no condition)."""
    for statement in (policy or {}).get("Statement", []):
        actions = statement["Action"] if isinstance(statement["Action"], list) \
            else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) \
            else [statement["Resource"]]
        if statement["Effect"] == "Allow" and action in actions and \
                any(fnmatch.fnmatchcase(resource, pattern) for pattern in resources):
            return True
    return False


def _answer(handler: http.server.BaseHTTPRequestHandler, status: int,
            headers: List[Tuple[str, str]], body: bytes) -> None:
    handler.send_response(status)
    for name, value in headers:
        if name.lower() not in ("content-length", "connection", "transfer-encoding"):
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _serve(handle: Callable[[http.server.BaseHTTPRequestHandler, bytes], None],
           port: int = 0) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            handle(self, self.rfile.read(int(self.headers.get("Content-Length", 0))))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


class Gateway:
    """A REST API stage whose ``POST /write`` and ``POST /read`` use ``AWS_IAM``, in front of a
    Lambda proxy handler (``invoke(event) -> result``)."""

    def __init__(self, invoke: Callable[[dict], dict], identities: Mapping[str, Identity],
                 stage: str, region: str = "us-east-1", api_id: str = "a1b2c3d4e5",
                 port: int = 0) -> None:
        self.invoke, self.identities = invoke, identities
        self.stage, self.region, self.api_id = stage, region, api_id
        self.invoked = 0  # requests handed to the function
        self.server = _serve(self._handle, port)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{stage}"

    def start(self) -> "Gateway":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler: http.server.BaseHTTPRequestHandler, body: bytes) -> None:
        path = urlsplit(handler.path).path
        route = path[len(self.stage) + 1:] if path.startswith(f"/{self.stage}/") else None
        if route not in ("/write", "/read"):  # API Gateway's answer to an unknown resource
            return self._refuse(handler, Refused("MissingAuthenticationTokenException",
                                                 "Missing Authentication Token"))
        url = f"http://{handler.headers.get('Host', '')}{handler.path}"
        try:
            identity = verify("POST", url, dict(handler.headers.items()), body, self.identities,
                              self.region, "execute-api")
            method_arn = (f"arn:aws:execute-api:{self.region}:{identity.account}:{self.api_id}/"
                          f"{self.stage}/POST{route}")
            if not allowed(identity.policy, "execute-api:Invoke", method_arn):
                raise Refused("AccessDeniedException",
                              f"User: {identity.user_arn} is not authorized to perform: "
                              f"execute-api:Invoke on resource: {method_arn}")
        except Refused as refused:
            return self._refuse(handler, refused)
        self.invoked += 1
        result = self.invoke(self.event(route, handler, body, identity))
        data = result.get("body") or ""
        data = base64.b64decode(data) if result.get("isBase64Encoded") else data.encode()
        _answer(handler, result["statusCode"], list((result.get("headers") or {}).items()), data)

    def event(self, route: str, handler, body: bytes, identity: Identity) -> dict:
        """The Lambda proxy event of an IAM-authorized REST API method: the signer in
        ``requestContext.identity``, the body base64-encoded (binaryMediaTypes ``*/*``)."""
        return {
            "resource": route, "path": route, "httpMethod": "POST",
            "headers": dict(handler.headers.items()), "pathParameters": {},
            "multiValueQueryStringParameters": None, "stageVariables": {},
            "requestContext": {
                "resourcePath": route, "httpMethod": "POST", "stage": self.stage,
                "apiId": self.api_id, "accountId": identity.account,
                "identity": {"accessKey": identity.access_key, "accountId": identity.account,
                             "caller": identity.user_arn.rsplit("/", 1)[-1],
                             "userArn": identity.user_arn, "user": identity.user_arn,
                             "sourceIp": handler.client_address[0],
                             "userAgent": handler.headers.get("User-Agent")}},
            "body": base64.b64encode(body).decode("ascii"), "isBase64Encoded": True}

    @staticmethod
    def _refuse(handler, refused: Refused) -> None:
        _answer(handler, 403, [("Content-Type", "application/json"),
                               ("x-amzn-ErrorType", refused.error_type)],
                json.dumps({"message": refused.message}).encode())


class SigningProxy:
    """An AWS service's IAM check in front of an emulation of it: each call must be signed
    for ``service`` by one of ``identities``; it is then forwarded to ``upstream`` as sent.
    ``signers`` lists the access key of each call, in order."""

    def __init__(self, upstream: str, identities: Mapping[str, Identity], service: str,
                 region: str = "us-east-1") -> None:
        self.upstream, self.identities = urlsplit(upstream), identities
        self.service, self.region = service, region
        self.signers: List[str] = []
        self.refused: List[str] = []
        self.server = _serve(self._handle)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, handler, body: bytes) -> None:
        headers = dict(handler.headers.items())
        try:
            identity = verify("POST", f"http://{headers.get('Host', '')}{handler.path}", headers,
                              body, self.identities, self.region, self.service)
        except Refused as refused:
            self.refused.append(refused.message)
            return _answer(handler, 403, [("Content-Type", "application/x-amz-json-1.0")],
                           json.dumps({"__type": refused.error_type,
                                       "message": refused.message}).encode())
        self.signers.append(identity.access_key)
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port,
                                                timeout=60)
        try:
            connection.request("POST", handler.path, body, {
                k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")})
            response = connection.getresponse()
            _answer(handler, response.status, response.getheaders(), response.read())
        finally:
            connection.close()


def identities_from_json(text: str) -> Dict[str, Identity]:
    return {item["access_key"]: Identity(**item) for item in json.loads(text)}


def main() -> None:
    port, stage, identities_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    import app  # the packaged app, from the current directory

    with open(identities_file) as handle:
        identities = identities_from_json(handle.read())
    Gateway(lambda event: app.app(event, None), identities, stage, port=port).server \
        .serve_forever()


if __name__ == "__main__":
    main()
