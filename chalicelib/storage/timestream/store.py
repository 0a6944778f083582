"""The Store on one Timestream for LiveAnalytics table.

Writes: series -> records (``records``) -> WriteRecords calls of at most 100 records
with CommonAttributes, issued concurrently (bounded) and retried with backoff on
throttling / 5xx / timeouts until the request deadline (``client``).
Reads: ``reader.TimestreamReader``, given to the store.
"""
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, NamedTuple, Optional, Tuple

from botocore.exceptions import ClientError

from chalicelib.context import Deadline, RequestContext
from chalicelib.errors import (BackendUnavailable, ConnectorError, CredentialsFailed, Forbidden,
                               Unauthorized)
from chalicelib.model import (Query, Series, WriteResult, describe, histogram_count,
                              sample_count)
from chalicelib.retry import Transient
from chalicelib.telemetry.request import CallStats
from chalicelib.storage.timestream import metering
from chalicelib.storage.timestream.client import classified, with_retries
from chalicelib.storage.timestream.records import Batch, Rejected, build_batches, split_batch
from chalicelib.storage.timestream.sql import nothing_statement

LOG = logging.getLogger(__name__)

TABLE_FACTS_TTL_SECONDS = 300.0  # retention changes are rare; Timestream judges meanwhile
# After a failed DescribeTable (throttled: the account's 5 List/Describe calls a second are
# shared by every instance and tool; denied; down), the next try waits this long.
TABLE_FACTS_RETRY_SECONDS = 60.0
CONFLICT = "already exists"
_STALE = object()


def rejected_records(batch: Batch, rejections: List[dict]) -> List[Rejected]:
    """The records Timestream rejected, with its reasons. A rejection carrying
    ``ExistingVersion`` (the documented signal; the reason text varies, "already exists" is
    the fallback) is a sample whose value differs from the one stored for that series and
    time (an identical re-write is accepted): a duplicate sample, counted like the others."""
    result = []
    histograms = int(batch.histograms)
    for rejection in rejections:
        reason = rejection.get("Reason", "rejected")
        labels = batch.labels[rejection["RecordIndex"]]
        if "ExistingVersion" in rejection or CONFLICT in reason:
            result.append(Rejected(labels, 1, "duplicate sample for timestamp: Timestream holds "
                                   f"a different value for this series and time ({reason})",
                                   "duplicate", histograms))
        else:
            result.append(Rejected(labels, 1, f"Timestream rejected the record: {reason}",
                                   histograms=histograms))
    return result


class TableFacts(NamedTuple):
    """What the table says about which times it takes, and where Timestream reports late
    samples it rejects (DescribeTable)."""

    memory_hours: float
    magnetic_writes: bool
    magnetic_days: float
    rejected_data_location: Optional[str] = None  # s3://bucket/prefix

    def memory_oldest_ms(self, now_ms: int) -> int:
        """The oldest time the memory store takes; older samples go to the magnetic store."""
        return now_ms - int(self.memory_hours * 3_600_000)

    def oldest_ms(self, now_ms: int) -> int:
        """The oldest time the table takes a record for."""
        if self.magnetic_writes:
            return now_ms - int(self.magnetic_days * 86_400_000)
        return self.memory_oldest_ms(now_ms)


def rejected_data_location(properties: dict) -> Optional[str]:
    """The S3 location of a table's magnetic-store rejected-data reports, if it has one
    (API_MagneticStoreWriteProperties: MagneticStoreRejectedDataLocation.S3Configuration)."""
    s3 = properties.get("MagneticStoreRejectedDataLocation", {}).get("S3Configuration", {})
    if not s3.get("BucketName"):
        return None
    return f"s3://{s3['BucketName']}/{s3.get('ObjectKeyPrefix', '')}"


def late_samples(batches: List[Batch], oldest_memory_ms: int) -> int:
    """Records of ``batches`` older than the memory store's retention: those Timestream
    writes to the magnetic store (times in milliseconds, in the record or common to all)."""
    return sum(1 for batch in batches for record in batch.records
               if int(record.get("Time") or batch.common["Time"]) < oldest_memory_ms)


class TimestreamStore:
    """The Store protocol on one Timestream table."""

    def __init__(self, write_client, reader, database: str, table: str, *,
                 executor: ThreadPoolExecutor, clock: Callable[[], float] = time.time) -> None:
        self.write_client = write_client
        self.reader = reader
        self.database = database
        self.table = table
        self.executor = executor
        self.clock = clock
        self._facts: Tuple[float, Optional[TableFacts]] = (-TABLE_FACTS_TTL_SECONDS, None)
        self._warned_unreported = False
        self._credentials_checked = False
        self._looking_up = threading.Lock()  # one DescribeTable at a time, never waited for

    def close(self) -> None:
        """Let the store's threads end (its cache entry was evicted)."""
        self.executor.shutdown(wait=False)
        self.reader.runner.executor.shutdown(wait=False)

    @property
    def call_seconds(self) -> float:
        """The longest a write call can take: its client's timeouts."""
        config = self.write_client.meta.config
        return config.connect_timeout + config.read_timeout

    @property
    def what(self) -> str:
        return f"Timestream table {self.database}.{self.table}"

    # -- writes --------------------------------------------------------------

    def write(self, series: List[Series], ctx: RequestContext) -> WriteResult:
        """Write all samples within the request's deadline; rejects are counted with
        reasons, after the rest is written.

        Credentials AWS refuses are a 5xx here (Prometheus keeps the samples and retries;
        a 401/403 would make it drop them)."""
        try:
            return self._write(series, ctx)
        except (Unauthorized, Forbidden) as exc:
            raise CredentialsFailed(str(exc)) from None

    def _write(self, series: List[Series], ctx: RequestContext) -> WriteResult:
        now_ms = int(self.clock() * 1000)
        facts = self.table_facts(ctx.deadline, ctx.telemetry.calls("timestream", "DescribeTable"))
        batches, rejected = build_batches(series, now_ms,
                                          facts.oldest_ms(now_ms) if facts else None,
                                          ctx.deadline)
        late = 0
        if facts is not None and facts.magnetic_writes:
            late = late_samples(batches, facts.memory_oldest_ms(now_ms))
        futures = [self.executor.submit(self._write_batch, batch, ctx) for batch in batches]
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
        for item in rejected:
            ctx.telemetry.reject(item.kind, item.count)
        ctx.telemetry.late += late
        for item in rejected[:20]:
            LOG.warning("rejected %d samples of %s: %s", item.count, describe(item.labels),
                        item.reason)
        if len(rejected) > 20:
            LOG.warning("... and %d more rejected series", len(rejected) - 20)
        reasons = tuple(f"{describe(r.labels)}: {r.reason}" for r in rejected)
        if late:
            LOG.info("%d samples older than the memory store's retention were written to the "
                     "magnetic store; Timestream reports their conflicts %s", late,
                     f"to {facts.rejected_data_location}" if facts.rejected_data_location
                     else "nowhere (the table has no MagneticStoreRejectedDataLocation)")
        histograms = histogram_count(series) - sum(r.histograms for r in rejected)
        return WriteResult(total - count, count, reasons, late, histograms)

    def table_facts(self, deadline: Deadline,
                    stats: Optional[CallStats] = None) -> Optional[TableFacts]:
        """Retention and magnetic-store writes of the table (DescribeTable, cached); None if
        they cannot be read, and then Timestream alone judges the times. An optional lookup
        never holds data back: one attempt, never retried, none when it cannot finish with
        time left for the write, and after a failure none for TABLE_FACTS_RETRY_SECONDS."""
        facts = self._known_facts()
        if facts is not _STALE:
            return facts
        facts = self._facts[1]
        if deadline.remaining() < 2 * self.call_seconds:  # the write comes first
            return facts
        if not self._looking_up.acquire(blocking=False):
            return facts  # another request is looking: this one goes on without waiting
        try:
            facts = self._known_facts()  # another request may have just looked
            return self._look_up(stats or CallStats(threading.Lock())) if facts is _STALE \
                else facts
        finally:
            self._looking_up.release()

    def _known_facts(self):
        """The cached facts (None: the last lookup failed), or _STALE when time to look."""
        fetched, facts = self._facts
        fresh_for = TABLE_FACTS_TTL_SECONDS if facts else TABLE_FACTS_RETRY_SECONDS
        return facts if time.monotonic() - fetched < fresh_for else _STALE

    def _look_up(self, stats: CallStats) -> Optional[TableFacts]:
        stats.call()
        try:
            table = classified(lambda: self.write_client.describe_table(
                DatabaseName=self.database, TableName=self.table), self.what)(
                    self.call_seconds)["Table"]
            retention = table["RetentionProperties"]  # API_DescribeTable: always set
            magnetic = table.get("MagneticStoreWriteProperties", {})
            facts = TableFacts(
                float(retention["MemoryStoreRetentionPeriodInHours"]),
                bool(magnetic.get("EnableMagneticStoreWrites", False)),
                float(retention["MagneticStoreRetentionPeriodInDays"]),
                rejected_data_location(magnetic))
        except (ConnectorError, Transient) as exc:
            stats.failed(getattr(exc, "throttled", False))
            hint = (" grant timestream:DescribeTable (make policies);"
                    if isinstance(exc, Forbidden) else "")
            LOG.warning("cannot read the table's retention (%s): Timestream alone judges sample "
                        "times;%s next try in %.0f s", exc, hint, TABLE_FACTS_RETRY_SECONDS)
            facts = None
        self._facts = (time.monotonic(), facts)
        if facts and facts.magnetic_writes and not facts.rejected_data_location \
                and not self._warned_unreported:
            self._warned_unreported = True
            LOG.warning("%s takes late samples into its magnetic store but has no "
                        "MagneticStoreRejectedDataLocation: Timestream drops the late samples "
                        "it rejects (conflicts) without any report; set one on the table",
                        self.what)
        return facts

    def _write_batch(self, batch: Batch, ctx: RequestContext) -> List[Rejected]:
        """Write one batch; a batch Timestream refuses as a whole (ValidationException) is
        split until the refused records are alone, and they are reported. The metered write
        units of what Timestream took are counted."""
        def call():
            try:
                self.write_client.write_records(
                    DatabaseName=self.database, TableName=self.table,
                    CommonAttributes=batch.common, Records=batch.records)
                return []
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code == "RejectedRecordsException":
                    return exc.response.get("RejectedRecords", [])
                if code == "ValidationException":
                    return exc.response.get("Error", {}).get("Message") or code
                raise
        ctx.deadline.check(self.call_seconds, f"writing to {self.what}")
        outcome = with_retries(call, ctx.deadline, self.what, self.call_seconds,
                               ctx.telemetry.calls("timestream", "WriteRecords"))
        if not isinstance(outcome, str):
            refused = {r["RecordIndex"] for r in outcome}
            taken = [r for i, r in enumerate(batch.records) if i not in refused]
            if taken:
                ctx.telemetry.add_write_units(metering.call_units(batch.common, taken))
            return rejected_records(batch, outcome)
        if len(batch.records) == 1:
            return [Rejected(batch.labels[0], 1, f"Timestream refused the record: {outcome}",
                             histograms=int(batch.histograms))]
        rejected: List[Rejected] = []
        for half in split_batch(batch):
            rejected.extend(self._write_batch(half, ctx))
        return rejected

    # -- reads (reader.TimestreamReader) ---------------------------------------

    def check_credentials(self, ctx: RequestContext) -> None:
        """Once per credential, a SHOW MEASURES that lists nothing: AWS refuses
        unknown keys (401) and missing rights (403) before any matcher is compiled."""
        if self._credentials_checked:
            return
        try:
            self.reader.runner.measures(nothing_statement(self.database, self.table),
                                        ctx.deadline, ctx.telemetry.calls("timestream", "Query"))
        except (Unauthorized, Forbidden):
            raise
        except ConnectorError:
            return  # the read meets it again and answers it
        self._credentials_checked = True

    def read(self, query: Query, ctx: RequestContext) -> List[Series]:
        """Series matching ``query`` (see ``TimestreamReader.read``)."""
        return self.reader.read(query, ctx)
