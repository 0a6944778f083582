"""Who may call the connector, and with which AWS credentials it calls the backend
(``AUTH_MODE``, chalicelib/config.py; the template sets it from ``EnableSigV4Auth``):

- ``basic``: as in the original connector, Prometheus sends HTTP basic auth whose username is
  an IAM access key id and whose password is the secret access key, and the connector calls
  Timestream with them. Temporary credentials add their session token in the
  ``X-AWS-Session-Token`` header (Prometheus: ``headers:`` in the remote_write/remote_read
  block).
- ``role``: the connector uses its own credentials (the Lambda's role); authenticating callers
  is left to what stands in front of it.
- ``sigv4``: the connector uses its own credentials, and API Gateway authenticates every
  caller (``AWS_IAM`` authorization: the request is signed with SigV4, by a proxy beside
  Prometheus). ``check_caller`` refuses a request API Gateway did not authenticate that way.

Credentials are never logged; ``Credentials.__repr__`` hides the secrets.
"""
import base64
import hashlib
import re
from typing import Mapping, NamedTuple, Optional

from chalicelib.errors import CredentialsFailed, Forbidden, Unauthorized

BASIC, ROLE, SIGV4 = "basic", "role", "sigv4"
SESSION_TOKEN_HEADER = "x-aws-session-token"
# IAM AccessKeyId: pattern [\w]+ (IAM API reference, AccessKey). Secrets and session tokens
# are printable ASCII without spaces; anything else (a CR/LF, a non-ASCII byte) cannot be
# signed and would only fail later, so it is refused here, without calling AWS.
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9_]{1,128}")
_SECRET = re.compile(r"[\x21-\x7e]+")


class Credentials(NamedTuple):
    """An access key pair, optionally with a session token."""

    access_key_id: str
    secret_access_key: str
    session_token: Optional[str] = None

    def __repr__(self) -> str:
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key=***)"

    def cache_key(self) -> str:
        """A digest identifying these credentials without holding the secret in clear."""
        material = "\0".join([self.access_key_id, self.secret_access_key,
                              self.session_token or ""])
        return hashlib.sha256(material.encode("utf-8")).hexdigest()


def credentials_from_headers(headers: Mapping[str, str]) -> Credentials:
    """Credentials from the Authorization (basic) header; Unauthorized if missing or malformed."""
    lowered = {name.lower(): value for name, value in headers.items()}
    header = lowered.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "aws4-hmac-sha256":
        raise Unauthorized("the request is signed with SigV4, but this connector takes IAM keys "
                           "in basic auth (AUTH_MODE=basic): deploy it with EnableSigV4Auth=true "
                           "for API Gateway to check signed requests, or send basic_auth "
                           "without the SigV4 proxy")
    if scheme.lower() != "basic" or not encoded.strip():
        raise Unauthorized("missing credentials: configure basic_auth in Prometheus with an IAM "
                           "access key id as username and its secret access key as password")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # not ASCII, not base64 (binascii.Error), not UTF-8
        raise Unauthorized("malformed basic auth header: not base64 of username:password") \
            from None
    access_key_id, _, secret = decoded.partition(":")  # no ':': the secret is ""
    if not access_key_id or not secret:
        raise Unauthorized("basic auth must carry an access key id and a secret access key")
    if not _ACCESS_KEY_ID.fullmatch(access_key_id):
        raise Unauthorized("malformed access key id in basic auth username: an IAM access key "
                           "id has only letters, digits and '_'")
    if not _SECRET.fullmatch(secret):
        raise Unauthorized("malformed secret access key in basic auth password: it must be "
                           "printable ASCII without spaces or line breaks (check the "
                           "password_file for a trailing newline)")
    token = lowered.get(SESSION_TOKEN_HEADER, "").strip() or None
    if token is not None and not _SECRET.fullmatch(token):
        raise Unauthorized("malformed X-AWS-Session-Token header: it must be printable ASCII")
    return Credentials(access_key_id, secret, token)


def check_caller(auth_mode: str, request_context: Optional[Mapping], writing: bool) -> None:
    """With ``AUTH_MODE=sigv4`` the connector reads and writes with its own role, so it serves
    only requests that API Gateway authenticated with IAM: ``AWS_IAM`` authorization puts the
    signer in the request context (``identity.userArn``, "the ARN of the effective user
    identified after authentication"). A request without one came past no IAM check (the API's
    methods are not ``AWS_IAM``, or the app runs elsewhere with this mode) and is refused:
    403 on a read; on a write 500, so that Prometheus keeps the samples until that is fixed."""
    if auth_mode != SIGV4:
        return
    identity = (request_context or {}).get("identity") or {}
    if identity.get("userArn"):
        return
    message = ("AUTH_MODE=sigv4, but API Gateway authenticated no IAM caller for this request: "
               "the API's /write and /read methods must use AWS_IAM authorization "
               "(EnableSigV4Auth=true)")
    raise CredentialsFailed(message) if writing else Forbidden(message)
