"""The Timestream clients: how they are configured, how AWS's errors map to the
connector's, and which failures are retried (``retry.with_retries``) inside the request
deadline. Shared by the write path (``store``) and the read path (``reader``).
"""
from typing import Callable, Optional, TypeVar

from botocore.exceptions import (BotoCoreError, ClientError, ConnectionError as BotoConnectionError,
                                 HTTPClientError, ReadTimeoutError)

from chalicelib import retry
from chalicelib.context import Deadline
from chalicelib.errors import BackendError, ConnectorError, Forbidden, Unauthorized
from chalicelib.retry import Transient
from chalicelib.telemetry.request import CallStats

T = TypeVar("T")

TRANSIENT = {"ThrottlingException", "InternalServerException", "ServiceUnavailable",
             "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
             "InternalFailure"}
BAD_CREDENTIALS = {"UnrecognizedClientException", "InvalidSignatureException",
                   "InvalidClientTokenId", "ExpiredTokenException", "SignatureDoesNotMatch",
                   "IncompleteSignature", "MissingAuthenticationToken", "ExpiredToken"}
DENIED = {"AccessDeniedException", "AccessDenied"}
# Timeouts of the boto3 clients (``timestream.build`` builds them). A retry starts only if one
# more call (connect + read timeout) fits before the request deadline.
CONNECT_TIMEOUT_SECONDS = 2
WRITE_READ_TIMEOUT_SECONDS = 5


def error_for(exc: ClientError, what: str) -> ConnectorError:
    """The connector error a non-transient Timestream ClientError maps to."""
    code = exc.response.get("Error", {}).get("Code", "")
    message = exc.response.get("Error", {}).get("Message", "")
    if code in BAD_CREDENTIALS:
        return Unauthorized(f"AWS refused the credentials ({code}): check the access key id "
                            "and secret access key in Prometheus's basic_auth")
    if code in DENIED:
        return Forbidden(f"access denied to {what} ({code}): attach the execution policy "
                         "(make policies) to the IAM user whose keys Prometheus sends")
    if code == "ResourceNotFoundException":
        return BackendError(f"{what} does not exist ({message}): create it with "
                            "`aws timestream-write create-database` and `create-table`, or set "
                            "DefaultDatabase/DefaultTable")
    return BackendError(f"Timestream refused the request to {what} ({code}): {message}")


def classified(call: Callable[[], T], what: str) -> Callable[[float], T]:
    """``call`` as ``retry.with_retries`` runs it: throttling, 5xx, timeouts and connection
    errors are ``Transient``; other AWS errors map to connector errors (``error_for``)."""
    def attempt(timeout: float) -> T:  # the clients' own timeouts bound each call
        try:
            return call()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            # (botocore sets HTTPStatusCode on every ClientError it raises: the default is moot)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)  # pragma: no mutate
            if code not in TRANSIENT and status < 500:
                raise error_for(exc, what) from None
            raise Transient(code or f"HTTP {status}",
                            throttled=code == "ThrottlingException") from None
        except ReadTimeoutError:
            # connected, but no answer in time: Timestream is slow, the network is fine
            raise Transient("ReadTimeoutError", lambda attempts: (
                f"Timestream did not answer {what} in time ({attempts} attempts, each within "
                "the client's read timeout): it is slow or overloaded; retry later")) from None
        except (BotoConnectionError, HTTPClientError) as exc:
            reason = type(exc).__name__
            # the endpoint is down or unreachable, not the table
            where = getattr(exc, "kwargs", {}).get("endpoint_url") or "its endpoint"
            raise Transient(reason, lambda attempts: (
                f"cannot reach Timestream at {where} ({reason}, {attempts} attempts): "
                "check TIMESTREAM_ENDPOINT_URL / the region and the network; retry later")
            ) from None
        except BotoCoreError as exc:
            raise BackendError(f"calling Timestream for {what} failed: {exc}") from None
    return attempt


def with_retries(call: Callable[[], T], deadline: Deadline, what: str,
                 attempt_seconds: float, stats: Optional[CallStats] = None) -> T:
    """Run ``call``, retrying transient failures (``retry.with_retries``) while another
    attempt (at most ``attempt_seconds``, the client's timeouts) still fits before the
    deadline; then BackendUnavailable (503: Prometheus retries). ``stats`` counts them."""
    return retry.with_retries(classified(call, what), deadline, what, attempt_seconds,
                              attempt_seconds, stats)


def client_config(concurrency: int, read_timeout: float):
    """The botocore configuration of the Timestream clients: no botocore retries (the store
    retries within the request deadline), short timeouts, and no client-side parameter
    validation: it took about a third of boto3's CPU per WriteRecords call (`make bench`),
    and Timestream validates every request itself (a refused record is isolated and
    reported, see store.py)."""
    from botocore.config import Config

    return Config(retries={"total_max_attempts": 1, "mode": "standard"},
                  max_pool_connections=concurrency * 2, parameter_validation=False,
                  connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=read_timeout)
