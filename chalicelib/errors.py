"""One exception hierarchy; each class carries the HTTP status it maps to.

Prometheus's remote-write contract decides the split: a 4xx makes Prometheus
drop the batch for good, a 5xx makes it retry. So only input that can never
be stored gets a 4xx; anything transient on our side gets a 5xx.
"""
from typing import Dict, Optional


class ConnectorError(Exception):
    """Base class: a failure with a one-line, client-safe message."""

    status: int = 500
    headers: Optional[Dict[str, str]] = None


class BadRequest(ConnectorError):
    """The request can never succeed as sent (bad body, labels, matchers)."""

    status = 400


class Unauthorized(ConnectorError):
    """No usable credentials were sent, or AWS refused them."""

    status = 401
    headers = {"WWW-Authenticate": 'Basic realm="timestream-prometheus-connector"'}


class Forbidden(ConnectorError):
    """The credentials are valid but may not touch the table."""

    status = 403


class PayloadTooLarge(ConnectorError):
    """The body (decoded) is larger than the configured cap."""

    status = 413


class UnsupportedMediaType(ConnectorError):
    """Content-Type or Content-Encoding this connector cannot read."""

    status = 415


class ResponseTooLarge(ConnectorError):
    """A read would return more than the configured sample/byte cap.

    Prometheus answers its own sample limit with 400; we do the same so the
    query fails loudly instead of the process running out of memory.
    """

    status = 400


def too_many_samples(limit: int) -> ResponseTooLarge:
    """The error every store raises when a query selects more than ``limit`` samples."""
    return ResponseTooLarge(f"query selects more than {limit} samples (READ_SAMPLE_LIMIT): "
                            "narrow the matchers or the time range")


class BackendError(ConnectorError):
    """The storage backend failed in a way a retry will not fix by itself
    (missing table, bad configuration). Still a 5xx: the data is kept by
    Prometheus until the operator fixes it."""

    status = 500


class CredentialsFailed(ConnectorError):
    """Credentials missing, malformed or refused on /write. A 5xx, not 401/403: Prometheus
    drops a batch answered 4xx, and an expired token or a key rotation must not lose data."""

    status = 500


class BackendUnavailable(ConnectorError):
    """Transient backend failure (throttling, 5xx, timeout): retry later."""

    status = 503
