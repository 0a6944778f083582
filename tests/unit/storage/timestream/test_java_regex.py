"""Prometheus regexes translated for Timestream mean what they mean in Prometheus.

Two real engines decide: RE2 (google-re2, with Prometheus's anchoring ``^(?:re)$``, or
``^(?s:re)$`` for Prometheus 3 clients) says what Prometheus answers, and Java's
``java.util.regex`` (harness/java_regex.py: one JVM per test process) says what
Timestream's ``regexp_like`` answers for the translated pattern. Every pattern of the
corpus is checked against every tricky string, in both dialects.

Where C++ RE2 (the oracle) and Go's regexp/syntax (what Prometheus runs) disagree,
Go is the truth; those patterns are listed in GO_REFUSES_RE2_ACCEPTS.
"""
from typing import Dict, Sequence

import duckdb
import pytest
import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.caches import BoundedCache
from chalicelib.errors import BadRequest
from chalicelib.storage.timestream import java_regex as timestream_regex
from chalicelib.storage.timestream.java_regex import java_regex
from harness import java_regex as java_regex_engine
from harness.timestream.env import install_sql_functions
from tests.support import ESTIMATE_SLACK, memory_held_after

STRINGS = [
    "", "a", "A", "b", "B", "ab", "abc", "ABC", "aB", "ax", "xb", "a)|(b", "aab", "bb",
    "\n", "a\n", "\na", "a\nb", "\r", "a\r", "\r\n", "\u0085", "\u2028", "\u2029", "a\u2028",
    "\x0b", "\x0c", "\t", " ", "\x00", "\x7f", "_", "-", "[", "]", "&", "^", "{", "}", ",",
    "x{,3}", "x", "xx", "xxx", "xxxx", "x{2}", "a.b", "a\\b", "\\", ".", "'", '"',
    "k", "K", "\u212a", "s", "S", "\u017f", "ss", "SS", "\u00df", "\u1e9e",
    "i", "I", "\u0130", "\u0131", "\u00b5", "\u03bc", "\u039c", "\u03c2", "\u03c3", "\u03a3",
    "\u01c4", "\u01c5", "\u01c6", "\u0345", "\u03b9", "\u1fbe", "\u2126", "\u03c9", "\u00e9",
    "\u00c9", "e\u0301", "\u03b1", "\u0391", "\u0436", "\u0416", "\u05d0", "\u4e2d",
    "\U0001f600", "\U0001f600\U0001f600", "\U00010400", "\U00010428", "\U0010ffff", "\ue000",
    "\ud7ff", "\u0378", "0", "9", "42", "\u0663", "\u0969", "\uff11", "\u2170", "\u2160", "a b", "a_b",
    "foo", "foobar", "bar", "api", "api_http", "apix", "prometheus", "node_exporter:9100",
    "2xx", "5xx", "GET", "get", "a1", "word word",
]

CORPUS = [
    # literals, alternation, anchoring (the issue's escape: a)|(b must not become a|b)
    "", "a", "abc", "a|b", "a|", "|a", "|", "api.*", "api_.+", "foo|bar", "(foo|bar)",
    "(?:a|b)c", "a(b|c)", "((a))", "()", "(|)", "a()b", "^a", "a$", "^a$", "^$", "$^", "^",
    "$", "a^b", "a$b", "\\Aa\\z", "a\\z", "\\A", "\\z", "(a|^b)", "(a$|b)",
    # Java's $ also matches before a final line terminator
    "a$\n", "a$\\n", "a$\\s", "a$[\\n\\r]", "a$.", "(?s)a$.", "a\\z\\n", "$\\n", "a$\r",
    "a$\u0085", "a$\u2028", "a$(\\n)?", "(?m)a$\\n", "(?m)a$\r", "(?ms)a$.", "(?m)a$\u2028",
    "(?m)a$\u0085.*", "(?ms).*$.*", "(?ms).*^.*", "(?ms)a.^", "(?m)\r^a",
    # Java syntax that is literal in RE2
    "x{,3}", "x{,}", "x{", "x{a}", "{", "}", "{}", "x{01}", "x{2", "a{2,", "a{,", "a}",
    "[[]", "[]]", "[]a]", "[^]a]", "[a&&b]", "[a&&[b]]", "[&]", "[&&]", "a&&b", "[a-]",
    "[-a]", "[a-c-e]", "[--/]", "[\\]]", "[\\[]", "[\\-]", "[\\^]", "[^^]", "[a^]",
    "[:alpha:]", "[[:alpha:]]", "[[:^alpha:]]", "[[:word:]]+", "[[:space:]]", "[[:punct:]]",
    "[[:upper:][:digit:]]", "[[:xdigit:]]+", "[[:print:]]", "[[:graph:]]", "[[:cntrl:]]",
    "[[:blank:]]", "[[:ascii:]]", "[[:alnum:]]", "[[:lower:]]", "[[:^space:]]", "[[:]",
    "[[:a]", "#", "a#b", " ", "a b", "'", "a'b", "\"", "\\'",
    # escapes
    "\\.", "a\\.b", "\\\\", "\\-", "\\_", "\\ ", "\\#", "\\&", "\\~", "\\n", "\\r", "\\t",
    "\\f", "\\v", "\\a", "\\x41", "\\x{41}", "\\x{1F600}", "\\x{10FFFF}", "\\x{0}", "\\0",
    "\\00", "\\012", "\\101", "\\12", "\\0101", "\\Qa.b\\E", "\\Qa.b", "\\Q\\E", "\\Qa\\E+",
    "\\Q[\\E", "a\\Q|\\Eb", "\\Q\\\\E", "\\Qa\\Eb",
    # Perl classes: ASCII in RE2 (Java's \s adds \x0B)
    "\\d", "\\d+", "\\D", "\\s", "\\S", "\\w", "\\w+", "\\W", "[\\d]", "[\\D]", "[^\\d]",
    "[\\s\\d]", "[^\\s]", "[\\w-]+", "[\\d-z]", "\\d\\s\\w",
    # dot and line terminators
    ".", ".*", ".+", "a.c", "..", "(?s).", "(?s).*", "(?-s).", "(?s:.)", "(?-s:.)",
    "(?s)a.(?-s).", "[^a]", "[^\\n]", "[^x]+", "a.*", ".*a.*",
    # case folding: Unicode simple folding in RE2, ASCII-only in Java without UNICODE_CASE
    "(?i)a", "(?i)abc", "(?i)k", "(?i)K", "(?i)s", "(?i)\u00df", "(?i)\u1e9e", "(?i)i",
    "(?i)\u0130", "(?i)\u0131", "(?i)\u03c3", "(?i)\u03a3", "(?i)\u00b5", "(?i)\u03bc",
    "(?i)\u01c5", "(?i)\u0345", "(?i)\u2126", "(?i)\u03c9", "(?i)\u00e9", "(?i)\U00010400",
    "(?i)[a-z]", "(?i)[k]", "(?i)[^k]", "(?i)[^a-z]", "(?i)[\u00e0-\u00ff]", "(?i)[a-z]+",
    "(?i)\\w", "(?i)\\W", "(?i)[[:lower:]]", "(?i)[[:^upper:]]", "(?i)[^[:lower:]]",
    "(?i)get|post", "a(?i)b", "(?i)a(?-i)b", "(?i:a)b", "a(?i:b)c", "((?i)a)b", "(?i)a|b",
    "a(?i)b|c", "(?i)\\x{212A}", "(?i)\\Qk\\E", "(?i).", "(?i)[\\x{0}-\\x{10FFFF}]",
    # multi-line: RE2's lines end at \n only
    "(?m)^a", "(?m)a$", "(?m)^a$", "(?m)^$", "(?m)^", "(?m)$", "(?m)a$\\n^b", "(?m:^a)",
    "(?m)\\Aa\\z", "(?-m)^a$", "(?ms)^a.b$", "(?m).$", "(?s)a.^b", "(?i)a\\n^b", "(?s)a$.b",
    "(?i)a$\\nb",
    # word boundaries: ASCII in RE2
    "\\b", "\\B", "\\ba", "a\\b", "\\bword\\b", "\\Bb", "a\\B", ".*\\b.*", "\\b\u00e9",
    "\u00e9\\b", "\\B\u00e9", ".\\b.", ".\\B.",
    # repetition
    "a*", "a+", "a?", "a*?", "a+?", "a??", "a{2}", "a{2,}", "a{2,3}", "a{0}", "a{0,0}",
    "a{0,1}", "a{1000}", "x{2}", "x{1,2}", "(ab)*", "(ab)+", "(a|b)*c", "(a*)*", "(a*)+",
    "(a?)*", "(a*)*b", "(?:a{2}){3}", "(a{10}){100}", "a*(?i)*", "(?U)a+", "(?U)a+?",
    "(?U:a*)b", "a*\\Q\\E*", "^*", "$+", "\\b*", "(?:^)*a", "(?m)(?:^a)+", ".{2}", ".{0,3}",
    "[ab]{2,3}", "(?s).{1,2}", "x{2}{,3}", "x{2,}", "x{0,}", "(ab){1000}", "(a{1000}){0,1}",
    "((a{500}){0,1}){2}", "(a{1000}){1,}",
    # groups and flags
    "(?P<name>a)", "(?P<n1>a)|(?P<n2>b)", "(?P<x>a)", "(?<y>b)", "(?<name>a)", "(?P<a_1>x)+", "(?:)", "(?i)",
    "(?)", "(?i-s)a.", "(?s-i)A.", "(?i-i)a", "(?U-U)a*", "(a)(?i)b", "(a(?i)b)c",
    # Unicode classes
    "\\pL", "\\pL+", "\\PL", "\\p{L}", "\\p{Lu}", "\\p{Ll}", "\\p{Lt}", "\\pN", "\\p{Nd}",
    "\\p{Nl}", "\\pM", "\\pP", "\\pS", "\\pZ", "\\p{Zs}", "\\pC", "\\PC", "\\p{Cc}", "\\p{Co}",
    "\\p{Greek}", "\\P{Greek}", "\\p{^Greek}", "\\P{^Greek}", "\\p{Latin}+", "\\p{Han}",
    "\\p{Cyrillic}", "\\p{Hebrew}", "\\p{Common}", "\\p{Any}", "\\P{Any}", "\\p{^Any}",
    "[\\pL]", "[^\\pL]", "[\\pL\\d]", "[^\\pL\\d]", "[\\PL]", "[^\\PL]", "[\\pC]", "[^\\pC]",
    "[\\p{Greek}a]", "[^\\p{Greek}a]", "[\\p{Lu}\\p{Nd}_]+", "[\\p{Any}]", "[^\\p{Any}]",
    "\\pN\\PN", "[\\pN-]", "[^\\pL\\d]+", "a[^\\pL]b", "[^\\pL]|b",
    # astral characters and surrogates
    "\U0001f600", "\U0001f600+", "[\U0001f600]", "[\U0001f600-\U0001f64f]", "[^a]{2}",
    ".{2}", "\\x{D800}", "[\\x{D000}-\\x{E000}]", "[^\\x{D800}-\\x{DFFF}]", "\\x{D83D}",
    "\\x{D83D}\\x{DE00}", "[\\x{D83D}][\\x{DE00}]", ".\\x{DE00}", "[\\x{D800}-\\x{DBFF}].*",
    "\\x{D83D}.", "[\\x{D83D}\\x{DE00}]+", "\ud7ff", "\ue000", "[\ud7ff-\ue000]",
    # classes with escapes
    "[\\n]", "[\\x41-\\x43]", "[\\x{1F600}]", "[\\0-\\x{1F}]", "[\\.]", "[.]", "[*+?]",
    "[$^]", "[|]", "[(]", "[)]", "[{]", "[\\\\]", "[a\\-z]", "[\\t\\v]", "[\u00e9]",
    # ranges: one apart, inside another, up to the last code point
    "[ad]", "[xs]", "[_w]", "x{2,01}", "[ac]", "[^ac]", "[^a-zc\\x{100}]", "[\\x{0}a-zc]", "[^\\x{0}a-zc]", "[a-zb-c]+", "[^\\x{0}-\\x{10FFFE}]",
    # everyday Prometheus matchers
    "prometheus|node_exporter:.*", "api_http_requests_total", "(5|4)xx", "[45]xx",
    "GET|POST|PUT", ".*_total", "node_.*", "foo.*bar", "(?i)prometheus", ".+:9100",
]

GO_REFUSES = [
    # unbalanced groups: the anchoring must not be escapable
    "a)|(b", ")", "(", "a)", "(a", "(?:a", "((a)", "a))(b",
    # invalid escapes
    "\\", "a\\", "\\Z", "\\1", "\\8", "\\9", "\\e", "\\g", "\\h", "\\u0041", "\\c", "\\k<n>",
    "\\x", "\\x4", "\\xZZ", "\\x{}", "\\x{110000}", "\\x{41", "\\N", "\\G", "\\R", "\\X",
    "\\y", "\\\u00e9", "\\18", "\\x{", "\\x{4", "\\x4}", "[\\b]", "[\\B]", "[\\A]", "[\\z]", "[\\Q]", "[\\1]",
    # repetition
    "*", "+", "?", "a**", "a*+", "a++", "a?+", "a*?*", "a{2}{3}", "a{2}*", "{2}", "x|*",
    "(*)", "(?i)*", "a{1001}", "a{2,1001}", "a{1001,}", "a{3,2}", "a{100000000}",
    "(a{100}){11}", "((a{10}){10}){11}", "(a{2,}){501}", "((a{500}){0,}){3}",
    "((a{500})*){3}", "((a{500}){1}){3}", "a{1,0}", "a{2,100000000}", "((){1000}){2}",
    "((a{2}){0,}){501}", "(a{2}){1,}{3}",
    # classes
    "[", "[a", "[]", "[^]", "[^", "[b-a]", "[a-\\d]", "[[:foo:]]", "[[:^foo:]]", "[[::]]",
    "\\p", "\\p{", "\\p{Greek", "\\p{Lu", "\\p{Any", "[\\p{L", "\\p{Foo}", "\\pX", "\\p{greek}", "\\p{}", "\\p{Cn}",
    "\\p{LC}", "[\\p{Foo}]",
    # Perl syntax RE2 has not
    "(?=a)", "(?!a)", "(?<=a)", "(?<!a)", "(?>a)", "(?#c)", "(?x)a", "(?P=n)", "(?P>n)",
    "(?-)", "(?i-)", "(?--i)", "(?i-:a)", "(?P<>a)", "(?P<n-1>a)", "(?<n", "(?P<n",
    "(?'n'a)", "(?u)a", "(?a)", "(?", "(?i", "(?i:",
]

# Go refuses them, C++ RE2 (the test oracle) accepts them: Go is what Prometheus runs.
GO_REFUSES_RE2_ACCEPTS = ["\\C"]  # any byte

# Go accepts them (its repeatIsValid does not look inside x{0}), C++ RE2 refuses them.
GO_ACCEPTS_RE2_REFUSES = {"((a{500}){0}){3}": ["", "a", "a" * 500]}  # -> matches "" only


@pytest.mark.parametrize("pattern,values", sorted(GO_ACCEPTS_RE2_REFUSES.items()))
def test_what_go_accepts_and_cpp_re2_refuses_is_translated(java_oracle, pattern, values):
    with pytest.raises(re2.error):
        re2.compile(pattern)
    [answer] = java_oracle.find([(java_regex(pattern), values)])
    assert answer == "1" + "0" * (len(values) - 1)


# Go accepts them, but Java cannot be made to mean the same: refused with 400.
REFUSED_FOR_TIMESTREAM = [
    "(?i)\\pL", "(?i)\\p{Greek}", "(?i)[\\pL]", "(?i)\\PL", "\\p{Adlam}", "\\p{Vithkuqi}",
    "(" * (201) + ")" * 201,
]


@pytest.fixture(scope="session")
def java_oracle():
    return java_regex_engine.shared()


def prometheus_matches(pattern: str, values: Sequence[str], dot_all: bool) -> str:
    """What Prometheus answers: the whole value must match (^(?:re)$), and for
    Prometheus 3 ``.`` also matches ``\\n`` (^(?s:re)$). The anchoring is done by RE2
    itself rather than by pasting text, which would let ``a)|(b`` escape it and an
    unterminated ``\\Q`` swallow it (Prometheus 2.x refuses ``\\Qa``; 3.x, which parses
    before anchoring, takes it as the literal ``a``: so does the translation)."""
    options = re2.Options()
    options.dot_nl = dot_all
    compiled = re2.compile(pattern, options)
    return "".join("1" if compiled.fullmatch(value) else "0" for value in values)


def compare(java_oracle, patterns: Sequence[str], values: Sequence[str], dot_all: bool
            ) -> Dict[str, str]:
    """Patterns (accepted by RE2) whose translation answers differently, with the values."""
    translated = [(p, java_regex(p, dot_all)) for p in patterns]
    answers = java_oracle.find([(java, values) for _, java in translated])
    wrong = {}
    for (pattern, java), answer in zip(translated, answers):
        expected = prometheus_matches(pattern, values, dot_all)
        if answer != expected:
            diff = [repr(v) for v, a, e in zip(values, answer, expected) if a != e]
            wrong[pattern] = f"{java} -> {answer[:80]} vs RE2 {expected}: {diff[:6]}"
    return wrong


@pytest.mark.parametrize("dot_all", [False, True], ids=["prometheus2", "prometheus3"])
def test_corpus_means_in_java_what_it_means_in_re2(java_oracle, dot_all):
    assert compare(java_oracle, CORPUS, STRINGS, dot_all) == {}


def test_corpus_is_accepted_by_re2_and_translated():
    for pattern in CORPUS:
        re2.compile(pattern)  # the corpus holds valid RE2 only
        java = java_regex(pattern)
        assert java.startswith("\\A") and java.endswith("\\z")
        # Plain ASCII without quotes: nothing in it reaches SQL unescaped.
        assert java.isascii() and "'" not in java and "\n" not in java, pattern


@pytest.mark.parametrize("pattern", GO_REFUSES)
def test_what_go_refuses_is_a_400(pattern):
    with pytest.raises(re2.error):
        re2.compile(pattern)
    with pytest.raises(BadRequest, match="invalid regex"):
        java_regex(pattern)


@pytest.mark.parametrize("pattern", GO_REFUSES_RE2_ACCEPTS)
def test_what_go_refuses_and_cpp_re2_accepts_is_a_400(pattern):
    with pytest.raises(BadRequest, match="invalid regex"):
        java_regex(pattern)


@pytest.mark.parametrize("pattern", REFUSED_FOR_TIMESTREAM)
def test_what_java_cannot_mean_is_a_400(pattern):
    re2.compile(pattern)  # valid RE2 ...
    with pytest.raises(BadRequest, match="cannot be evaluated by Timestream"):
        java_regex(pattern)  # ... but no Java pattern is known to mean the same


def test_escaping_the_anchoring_is_refused_not_reinterpreted(java_oracle):
    # '^(?:a)|(b)\z' would select "ab", "ax" and "xb".
    with pytest.raises(BadRequest, match="unexpected \\)"):
        java_regex("a)|(b")
    [answer] = java_oracle.find([(java_regex("a|b"), ["ab", "ax", "xb", "a", "b"])])
    assert answer == "00011"


def test_issue_examples_mean_what_prometheus_means(java_oracle):
    """The constructs issue 8 names, each on the string that shows the difference."""
    cases = [  # pattern, values, Prometheus 2.x answers
        ("x{,3}", ["x{,3}", "x", "xxx"], "100"),
        ("[[]", ["["], "1"),
        ("[a&&b]", ["&", "a", "b", "c"], "1110"),
        ("\\v", ["\x0b", "\n"], "10"),
        ("\\s", ["\x0b", " ", "\t"], "011"),
        ("(?i)k", ["K", "k", "\u212a"], "111"),
        ("(?i)i", ["I", "\u0130", "\u0131"], "100"),
        (".", ["\r", "\u0085", "\u2028", "\u2029", "\n"], "11110"),
        ("a$", ["a", "a\n"], "10"),
        ("\\b\u00e9", ["\u00e9"], "0"),
        ("(?U)a+", ["aaa"], "1"),
        ("(?P<name>a)", ["a"], "1"),
        ("\\d", ["\u0663", "3"], "01"),
        (".", ["\U0001f600"], "1"),
    ]
    answers = java_oracle.find([(java_regex(p), values) for p, values, _ in cases])
    assert answers == [expected for _, _, expected in cases]
    for pattern, values, expected in cases:
        assert prometheus_matches(pattern, values, False) == expected, pattern


def test_dot_all_follows_the_client_dialect(java_oracle):
    answers = java_oracle.find([(java_regex("a.b", False), ["a\nb", "a\rb"]),
                                (java_regex("a.b", True), ["a\nb", "a\rb"]),
                                (java_regex("(?-s)a.b", True), ["a\nb", "a\rb"])])
    assert answers == ["01", "11", "01"]


def test_long_values_do_not_overflow_javas_stack(java_oracle):
    # Java recurses once per repetition of a group with alternatives: (a|b)* overflows its
    # default stack on ~2 000 characters (a dimension value may hold about that much).
    # Single-character alternatives become one class, which needs no stack.
    values = ["ab" * 1000, "ab" * 1000 + "c", "AB" * 1000]
    patterns = ["(a|b)*", "(?:a|b|c)+", "(?i)(a|b)*", "(a|[b])*c?", "(.|\n)*", "((a)|(b))*"]
    assert compare(java_oracle, patterns, values, False) == {}


# Simple case folding pairs Unicode 15.1 added (CaseFolding.txt, status S): C++ RE2 has
# them, Go's tables (Unicode 15.0 and older) do not, and Prometheus runs Go.
FOLDS_NEWER_THAN_GO = {0x0390: {0x1FD3}, 0x1FD3: {0x0390}, 0x03B0: {0x1FE3},
                       0x1FE3: {0x03B0}, 0xFB05: {0xFB06}, 0xFB06: {0xFB05}}


def test_case_folding_is_re2s_for_every_cased_character():
    cased = "".join(chr(c) for c in range(0x41, 0x1E944) if not 0xD800 <= c <= 0xDFFF
                    and (chr(c).lower() != chr(c) or chr(c).upper() != chr(c)
                         or chr(c).casefold() != chr(c)))
    wrong = {}
    for char in cased:
        pattern = f"(?i)\\x{{{ord(char):X}}}"
        # The translation of (?i)c is a literal or a class of \\x{...} and ranges, which
        # RE2 reads as Java does: RE2 can say which characters it holds.
        ours = set(re2.findall(java_regex(pattern)[2:-2], cased))
        theirs = set(re2.findall(pattern, cased))
        newer = {chr(c) for c in FOLDS_NEWER_THAN_GO.get(ord(char), ())}
        if ours != theirs - newer:
            wrong[char] = (sorted(ours), sorted(theirs))
    assert wrong == {}


def test_every_translation_compiles_in_java(java_oracle):
    answers = java_oracle.find([(java_regex(p, d), []) for p in CORPUS for d in (False, True)])
    assert [a for a in answers if a.startswith("E")] == []


# Random patterns from RE2's building blocks, checked the same way.
_PIECES = ["a", "b", "k", "K", "s", "\u00df", "\u00e9", "\U0001f600", "\n", "\r", "_", "-",
           ".", "^", "$", "|", "(", ")", "(?:", "(?i)", "(?s)", "(?m)", "(?-s)", "(?i:",
           "*", "+", "?", "{2}", "{1,2}", "{,2}", "{", "}", "[", "]", "[^", "\\d", "\\s",
           "\\w", "\\W", "\\b", "\\B", "\\pL", "\\PN", "[[:alpha:]]", "\\Q", "\\E", "\\.",
           "&&", "\\x{212A}", "\\z", "\\A", ":", "0", "[a-z]", "[^a-z]", "\\x{41}", "(?U)",
           "\\p{Greek}", "[\\pL]", "[^\\pN]", "\\Qa|b\\E", "(?P<n>", "x{,3}", "{0}", "{3,}",
           "\\pN", "[[:^alpha:]]", "\u0130", "\u03c3", "\u212a", "(?-i)", "(?m:", "\\12", "\\0",
           "\\v", "\\n", "\\r", "[\\s\\S]", "(?i)[k-s]", "\u0345", "[\\x{300}-\\x{400}]", "|"]
_VALUE_CHARS = ("abkKs\u00df\u00e9\U0001f600\n\r_-. 0\u212a\u017f\u0663A[x{,3}|\x0b\u2028"
                "\u03c3\u03a3\u03c2\u0130iI\u0131\u0345\u03b9\u0399\u1fbe\n")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=st.lists(st.sampled_from(_PIECES), max_size=8).map("".join),
       values=st.lists(st.text(_VALUE_CHARS, max_size=5), min_size=1, max_size=6),
       dot_all=st.booleans())
def test_random_patterns_agree_or_are_refused(java_oracle, pattern, values, dot_all):
    try:
        re2.compile(pattern)
        re2_accepts = True
    except re2.error:
        re2_accepts = False
    try:
        java_regex(pattern, dot_all)
    except BadRequest as exc:
        # Refused: RE2 refuses it too, or Go does (nested repetition), or Java cannot.
        assert (not re2_accepts or "nested repetition" in str(exc)
                or "cannot be evaluated by Timestream" in str(exc)), str(exc)
        return
    assert re2_accepts, f"{pattern!r} translated though RE2 refuses it"
    values = values + STRINGS[:20]
    assert compare(java_oracle, [pattern], values, dot_all) == {}


def test_a_lone_surrogate_in_the_pattern_is_invalid_utf8():
    # Go reads the pattern as UTF-8; Python strings can carry what UTF-8 cannot.
    for surrogate in ("\ud800", "\udfff"):  # the first and the last
        with pytest.raises(BadRequest, match="invalid UTF-8"):
            java_regex("a" + surrogate)


def test_the_timestream_emulation_runs_regexp_like_on_java():
    conn = duckdb.connect()
    install_sql_functions(conn)
    # Java's answers (a contains-match; $ before a final newline; lookbehind), not RE2's.
    assert conn.execute("SELECT regexp_like('xa' || chr(10), 'a$'), regexp_like('xab', 'a'), "
                        "regexp_like('ab', '(?<=a)b'), regexp_like(NULL, 'a')"
                        ).fetchone() == (True, True, True, None)
    with pytest.raises(duckdb.Error, match="invalid Java regex"):
        conn.execute("SELECT regexp_like('a', '(?P<n>a)')").fetchone()


# Every named class (Go's perl_groups.go: ASCII only), plain, negated, inside a class and
# case-insensitive, on every character of the first Unicode blocks and the ones (?i) adds.
NAMED_CLASSES = ["alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower",
                 "print", "punct", "space", "upper", "word", "xdigit"]
CLASS_PATTERNS = ([f"[[:{name}:]]" for name in NAMED_CLASSES]
                  + [f"[[:^{name}:]]" for name in NAMED_CLASSES]
                  + ["\\d", "\\D", "\\s", "\\S", "\\w", "\\W", "[\\d]", "[\\D]", "[\\s]",
                     "[\\S]", "[\\w]", "[\\W]", "[^\\d]", "[^\\s]", "[^\\w]", "\\b.", ".\\b",
                     "\\B.", ".\\B",
                     # escapes of one character
                     "\\a", "\\f", "\\n", "\\r", "\\t", "\\v", "[\\a\\f\\n\\r\\t\\v]", "\\0",
                     "\\17", "\\177", "\\x7F", "\\x{7f}", "\\x{000041}", "[\\0-\\10]",
                     "[a-a]", "[^a-a]", "\\x{24F}"])
CLASS_VALUES = [chr(c) for c in range(0x250)] + ["\u212a", "\u017f", "\u2028", "\U0001f600"]


@pytest.mark.parametrize("dot_all", [False, True], ids=["prometheus2", "prometheus3"])
def test_every_named_class_holds_what_it_holds_in_go(java_oracle, dot_all):
    patterns = CLASS_PATTERNS + ["(?i)" + p for p in CLASS_PATTERNS]
    assert compare(java_oracle, patterns, CLASS_VALUES, dot_all) == {}


def test_groups_nested_as_deep_as_allowed_are_translated(java_oracle):
    pattern = "(" * 200 + "a" + ")" * 200
    [answer] = java_oracle.find([(java_regex(pattern), ["a", "b", "aa"])])
    assert answer == "100"


# Go's own error for each (regexp/syntax: "error parsing regexp: <reason>: `<text>`").
GO_ERRORS = {
    "(?<": "invalid or unsupported Perl syntax: `(?<`",
    "(?P<": "invalid or unsupported Perl syntax: `(?P`",
    "(?<n": "invalid named capture: `(?<n`",
    "(?P<n": "invalid named capture: `(?P<n`",
    "(?P<n-1>a)": "invalid named capture: `(?P<n-1>`",
    "(?<>a)": "invalid named capture: `(?<>`",
    "(?i-)": "invalid or unsupported Perl syntax: `(?i-)`",
    "(?-:a)": "invalid or unsupported Perl syntax: `(?-:`",
    "a{1001}": "invalid repeat count: `{1001}`",
    "(a{10}){101}": "invalid repeat count: `{101}`",
    "(a{10}){101}?": "invalid repeat count: `{101}?`",  # too many in all: with the ?
    "a{1001}?": "invalid repeat count: `{1001}`",  # too large a count: without it
    "a{2,1001}?": "invalid repeat count: `{2,1001}`",
    "a{1001,}?": "invalid repeat count: `{1001,}`",
    "a**": "invalid nested repetition operator: `**`",
    "a*??": "invalid nested repetition operator: `*??`",
    "x|*": "missing argument to repetition operator: `*`",
    "[b-a]": "invalid character class range: `b-a`",
    "[[:foo:]]": "invalid character class range: `[:foo:]`",
    "\\p{Foo}": "invalid character class range: `\\p{Foo}`",
    "\\8": "invalid escape sequence: `\\8`",
    "\\1": "invalid escape sequence (backreferences are not supported): `\\1`",
    "[a": "missing closing ]: `[a`",
    "(?P<\u00e9>a)": "invalid named capture: `(?P<\u00e9>`",
    "a)|(b": "unexpected ): `a)|(b`",
    "(a|b": "missing closing ): `(a|b`",
    "a?+": "invalid nested repetition operator: `?+`",
    "a{2}{3}": "invalid nested repetition operator: `{2}{3}`",
}


@pytest.mark.parametrize("pattern,reason", sorted(GO_ERRORS.items()))
def test_what_go_refuses_is_refused_with_gos_reason(pattern, reason):
    with pytest.raises(BadRequest) as refused:
        java_regex(pattern)
    assert str(refused.value).endswith(f": {reason}"), str(refused.value)


def test_translations_are_remembered_within_their_byte_budget(monkeypatch):
    monkeypatch.setattr(timestream_regex, "_TRANSLATIONS", BoundedCache(1 << 20))
    first = java_regex("(?i)remembered.*")
    assert java_regex("(?i)remembered.*") is first  # translated once
    assert java_regex("(?i)remembered.*", True) is not first  # another dialect, another entry
    for i in range(300):  # ~4.4 kB each (estimated): 1.3 MB in all
        assert java_regex(f"{i:04}" + "[a-z]" * 400).startswith(f"\\A(?:{i:04}[a-z]")
    assert 0 < timestream_regex._TRANSLATIONS.bytes <= 1 << 20
    assert 200 < len(timestream_regex._TRANSLATIONS) < 300


@pytest.mark.parametrize("pattern", ["x{i}", "{i}" + "[a-z]" * 40, "(?i){i}" + "ab" * 20,
                                     "{i}" + "\u00e9\U0001f600" * 40])
def test_translation_cache_bytes_are_the_memory_it_holds_rounded_up(monkeypatch, pattern):
    """What the cache's bound counts is at least what it really holds (and not far more)."""
    monkeypatch.setattr(timestream_regex, "_TRANSLATIONS",
                        BoundedCache(timestream_regex.TRANSLATIONS_CACHE_BYTES))
    java_regex("(?i)warm-up: the case-folding tables")
    monkeypatch.setattr(timestream_regex, "_TRANSLATIONS",
                        BoundedCache(timestream_regex.TRANSLATIONS_CACHE_BYTES))
    def work():
        for i in range(200):
            java_regex(pattern.format(i=i))

    held = memory_held_after(work)
    assert held <= timestream_regex._TRANSLATIONS.bytes <= ESTIMATE_SLACK * held
