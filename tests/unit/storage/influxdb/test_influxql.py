"""Remote-read queries -> InfluxQL: quoting that no label text can escape, Prometheus's
matcher semantics. Statements run on a real influxd in test_influxdb_store.py and the
store contract suite; here their exact text."""
import pytest

from chalicelib.matchers import Matcher
from chalicelib.model import Query
from chalicelib.storage.influxdb.influxql import (MAX_NANOS, MIN_NANOS,
                                                  condition, identifier,
                                                  regex_literal,
                                                  select_statement, source,
                                                  string_literal)


def m(type_, name, value, dot_all=False):
    return Matcher.of(type_, name, value, dot_all)


def test_literals_and_identifiers():
    assert string_literal("it's a \\ \"x\"") == "'it\\'s a \\\\ \"x\"'"
    assert identifier('a"b\\c\'') == '"a\\"b\\\\c\'"'
    for bad in ("a\nb", "a\rb", "a\x00b"):
        with pytest.raises(ValueError):
            string_literal(bad)


@pytest.mark.parametrize("pattern,literal", [
    ("a.*", "/^(?:a.*)$/"),
    ("a/b", "/^(?:a\\/b)$/"),
    ("a\\/b", "/^(?:a\\/b)$/"),
    ("a\\\\/b", "/^(?:a\\\\\\/b)$/"),
    ("a\nb", "/^(?:a\\x{0a}b)$/"),
    ("a\\\nb", "/^(?:a\\x{0a}b)$/"),
    ("[\r\x00]", "/^(?:[\\x{0d}\\x{00}])$/"),
    ("(?i)x|y", "/^(?:(?i)x|y)$/"),
    ("\\d+\\.", "/^(?:\\d+\\.)$/"),
    ("abc\\/", "/^(?:abc\\/)$/"),        # an escape late in the pattern
    ("a\\", "/^(?:a\\)$/"),              # a trailing backslash passes through (RE2 refuses it)
    ("x" * 300 + "/", "/^(?:" + "x" * 300 + "\\/)$/"),
])
def test_regex_literals(pattern, literal):
    assert regex_literal(pattern) == literal


def test_regex_dialect_of_prometheus_3():
    assert regex_literal("a.b", dot_all=True) == "/(?s)^(?:a.b)$/"


@pytest.mark.parametrize("matcher,expected", [
    ((0, "job", "api"), "\"job\"::tag = 'api'"),
    ((0, "Env", "prod"), "\"Env\"::tag = 'prod'"),  # sorts before __name__: no fallback
    ((0, "__name__", "m"), "(\"__name__\"::tag = '' OR \"__name__\"::tag = 'm')"),
    ((0, "job", ""), "\"job\"::tag = ''"),
    ((1, "job", ""), "\"job\"::tag != ''"),
    ((1, "job", "api"), "(\"job\"::tag = '' OR \"job\"::tag != 'api')"),
    ((0, "job", "a\nb"), "\"job\"::tag = 'base64:YQpi'"),
    ((0, "time", "x"), "\"base64:dGltZQ\"::tag = 'x'"),
    ((2, "job", "a.*"), "((\"job\"::tag != '' AND \"job\"::tag =~ /^(?:a.*)$/) OR \"job\"::tag =~ /^base64:/)"),
    ((2, "job", "a|"), "(\"job\"::tag = '' OR \"job\"::tag =~ /^(?:a|)$/ OR \"job\"::tag =~ /^base64:/)"),
    ((3, "job", "a.*"), "(\"job\"::tag = '' OR \"job\"::tag !~ /^(?:a.*)$/ OR \"job\"::tag =~ /^base64:/)"),
    ((3, "job", ".*"), "((\"job\"::tag != '' AND \"job\"::tag !~ /^(?:.*)$/) OR \"job\"::tag =~ /^base64:/)"),
])
def test_conditions(matcher, expected):
    assert condition(m(*matcher)) == expected


def test_a_name_matcher_decoded_from_a_request_also_selects_points_without_a_name_tag():
    """Names decoded from the wire are new strings (not the interned literal)."""
    from chalicelib.protocol.prompb import remote_pb2
    from harness.remote import read_request
    wire = remote_pb2.ReadRequest.FromString(
        read_request((0, 10, [(0, "__name__", "m")])).SerializeToString())
    [decoded] = wire.queries[0].matchers
    assert condition(m(decoded.type, decoded.name, decoded.value)) == \
        "(\"__name__\"::tag = '' OR \"__name__\"::tag = 'm')"


def test_sources():
    assert source((m(2, "job", "x"), m(0, "__name__", "up"))) == '"up"'
    assert source((m(0, "__name__", "#up"),)) == '"base64:I3Vw"'
    assert source((m(2, "__name__", "up|down"),)) == "/^(?:up|down)$|^base64:/"
    assert source((m(2, "__name__", "u.*", dot_all=True),)) == "/(?s)^(?:u.*)$|^base64:/"
    assert source((m(2, "__name__", ".*"), m(0, "job", "x"))) == "/.*/"
    assert source((m(1, "__name__", "up"),)) == "/.*/"
    assert source((m(3, "__name__", "up|"),)) == "/.*/"  # !~ never narrows FROM
    assert source((m(0, "A", "x"), m(2, "B", "y"))) == "/.*/"  # only __name__ names measurements
    assert source((m(0, "job", "x"), m(2, "job", "y"))) == "/.*/"
    assert source((m(0, "__name__", ""), m(0, "job", "x"))) == "/.*/"
    assert source((m(0, "__name__", "up"),), '"db"."rp".') == '"db"."rp"."up"'
    assert source((m(1, "__name__", ""),)) == "/.*/"  # != "" names no measurement
    assert source((m(3, "__name__", ".*"),)) == "/.*/"
    decoded_name = "".join(["__na", "me__"])  # as from protobuf: equal, not the same object
    assert source((m(0, decoded_name, "up"),)) == '"up"'
    assert source((m(2, decoded_name, "u.*"),)) == "/^(?:u.*)$|^base64:/"


def test_select_statement():
    query = Query(1000, 2000, (m(0, "__name__", "up"), m(0, "job", "x")))
    assert select_statement(query) == (
        "SELECT \"value\"::field, \"value_bits\"::string, \"histogram\"::string FROM \"up\" WHERE (\"__name__\"::tag = '' OR \"__name__\"::tag = 'up') "
        "AND \"job\"::tag = 'x' AND time >= 1000000000 AND time <= 2000000000 GROUP BY *")
    assert 'FROM "d"."week"."up" ' in select_statement(query, "week", "d")
    wide = select_statement(Query(-2 ** 62, 2 ** 62, (m(0, "__name__", "up"),)))
    assert "time >= -9223372036854775806 AND time <= 9223372036854775806 " in wide
    assert (MIN_NANOS, MAX_NANOS) == (-2 ** 63 + 2, 2 ** 63 - 2)  # models.Min/MaxNanoTime

