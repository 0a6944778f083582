"""Test harness for the Timestream backend: moto for the AWS wire, DuckDB for the SQL.

moto 5 stores whatever WriteRecords sends and answers queries only with canned results.
So each WriteRecords request is first judged by ``WriteRules`` (Timestream's documented
write rules, harness/timestream/write_rules.py), which refuses what the service refuses and keeps
what it would store (CommonAttributes merged in); the Query API is emulated
(harness/timestream/query_service.py, with the documented query rules it enforces) by running
the connector's SQL on DuckDB loaded with those records.
"""
import contextlib
import copy
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Callable, Dict, Iterator, List, Tuple

import boto3
import duckdb
from botocore.config import Config
from moto import mock_aws

from chalicelib.storage.timestream import client as timestream_client
from chalicelib.storage.timestream.reader import (TimestreamQueryRunner,
                                                  TimestreamReader)
from chalicelib.storage.timestream.store import TimestreamStore
from harness import java_regex
from harness.timestream.query_service import (QueryService,
                                              install_time_functions)
from harness.timestream.write_rules import WriteRules

REGION = "us-east-1"
DATABASE = "PrometheusDatabase"
TABLE = "PrometheusMetricsTable"
# The connector's client settings (stores.py): no botocore retries, its timeouts.
CLIENT_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                       connect_timeout=timestream_client.CONNECT_TIMEOUT_SECONDS,
                       read_timeout=timestream_client.WRITE_READ_TIMEOUT_SECONDS)


def merge_common(common: dict, record: dict) -> dict:
    """A record as Timestream stores it: CommonAttributes merged in."""
    merged = {**common, **record}
    merged["Dimensions"] = common.get("Dimensions", []) + record.get("Dimensions", [])
    return merged


class WireLog:
    """Judges each WriteRecords call of a client by Timestream's rules (``rules`` holds what
    the table stores) and captures the parameters of each successful call."""

    def __init__(self, client, rules: WriteRules) -> None:
        self.rules = rules
        self.calls: List[dict] = []
        self._pending: Dict[int, dict] = {}
        client.meta.events.register("provide-client-params.timestream-write.WriteRecords",
                                    self._params)
        # Last: injected faults (harness.timestream.faults) answer before the table sees the call.
        client.meta.events.register_last("before-call.timestream-write.WriteRecords",
                                         self._judge)
        client.meta.events.register("after-call.timestream-write.WriteRecords", self._done)

    def _judge(self, params, **kwargs):
        refusal = self.rules.write_records(json.loads(params["body"]))
        if refusal is None:
            return None
        self._pending.pop(threading.get_ident(), None)
        return SimpleNamespace(status_code=refusal.status, headers={}), refusal.parsed()

    def _params(self, params, **kwargs):
        self._pending[threading.get_ident()] = copy.deepcopy(params)

    def _done(self, http_response, **kwargs):
        params = self._pending.pop(threading.get_ident(), None)
        if params is not None and http_response.status_code == 200:
            self.calls.append(params)

    def records(self) -> List[dict]:
        """What the table holds."""
        return self.rules.records()


def stored_records(calls: List[dict]) -> List[dict]:
    """The records of these WriteRecords calls as Timestream stores them: CommonAttributes
    merged in, one record per (measure, dimensions, time), the first one winning."""
    stored: Dict[tuple, dict] = {}
    for call in calls:
        for record in call["Records"]:
            merged = merge_common(call.get("CommonAttributes", {}), record)
            key = (merged["MeasureName"], merged["Time"],
                   frozenset((d["Name"], d["Value"]) for d in merged.get("Dimensions", [])))
            stored.setdefault(key, merged)
    return list(stored.values())


def install_sql_functions(conn: duckdb.DuckDBPyConnection) -> None:
    """Timestream's SQL functions on DuckDB."""
    # "The regular expression functions in Timestream for LiveAnalytics support the Java
    # pattern syntax" (Developer Guide, Regular expression functions): regexp_like is a
    # contains-match run by a real java.util.regex, not DuckDB's RE2.
    conn.create_function("regexp_like", java_regex.regexp_like,
                         [duckdb.sqltype("VARCHAR"), duckdb.sqltype("VARCHAR")],
                         duckdb.sqltype("BOOLEAN"))
    install_time_functions(conn)


def emulated_query_client(records: Callable[[], List[dict]]) -> Tuple[object, QueryService]:
    """A boto3 timestream-query client answered by the emulation (tests/timestream_query_service)
    from these stored records, and the emulation itself (faults, hidden columns, calls)."""
    client = boto3.client("timestream-query", region_name=REGION,
                          endpoint_url="https://query.timestream.emulated")
    service = QueryService(DATABASE, TABLE, records, install_sql_functions)
    service.attach(client)
    return client, service


def magnetic_store_write_properties(bucket: str = None) -> dict:
    """A table's MagneticStoreWriteProperties: late writes on, reports to ``bucket`` if given."""
    properties = {"EnableMagneticStoreWrites": True}
    if bucket:
        properties["MagneticStoreRejectedDataLocation"] = {
            "S3Configuration": {"BucketName": bucket, "ObjectKeyPrefix": "late/"}}
    return properties


class TimestreamEnv:
    """moto-backed Timestream with a store, its wire log and a DuckDB query engine.

    The table's memory-store retention and magnetic-store writes are set on the table
    (the store reads them with DescribeTable) and enforced by the write rules."""

    def __init__(self, memory_hours: int = 6, magnetic_writes: bool = False, clock=None,
                 magnetic_days: int = 73000, rejected_data_bucket: str = None) -> None:
        self.write_client = boto3.client("timestream-write", region_name=REGION,
                                         config=CLIENT_CONFIG)
        self.write_client.create_database(DatabaseName=DATABASE)
        self.write_client.create_table(
            DatabaseName=DATABASE, TableName=TABLE,
            RetentionProperties={"MemoryStoreRetentionPeriodInHours": memory_hours,
                                 "MagneticStoreRetentionPeriodInDays": magnetic_days},
            # A table created without magnetic-store writes: DescribeTable says nothing of them.
            **({"MagneticStoreWriteProperties": magnetic_store_write_properties(
                rejected_data_bucket)} if magnetic_writes else {}))
        self.rules = WriteRules(memory_hours, magnetic_writes, magnetic_days,
                                clock=clock or time.time,
                                rejected_data_location=rejected_data_bucket and
                                f"s3://{rejected_data_bucket}/late/")
        self.wire = WireLog(self.write_client, self.rules)
        self.wires = [self.wire]
        self.query_client, self.queries = emulated_query_client(self.records)
        self.executor = ThreadPoolExecutor(max_workers=4)
        kwargs = {"clock": clock} if clock else {}
        reader = TimestreamReader(TimestreamQueryRunner(self.query_client), DATABASE, TABLE)
        # 60 s: the emulation runs slower than Timestream on a loaded test machine.
        self.store = TimestreamStore(self.write_client, reader, DATABASE, TABLE,
                                     executor=self.executor, **kwargs)

    def records(self) -> List[dict]:
        """What the table holds: every writer's accepted records (and records a test put
        straight into a wire log's calls)."""
        return stored_records([{"Records": self.rules.records()}]
                              + [call for wire in self.wires for call in wire.calls])

    def other_writer(self):
        """Another client writing to the same table (another Lambda instance, another tool)."""
        client = boto3.client("timestream-write", region_name=REGION, config=CLIENT_CONFIG)
        self.wires.append(WireLog(client, self.rules))
        return client

    def close(self) -> None:
        self.executor.shutdown(wait=True)


@contextlib.contextmanager
def timestream_env(**kwargs) -> Iterator[TimestreamEnv]:
    with mock_aws():
        env = TimestreamEnv(**kwargs)
        try:
            yield env
        finally:
            env.close()


#: The fixed "now" of the ``env`` fixture (mid-2027), so its writes fall in the writable window.
NOW_MS = 1_800_000_000_000
