"""The interface every storage backend implements."""
from typing import Iterable, Protocol, Sequence

from chalicelib.context import RequestContext
from chalicelib.model import Query, Series, WriteResult


class Store(Protocol):
    """A place to keep samples and read them back, one request at a time.

    Contract, shared by every backend (tests/contract/test_store_contract.py):

    - ``write`` stores every sample with its exact float64 bits (NaN payloads
      such as Prometheus stale markers included) and is idempotent: writing the
      same sample twice stores it once. Samples it can never store are counted
      in ``WriteResult.rejected`` with reasons, after the rest are stored.
    - ``read`` returns the series selected by all the query's matchers that have
      samples in ``[start_ms, end_ms]`` (inclusive), series sorted by labels,
      samples by time, charging the request's ``budget`` as it gathers them
      (ResponseTooLarge past a limit).
    - Both work within the request's ``deadline``: no call to a backend starts
      that cannot finish before it, and work past it stops with BackendUnavailable
      (503, so Prometheus retries).
    """

    def write(self, series: Sequence[Series], ctx: RequestContext) -> WriteResult:
        """Store ``series``; see the class docstring for the contract."""
        ...

    def read(self, query: Query, ctx: RequestContext) -> Iterable[Series]:
        """Answer one query; see the class docstring for the contract."""
        ...

    def check_credentials(self, ctx: RequestContext) -> None:
        """Before a read compiles its matchers: Unauthorized or Forbidden if the backend
        refuses the request's credentials, with one cheap call per credential (stores are
        kept per credential); any other failure is left for the read itself to meet."""
        ...
