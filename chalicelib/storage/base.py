"""The interface every storage backend implements."""
from typing import List, Protocol, Sequence

from chalicelib.model import Query, Series, WriteResult


class Store(Protocol):
    """A place to keep samples and read them back.

    Contract, shared by every backend (tests/test_store_contract.py):

    - ``write`` stores every sample with its exact float64 bits (NaN payloads
      such as Prometheus stale markers included) and is idempotent: writing the
      same sample twice stores it once. Samples it can never store are counted
      in ``WriteResult.rejected`` with reasons, after the rest are stored.
    - ``read`` returns the series selected by all the query's matchers that have
      samples in ``[start_ms, end_ms]`` (inclusive), series sorted by labels,
      samples by time; it raises ResponseTooLarge past ``sample_limit`` samples.
    """

    def write(self, series: Sequence[Series]) -> WriteResult:
        """Store ``series``; see the class docstring for the contract."""
        ...

    def read(self, query: Query, sample_limit: int) -> List[Series]:
        """Answer one query; see the class docstring for the contract."""
        ...
