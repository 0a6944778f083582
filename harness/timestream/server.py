"""Timestream for LiveAnalytics over HTTP, for end-to-end tests: its ingest and query
endpoints on two addresses, throttled and slow where the service is.

A connector run as a process (``chalice local --stage dev``) talks to it with real boto3
clients (``TIMESTREAM_WRITE_ENDPOINT_URL``, ``TIMESTREAM_QUERY_ENDPOINT_URL``). The rules are
those of the in-process emulation (``write_rules``, ``query_service``), each citing its page;
this module adds what only a network service shows:

- Two endpoints. Timestream serves each account from a cell with an ingest endpoint
  (``ingest-cellN.timestream.<region>.amazonaws.com``: WriteRecords, DescribeTable, ...) and a
  query endpoint (``query-cellN...``: Query, CancelQuery); DescribeEndpoints on either names
  its own ("How the endpoint discovery pattern works", "Cells" in the Architecture page). An
  operation sent to the other endpoint is refused as an AWS JSON service refuses an operation
  it does not have: 400 ``UnknownOperationException``.
- DescribeTable throttled (``describe_throttled``): the account's "Request rate for other
  APIs" (ts-limits.html: List/Describe calls, 5 a second per account) is shared by every
  Lambda instance and tool, so under load it answers ``ThrottlingException`` (HTTP 400,
  API_DescribeTable.html "Errors").
- Query latency (``queries.first_page_seconds``, ``queries.page_seconds``) and 1 MB pages: see
  ``query_service``.
- WriteRecords faults (``write_faults``): every third call answered with the next of these
  errors (InternalServerException 500, ThrottlingException 400; API_WriteRecords.html
  "Errors"), so retries are exercised.
"""
import http.server
import json
import threading
from typing import Callable, List, Optional, Tuple

from harness.timestream.query_service import QueryService
from harness.timestream.write_rules import WriteRules

TARGET_PREFIX = "Timestream_20181101."
INGEST_OPERATIONS = {"WriteRecords", "DescribeTable", "DescribeEndpoints"}
QUERY_OPERATIONS = {"Query", "CancelQuery", "DescribeEndpoints"}


def error(status: int, code: str, message: str) -> Tuple[int, dict]:
    return status, {"__type": code, "message": message}


class TimestreamServer:
    """The ingest and query endpoints of one table's cell, on 127.0.0.1."""

    def __init__(self, database: str, table: str, rules: WriteRules, queries: QueryService,
                 describe_throttled: bool = False,
                 write_faults: Optional[List[Tuple[int, str]]] = None) -> None:
        self.database, self.table = database, table
        self.rules = rules
        self.queries = queries
        self.describe_throttled = describe_throttled
        self.write_faults = list(write_faults or [])
        self.operations: List[Tuple[str, str]] = []  # (endpoint, operation) in order
        self.written: List[dict] = []  # the bodies of the WriteRecords calls that succeeded
        self.refusals: list = []  # write_rules.Refusal of the calls refused
        self.faults = 0  # WriteRecords calls answered with an injected fault
        self._lock = threading.Lock()
        self._writes = 0
        self._servers = [self._serve("ingest", INGEST_OPERATIONS, self._ingest),
                         self._serve("query", QUERY_OPERATIONS, self._query)]
        self.ingest_url, self.query_url = (
            f"http://127.0.0.1:{s.server_address[1]}" for s in self._servers)

    def count(self, operation: str) -> int:
        """How many calls of ``operation`` arrived (on either endpoint)."""
        with self._lock:
            return sum(1 for _, name in self.operations if name == operation)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    # -- the wire ----------------------------------------------------------------------

    def _serve(self, endpoint: str, operations: set,
               answer: Callable[[str, dict], Tuple[int, dict]]):
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # botocore keeps connections open

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                name = self.headers.get("X-Amz-Target", "").replace(TARGET_PREFIX, "", 1)
                with service._lock:
                    service.operations.append((endpoint, name))
                if name == "DescribeEndpoints":
                    status, data = 200, {"Endpoints": [{
                        "Address": f"127.0.0.1:{self.server.server_address[1]}",
                        "CachePeriodInMinutes": 1440}]}
                elif name not in operations:
                    status, data = error(400, "UnknownOperationException",
                                         f"{name} is not an operation of the {endpoint} endpoint")
                else:
                    status, data = answer(name, json.loads(body or b"{}"))
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    def _ingest(self, name: str, body: dict) -> Tuple[int, dict]:
        if name == "DescribeTable":
            return self._describe_table(body)
        with self._lock:
            self._writes += 1
            fault = (self.write_faults[(self._writes // 3 - 1) % len(self.write_faults)]
                     if self.write_faults and self._writes % 3 == 0 else None)
            self.faults += fault is not None
        if fault:
            return error(fault[0], fault[1], f"injected {fault[1]}")
        refusal = self.rules.write_records(body)
        if refusal is not None:
            with self._lock:
                self.refusals.append(refusal)
            return refusal.status, json.loads(refusal.body())
        with self._lock:
            self.written.append(body)
        total = len(body["Records"])
        return 200, {"RecordsIngested": {"Total": total, "MemoryStore": total,
                                         "MagneticStore": 0}}

    def _describe_table(self, body: dict) -> Tuple[int, dict]:
        if self.describe_throttled:
            return error(400, "ThrottlingException", "Rate exceeded")
        if (body.get("DatabaseName"), body.get("TableName")) != (self.database, self.table):
            return error(404, "ResourceNotFoundException", "The table does not exist.")
        magnetic = {"EnableMagneticStoreWrites": self.rules.magnetic_writes}
        return 200, {"Table": {
            "DatabaseName": self.database, "TableName": self.table, "TableStatus": "ACTIVE",
            "RetentionProperties": {
                "MemoryStoreRetentionPeriodInHours": self.rules.memory_hours,
                "MagneticStoreRetentionPeriodInDays": self.rules.magnetic_days},
            "MagneticStoreWriteProperties": magnetic}}

    def _query(self, name: str, body: dict) -> Tuple[int, dict]:
        status, parsed, _ = self.queries.handle(name, body)
        if status != 200:
            return error(status, parsed["Error"]["Code"], parsed["Error"]["Message"])
        parsed.pop("ResponseMetadata", None)
        return status, parsed
