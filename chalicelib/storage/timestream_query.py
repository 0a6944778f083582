"""Reads from Amazon Timestream for LiveAnalytics: query -> SQL (``timestream_sql``)
-> paged Query calls -> series.
"""
import logging
from typing import Dict, Iterator, List, Optional, Set, Tuple

from chalicelib.errors import BackendUnavailable, too_many_samples
from chalicelib.model import Labels, Query, Series
from chalicelib.storage.timestream import CONNECT_TIMEOUT_SECONDS, Deadline, with_retries
from chalicelib.storage.timestream_records import decode_value, labels_from_row
from chalicelib.storage.timestream_sql import TIME_COLUMN, VALUE_COLUMN, identifier, \
    select_statement

LOG = logging.getLogger(__name__)

# Read timeout of the query client (stores.py builds it). A call starts only if
# connect + read timeout fits before the request deadline.
QUERY_READ_TIMEOUT_SECONDS = 20
QUERY_CALL_SECONDS = CONNECT_TIMEOUT_SECONDS + QUERY_READ_TIMEOUT_SECONDS


class TimestreamQueryRunner:
    """Runs SQL on Timestream, following NextToken pages."""

    def __init__(self, query_client) -> None:
        self.client = query_client

    def rows(self, sql: str, deadline: Deadline) -> Iterator[Dict[str, Optional[str]]]:
        """Rows as {column: scalar string or None}."""
        token: Optional[str] = None
        while True:
            kwargs = {"QueryString": sql, "MaxRows": 1000}
            if token:
                kwargs["NextToken"] = token
            page = with_retries(lambda: self.client.query(**kwargs), deadline, "Timestream query",
                                QUERY_CALL_SECONDS)
            names = [column["Name"] for column in page.get("ColumnInfo", [])]
            for row in page.get("Rows", []):
                yield {name: None if datum.get("NullValue") else datum.get("ScalarValue")
                       for name, datum in zip(names, row["Data"])}
            token = page.get("NextToken")
            if not token:
                return
            if deadline.remaining() < 1:
                raise BackendUnavailable("the query did not finish within the request deadline")

    def dimensions(self, database: str, table: str, deadline: Deadline) -> Set[str]:
        """Names of the table's dimension columns."""
        sql = f"DESCRIBE {identifier(database)}.{identifier(table)}"
        return {row["Column"] for row in self.rows(sql, deadline)
                if (row.get("Timestream attribute type") or "").upper() == "DIMENSION"}


class TimestreamReader:
    """Answers remote-read queries from one Timestream table."""

    def __init__(self, runner, database: str, table: str) -> None:
        self.runner = runner
        self.database = database
        self.table = table

    def read(self, query: Query, sample_limit: int, deadline: Deadline) -> List[Series]:
        """Series matching ``query``, sorted by labels, samples by time."""
        dimensions = self.runner.dimensions(self.database, self.table, deadline)
        statement = select_statement(query, self.database, self.table, dimensions)
        if statement is None:
            return []
        LOG.debug("query: %s", statement.sql)
        grouped: Dict[Labels, Tuple[List[int], List[float]]] = {}
        labels_cache: Dict[tuple, Labels] = {}
        count = 0
        for row in self.runner.rows(statement.sql, deadline):
            key = (row["measure_name"],) + tuple(row[d] for d in statement.dimensions)
            labels = labels_cache.get(key)
            if labels is None:
                labels = labels_cache[key] = labels_from_row(
                    row["measure_name"], {d: row[d] for d in statement.dimensions})
            timestamps, values = grouped.setdefault(labels, ([], []))
            timestamps.append(int(row[TIME_COLUMN]))
            values.append(decode_value(row[VALUE_COLUMN]))
            count += 1
            if count > sample_limit:
                raise too_many_samples(sample_limit)
        return [Series(labels, ts, vs) for labels, (ts, vs) in sorted(grouped.items())]
