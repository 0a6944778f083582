"""Test harness for the Timestream backend: moto for the AWS wire, DuckDB for the SQL.

moto 5 stores WriteRecords calls but answers queries only with canned results,
so every WriteRecords call that moto accepted is also captured from the wire
(CommonAttributes merged into each record, as Timestream does) and loaded into
DuckDB, where the SQL the connector generates is executed for real.
"""
import contextlib
import copy
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator, List, Optional

import boto3
import duckdb
from moto import mock_aws

from chalicelib.storage.timestream import Deadline, TimestreamStore
from chalicelib.storage.timestream_query import TimestreamReader

REGION = "us-east-1"
DATABASE = "PrometheusDatabase"
TABLE = "PrometheusMetricsTable"
SQL_FUNCTIONS = [
    # Timestream's regexp_like is a *contains* match, as is DuckDB's regexp_matches (RE2).
    "CREATE MACRO regexp_like(s, p) AS regexp_matches(s, p)",
    "CREATE MACRO from_milliseconds(x) AS make_timestamp(CAST(x AS BIGINT) * 1000)",
    "CREATE MACRO to_milliseconds(t) AS epoch_ms(t)",
]


def merge_common(common: dict, record: dict) -> dict:
    """A record as Timestream stores it: CommonAttributes merged in."""
    merged = {**common, **record}
    merged["Dimensions"] = common.get("Dimensions", []) + record.get("Dimensions", [])
    return merged


class WireLog:
    """Captures the parameters of each successful WriteRecords call of a client."""

    def __init__(self, client) -> None:
        self.calls: List[dict] = []
        self._pending: Dict[int, dict] = {}
        client.meta.events.register("provide-client-params.timestream-write.WriteRecords",
                                    self._params)
        client.meta.events.register("after-call.timestream-write.WriteRecords", self._done)

    def _params(self, params, **kwargs):
        self._pending[threading.get_ident()] = copy.deepcopy(params)

    def _done(self, http_response, **kwargs):
        params = self._pending.pop(threading.get_ident(), None)
        if params is not None and http_response.status_code == 200:
            self.calls.append(params)

    def records(self) -> List[dict]:
        return stored_records(self.calls)


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


class DuckDBRunner:
    """Runs the connector's SQL on DuckDB loaded with the captured records."""

    def __init__(self, wire: WireLog) -> None:
        self.wire = wire

    def _load(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB database holding the stored records (rebuilt when more were written)."""
        records = self.wire.records()
        if getattr(self, "_loaded", None) == len(records):
            return self._conn
        dims = sorted({d["Name"] for r in records for d in r.get("Dimensions", [])})
        conn = duckdb.connect()
        for statement in SQL_FUNCTIONS:
            conn.execute(statement)
        conn.execute(f'CREATE SCHEMA "{DATABASE}"')
        columns = ", ".join(["measure_name VARCHAR", '"time" TIMESTAMP', "measure_value DOUBLE"]
                            + [f'"{d}" VARCHAR' for d in dims])
        conn.execute(f'CREATE TABLE "{DATABASE}"."{TABLE}" ({columns})')
        rows = []
        for record in records:
            assert record["TimeUnit"] == "MILLISECONDS" and record["MeasureValueType"] == "DOUBLE"
            values = {d["Name"]: d["Value"] for d in record.get("Dimensions", [])}
            rows.append([record["MeasureName"], int(record["Time"]),
                         float(record["MeasureValue"])] + [values.get(d) for d in dims])
        row_marks = "(" + ", ".join(["?", "make_timestamp(CAST(? AS BIGINT) * 1000)", "?"]
                                    + ["?"] * len(dims)) + ")"
        for start in range(0, len(rows), 500):  # multi-row INSERTs: executemany is slow here
            chunk = rows[start:start + 500]
            conn.execute(f'INSERT INTO "{DATABASE}"."{TABLE}" VALUES '
                         + ", ".join([row_marks] * len(chunk)),
                         [value for row in chunk for value in row])
        self._conn, self._dims, self._loaded = conn, set(dims), len(records)
        return conn

    def rows(self, sql: str, deadline: Deadline) -> Iterator[Dict[str, Optional[str]]]:
        conn = self._load()
        cursor = conn.execute(sql)
        names = [column[0] for column in cursor.description]
        for row in cursor.fetchall():
            yield {name: None if value is None else (repr(value) if isinstance(value, float)
                                                     else str(value))
                   for name, value in zip(names, row)}

    def dimensions(self, database: str, table: str, deadline: Deadline):
        self._load()
        return self._dims


class TimestreamEnv:
    """moto-backed Timestream with a store, its wire log and a DuckDB query engine."""

    def __init__(self, retention_hours: Optional[float] = None, clock=None) -> None:
        self.write_client = boto3.client("timestream-write", region_name=REGION)
        self.write_client.create_database(DatabaseName=DATABASE)
        self.write_client.create_table(DatabaseName=DATABASE, TableName=TABLE)
        self.wire = WireLog(self.write_client)
        self.executor = ThreadPoolExecutor(max_workers=4)
        kwargs = {"clock": clock} if clock else {}
        self.store = TimestreamStore(self.write_client,
                                     TimestreamReader(DuckDBRunner(self.wire), DATABASE, TABLE),
                                     DATABASE, TABLE,
                                     executor=self.executor, deadline_seconds=10,
                                     retention_hours=retention_hours, **kwargs)

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
