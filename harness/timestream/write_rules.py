"""Timestream for LiveAnalytics' documented WriteRecords rules, for the test harness.

moto stores whatever it is sent, so a connector tested on moto alone can send what the
service refuses. ``WriteRules`` judges each WriteRecords request (the JSON of the wire,
CommonAttributes merged as the service merges them) the way the documentation says the
service does, and keeps what the service would store. It is used in-process (a botocore
``before-call`` hook, see ``timestream_env``) and behind the end-to-end proxy.

Every rule cites its documentation page. Where the documentation names the rule but not
the exact message, the message here is our own wording of it.
"""
import json
import math
import threading
import time
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple

DOCS = "https://docs.aws.amazon.com/timestream/latest/developerguide/"


class Refusal(NamedTuple):
    """How the service answers a request it does not take whole."""

    status: int
    code: str
    message: str
    rejected: Optional[List[dict]] = None  # RejectedRecords, for RejectedRecordsException

    def body(self) -> bytes:
        """The JSON body the service sends (awsJson1_0 error shape)."""
        body = {"__type": self.code, "message": self.message}
        if self.rejected is not None:
            body["RejectedRecords"] = self.rejected
        return json.dumps(body).encode()

    def parsed(self) -> dict:
        """What botocore makes of that body: fresh objects read from JSON, never this
        module's constants (code that compares an error code with ``is`` fails on AWS)."""
        parsed = {"Error": {"Code": self.code, "Message": self.message},
                  "ResponseMetadata": {"HTTPStatusCode": self.status}}
        if self.rejected is not None:
            parsed["RejectedRecords"] = self.rejected
        return json.loads(json.dumps(parsed))


def validation(message: str) -> Refusal:
    return Refusal(400, "ValidationException", message)


# Reserved names and naming rules for dimensions
# (ts-limits.html#limits.naming; API_Dimension.html: "Dimension names cannot start with
# ts_ or measure_value and they cannot contain the colon (:) character").
RESERVED_DIMENSIONS = ("time", "measure_name", "measure_value")
RESERVED_PREFIXES = ("ts_", "measure_value")


def refuses_dimension_name(name: str) -> bool:
    """Whether Timestream refuses ``name`` as a dimension name whatever its length:
    empty, reserved, with a reserved prefix, or with a colon."""
    return (not name or name in RESERVED_DIMENSIONS or name.startswith(RESERVED_PREFIXES)
            or ":" in name)


# Multi-measure records (MeasureValueType MULTI).
# API_Record.html, MeasureValueType: "DOUBLE | BIGINT | VARCHAR | BOOLEAN | TIMESTAMP | MULTI";
# MeasureValues: "This is only allowed for type MULTI. For scalar values, use MeasureValue".
# TIMESTAMP is "currently supported only for multi-measure records" (writes.html, Data types).
RECORD_TYPES = ("DOUBLE", "BIGINT", "VARCHAR", "BOOLEAN", "TIMESTAMP", "MULTI")
# writes.html, Data types: MULTI "includes one or more measures of type BIGINT, BOOLEAN,
# DOUBLE, VARCHAR, and TIMESTAMP".
MEASURE_TYPES = ("DOUBLE", "BIGINT", "VARCHAR", "BOOLEAN", "TIMESTAMP")
# ts-limits.html, Service limits: "Measures per multi-measure record: 256", "Measure value
# size per multi-measure record: 2048", "Unique measures across multi-measure records per
# table: 1024". The same table's "Maximum record size: 2 Kilobytes" is not applied to the
# measures of a MULTI record on top of that: 256 DOUBLE measures (8 bytes each) fill the
# 2048 bytes of values alone, so the two limits only agree if the values have their own
# 2 KB; a record's dimensions have theirs ("Dimension name dimension value pair size per
# series", checked for every record). How the service counts a record's size is not
# documented: this is our reading, and the connector reports whatever else it refuses.
MAX_MEASURES_PER_RECORD = 256
MAX_MEASURE_VALUES_BYTES = 2048
MAX_MULTI_MEASURES_PER_TABLE = 1024
# ts-limits.html#limits.system_identifier: "We reserve column names "measure_value",
# "ts_non_existent_col" and "time" ... column names may not start with "ts_" or
# "measure_name" ... System identifiers may not be used for dimension or measure names."
SYSTEM_IDENTIFIERS = ("measure_value", "ts_non_existent_col", "time")
SYSTEM_PREFIXES = ("ts_", "measure_name")


def value_size(measure: dict) -> int:
    """The size of one measure's value (metering-and-pricing.writes.html: "1 byte for the
    boolean data type, 8 bytes for bigint and double, and the length of the UTF-8 encoded
    bytes for strings"; a TIMESTAMP is a 64-bit count, 8 bytes)."""
    if measure["Type"] == "VARCHAR":
        return len(measure["Value"].encode())
    return 1 if measure["Type"] == "BOOLEAN" else 8


UNITS_PER_MS = {"MILLISECONDS": 1, "SECONDS": 0.001, "MICROSECONDS": 1000,
                "NANOSECONDS": 1_000_000}


class WriteRules:
    """One table's write rules and what it holds."""

    def __init__(self, memory_hours: float = 6, magnetic_writes: bool = False,
                 magnetic_days: float = 73000,
                 clock: Callable[[], float] = time.time,
                 rejected_data_location: Optional[str] = None) -> None:
        self.memory_hours = memory_hours
        self.magnetic_writes = magnetic_writes
        self.magnetic_days = magnetic_days
        self.clock = clock
        self.rejected_data_location = rejected_data_location
        # The reports Timestream writes to the rejected-data location (S3) for late records
        # it rejects; none are kept when the table has no location.
        self.magnetic_reports: List[dict] = []
        self.stored: Dict[tuple, dict] = {}   # record identity -> merged record
        self.dimension_names: set = set()
        self.measure_types: Dict[str, str] = {}
        self.multi_measures: Dict[str, str] = {}  # measures of MULTI records -> their type
        self._lock = threading.Lock()

    def records(self) -> List[dict]:
        """The records the table holds, as written (CommonAttributes merged in)."""
        with self._lock:
            return list(self.stored.values())

    def write_records(self, request: dict) -> Optional[Refusal]:
        """Judge one WriteRecords request: None if every record was stored."""
        records = request.get("Records", [])
        # API_WriteRecords.html: Records, "Array Members: Minimum number of 1 item.
        # Maximum number of 100 items."
        if not 1 <= len(records) <= 100:
            return validation(f"Records must hold 1 to 100 records, got {len(records)}")
        common = request.get("CommonAttributes", {})
        merged = [merge(common, record) for record in records]
        for record in merged:
            problem = request_problem(record)
            if problem:
                return validation(problem)
        with self._lock:
            rejected = []
            accepted: Dict[tuple, dict] = {}
            for index, record in enumerate(merged):
                reason, existing = self._record_problem(record, accepted)
                if reason and existing is not None and self._late(record):
                    # writes.html, "Handling rejected records" (magnetic store writes): late
                    # records are processed asynchronously; those rejected are not in the
                    # WriteRecords answer but reported to MagneticStoreRejectedDataLocation,
                    # if the table has one.
                    if self.rejected_data_location:
                        self.magnetic_reports.append({"record": record, "reason": reason})
                    continue
                if reason:
                    entry = {"RecordIndex": index, "Reason": reason}
                    if existing is not None:
                        entry["ExistingVersion"] = existing
                    rejected.append(entry)
                else:
                    accepted[identity(record)] = record
            for key, record in accepted.items():
                self.stored[key] = record
                self.dimension_names.update(d["Name"] for d in record["Dimensions"])
                self.measure_types.setdefault(record["MeasureName"], record["MeasureValueType"])
                for measure in record.get("MeasureValues", ()):
                    self.multi_measures.setdefault(measure["Name"], measure["Type"])
        if rejected:
            # API_WriteRecords.html, Errors: RejectedRecordsException, HTTP status 419;
            # the records not listed are written.
            return Refusal(419, "RejectedRecordsException",
                           "One or more records have been rejected. See RejectedRecords for "
                           "details.", rejected)
        return None

    def _late(self, record: dict) -> bool:
        """Whether the record goes to the magnetic store (older than the memory store's
        retention, on a table with magnetic-store writes)."""
        time_ms = int(record["Time"]) / UNITS_PER_MS[record.get("TimeUnit", "MILLISECONDS")]
        return self.magnetic_writes and \
            time_ms < self.clock() * 1000 - self.memory_hours * 3_600_000

    def _record_problem(self, record: dict, accepted: Dict[tuple, dict]
                        ) -> Tuple[Optional[str], Optional[int]]:
        now_ms = self.clock() * 1000
        time_ms = int(record["Time"]) / UNITS_PER_MS[record.get("TimeUnit", "MILLISECONDS")]
        # ts-limits.html: "Future ingestion period in minutes ... 15".
        if time_ms > now_ms + 15 * 60_000:
            return ("The record timestamp is outside the time range [memory store retention, "
                    "15 minutes in the future] of the data ingestion window.", None)
        # API_RejectedRecord.html: "Records with timestamps that lie outside the retention
        # duration of the memory store"; with magnetic store writes enabled
        # (writes.html#writes.late-arriving-data) up to the magnetic store retention.
        oldest = now_ms - (self.magnetic_days * 86_400_000 if self.magnetic_writes
                           else self.memory_hours * 3_600_000)
        if time_ms < oldest:
            return ("The record timestamp is outside the time range of the data ingestion "
                    "window.", None)
        # ts-limits.html: "Dimension name dimension value pair size per series: 2 KB";
        # API_RejectedRecord.html: "Records with dimensions or measures that exceed the
        # Timestream defined limits".
        pairs = sum(len(d["Name"].encode()) + len(d["Value"].encode())
                    for d in record["Dimensions"])
        if pairs > 2048:
            return f"Dimension names and values take {pairs} bytes, over the 2 KB limit.", None
        # ts-limits.html: "Dimensions per table: 128", "Measure names per table: 8192".
        known = self.dimension_names | {
            d["Name"] for r in accepted.values() for d in r["Dimensions"]}
        new_names = {d["Name"] for d in record["Dimensions"]} - known
        if new_names and len(known) + len(new_names) > 128:
            return ("The table would exceed its limit of 128 dimensions (ts-limits: "
                    "Dimensions per table).", None)
        measure = record["MeasureName"]
        measures = set(self.measure_types) | {r["MeasureName"] for r in accepted.values()}
        if measure not in measures and len(measures) >= 8192:
            return ("The table would exceed its limit of 8192 measure names (ts-limits: "
                    "Measure names per table).", None)
        # "a single measure name can only be associated with one type of measure value.
        # That type can be one of DOUBLE, BIGINT, BOOLEAN, VARCHAR, or MULTI"
        # (data-modeling.html, "Using measure name with multi-measure records"); the type is
        # the one first ingested (writes.html, "No upfront schema").
        known_type = self.measure_types.get(measure) or next(
            (r["MeasureValueType"] for r in accepted.values() if r["MeasureName"] == measure),
            None)
        if known_type is not None and known_type != record["MeasureValueType"]:
            return (f"Measure {measure} was ingested as {known_type}, not "
                    f"{record['MeasureValueType']}.", None)
        columns = self._column_problem(record, known, accepted)
        if columns:
            return columns, None
        # API_RejectedRecord.html: same dimensions, timestamp and measure name but a
        # different measure value (and no higher Version) is rejected; an identical record
        # is accepted (API_WriteRecords.html, "Upserts").
        key = identity(record)
        existing = accepted.get(key) or self.stored.get(key)
        if existing is not None and not same_value(existing, record):
            return ("A record already exists with the same time, dimensions, measure name, "
                    "and record version. A record with a higher version is required to "
                    "update the measure value.", 1)
        return None, None


    def _column_problem(self, record: dict, dimensions: set, accepted: Dict[tuple, dict]
                        ) -> Optional[str]:
        """Why the table's columns cannot take this record: a dimension and a measure of a
        MULTI record share their columns' namespace, a measure keeps its type, and the
        limits of multi-measure records."""
        multi = dict(self.multi_measures)
        for other in accepted.values():
            for measure in other.get("MeasureValues", ()):
                multi.setdefault(measure["Name"], measure["Type"])
        # ts-limits.html#limits.naming, "All Column Names": "Since multi-measure records
        # represent dimensions and measures as columns, the name for a dimension can not be
        # the same as the name for a measure."
        clash = sorted({d["Name"] for d in record["Dimensions"]} & set(multi))
        if clash:
            return f"Dimension name {clash[0]} is already the name of a measure of this table."
        if record["MeasureValueType"] != "MULTI":
            return None
        values = record["MeasureValues"]
        names = {m["Name"] for m in values}
        clash = sorted(names & (dimensions | {d["Name"] for d in record["Dimensions"]}))
        if clash:
            return f"Measure name {clash[0]} is already the name of a dimension of this table."
        if len(values) > MAX_MEASURES_PER_RECORD:
            return (f"A multi-measure record can have at most {MAX_MEASURES_PER_RECORD} "
                    f"measures, got {len(values)} (ts-limits: Measures per multi-measure "
                    "record).")
        size = sum(value_size(m) for m in values)
        if size > MAX_MEASURE_VALUES_BYTES:
            return (f"The measure values take {size} bytes, over the limit of "
                    f"{MAX_MEASURE_VALUES_BYTES} (ts-limits: Measure value size per "
                    "multi-measure record).")
        # Column types are detected from the first write (writes.html, "flexible schema that
        # auto detects the column names and data types").
        for measure in values:
            known = multi.get(measure["Name"])
            if known is not None and known != measure["Type"]:
                return (f"Measure {measure['Name']} was ingested as {known}, not "
                        f"{measure['Type']}.")
        if len(set(multi) | names) > MAX_MULTI_MEASURES_PER_TABLE:
            return (f"The table would exceed its limit of {MAX_MULTI_MEASURES_PER_TABLE} "
                    "measures of multi-measure records (ts-limits: Unique measures across "
                    "multi-measure records per table).")
        return None


def merge(common: dict, record: dict) -> dict:
    """A record with CommonAttributes merged in (API_WriteRecords.html, CommonAttributes)."""
    merged = {"TimeUnit": "MILLISECONDS", "MeasureValueType": "DOUBLE", **common, **record}
    merged["Dimensions"] = common.get("Dimensions", []) + record.get("Dimensions", [])
    return merged


def identity(record: dict) -> tuple:
    """What identifies a record (API_Record.html: same dimensions, time and measure name)."""
    return (record["MeasureName"], int(record["Time"]),
            frozenset((d["Name"], d["Value"]) for d in record["Dimensions"]))


def same_value(a: dict, b: dict) -> bool:
    """Whether two records of one identity hold the same value(s): the measures of a MULTI
    record by name, in any order; DOUBLEs by number."""
    if a["MeasureValueType"] == "DOUBLE" == b["MeasureValueType"]:
        return float(a["MeasureValue"]) == float(b["MeasureValue"])
    if a["MeasureValueType"] == "MULTI" == b["MeasureValueType"]:
        return _measures(a) == _measures(b)
    return (a["MeasureValueType"], a.get("MeasureValue")) == \
        (b["MeasureValueType"], b.get("MeasureValue"))


def _measures(record: dict) -> dict:
    return {m["Name"]: (m["Type"], float(m["Value"]) if m["Type"] == "DOUBLE" else m["Value"])
            for m in record["MeasureValues"]}


def request_problem(record: dict) -> Optional[str]:
    """Why the whole call fails with a ValidationException because of this record, or None."""
    dims = record["Dimensions"]
    # Measured on the service (facts.md): "At least one dimension is required for a record."
    if not dims:
        return "At least one dimension is required for a record."
    # API_Record.html: Dimensions "Maximum number of 128 items".
    if len(dims) > 128:
        return f"A record can have at most 128 dimensions, got {len(dims)}."
    names = [d["Name"] for d in dims]
    # API_WriteRecords.html, CommonAttributes: dimensions of a record must not repeat
    # those of the common attributes.
    if len(set(names)) != len(names):
        return "Duplicate dimension names in a record."
    for dim in dims:
        name, value = dim["Name"], dim["Value"]
        # API_Dimension.html: Name length 1 to 60; Value length 1 to 2048.
        if not 1 <= len(name.encode()) <= 60:
            return f"Dimension name {name!r} must be 1 to 60 bytes long."
        if not 1 <= len(value.encode()) <= 2048:
            return f"Dimension value of {name!r} must be 1 to 2048 bytes long."
        # ts-limits.html#limits.naming, API_Dimension.html: reserved names, no colon.
        if refuses_dimension_name(name):
            return f"Dimension name {name!r} is reserved or contains ':'."
    measure = record.get("MeasureName", "")
    # API_Record.html: MeasureName length 1 to 256.
    if not 1 <= len(measure.encode()) <= 256:
        return f"Measure name must be 1 to 256 bytes long, got {len(measure.encode())}."
    kind = record["MeasureValueType"]
    if kind not in RECORD_TYPES or kind == "TIMESTAMP":
        return f"{kind} is an invalid measure value type."
    if kind == "MULTI":
        return multi_problem(record)
    if "MeasureValues" in record:
        return "MeasureValues are only allowed for type MULTI."
    if kind == "DOUBLE":
        return double_problem(record.get("MeasureValue", ""))
    return None


def double_problem(text: str) -> Optional[str]:
    """Why ``text`` is no DOUBLE Timestream takes: writes.html, data types: DOUBLE is an
    IEEE 754 64-bit value; supported data types page: NaN and Infinity cannot be written."""
    try:
        value = float(text)
    except ValueError:
        return f"Measure value {text!r} is not a DOUBLE."
    if not math.isfinite(value):
        return "Measure value must be a finite DOUBLE (NaN and Infinity cannot be written)."
    return None


def multi_problem(record: dict) -> Optional[str]:
    """Why a MULTI record fails the whole call (the shapes the API reference gives)."""
    # API_Record.html: MeasureValues for MULTI, MeasureValue for scalar values.
    if "MeasureValue" in record:
        return "MeasureValue is not allowed for type MULTI: use MeasureValues."
    values = record.get("MeasureValues") or []
    if not values:
        return "A record of type MULTI needs MeasureValues."
    names = [m.get("Name", "") for m in values]
    # ts-limits.html#limits.naming, "All Column Names": "Column names can not be duplicated."
    if len(set(names)) != len(names):
        return "Duplicate measure names in a record."
    for measure in values:
        name, value = measure.get("Name", ""), measure.get("Value", "")
        # API_MeasureValue.html: Name minimum length 1; Value length 1 to 2048; Type.
        if not name or name in SYSTEM_IDENTIFIERS or name.startswith(SYSTEM_PREFIXES):
            return f"Measure name {name!r} is empty or a system identifier."
        if not 1 <= len(value) <= 2048:
            return f"The value of measure {name!r} must be 1 to 2048 characters long."
        if measure.get("Type") not in MEASURE_TYPES:
            return f"{measure.get('Type')} is an invalid type for measure {name!r}."
        if measure["Type"] == "DOUBLE":
            problem = double_problem(value)
            if problem:
                return problem
    return None
