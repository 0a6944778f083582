"""Before sending to a Timestream stage: does the table take samples this old?

Samples older than the memory store's retention are only accepted with magnetic-store
writes enabled (and none older than the magnetic store's retention). The table is read
with DescribeTable, with the keys the connector is given (``TO_USER`` / ``TO_PASSWORD_FILE``)
and the region of ``AWS_DEFAULT_REGION``; the endpoint is ``TIMESTREAM_WRITE_ENDPOINT_URL``
(or ``TIMESTREAM_ENDPOINT_URL``) when set, else endpoint discovery, as the connector does.
"""
import os
from typing import NamedTuple, Optional


class Table(NamedTuple):
    memory_hours: float
    magnetic_writes: bool
    magnetic_days: float


def describe(database: str, table: str, key_id: str, secret: str,
             session_token: Optional[str] = None, region: Optional[str] = None) -> Table:
    """The table's retention (raises what boto3 raises when it cannot be read)."""
    import boto3  # a runtime dependency of the connector, imported only when needed
    from botocore.config import Config

    endpoint = (os.environ.get("TIMESTREAM_WRITE_ENDPOINT_URL")
                or os.environ.get("TIMESTREAM_ENDPOINT_URL") or None)
    client = boto3.client("timestream-write", aws_access_key_id=key_id,
                          aws_secret_access_key=secret, aws_session_token=session_token,
                          region_name=region or os.environ.get("AWS_DEFAULT_REGION"),
                          endpoint_url=endpoint,
                          config=Config(retries={"max_attempts": 3}, connect_timeout=5,
                                        read_timeout=10))
    found = client.describe_table(DatabaseName=database, TableName=table)["Table"]
    retention = found["RetentionProperties"]
    magnetic = found.get("MagneticStoreWriteProperties", {})
    return Table(float(retention["MemoryStoreRetentionPeriodInHours"]),
                 bool(magnetic.get("EnableMagneticStoreWrites", False)),
                 float(retention["MagneticStoreRetentionPeriodInDays"]))


def problem(table: Table, start_ms: int, now_ms: int) -> Optional[str]:
    """Why samples from ``start_ms`` on would be rejected, or None if they would not."""
    memory_oldest = now_ms - int(table.memory_hours * 3_600_000)
    if start_ms >= memory_oldest:
        return None
    if not table.magnetic_writes:
        return (f"the table keeps {table.memory_hours:g} h in its memory store and does not "
                "take magnetic-store writes: samples before "
                f"{_iso(memory_oldest)} would all be rejected. Enable magnetic-store writes "
                "(aws timestream-write update-table --magnetic-store-write-properties "
                "EnableMagneticStoreWrites=true ...) or start the backfill later")
    magnetic_oldest = now_ms - int(table.magnetic_days * 86_400_000)
    if start_ms < magnetic_oldest:
        return (f"the table keeps {table.magnetic_days:g} days in its magnetic store: samples "
                f"before {_iso(magnetic_oldest)} would be rejected; start the backfill later")
    return None


def _iso(ms: int) -> str:
    import datetime
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(
        timespec="seconds")
