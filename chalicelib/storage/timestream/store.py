"""Amazon Timestream for LiveAnalytics backend.

Writes: series -> records (``timestream_records``) -> WriteRecords calls of at most
100 records with CommonAttributes, issued concurrently (bounded) and retried with
backoff on throttling / 5xx / timeouts until the request deadline.
Reads: ``timestream_query.TimestreamReader``, given to the store.
"""
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, NamedTuple, Optional, Tuple, TypeVar

from botocore.exceptions import (BotoCoreError, ClientError, ConnectionError as BotoConnectionError,
                                 HTTPClientError)

from chalicelib.deadline import Deadline
from chalicelib.errors import (BackendError, BackendUnavailable, ConnectorError,
                               CredentialsFailed, Forbidden, Unauthorized)
from chalicelib.model import Query, Series, WriteResult, sample_count
from chalicelib.storage.timestream.records import Batch, Rejected, build_batches, split_batch
from chalicelib.protocol.write_v1 import describe

LOG = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT = {"ThrottlingException", "InternalServerException", "ServiceUnavailable",
             "ServiceUnavailableException", "RequestTimeout", "RequestTimeoutException",
             "InternalFailure"}
BAD_CREDENTIALS = {"UnrecognizedClientException", "InvalidSignatureException",
                   "InvalidClientTokenId", "ExpiredTokenException", "SignatureDoesNotMatch",
                   "IncompleteSignature", "MissingAuthenticationToken", "ExpiredToken"}
DENIED = {"AccessDeniedException", "AccessDenied"}
TABLE_FACTS_TTL_SECONDS = 300.0  # retention changes are rare; Timestream judges meanwhile
# Timeouts of the boto3 clients (stores.py builds them). A retry starts only if one
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


def with_retries(call: Callable[[], T], deadline: Deadline, what: str,
                 attempt_seconds: float) -> T:
    """Run ``call``, retrying transient failures with jittered exponential backoff
    while another attempt (at most ``attempt_seconds``, the client's timeouts) still
    fits before the deadline; then BackendUnavailable (503: Prometheus retries)."""
    attempt = 0
    while True:
        attempt += 1
        unreachable = None
        try:
            return call()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            # (botocore sets HTTPStatusCode on every ClientError it raises: the default is moot)
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)  # pragma: no mutate
            if code not in TRANSIENT and status < 500:
                raise error_for(exc, what) from None
            reason = code or f"HTTP {status}"
        except (BotoConnectionError, HTTPClientError) as exc:
            reason = type(exc).__name__
            unreachable = getattr(exc, "kwargs", {}).get("endpoint_url") or "its endpoint"
        except BotoCoreError as exc:
            raise BackendError(f"calling Timestream for {what} failed: {exc}") from None
        delay = min(2.0, 0.05 * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
        if deadline.remaining() < delay + attempt_seconds:
            if unreachable:  # the endpoint is down or unreachable, not the table
                raise BackendUnavailable(
                    f"cannot reach Timestream at {unreachable} ({reason}, {attempt} attempts): "
                    "check TIMESTREAM_ENDPOINT_URL / the region and the network; retry later")
            raise BackendUnavailable(f"{what} still failing after {attempt} "
                                     f"attempts ({reason}); retry later")
        LOG.info("retrying %s after %s (attempt %d)", what, reason, attempt)
        time.sleep(delay)


CONFLICT = "already exists"


def rejected_records(batch: Batch, rejections: List[dict]) -> List[Rejected]:
    """The records Timestream rejected, with its reasons. "Already exists" is a sample
    whose value differs from the one stored for that series and time (an identical
    re-write is accepted): a duplicate sample, counted like the others."""
    result = []
    for rejection in rejections:
        reason = rejection.get("Reason", "rejected")
        labels = batch.labels[rejection["RecordIndex"]]
        if CONFLICT in reason:
            reason = ("duplicate sample for timestamp: Timestream holds a different value for "
                      f"this series and time ({reason})")
        else:
            reason = f"Timestream rejected the record: {reason}"
        result.append(Rejected(labels, 1, reason))
    return result


class TableFacts(NamedTuple):
    """What the table says about which times it takes (DescribeTable)."""

    memory_hours: float
    magnetic_writes: bool
    magnetic_days: float

    def oldest_ms(self, now_ms: int) -> int:
        """The oldest time the table takes a record for."""
        if self.magnetic_writes:
            return now_ms - int(self.magnetic_days * 86_400_000)
        return now_ms - int(self.memory_hours * 3_600_000)


class TimestreamStore:
    """The Store protocol on one Timestream table."""

    def __init__(self, write_client, reader, database: str, table: str, *,
                 executor: ThreadPoolExecutor, deadline_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.write_client = write_client
        self.reader = reader
        self.database = database
        self.table = table
        self.executor = executor
        self.deadline_seconds = deadline_seconds
        self.clock = clock
        self._facts: Tuple[float, Optional[TableFacts]] = (-TABLE_FACTS_TTL_SECONDS, None)

    @property
    def call_seconds(self) -> float:
        """The longest a write call can take: its client's timeouts."""
        config = self.write_client.meta.config
        return config.connect_timeout + config.read_timeout

    @property
    def what(self) -> str:
        return f"Timestream table {self.database}.{self.table}"

    # -- writes --------------------------------------------------------------

    def write(self, series: List[Series], deadline: Optional[Deadline] = None) -> WriteResult:
        """Write all samples; rejects are counted with reasons, after the rest is written.

        Credentials AWS refuses are a 5xx here (Prometheus keeps the samples and retries;
        a 401/403 would make it drop them)."""
        try:
            return self._write(series, deadline or Deadline(self.deadline_seconds))
        except (Unauthorized, Forbidden) as exc:
            raise CredentialsFailed(str(exc)) from None

    def _write(self, series: List[Series], deadline: Deadline) -> WriteResult:
        now_ms = int(self.clock() * 1000)
        facts = self.table_facts(deadline)
        batches, rejected = build_batches(series, now_ms,
                                          facts.oldest_ms(now_ms) if facts else None)
        futures = [self.executor.submit(self._write_batch, batch, deadline) for batch in batches]
        failure: Optional[BaseException] = None
        for future in futures:  # wait for every call, so what can be written is written
            try:
                rejected.extend(future.result())
            except ConnectorError as exc:
                failure = failure if isinstance(failure, BackendUnavailable) else exc
        if failure is not None:
            raise failure
        total = sample_count(series)
        count = sum(r.count for r in rejected)
        for item in rejected[:20]:
            LOG.warning("rejected %d samples of %s: %s", item.count, describe(item.labels),
                        item.reason)
        if len(rejected) > 20:
            LOG.warning("... and %d more rejected series", len(rejected) - 20)
        reasons = tuple(f"{describe(r.labels)}: {r.reason}" for r in rejected)
        return WriteResult(total - count, count, reasons)

    def table_facts(self, deadline: Deadline) -> Optional[TableFacts]:
        """Retention and magnetic-store writes of the table (DescribeTable, cached); None if
        they cannot be read (then Timestream alone judges the times)."""
        fetched, facts = self._facts
        if time.monotonic() - fetched < TABLE_FACTS_TTL_SECONDS:
            return facts
        try:
            deadline.check(self.call_seconds, f"DescribeTable of {self.what}")
            table = with_retries(lambda: self.write_client.describe_table(
                DatabaseName=self.database, TableName=self.table), deadline, self.what,
                self.call_seconds)["Table"]
            retention = table["RetentionProperties"]  # API_DescribeTable: always set
            facts = TableFacts(
                float(retention["MemoryStoreRetentionPeriodInHours"]),
                bool(table.get("MagneticStoreWriteProperties", {})
                     .get("EnableMagneticStoreWrites", False)),
                float(retention["MagneticStoreRetentionPeriodInDays"]))
        except Forbidden as exc:
            LOG.warning("cannot read the table's retention (%s): Timestream alone will judge "
                        "sample times; grant timestream:DescribeTable (make policies)", exc)
            facts = None
        self._facts = (time.monotonic(), facts)
        return facts

    def _write_batch(self, batch: Batch, deadline: Deadline) -> List[Rejected]:
        """Write one batch; a batch Timestream refuses as a whole (ValidationException) is
        split until the refused records are alone, and they are reported."""
        def call():
            try:
                self.write_client.write_records(
                    DatabaseName=self.database, TableName=self.table,
                    CommonAttributes=batch.common, Records=batch.records)
                return []
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code == "RejectedRecordsException":
                    return rejected_records(batch, exc.response.get("RejectedRecords", []))
                if code == "ValidationException":
                    return exc.response.get("Error", {}).get("Message") or code
                raise
        deadline.check(self.call_seconds, f"writing to {self.what}")
        outcome = with_retries(call, deadline, self.what, self.call_seconds)
        if not isinstance(outcome, str):
            return outcome
        if len(batch.records) == 1:
            return [Rejected(batch.labels[0], 1, f"Timestream refused the record: {outcome}")]
        rejected: List[Rejected] = []
        for half in split_batch(batch):
            rejected.extend(self._write_batch(half, deadline))
        return rejected

    # -- reads (timestream_query.TimestreamReader) -----------------------------

    def read(self, query: Query, sample_limit: int,
             deadline: Optional[Deadline] = None) -> List[Series]:
        """Series matching ``query`` (see ``TimestreamReader.read``)."""
        return self.reader.read(query, sample_limit,
                                deadline or Deadline(self.deadline_seconds))

    def for_request(self) -> "TimestreamRequest":
        """This store with one deadline for every call of one HTTP request."""
        return TimestreamRequest(self, Deadline(self.deadline_seconds))


class TimestreamRequest:
    """One request's view of a TimestreamStore: its reads share one deadline, so a
    request holding several queries still answers within REQUEST_DEADLINE_SECONDS."""

    def __init__(self, store: TimestreamStore, deadline: Deadline) -> None:
        self.store = store
        self.deadline = deadline

    def write(self, series: List[Series]) -> WriteResult:
        """Write ``series`` within this request's deadline (see ``TimestreamStore.write``)."""
        return self.store.write(series, self.deadline)

    def read(self, query: Query, sample_limit: int) -> List[Series]:
        """Answer ``query`` within this request's deadline."""
        return self.store.read(query, sample_limit, self.deadline)
