import pytest

from chalicelib.errors import BadRequest
from chalicelib.matchers import Matcher, MatchType, anchored_source, matches_all
from tests.matcher_cases import INVALID_REGEXES, SERIES, all_cases, case_id

CASES = list(all_cases())


@pytest.mark.parametrize("matchers,expected", CASES, ids=[case_id(m) for m, _ in CASES])
def test_matcher_table(matchers, expected):
    compiled = [Matcher.of(*m) for m in matchers]
    selected = {key for key, labels in SERIES.items() if matches_all(compiled, labels)}
    assert selected == expected


@pytest.mark.parametrize("pattern", INVALID_REGEXES)
def test_invalid_or_non_re2_regex_is_bad_request(pattern):
    with pytest.raises(BadRequest, match="regex"):
        Matcher.of(MatchType.RE, "job", pattern)


@pytest.mark.parametrize("pattern", ["a\\(?=b\\)", "\\\\1", "[(?=]"])
def test_escaped_constructs_are_not_mistaken_for_unsupported_ones(pattern):
    Matcher.of(MatchType.RE, "job", pattern)


def test_negative_regex_refuses_same_syntax():
    with pytest.raises(BadRequest):
        Matcher.of(MatchType.NRE, "job", "(")


def test_unknown_type_and_empty_name_are_bad_requests():
    with pytest.raises(BadRequest, match="unknown matcher type 7"):
        Matcher.of(7, "job", "x")
    with pytest.raises(BadRequest, match="empty label name"):
        Matcher.of(MatchType.EQ, "", "x")


def test_leading_flags_stay_in_front_of_the_anchoring_group():
    assert anchored_source("(?i)a|b") == "(?i)(?:a|b)"
    assert anchored_source("a|b") == "(?:a|b)"


def test_matches_empty_tells_whether_absent_labels_are_selected():
    assert Matcher.of(MatchType.EQ, "a", "").matches_empty
    assert not Matcher.of(MatchType.NEQ, "a", "").matches_empty
    assert Matcher.of(MatchType.RE, "a", "x|").matches_empty
    assert Matcher.of(MatchType.NRE, "a", "x").matches_empty
    assert not Matcher.of(MatchType.NRE, "a", ".*").matches_empty


def test_dot_matches_newline_only_for_dot_all_clients():
    assert not Matcher.of(MatchType.RE, "a", "x.*").matches_value("x\ny")
    assert Matcher.of(MatchType.RE, "a", "x.*", dot_all=True).matches_value("x\ny")
    assert Matcher.of(MatchType.NRE, "a", "x.y").matches_value("x\ny")
    assert not Matcher.of(MatchType.NRE, "a", "x.y", dot_all=True).matches_value("x\ny")
