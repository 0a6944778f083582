"""Remote-read queries translated to Timestream SQL, with Prometheus's matcher semantics.

- Identifiers are double-quoted (``"`` doubled) and string literals single-quoted
  (``'`` doubled): no label name or value can change the statement.
- Regexes are anchored as Prometheus anchors them; ``regexp_like`` alone is a
  *contains* match. ``\\z`` (end of input) is used rather than ``$``, which in
  Java also matches before a final newline.
- An empty value is an absent label, and an absent dimension reads as NULL, so
  each matcher says explicitly whether NULL rows are selected.
- A matcher on a label that is not a column of the table is decided here, without
  SQL: it either selects every row (the label is absent everywhere) or none.
"""
from typing import Collection, List, NamedTuple, Optional

from chalicelib.matchers import Matcher, MatchType, anchored_source
from chalicelib.model import Query
from chalicelib.storage.timestream_records import dimension_name

TIME_COLUMN = "ts_ms"
# Prometheus asks for ranges such as [math.MinInt64, math.MaxInt64]; Timestream's
# timestamps (nanoseconds) cannot hold those, so ranges are clamped to what it can store.
MIN_TIME_MS = 0
MAX_TIME_MS = 9_223_372_036_854  # 2262-04-11, the largest nanosecond timestamp
VALUE_COLUMN = "ts_value"  # "ts_" names cannot be dimensions: no clash with labels


def identifier(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def regex_literal(pattern: str) -> str:
    """A Prometheus regex as an anchored regexp_like pattern literal."""
    return literal("^" + anchored_source(pattern) + "\\z")


def matcher_condition(matcher: Matcher, column: str, nullable: bool) -> str:
    """SQL condition equivalent to ``matcher`` on ``column``."""
    col = identifier(column)
    if matcher.type in (MatchType.EQ, MatchType.NEQ):
        test = f"{col} = {literal(matcher.value)}"
    else:
        test = f"regexp_like({col}, {regex_literal(matcher.value)})"
    if matcher.type in (MatchType.NEQ, MatchType.NRE):
        test = f"NOT {test}"
    if matcher.type is MatchType.EQ and matcher.value == "":
        return f"{col} IS NULL"
    if matcher.type is MatchType.NEQ and matcher.value == "":
        return f"{col} IS NOT NULL"
    if not nullable:
        return test
    if matcher.matches_empty:
        return f"({col} IS NULL OR {test})"
    return f"({col} IS NOT NULL AND {test})"


class SelectStatement(NamedTuple):
    """A statement and the dimension columns it returns (in order)."""

    sql: str
    dimensions: List[str]


def select_statement(query: Query, database: str, table: str,
                     dimensions: Collection[str]) -> Optional[SelectStatement]:
    """The SELECT answering ``query`` on a table with these dimension columns, or
    None when the matchers can select nothing there."""
    start, end = max(int(query.start_ms), MIN_TIME_MS), min(int(query.end_ms), MAX_TIME_MS)
    if start > end:
        return None
    conditions = [f"time BETWEEN from_milliseconds({start}) AND from_milliseconds({end})"]
    for matcher in query.matchers:
        if matcher.name == "__name__":
            conditions.append(matcher_condition(matcher, "measure_name", nullable=False))
            continue
        column = dimension_name(matcher.name)
        if column not in dimensions:
            if matcher.matches_empty:
                continue  # absent on every row, and absent is what it asks for
            return None
        conditions.append(matcher_condition(matcher, column, nullable=True))
    columns = sorted(dimensions)
    selected = ", ".join(["measure_name", f"to_milliseconds(time) AS {TIME_COLUMN}",
                          f"measure_value::double AS {VALUE_COLUMN}"]
                         + [identifier(c) for c in columns])
    sql = (f"SELECT {selected} FROM {identifier(database)}.{identifier(table)} "
           f"WHERE {' AND '.join(conditions)} ORDER BY {TIME_COLUMN}")
    return SelectStatement(sql, columns)

