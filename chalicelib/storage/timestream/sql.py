"""Remote-read queries translated to Timestream SQL, with Prometheus's matcher semantics.

- Identifiers are double-quoted (``"`` doubled) and string literals single-quoted
  (``'`` doubled): no label name or value can change the statement.
- Regexes are translated to Java patterns with the same meaning, anchored
  (timestream_regex); ``regexp_like`` alone is a *contains* match.
- An empty value is an absent label, and an absent dimension reads as NULL, so
  each matcher says explicitly whether NULL rows are selected.
- Reads scale with series, not samples: each series comes back as one row per hour
  holding its samples (CREATE_TIME_SERIES, "Timeseries views" in the Developer Guide: it
  pairs each time with its value, which ``array_agg`` could only do with a ROW constructor
  and an ordered aggregate, neither documented for Timestream),
  and only the dimensions of the measures asked for are named (SHOW MEASURES lists them
  per measure). A matcher on a label none of those measures has is decided here, without
  SQL: it either selects every row (the label is absent everywhere) or none.
- Metric-name matchers are decided here too, on the measure names SHOW MEASURES lists,
  with Prometheus's own regex semantics.
- Native histograms are MULTI measures named ``<metric>#histogram`` (records.py): they are
  read by statements of their own, aggregating their ``__histogram`` text. A table gets
  that column with its first histogram, so it is named only when SHOW MEASURES lists such a
  measure (naming a column the table does not have fails the query).
"""
from typing import FrozenSet, Iterable, List, NamedTuple, Sequence

from chalicelib.errors import BadRequest
from chalicelib.matchers import Matcher, MatchType
from chalicelib.model import Query
from chalicelib.storage.timestream.records import (HISTOGRAM_TEXT, dimension_name,
                                                   histogram_metric)
from chalicelib.storage.timestream.java_regex import java_regex

SAMPLES_COLUMN = "ts_samples"  # "ts_" names cannot be dimensions: no clash with labels
VALUE_COLUMN = "measure_value::double"
HISTOGRAM_COLUMN = '"' + HISTOGRAM_TEXT + '"'
# Rows of one series are cut at each bin of time: a row must stay under Timestream's 1 MB
# (about 3 600 samples an hour at a 1 s scrape interval take ~250 kB). A statement whose row
# is still too large is run again with the next, narrower bin.
BIN_WIDTHS = ("1h", "1m")
MEASURES_PER_STATEMENT = 100
MAX_QUERY_STRING = 262_144  # API_query_Query: QueryString length
# Prometheus asks for ranges such as [math.MinInt64, math.MaxInt64]; Timestream's
# timestamps (nanoseconds) cannot hold those, so ranges are clamped to what it can store.
MIN_TIME_MS = 0
MAX_TIME_MS = 9_223_372_036_854  # 2262-04-11, the largest nanosecond timestamp


def identifier(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def regex_literal(pattern: str, dot_all: bool = False) -> str:
    """A Prometheus regex as the regexp_like pattern literal that means the same."""
    return literal(java_regex(pattern, dot_all))


def matcher_condition(matcher: Matcher, column: str) -> str:
    """SQL condition equivalent to ``matcher`` on the dimension ``column`` (NULL where a
    row lacks it; a dimension value is never empty: API_Dimension, Value 1..2048)."""
    col = identifier(column)
    if matcher.type in (MatchType.EQ, MatchType.NEQ):
        test = f"{col} = {literal(matcher.value)}"
    else:
        test = f"regexp_like({col}, {regex_literal(matcher.value, matcher.dot_all)})"
    if matcher.type in (MatchType.NEQ, MatchType.NRE):
        test = f"NOT {test}"
    if matcher.matches_empty:
        return f"({col} IS NULL OR {test})"
    return f"({col} IS NOT NULL AND {test})"


class Measure(NamedTuple):
    """One measure of the table, as SHOW MEASURES lists it."""

    name: str
    data_type: str
    dimensions: FrozenSet[str]


class SelectStatement(NamedTuple):
    """A statement and the dimension columns it returns (in order); ``histograms``: whether
    its samples are native histograms (their text) rather than float values."""

    sql: str
    dimensions: List[str]
    histograms: bool


def measures_statement(query: Query, database: str, table: str) -> str:
    """SHOW MEASURES for the measures ``query`` may select: with an exact metric name, a
    LIKE on it followed by ``%``, so that its native histograms' measure is listed too
    (``_`` and ``%`` can only widen the list, which is then matched exactly); else every
    measure of the table."""
    sql = f"SHOW MEASURES FROM {identifier(database)}.{identifier(table)}"
    for matcher in query.matchers:
        if matcher.name == "__name__" and matcher.type is MatchType.EQ and matcher.value:
            return f"{sql} LIKE {literal(matcher.value + '%')}"
    return sql


def nothing_statement(database: str, table: str) -> str:
    """A SHOW MEASURES that lists nothing (no measure name is empty): a cheap call that
    Timestream authorizes like every read (``timestream:ListMeasures``)."""
    return f"SHOW MEASURES FROM {identifier(database)}.{identifier(table)} LIKE ''"


def selected_measures(query: Query, measures: Iterable[Measure],
                      histograms: bool = False) -> List[Measure]:
    """The DOUBLE measures (``histograms``: the native histograms' MULTI measures) that can
    hold series selected by ``query``: the metric-name matchers are decided here with
    Prometheus's own semantics, and a matcher that needs a label the measure has no
    dimension for rules the measure out."""
    names = [m for m in query.matchers if m.name == "__name__"]
    labels = [m for m in query.matchers if m.name != "__name__"]
    chosen = []
    for measure in measures:
        metric = histogram_metric(measure.name) if histograms else measure.name
        if (measure.data_type == ("multi" if histograms else "double") and metric is not None
                and all(n.matches_value(metric) for n in names)
                and all(l.matches_empty or dimension_name(l.name) in measure.dimensions
                        for l in labels)):
            chosen.append(measure)
    return sorted(chosen, key=lambda m: m.name)


def select_statements(query: Query, database: str, table: str, measures: Sequence[Measure],
                      bin_width: str = BIN_WIDTHS[0]) -> List[SelectStatement]:
    """SELECTs answering ``query`` from these measures: one row per series (and
    ``bin_width`` of time), its samples aggregated with CREATE_TIME_SERIES; each statement
    selects only the dimensions of its (at most ``MEASURES_PER_STATEMENT``) measures. The
    statements of float samples come first, then those of native histograms."""
    start, end = max(int(query.start_ms), MIN_TIME_MS), min(int(query.end_ms), MAX_TIME_MS)
    if start > end:
        return []
    statements = []
    for histograms, value in ((False, VALUE_COLUMN), (True, HISTOGRAM_COLUMN)):
        chosen = selected_measures(query, measures, histograms)
        for first in range(0, len(chosen), MEASURES_PER_STATEMENT):
            statements.append(_statement(
                query, f"{identifier(database)}.{identifier(table)}",
                chosen[first:first + MEASURES_PER_STATEMENT], value, bin_width, histograms))
    return statements


def _statement(query: Query, table: str, chunk: Sequence[Measure], value: str,
               bin_width: str, histograms: bool) -> SelectStatement:
    """The SELECT of ``chunk``'s samples (the column ``value``) that ``query`` selects."""
    start, end = max(int(query.start_ms), MIN_TIME_MS), min(int(query.end_ms), MAX_TIME_MS)
    columns = sorted(set().union(*(m.dimensions for m in chunk)))
    conditions = [
        "measure_name IN (" + ", ".join(literal(m.name) for m in chunk) + ")",
        f"time BETWEEN from_milliseconds({start}) AND from_milliseconds({end})",
        f"{value} IS NOT NULL"]
    for matcher in query.matchers:
        column = dimension_name(matcher.name)
        if matcher.name != "__name__" and column in columns:
            conditions.append(matcher_condition(matcher, column))
        # otherwise absent on every row of the chunk, which the matcher accepts
    keys = ", ".join(["measure_name"] + [identifier(c) for c in columns])
    statement = SelectStatement(
        f"SELECT {keys}, CREATE_TIME_SERIES(time, {value}) AS {SAMPLES_COLUMN} "
        f"FROM {table} WHERE {' AND '.join(conditions)} "
        f"GROUP BY {keys}, bin(time, {bin_width})", columns, histograms)
    if len(statement.sql) > MAX_QUERY_STRING:
        raise BadRequest(f"the matchers make a Timestream query of {len(statement.sql)} "
                         f"characters, over its limit of {MAX_QUERY_STRING}")
    return statement
