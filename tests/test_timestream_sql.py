"""The SQL text itself: escaping, anchoring, NULL handling, ranges."""
import pytest

from chalicelib.matchers import Matcher
from chalicelib.model import Query
from chalicelib.storage.timestream_sql import (identifier, literal, matcher_condition,
                                               regex_literal, select_statement)


def test_identifiers_and_literals_are_escaped():
    assert identifier('we"ird') == '"we""ird"'
    assert literal("x' OR '1'='1") == "'x'' OR ''1''=''1'"
    assert literal("back\\slash\nnewline") == "'back\\slash\nnewline'"


def test_regexes_are_anchored_like_prometheus():
    assert regex_literal("api.*") == "'^(?:api.*)\\z'"
    assert regex_literal("(?i)a|b") == "'^(?i)(?:a|b)\\z'"
    assert regex_literal("it's") == "'^(?:it''s)\\z'"


@pytest.mark.parametrize("matcher,sql", [
    ((0, "job", "a"), '("job" IS NOT NULL AND "job" = \'a\')'),
    ((0, "job", ""), '"job" IS NULL'),
    ((1, "job", ""), '"job" IS NOT NULL'),
    ((1, "job", "a"), '("job" IS NULL OR NOT "job" = \'a\')'),
    ((2, "job", "a.*"), '("job" IS NOT NULL AND regexp_like("job", \'^(?:a.*)\\z\'))'),
    ((2, "job", "a|"), '("job" IS NULL OR regexp_like("job", \'^(?:a|)\\z\'))'),
    ((3, "job", "a"), '("job" IS NULL OR NOT regexp_like("job", \'^(?:a)\\z\'))'),
    ((3, "job", ".*"), '("job" IS NOT NULL AND NOT regexp_like("job", \'^(?:.*)\\z\'))'),
])
def test_matcher_conditions_handle_absent_labels(matcher, sql):
    assert matcher_condition(Matcher.of(*matcher), matcher[1], nullable=True) == sql


def test_statement_selects_every_dimension_in_range_ordered_by_time():
    query = Query(1500, 2500, (Matcher.of(0, "__name__", "up"), Matcher.of(0, "time", "x")))
    statement = select_statement(query, "Db", 'T"1', {"job", "__time"})
    assert statement.dimensions == ["__time", "job"]
    assert statement.sql == (
        'SELECT measure_name, to_milliseconds(time) AS ts_ms, measure_value::double AS ts_value, '
        '"__time", "job" FROM "Db"."T""1" WHERE time BETWEEN from_milliseconds(1500) AND '
        "from_milliseconds(2500) AND \"measure_name\" = 'up' AND "
        '("__time" IS NOT NULL AND "__time" = \'x\') ORDER BY ts_ms')


def test_unknown_columns_and_impossible_ranges_need_no_sql():
    up = Matcher.of(0, "__name__", "up")
    assert select_statement(Query(0, 1, (up, Matcher.of(0, "nope", "x"))), "d", "t", set()) \
        is None
    assert "nope" not in select_statement(Query(0, 1, (up, Matcher.of(3, "nope", "x"))),
                                          "d", "t", set()).sql
    assert select_statement(Query(-2 ** 63, 2 ** 63 - 1, (up,)), "d", "t", set()).sql.count(
        "from_milliseconds(0) AND from_milliseconds(9223372036854)") == 1
