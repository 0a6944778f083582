"""The matcher table shared by the matcher unit tests and every store's contract tests.

Expected answers are written from Prometheus's rules: regexes fully anchored, RE2
syntax ("." does not match a newline), an empty value equals an absent label.
"""
from chalicelib.matchers import MatchType

EQ, NEQ, RE, NRE = MatchType.EQ, MatchType.NEQ, MatchType.RE, MatchType.NRE

SERIES = {
    "api": {"__name__": "m", "job": "api", "path": '/a"b'},
    "db": {"__name__": "m", "job": "db"},
    "nojob": {"__name__": "m"},
    "api2": {"__name__": "m", "job": "api-2", "path": "C:\\x"},
    "unicode": {"__name__": "m", "job": "ünï", "path": "line1\nline2"},
    "sql": {"__name__": "m", "job": "x' OR '1'='1", "path": "%_*"},
    "other": {"__name__": "other_metric", "job": "api"},
}
ALL_M = {"api", "db", "nojob", "api2", "unicode", "sql"}

# (matchers besides __name__="m", expected series keys)
CASES = [
    ([(EQ, "job", "api")], {"api"}),
    ([(EQ, "job", "")], {"nojob"}),
    ([(NEQ, "job", "")], ALL_M - {"nojob"}),
    ([(NEQ, "job", "api")], ALL_M - {"api"}),
    ([(RE, "job", "api")], {"api"}),
    ([(RE, "job", "api.*")], {"api", "api2"}),
    ([(RE, "job", ".*")], ALL_M),
    ([(RE, "job", ".+")], ALL_M - {"nojob"}),
    ([(RE, "job", "")], {"nojob"}),
    ([(RE, "job", "b")], set()),
    ([(RE, "job", "pi")], set()),
    ([(NRE, "job", "api")], ALL_M - {"api"}),
    ([(NRE, "job", ".*")], set()),
    ([(NRE, "job", "")], ALL_M - {"nojob"}),
    ([(NRE, "job", "a.*")], ALL_M - {"api", "api2"}),
    ([(RE, "job", "db|api")], {"api", "db"}),
    ([(RE, "job", "api|")], {"api", "nojob"}),
    ([(RE, "job", "(?i)API")], {"api"}),
    # Constructs Java reads otherwise (Timestream): Unicode case folding, ASCII \b, RE2 lines.
    ([(RE, "job", "(?i)ÜNÏ")], {"unicode"}),
    ([(RE, "job", "\\bapi\\b.*")], {"api", "api2"}),
    ([(RE, "path", "line1\n(?m)^line2$")], {"unicode"}),
    ([(RE, "path", "line1$\n.*")], set()),
    ([(EQ, "path", '/a"b')], {"api"}),
    ([(EQ, "path", "C:\\x")], {"api2"}),
    ([(RE, "path", "C:\\\\x")], {"api2"}),
    ([(RE, "path", "line1.line2")], set()),
    ([(RE, "path", "line1\nline2")], {"unicode"}),
    ([(RE, "path", "(?s)line1.line2")], {"unicode"}),
    ([(EQ, "job", "ünï")], {"unicode"}),
    ([(RE, "job", "ü..")], {"unicode"}),
    ([(EQ, "job", "x' OR '1'='1")], {"sql"}),
    ([(RE, "job", "x' OR '1'='1")], {"sql"}),
    ([(EQ, "path", "%_*")], {"sql"}),
    ([(RE, "path", "%_\\*")], {"sql"}),
    ([(EQ, "path", "%")], set()),
    ([(EQ, "absent", "")], ALL_M),
    ([(NEQ, "absent", "")], set()),
    ([(RE, "absent", "x?")], ALL_M),
    ([(NRE, "absent", "x")], ALL_M),
    ([(RE, "job", "api.*"), (NEQ, "path", "")], {"api", "api2"}),
    ([(RE, "job", "api.*"), (EQ, "path", "")], set()),
    ([(NEQ, "job", "db"), (NRE, "path", ".*x")], ALL_M - {"db", "api2"}),
]

# Name matchers beyond the plain equality used above.
NAME_CASES = [
    ([(RE, "__name__", "m|other_metric"), (EQ, "job", "api")], {"api", "other"}),
    ([(RE, "__name__", "other.*")], {"other"}),
    ([(NEQ, "__name__", "m"), (EQ, "job", "api")], {"other"}),
    ([(NRE, "__name__", "m"), (RE, "job", ".+")], {"other"}),
]

# Refused by Prometheus (Go's regexp) and so by the connector.
INVALID_REGEXES = ["(", "[a", "*a", "(?=a)", "(?!a)", "(?<=a)b", "(a)\\1", "(?P<x>a)(?P=x)",
                   "a++", "(?>a)", "a{1001}", "\\Z", "(?#comment)", "a)|(b", "\\C", "[z-a]",
                   "\\p{NoSuchClass}", "a**", "(?i", "(" * 1000 + "a" + ")" * 1000]


def all_cases():
    """Every case as (matchers, expected), __name__="m" added to the plain ones."""
    for matchers, expected in CASES:
        yield [(EQ, "__name__", "m")] + matchers, expected
    yield from NAME_CASES


def case_id(matchers) -> str:
    symbols = {EQ: "=", NEQ: "!=", RE: "=~", NRE: "!~"}
    return ",".join(f"{n}{symbols[t]}{v!r}" for t, n, v in matchers)
