import pytest

from chalicelib.errors import BadRequest
from chalicelib.matchers import Matcher, MatchType, matches_all
from tests.support.matcher_cases import (INVALID_REGEXES, SERIES, all_cases,
                                         case_id)

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


# Escaped or bracketed look-alikes of what Go refuses (look-arounds, back references,
# \C, deep nesting): accepted, and they mean what RE2 says.
@pytest.mark.parametrize("pattern,value", [
    ("a\\(?=b\\)", "a(=b)"), ("\\\\1", "\\1"), ("[(?=]", "?"), ("\\\\C", "\\C"),
    ("(" * 999 + "a" + ")" * 999, "a"), ("[" + "(" * 2000 + "]", "("),
    ("[](]" * 2000, "(]" * 1000), ("[^](]" * 2000, "x" * 2000), ("\\(" * 2000, "(" * 2000),
    ("[a(]" * 2000, "a(" * 1000), ("[^a(]" * 2000, "b" * 2000), ("[\\](]" * 2000, "]" * 2000)])
def test_escaped_constructs_are_not_mistaken_for_unsupported_ones(pattern, value):
    assert Matcher.of(MatchType.RE, "job", pattern).matches_value(value)
    assert not Matcher.of(MatchType.RE, "job", pattern).matches_value(value + "\n")


# Prometheus 2.42's answers (Go RE2), where Python's `re` answered otherwise.
PROMETHEUS_ANSWERS = [
    ("\\d", "\u0663", False),            # \d is ASCII only: not an Arabic-Indic digit
    ("(?i)i", "\u0130", False),            # no full Unicode case folding of İ
    ("a{,2}", "a{,2}", True),               # not a repetition: literal text
    ("a{,2}", "aa", False),
    ("a$", "a\n", False),                  # $ is the end of text, not before a final newline
    ("\\x{263a}", "\u263a", True),
    ("(?U)a+", "aaa", True),                # ungreedy flag
    ("(?-s).", "\n", False),
    ("((?i)PRO).*", "prometheus", True),    # flag group inside a pattern
    ("((?i)PRO).*", "PROmetheus", True),
    ("[[:alpha:]]+", "abc", True),          # POSIX class
    ("\\pL+", "\u00fcber", True),             # Unicode class
    ("\\p{Greek}", "\u03b1", True),
    ("a\\z", "a", True),
    ("\\Qa.b\\E", "a.b", True),            # quoted literal text
    ("\\Qa.b\\E", "axb", False),
    ("(?P<n>a)b", "ab", True),
    ("(?P<n>a)?b", "b", True),              # a named group that takes no part
    ("\\b", "", False),
    ("x*", "", True),
    ("a|b|", "", True),
    ("[^a]", "\n", True),                  # a negated class matches a newline
    ("\\s", "\u00a0", False),                # \s is ASCII whitespace only
    ("\\w", "\u00e9", False),
]


@pytest.mark.parametrize("pattern,value,expected", PROMETHEUS_ANSWERS)
def test_regexes_mean_what_they_mean_in_prometheus(pattern, value, expected):
    assert Matcher.of(MatchType.RE, "k", pattern).matches_value(value) is expected
    assert Matcher.of(MatchType.NRE, "k", pattern).matches_value(value) is not expected


def test_refusals_name_the_pattern_and_re2s_reason_escaped():
    with pytest.raises(BadRequest) as caught:
        Matcher.of(MatchType.RE, "k", "a{1001}\x1b")
    assert str(caught.value) == 'invalid regex "a{1001}\\x1b": invalid repetition size: {1001}'
    with pytest.raises(BadRequest, match="nests too deeply"):
        Matcher.of(MatchType.RE, "k", "(" * 5000 + ")" * 5000)
    with pytest.raises(BadRequest, match="pattern too large"):
        Matcher.of(MatchType.RE, "k", "\\pL{1000}")
    with pytest.raises(BadRequest) as caught:
        Matcher.of(MatchType.RE, "k", "a\\")
    assert str(caught.value) == 'invalid regex "a\\\\": trailing \\'


def test_a_refusal_quotes_at_most_60_characters_of_re2s_fragment():
    with pytest.raises(BadRequest) as caught:
        Matcher.of(MatchType.RE, "k", "(" + "x" * 100)
    assert str(caught.value) == f'invalid regex "({"x" * 100}": missing ): ({"x" * 59}...'


def test_a_long_literal_within_re2s_memory_budget_is_accepted():
    value = "x" * 150_000  # more instructions than RE2 allows without a memory budget
    assert Matcher.of(MatchType.RE, "k", value).matches_value(value)
    assert not Matcher.of(MatchType.RE, "k", value).matches_value(value + "x")


def test_nesting_counts_the_groups_open_at_once():
    assert Matcher.of(MatchType.RE, "k", "(a)" * 2000).matches_value("a" * 2000)
    with pytest.raises(BadRequest) as caught:
        Matcher.of(MatchType.RE, "k", "\\d(a" + "(a" * 999 + ")" * 1000)
    assert str(caught.value).endswith(": expression nests too deeply (1000 groups, at most 999)")


def test_a_pathological_regex_against_a_long_value_is_linear():
    """(a+)+b backtracks exponentially in Python's re; RE2 answers in one pass."""
    matcher = Matcher.of(MatchType.RE, "k", "(a+)+b")
    assert not matcher.matches_value("a" * 100_000 + "!")  # no time assertion: see make bench
    assert matcher.matches_value("a" * 100_000 + "b")


def test_negative_regex_refuses_same_syntax():
    with pytest.raises(BadRequest):
        Matcher.of(MatchType.NRE, "job", "(")


def test_unknown_type_and_empty_name_are_bad_requests():
    with pytest.raises(BadRequest, match="unknown matcher type 7"):
        Matcher.of(7, "job", "x")
    with pytest.raises(BadRequest, match="empty label name"):
        Matcher.of(MatchType.EQ, "", "x")


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


def test_a_refused_regex_writes_nothing_to_the_servers_stderr(capfd):
    """RE2 would log its own error to stderr for every bad regex a client sends."""
    for pattern in ("(", "a{1001}", "[z-a]"):
        with pytest.raises(BadRequest):
            Matcher.of(MatchType.RE, "k", pattern)
    assert capfd.readouterr().err == ""


def test_nesting_is_counted_after_a_class_and_as_groups_close():
    with pytest.raises(BadRequest, match=r"nests too deeply \(1000 groups"):
        Matcher.of(MatchType.RE, "k", "[a]" + "(" * 1000 + ")" * 1000)
    # a closed group frees one level: 500 open, one closed, then 501 more: 1000 at once
    with pytest.raises(BadRequest, match=r"nests too deeply \(1000 groups"):
        Matcher.of(MatchType.RE, "k", "(" * 500 + ")" + "(" * 501 + ")" * 1000)


def test_a_bracket_or_paren_first_in_a_class_is_a_character_not_a_group():
    for start in ("[](]", "[^](]"):
        matcher = Matcher.of(MatchType.RE, "k", start + "(" * 999 + ")" * 999)
        assert matcher.matches_value("(") is (start == "[](]")


def test_a_nesting_refusal_quotes_the_first_60_characters_of_the_pattern():
    with pytest.raises(BadRequest) as caught:
        Matcher.of(MatchType.RE, "k", "(" * 1000 + ")" * 1000)
    assert str(caught.value) == (f'invalid regex "{"(" * 60}...": expression nests too deeply'
                                 " (1000 groups, at most 999)")


def test_protocol_matcher_numbers_are_prometheus_label_matcher_types():
    """prometheus.LabelMatcher.Type: EQ 0, NEQ 1, RE 2, NRE 3 (what a remote read sends)."""
    sent = [Matcher.of(number, "job", "a.*") for number in range(4)]
    assert [[m.matches_value(v) for v in ("a.*", "abc", "b")] for m in sent] == [
        [True, False, False], [False, True, True], [True, True, False], [False, False, True]]


def test_backslash_capital_c_is_refused_wherever_it_stands():
    for pattern in ("\\C", "a\\C", "ab\\C", "[a]\\C"):
        with pytest.raises(BadRequest, match=r"invalid escape sequence \\C$"):
            Matcher.of(MatchType.RE, "k", pattern)


def test_punctuation_is_neither_an_opening_nor_a_closing_group():
    """Characters sorting before ( and ) in ASCII (space ! " # % & ') are not groups."""
    matcher = Matcher.of(MatchType.RE, "k", "(" * 999 + " !\"#%&'" + ")" * 999)
    assert matcher.matches_value(" !\"#%&'")
    with pytest.raises(BadRequest, match=r"nests too deeply \(1000 groups"):
        Matcher.of(MatchType.RE, "k", "(" * 500 + "&" + "(" * 500 + ")" * 1000)


def test_a_requests_regexes_share_one_budget_of_re2_instructions():
    from chalicelib.matchers import RegexBudget
    budget = RegexBudget(1000)
    small = Matcher.of(2, "job", "a.*b", budget=budget)
    assert 0 < small.regex.size < 50 and budget.left == 1000 - small.regex.size
    for _ in range(100):  # the same regex again (any matcher, any query): charged once
        Matcher.of(3, "other", "a.*b", budget=budget)
    assert budget.left == 1000 - small.regex.size
    Matcher.of(2, "job", "a.*b", dot_all=True, budget=budget)  # another dialect: another regex
    assert budget.left < 1000 - small.regex.size
    with pytest.raises(BadRequest) as raised:
        Matcher.of(2, "job", "[a-z]{1000}", budget=budget)
    assert str(raised.value) == (
        'the regexes of this request compile to more than 1000 RE2 instructions in all '
        '("[a-z]{1000}" alone is 1004): use fewer or simpler regexes')
    exact = RegexBudget(small.regex.size)
    Matcher.of(2, "job", "a.*b", budget=exact)
    assert exact.left == 0
