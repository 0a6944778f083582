"""The SQL text itself: escaping, anchoring, NULL handling, ranges, which measures and
columns a read names."""
import pytest

from chalicelib.errors import BadRequest
from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series
from chalicelib.storage.timestream.sql import (MAX_QUERY_STRING, Measure,
                                               identifier, literal,
                                               matcher_condition,
                                               measures_statement,
                                               regex_literal,
                                               select_statements,
                                               selected_measures)
from harness.timestream.env import NOW_MS
from tests.support import context


def test_identifiers_and_literals_are_escaped():
    assert identifier('we"ird') == '"we""ird"'
    assert literal("x' OR '1'='1") == "'x'' OR ''1''=''1'"
    assert literal("back\\slash\nnewline") == "'back\\slash\nnewline'"


def test_regexes_are_translated_to_java_and_anchored_like_prometheus():
    # What the patterns mean in Java is tested against a real JVM in test_timestream_regex.
    assert regex_literal("api.*") == "'\\A(?:api[\\x{0}-\\x{9}\\x{B}-\\x{10FFFF}]*)\\z'"
    assert regex_literal("api.*", dot_all=True) == "'\\A(?:api[\\x{0}-\\x{10FFFF}]*)\\z'"
    assert regex_literal("(?i)a|b") == "'\\A[A-Ba-b]\\z'"
    assert regex_literal("it's") == "'\\A(?:it\\x{27}s)\\z'"
    with pytest.raises(BadRequest, match="unexpected"):
        regex_literal("a)|(b")


@pytest.mark.parametrize("matcher,sql", [
    ((0, "job", "a"), '("job" IS NOT NULL AND "job" = \'a\')'),
    ((0, "job", ""), '("job" IS NULL OR "job" = \'\')'),  # no dimension value is empty
    ((1, "job", ""), '("job" IS NOT NULL AND NOT "job" = \'\')'),
    ((1, "job", "a"), '("job" IS NULL OR NOT "job" = \'a\')'),
    ((2, "job", "a.*"), '("job" IS NOT NULL AND regexp_like("job", \'\\A(?:a[\\x{0}-\\x{9}\\x{B}-\\x{10FFFF}]*)\\z\'))'),
    ((2, "job", "a|"), '("job" IS NULL OR regexp_like("job", \'\\A(?:a|)\\z\'))'),
    ((3, "job", "a"), '("job" IS NULL OR NOT regexp_like("job", \'\\Aa\\z\'))'),
    ((3, "job", ".*"), '("job" IS NOT NULL AND NOT regexp_like("job", \'\\A(?:[\\x{0}-\\x{9}\\x{B}-\\x{10FFFF}]*)\\z\'))'),
])
def test_matcher_conditions_handle_absent_labels(matcher, sql):
    assert matcher_condition(Matcher.of(*matcher), matcher[1]) == sql


def query(*matchers, start=1500, end=2500):
    return Query(start, end, tuple(Matcher.of(*m) for m in matchers))


UP = Measure("up", "double", frozenset({"job", "__time"}))
CPU = Measure("cpu", "double", frozenset({"job", "cpu", "mode"}))
TEXT = Measure("build_info", "varchar", frozenset({"version"}))


def test_one_row_per_series_naming_only_the_dimensions_of_the_measure():
    [statement] = select_statements(query((0, "__name__", "up"), (0, "time", "x")), "Db", 'T"1',
                                    [UP, CPU, TEXT])
    assert statement.dimensions == ["__time", "job"]
    assert statement.sql == (
        'SELECT measure_name, "__time", "job", CREATE_TIME_SERIES(time, measure_value::double) '
        'AS ts_samples FROM "Db"."T""1" WHERE measure_name IN (\'up\') AND time BETWEEN '
        "from_milliseconds(1500) AND from_milliseconds(2500) AND measure_value::double IS NOT "
        "NULL AND (\"__time\" IS NOT NULL AND \"__time\" = 'x') "
        'GROUP BY measure_name, "__time", "job", bin(time, 1h)')


def test_metric_names_are_matched_here_with_prometheus_semantics():
    measures = [UP, CPU, TEXT, Measure("up2", "double", frozenset()),
                Measure("count", "bigint", frozenset()), Measure("ok", "boolean", frozenset())]
    assert [m.name for m in selected_measures(query((2, "__name__", "up|cpu")), measures)] \
        == ["cpu", "up"]
    assert [m.name for m in selected_measures(query((3, "__name__", "up.*")), measures)] \
        == ["cpu"]  # build_info is VARCHAR: not ours to read
    assert selected_measures(query((0, "__name__", "build_info")), measures) == []


def test_a_label_a_measure_lacks_rules_it_out_unless_absent_is_what_is_asked():
    assert selected_measures(query((0, "mode", "idle")), [UP, CPU]) == [CPU]
    assert selected_measures(query((1, "mode", "idle")), [UP, CPU]) == [CPU, UP]
    [statement] = select_statements(query((1, "mode", "idle")), "d", "t", [UP, CPU])
    assert statement.dimensions == ["__time", "cpu", "job", "mode"]
    assert '("mode" IS NULL OR NOT "mode" = \'idle\')' in statement.sql


def test_many_measures_are_split_across_statements():
    measures = [Measure(f"m{i:03}", "double", frozenset({f"l{i}"})) for i in range(250)]
    statements = select_statements(query((2, "__name__", "m.*")), "d", "t", measures)
    assert [len(s.dimensions) for s in statements] == [100, 100, 50]
    assert "'m100'" in statements[1].sql and "'m099'" not in statements[1].sql


def test_show_measures_narrows_to_an_exact_name_and_its_histograms_measure():
    # 'it''s%': the float measure "it's" and the native histograms' "it's#histogram"
    assert measures_statement(query((0, "__name__", "it's")), "d", "t") \
        == "SHOW MEASURES FROM \"d\".\"t\" LIKE 'it''s%'"
    assert measures_statement(query((2, "__name__", "up")), "d", "t") \
        == 'SHOW MEASURES FROM "d"."t"'
    # No measure has an empty name: nothing to narrow to (and no LIKE '' to send).
    assert measures_statement(query((0, "__name__", ""), (0, "job", "a")), "d", "t") \
        == 'SHOW MEASURES FROM "d"."t"'


def test_impossible_ranges_need_no_sql():
    assert select_statements(query((0, "__name__", "up"), start=5, end=4), "d", "t", [UP]) == []
    [statement] = select_statements(query((0, "__name__", "up"), start=-2 ** 63,
                                          end=2 ** 63 - 1), "d", "t", [UP])
    assert "from_milliseconds(0) AND from_milliseconds(9223372036854)" in statement.sql


def test_a_statement_over_timestreams_length_limit_is_a_400():
    huge = query((0, "__name__", "up"), (0, "job", "x" * 300_000))
    with pytest.raises(BadRequest, match="over its limit of 262144") as raised:
        select_statements(huge, "d", "t", [UP])
    assert raised.value.status == 400


def test_a_statement_of_exactly_timestreams_length_limit_is_sent():
    def statement(length):
        return select_statements(query((0, "__name__", "up"), (0, "job", "x" * length)),
                                 "d", "t", [UP])
    [short] = statement(1)
    [exact] = statement(1 + MAX_QUERY_STRING - len(short.sql))
    assert len(exact.sql) == MAX_QUERY_STRING
    with pytest.raises(BadRequest, match=f"query of {MAX_QUERY_STRING + 1} characters"):
        statement(2 + MAX_QUERY_STRING - len(short.sql))


def read(env, *matchers, start=0, end=2 ** 62):
    return list(env.store.read(query(*matchers, start=start, end=end), context(10 ** 6, deadline_seconds=600)))


def names(series):
    return [dict(s.labels) for s in series]


def test_a_range_of_one_instant_reads_the_sample_at_that_instant(env):
    env.store.write([Series((("__name__", "m"), ("job", "a")), [NOW_MS - 1, NOW_MS], [1.0, 2.0])], context())
    [series] = read(env, (0, "__name__", "m"), start=NOW_MS, end=NOW_MS)
    assert (series.timestamps, series.values) == ([NOW_MS], [2.0])
    calls = len(env.queries.calls)
    assert read(env, (0, "__name__", "m"), start=NOW_MS, end=NOW_MS - 1) == []
    assert [c["QueryString"].split()[0] for c in env.queries.calls[calls:]] == ["SHOW"] * 2


def test_matchers_after_one_on_a_label_no_series_has_still_select(env):
    env.store.write([Series((("__name__", "m"), ("job", j)), [NOW_MS], [1.0]) for j in "ab"], context())
    assert names(read(env, (0, "__name__", "m"), (1, "absent", "x"), (0, "job", "a"))) \
        == [{"__name__": "m", "job": "a"}]


def test_upper_case_label_names_are_matched_like_any_other(env):
    """Upper-case names sort before ``__name__``: they are labels, not the metric name."""
    env.store.write([Series((("Zone", z), ("__name__", "m"), ("job", "j")), [NOW_MS], [1.0])
                     for z in "ab"], context())
    assert names(read(env, (0, "Zone", "a"), (0, "__name__", "m"))) \
        == [{"Zone": "a", "__name__": "m", "job": "j"}]
    assert names(read(env, (1, "Zone", "a"), (0, "job", "j"))) \
        == [{"Zone": "b", "__name__": "m", "job": "j"}]


def test_a_metric_name_matcher_no_series_has_selects_nothing(env):
    env.store.write([Series((("__name__", "m"), ("job", "a")), [NOW_MS], [1.0])], context())
    assert read(env, (0, "__name__", ""), (0, "job", "a")) == []


def decoded(text):
    """``text`` as a new string object, as protobuf decodes it from a request (not the
    interned literal): names are compared by value."""
    return "".join(list(text))


def test_names_decoded_from_a_request_are_the_same_names():
    name = decoded("__name__")
    assert measures_statement(query((0, name, "up")), "d", "t") == \
        "SHOW MEASURES FROM \"d\".\"t\" LIKE 'up%'"
    [statement] = select_statements(query((0, name, "up"), (0, decoded("job"), "x")), "d", "t",
                                    [UP, CPU])
    assert "measure_name IN ('up')" in statement.sql
    assert "\"job\" = 'x'" in statement.sql and '"__name__"' not in statement.sql


def test_a_label_named_before_the_metric_name_is_a_condition_like_any():
    """Upper-case names sort before ``__name__``: still a label, not the metric name."""
    zone = Measure("up", "double", frozenset({"Zone", "job"}))
    [statement] = select_statements(query((0, "__name__", "up"), (0, "Zone", "eu")), "d", "t",
                                    [zone])
    assert "\"Zone\" = 'eu'" in statement.sql
    assert select_statements(query((0, "__name__", "up"), (0, "Zone", "eu")), "d", "t",
                             [UP]) == []  # no Zone dimension: the measure cannot match


HIST = Measure("up#histogram", "multi", frozenset({"job", "le"}))


def test_histograms_are_read_by_statements_of_their_own_after_the_floats():
    floats, histograms = select_statements(query((0, "__name__", "up"), (0, "job", "a")), "d",
                                           "t", [HIST, UP, TEXT])
    assert not floats.histograms and "measure_value::double" in floats.sql
    assert histograms.histograms and histograms.dimensions == ["job", "le"]
    assert histograms.sql == (
        'SELECT measure_name, "job", "le", CREATE_TIME_SERIES(time, "__histogram") AS ts_samples '
        "FROM \"d\".\"t\" WHERE measure_name IN ('up#histogram') AND time BETWEEN "
        'from_milliseconds(1500) AND from_milliseconds(2500) AND "__histogram" IS NOT NULL AND '
        "(\"job\" IS NOT NULL AND \"job\" = 'a') GROUP BY measure_name, \"job\", \"le\", "
        "bin(time, 1h)")
    [narrow] = select_statements(query((0, "__name__", "up")), "d", "t", [HIST], "1m")
    assert narrow.histograms and narrow.sql.endswith("bin(time, 1m)")
    assert select_statements(query((0, "__name__", "up"), start=5, end=4), "d", "t",
                             [HIST]) == []


def test_histogram_measures_are_chosen_by_their_metric_name():
    others = [Measure("events", "multi", frozenset({"job"})),  # another writer's
              Measure("#histogram", "multi", frozenset({"job"})),
              Measure("cpu#histogram", "double", frozenset({"job", "cpu", "mode"})),
              Measure("cpu2#histogram", "multi", frozenset({"mode"}))]
    measures = [HIST, UP, CPU] + others
    assert selected_measures(query((0, "__name__", "up")), measures, histograms=True) == [HIST]
    assert selected_measures(query((2, "__name__", "up.*|cpu.*")), measures,
                             histograms=True) == [others[3], HIST]
    assert selected_measures(query((2, "__name__", ".*")), measures) == [
        CPU, others[2], UP]  # a DOUBLE measure is a float metric, whatever its name
    assert selected_measures(query((2, "__name__", "up#.*")), measures, histograms=True) == []
    assert selected_measures(query((0, "le", "1")), measures, histograms=True) == [HIST]
    assert selected_measures(query((1, "le", "1")), measures, histograms=True) == [
        others[3], HIST]


def test_many_histogram_measures_are_split_across_statements():
    measures = [Measure(f"m{i:03}#histogram", "multi", frozenset({f"l{i}"})) for i in range(150)]
    statements = select_statements(query((2, "__name__", "m.*")), "d", "t", measures)
    assert [(len(s.dimensions), s.histograms) for s in statements] == [(100, True), (50, True)]
