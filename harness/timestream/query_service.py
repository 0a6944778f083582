"""An emulation of the Timestream Query API for tests: a real boto3 ``timestream-query``
client whose calls are answered here (botocore's ``before-call`` event, the hook botocore's
Stubber uses), the SQL executed by DuckDB on the records the connector wrote.

It must refuse what Timestream refuses: each rule below cites the documentation page it
comes from. An emulation more lenient than the service is a bug.

- Query API (API_query_Query: https://docs.aws.amazon.com/timestream/latest/developerguide/
  API_query_Query.html): ``MaxRows`` is 1..1000, ``QueryString`` 1..262 144 characters,
  ``ClientToken`` 32..128; a page may hold no rows and only a
  ``NextToken`` (this emulation answers the first call of every query that way); a
  ``NextToken`` is bound to its query string ("Invalid pagination token"); a row larger
  than 1 MB fails the query ("Query aborted as max page response size has been exceeded
  by the output result row"), and pages are cut at 1 MB; a ``ClientToken`` reused with
  other parameters fails, reused with the same ones returns the same query, not a new
  execution, within its 5-minute idempotency window; reused later it fails, and after 4
  hours it is a new request.
- CancelQuery (API_query_CancelQuery.html): stops a query; its QueryId is what it takes.
- Time (Developer Guide, "Query" best practices and "Timestream compute units": queries run
  on compute the service allocates, and results come back a page at a time): a call takes
  ``first_page_seconds`` when it starts a query and ``page_seconds`` per further page (0 by
  default; the system tests set production-like figures), each at least as long as the
  emulation's own work. A call slower than the client's read timeout fails as botocore
  fails it (ReadTimeoutError) after that timeout. Calls from several threads run at once,
  as they do on the service.
- Unknown columns (observed service message, e.g. aws-iot-fleetwise-edge issue 54):
  ``ValidationException: line 1:N: Column 'x' does not exist`` -- including
  ``measure_value::double`` on a table that holds no DOUBLE record yet.
- Schema propagation (Developer Guide, "Writes": "while writing time series data with one
  or more new dimensions, a query can return a partial subset of columns for a short period
  of time"): dimensions in ``hidden`` are in no answer (DESCRIBE, SHOW MEASURES, SELECT) and
  their rows come back without them; dimensions in ``unqueryable`` are listed by the
  metadata statements but unknown to SELECT.
- Column names and types (Developer Guide, "Queries" -> data model; DESCRIBE statements page):
  ``measure_value::double``/``::bigint``/``::varchar``/``::boolean`` hold single-measure
  values of that type, MULTI records' measures are columns of their own; a row of another
  type reads NULL in ``measure_value::double``. DESCRIBE answers columns ``Column``,
  ``Type``, ``Timestream attribute type``; SHOW MEASURES answers ``measure_name``,
  ``data_type``, ``dimensions`` (array of rows ``dimension_name``, ``data_type``)
  (SHOW statements page; result shape as the service returns it). A measure name of
  multi-measure records is listed with data type ``multi`` and its dimensions, not its
  measures (Developer Guide, "Data modeling" -> "Using measure name with multi-measure
  records": "The measure schema for the table (for example, output of SHOW MEASURES query)"
  lists ``events | multi | [...dimensions]``); DESCRIBE lists each measure of a MULTI record
  as a column of its type, attribute type ``MULTI``. ``CREATE_TIME_SERIES`` takes values
  that "can be one of bigint, boolean, double, or varchar" (Timeseries views).
- Functions (Developer Guide, "Date / time functions", "Timeseries views", "Aggregate
  functions"): ``from_milliseconds``, ``to_milliseconds``, ``bin(time, 1h)``,
  ``CREATE_TIME_SERIES(time, value)`` ("The second parameter cannot be null"; the order of
  its points is not documented, so this emulation returns them newest first), ``array_agg``.
  TIMESTAMPs read as ``YYYY-MM-DD HH:MM:SS.nnnnnnnnn``, DOUBLEs as Java prints them.
"""
import datetime
import json
import math
import re
import threading
import time
import uuid
from decimal import Decimal
from typing import Callable, Dict, List, Optional, Set

import duckdb
import numpy
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

MAX_ROWS = 1000
MAX_QUERY_STRING = 262_144
MAX_PAGE_BYTES = 1 << 20
# API_query_Query, ClientToken: reused within 5 minutes with the same parameters, the same
# query; outside that window, refused; after 4 hours, a new request.
IDEMPOTENCY_WINDOW_SECONDS = 300
TOKEN_FORGOTTEN_SECONDS = 4 * 3600
TYPES = ("double", "bigint", "varchar", "boolean")
DUCK_TYPES = {"double": "DOUBLE", "bigint": "BIGINT", "varchar": "VARCHAR", "boolean": "BOOLEAN"}


class QueryError(Exception):
    """A Timestream error answer: (HTTP status, code, message)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def java_double(value: float) -> str:
    """A double as Java's Double.toString prints it (what Timestream answers)."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:  # plain notation; Python's repr is plain there too
        return repr(value)
    digits = Decimal(repr(value))
    sign, numerals, exponent = digits.normalize().as_tuple()
    mantissa = "".join(map(str, numerals))
    power = exponent + len(mantissa) - 1
    text = mantissa[0] + "." + (mantissa[1:] or "0")
    return ("-" if sign else "") + text + "E" + str(power)


def timestamp_text(value: datetime.datetime) -> str:
    return value.isoformat(" ", "microseconds") + "000"


def statement_columns(records: List[dict], hidden: Set[str]):
    """(dimension names, measure value columns {name: type}) of these records."""
    dims: Set[str] = set()
    measures: Dict[str, str] = {}
    for record in records:
        dims.update(d["Name"] for d in record.get("Dimensions", []))
        kind = record.get("MeasureValueType", "DOUBLE").lower()
        if kind == "multi":
            for value in record.get("MeasureValues", []):
                measures[value["Name"]] = value["Type"].lower()
        else:
            measures["measure_value::" + kind] = kind
    return sorted(dims - hidden), measures


def _error_answer(status: int, code: str, message: str) -> dict:
    """An error answer as botocore parses it from the answer's bytes (no interned strings)."""
    return json.loads(json.dumps({"Error": {"Code": code, "Message": message},
                                  "ResponseMetadata": {"HTTPStatusCode": status}}))


class QueryService:
    """Answers Query/CancelQuery calls of boto3 timestream-query clients."""

    def __init__(self, database: str, table: str, records: Callable[[], List[dict]],
                 install_functions: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        self.database, self.table = database, table
        self.records = records
        self.install_functions = install_functions
        self.hidden: Set[str] = set()
        self.unqueryable: Set[str] = set()
        # One per call: (status, code[, message]), ("lost", None) or None (no fault).
        self.faults: List[Optional[tuple]] = []
        self.calls: List[dict] = []
        self.executions: List[str] = []
        self.cancelled: List[str] = []
        self._queries: Dict[str, dict] = {}
        self._tokens: Dict[str, tuple] = {}
        self.clock: Callable[[], float] = time.monotonic
        self.first_page_seconds = 0.0
        self.page_seconds = 0.0
        self._read_timeout = float("inf")
        self._lock = threading.Lock()
        self._engine = threading.Lock()  # one DuckDB connection: one statement at a time
        self._loaded = None

    def attach(self, client) -> None:
        """Answer this client's Query and CancelQuery calls."""
        self._read_timeout = client.meta.config.read_timeout or float("inf")
        client.meta.events.register("before-call.timestream-query.Query", self._query)
        client.meta.events.register("before-call.timestream-query.CancelQuery", self._cancel)

    # -- the wire --------------------------------------------------------------

    def handle(self, name: str, body: dict, read_timeout: float = float("inf")) -> tuple:
        """One Query or CancelQuery call: (HTTP status, answer as botocore parses it, whether
        the answer is lost on the way), no sooner than the service would answer."""
        with self._lock:
            self.calls.append({"Operation": name, **body})
            fault = self.faults.pop(0) if self.faults else None
        if fault and fault[0] != "lost":
            status, code, *message = fault
            return status, _error_answer(status, code, message[0] if message else "injected"), \
                False
        handler = self._run_query if name == "Query" else self._run_cancel
        started = time.monotonic()
        try:
            with self._engine:
                parsed = handler(body)
            status = 200
        except QueryError as exc:
            parsed = _error_answer(exc.status, exc.code, exc.message)
            status = exc.status
        self._take_time(name, body, started, read_timeout)
        parsed.setdefault("ResponseMetadata", {"HTTPStatusCode": status})
        return status, parsed, bool(fault)

    def _answer(self, params, name):
        status, parsed, lost = self.handle(name, json.loads(params["body"] or b"{}"),
                                           self._read_timeout)
        if lost:  # the service did the work, the answer never arrived
            raise ReadTimeoutError(endpoint_url="https://query.timestream")
        return AWSResponse("https://timestream", status, {}, None), parsed

    def _take_time(self, name: str, body: dict, started: float, read_timeout: float) -> None:
        """Answer no sooner than the service would; past the read timeout, as botocore does."""
        if name != "Query":
            return
        seconds = self.page_seconds if "NextToken" in body else self.first_page_seconds
        if seconds > read_timeout:
            time.sleep(max(0.0, read_timeout - (time.monotonic() - started)))
            raise ReadTimeoutError(endpoint_url="https://query.timestream")
        time.sleep(max(0.0, seconds - (time.monotonic() - started)))

    def _query(self, params, **kwargs):
        return self._answer(params, "Query")

    def _cancel(self, params, **kwargs):
        return self._answer(params, "CancelQuery")

    def warm(self) -> None:
        """Load the records into the SQL engine now (it is reloaded when they change)."""
        with self._engine:
            self._connection()

    def _run_cancel(self, body: dict) -> dict:
        query = self._queries.get(body["QueryId"])
        if query is None:
            raise QueryError("ValidationException", f"Query {body['QueryId']} does not exist")
        query["cancelled"] = True
        self.cancelled.append(body["QueryId"])
        return {"CancellationMessage": "Query was cancelled"}

    def _run_query(self, body: dict) -> dict:
        max_rows = body.get("MaxRows", MAX_ROWS)
        if not 1 <= max_rows <= MAX_ROWS:
            raise QueryError("ValidationException", "MaxRows must be between 1 and 1000")
        if not 1 <= len(body["QueryString"]) <= MAX_QUERY_STRING:
            raise QueryError("ValidationException", "QueryString must be 1 to 262144 characters")
        token = body.get("ClientToken")
        if token is not None and not 32 <= len(token) <= 128:
            raise QueryError("ValidationException", "ClientToken must be 32 to 128 characters")
        if token is not None:
            known = self._tokens.get(token)
            age = self.clock() - known[2] if known is not None else 0.0
            if known is not None and age >= TOKEN_FORGOTTEN_SECONDS:
                known = None  # a new request
            elif known is not None and age > IDEMPOTENCY_WINDOW_SECONDS:
                raise QueryError("ValidationException", "ClientToken reused outside the "
                                 "5-minute idempotency window")
            if known is not None and known[0] != body:
                raise QueryError("ValidationException", "ClientToken reused with different "
                                 "parameters within the idempotency window")
            if known is not None:
                return known[1]
        if "NextToken" in body:
            answer = self._next_page(body, max_rows)
        else:
            # A new query starts running (and is billed) now; its first answer holds no rows.
            result = self.execute(body["QueryString"])
            query_id = uuid.uuid4().hex
            self.executions.append(query_id)
            self._queries[query_id] = {"sql": body["QueryString"], "result": result,
                                       "cancelled": False}
            answer = {"QueryId": query_id, "Rows": [], "ColumnInfo": [],
                      "NextToken": json.dumps([query_id, 0])}
        if token is not None:
            self._tokens[token] = (body, answer, self.clock())
        return answer

    def _next_page(self, body: dict, max_rows: int) -> dict:
        try:
            query_id, offset = json.loads(body["NextToken"])
            query = self._queries[query_id]
        except (ValueError, KeyError, TypeError):
            raise QueryError("ValidationException", "Invalid pagination token") from None
        if query["sql"] != body["QueryString"]:
            raise QueryError("ValidationException", "Invalid pagination token")
        if query["cancelled"]:
            raise QueryError("ValidationException", "Query was cancelled")
        columns, rows = query["result"]
        page, size = [], 0
        for row in rows[offset:offset + max_rows]:
            row_size = len(json.dumps(row))
            if row_size > MAX_PAGE_BYTES:
                raise QueryError("ValidationException", "Query aborted as max page response "
                                 "size has been exceeded by the output result row")
            if page and size + row_size > MAX_PAGE_BYTES:
                break
            page.append(row)
            size += row_size
        answer = {"QueryId": query_id, "Rows": page, "ColumnInfo": columns}
        if offset + len(page) < len(rows):
            answer["NextToken"] = json.dumps([query_id, offset + len(page)])
        return answer

    # -- statements ------------------------------------------------------------

    def execute(self, sql: str):
        """(ColumnInfo, Rows) of one statement, as the Query API answers them."""
        text = sql.strip()
        table = re.escape(f'"{self.database}"."{self.table}"')
        if re.fullmatch(rf"DESCRIBE {table}", text):
            return self._describe()
        show = re.fullmatch(rf"SHOW MEASURES FROM {table}(?: LIKE '((?:[^']|'')*)')?", text)
        if show:
            return self._show_measures(None if show.group(1) is None
                                       else show.group(1).replace("''", "'"))
        if not text.upper().startswith("SELECT"):
            raise QueryError("ValidationException", f"unsupported statement: {text[:40]}")
        return self._select(text)

    def _visible_records(self) -> List[dict]:
        return self.records()

    def _describe(self):
        dims, measures = statement_columns(self._visible_records(), self.hidden)
        rows = [(d, "varchar", "DIMENSION") for d in dims]
        rows.append(("measure_name", "varchar", "MEASURE_NAME"))
        rows.append(("time", "timestamp", "TIMESTAMP"))
        rows += [(name, kind, "MEASURE_VALUE" if name.startswith("measure_value::") else "MULTI")
                 for name, kind in sorted(measures.items())]
        columns = [{"Name": n, "Type": {"ScalarType": "VARCHAR"}}
                   for n in ("Column", "Type", "Timestream attribute type")]
        return columns, [{"Data": [{"ScalarValue": v} for v in row]} for row in rows]

    def _show_measures(self, like: Optional[str]):
        pattern = None
        if like is not None:
            pattern = re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c)
                                         for c in like), re.S)
        measures: Dict[str, dict] = {}
        for record in self._visible_records():
            name = record["MeasureName"]
            if pattern is not None and not pattern.fullmatch(name):
                continue
            entry = measures.setdefault(name, {"types": set(), "dims": set()})
            entry["types"].add(record.get("MeasureValueType", "DOUBLE").lower())
            entry["dims"].update(d["Name"] for d in record.get("Dimensions", [])
                                 if d["Name"] not in self.hidden)
        row_info = [{"Name": "dimension_name", "Type": {"ScalarType": "VARCHAR"}},
                    {"Name": "data_type", "Type": {"ScalarType": "VARCHAR"}}]
        columns = [{"Name": "measure_name", "Type": {"ScalarType": "VARCHAR"}},
                   {"Name": "data_type", "Type": {"ScalarType": "VARCHAR"}},
                   {"Name": "dimensions", "Type": {"ArrayColumnInfo": {
                       "Type": {"RowColumnInfo": row_info}}}}]
        rows = []
        for name in sorted(measures):
            entry = measures[name]
            for kind in sorted(entry["types"]):
                dims = [{"RowValue": {"Data": [{"ScalarValue": d}, {"ScalarValue": "varchar"}]}}
                        for d in sorted(entry["dims"])]
                rows.append({"Data": [{"ScalarValue": name}, {"ScalarValue": kind},
                                      {"ArrayValue": dims}]})
        return columns, rows

    def _connection(self) -> duckdb.DuckDBPyConnection:
        records = self._visible_records()
        key = (len(records), frozenset(self.hidden), frozenset(self.unqueryable))
        if self._loaded is not None and self._loaded[0] == key:
            return self._loaded[1]
        dims, measures = statement_columns(records, self.hidden | self.unqueryable)
        conn = duckdb.connect()
        self.install_functions(conn)
        conn.execute(f'CREATE SCHEMA "{self.database}"')
        columns = (["measure_name VARCHAR", '"time" TIMESTAMP']
                   + [f'"{name}" {DUCK_TYPES[kind]}' for name, kind in sorted(measures.items())]
                   + [f'"{d}" VARCHAR' for d in dims])
        conn.execute(f'CREATE TABLE "{self.database}"."{self.table}" ({", ".join(columns)})')
        names = sorted(measures)
        table: Dict[str, list] = {c: [] for c in ["measure_name", "ts_time"] + names + dims}
        for record in records:
            values = dict.fromkeys(names)
            kind = record.get("MeasureValueType", "DOUBLE").lower()
            if kind == "multi":
                for value in record.get("MeasureValues", []):
                    values[value["Name"]] = value["Value"]
            else:
                values["measure_value::" + kind] = record["MeasureValue"]
            unit = {"MILLISECONDS": 1000, "SECONDS": 1_000_000, "MICROSECONDS": 1,
                    "NANOSECONDS": 0.001}[record.get("TimeUnit", "MILLISECONDS")]
            dim_values = {d["Name"]: d["Value"] for d in record.get("Dimensions", [])}
            table["measure_name"].append(record["MeasureName"])
            table["ts_time"].append(int(int(record["Time"]) * unit))
            for name in names:
                table[name].append(values[name])
            for dim in dims:
                table[dim].append(dim_values.get(dim))
        # ("ts_time": no dimension is named ts_..., ts-limits.html naming rules.)
        # One INSERT from columns (numpy arrays DuckDB scans): row-by-row INSERTs are slow.
        conn.register("loaded", {c: numpy.array(v, dtype=object if c != "ts_time" else "int64")
                                 for c, v in table.items()})
        selected = ", ".join(["measure_name", "make_timestamp(ts_time)"]
                             + [f'CAST("{n}" AS {DUCK_TYPES[measures[n]]})' for n in names]
                             + ['"' + d.replace('"', '""') + '"' for d in dims])
        conn.execute(f'INSERT INTO "{self.database}"."{self.table}" SELECT {selected} FROM loaded')
        conn.unregister("loaded")
        self._loaded = (key, conn)
        return conn

    def _select(self, sql: str):
        conn = self._connection()
        try:
            cursor = conn.execute(to_duckdb(sql))
        except duckdb.BinderException as exc:
            missing = re.search(r'column "([^"]+)" not found', str(exc))
            if missing:
                raise QueryError("ValidationException",
                                 f"line 1:1: Column '{missing.group(1)}' does not exist") from None
            raise QueryError("ValidationException", str(exc)) from None
        except duckdb.Error as exc:
            raise QueryError("ValidationException", str(exc)) from None
        columns = [column_info(name, kind) for name, kind, *_ in cursor.description]
        rows = [{"Data": [datum(value, info["Type"]) for value, info in zip(row, columns)]}
                for row in cursor.fetchall()]
        return columns, rows


def column_info(name: str, kind) -> dict:
    text = str(kind)
    return {"Name": name, "Type": type_info(text)}


def type_info(text: str) -> dict:
    prefix = 'STRUCT("time" TIMESTAMP, "value" '
    if text.endswith(")[]") and text.startswith(prefix):
        inner = text[len(prefix):-3]
        return {"TimeSeriesMeasureValueColumnInfo": {"Type": type_info(inner)}}
    if text.endswith("[]"):
        return {"ArrayColumnInfo": {"Type": type_info(text[:-2])}}
    scalar = {"DOUBLE": "DOUBLE", "BIGINT": "BIGINT", "INTEGER": "INTEGER", "VARCHAR": "VARCHAR",
              "BOOLEAN": "BOOLEAN", "TIMESTAMP": "TIMESTAMP"}.get(text, "VARCHAR")
    return {"ScalarType": scalar}


def datum(value, kind: dict) -> dict:
    if value is None:
        return {"NullValue": True}
    if "TimeSeriesMeasureValueColumnInfo" in kind:
        inner = kind["TimeSeriesMeasureValueColumnInfo"]["Type"]
        points = [{"Time": timestamp_text(p["time"]), "Value": datum(p["value"], inner)}
                  for p in value]
        return {"TimeSeriesValue": points[::-1]}  # no documented order: newest first here
    if "ArrayColumnInfo" in kind:
        return {"ArrayValue": [datum(v, kind["ArrayColumnInfo"]["Type"]) for v in value]}
    scalar = kind.get("ScalarType")
    if scalar == "DOUBLE":
        return {"ScalarValue": java_double(value)}
    if scalar == "TIMESTAMP":
        return {"ScalarValue": timestamp_text(value)}
    if scalar == "BOOLEAN":
        return {"ScalarValue": "true" if value else "false"}
    return {"ScalarValue": str(value)}


_TOKENS = re.compile(r"""('(?:[^']|'')*')|("(?:[^"]|"")*")|(measure_value::(?:double|bigint|"""
                     r"""varchar|boolean))|\bbin\(|\b(\d+)(ms|s|m|h|d)\b|\bCREATE_TIME_SERIES\(""",
                     re.I)
_UNITS = {"ms": "millisecond", "s": "second", "m": "minute", "h": "hour", "d": "day"}


def to_duckdb(sql: str) -> str:
    """Timestream SQL in DuckDB's dialect: ``measure_value::double`` is a column name, not a
    cast; ``1h`` is an interval; ``bin``/``CREATE_TIME_SERIES`` are the macros installed by
    ``install_time_functions``. String literals and quoted identifiers are left alone."""
    def replace(match: re.Match) -> str:
        if match.group(1) or match.group(2):
            return match.group(0)
        if match.group(3):
            return '"' + match.group(3).lower() + '"'
        if match.group(4):
            return f"INTERVAL {match.group(4)} {_UNITS[match.group(5).lower()]}"
        return match.group(0).lower().replace("create_time_series(", "ts_create_time_series(") \
            .replace("bin(", "ts_bin(")
    return _TOKENS.sub(replace, sql)


TIME_FUNCTIONS = [
    "CREATE MACRO from_milliseconds(x) AS make_timestamp(CAST(x AS BIGINT) * 1000)",
    "CREATE MACRO to_milliseconds(t) AS epoch_ms(t)",
    "CREATE MACRO ts_bin(t, i) AS time_bucket(i, t, TIMESTAMP '1970-01-01')",
    # "The second parameter cannot be null" (Timeseries views page).
    "CREATE MACRO ts_create_time_series(t, v) AS list({'time': t, 'value': CASE WHEN v IS NULL "
    "THEN error('CREATE_TIME_SERIES: the second parameter cannot be null') ELSE v END})",
]


def install_time_functions(conn: duckdb.DuckDBPyConnection) -> None:
    """Timestream's time functions on DuckDB."""
    for statement in TIME_FUNCTIONS:
        conn.execute(statement)
