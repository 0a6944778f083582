"""Remote-read queries -> one InfluxQL SELECT, with Prometheus's matcher semantics.

Quoting follows the InfluxQL scanner (influxql ``ScanString`` / ``ScanRegex``, measured
on influxd 1.6.7): in 'string literals' and "identifiers" a backslash escapes ``\\``
and the quote; in /regex/ literals only ``\\/`` is an escape (it becomes ``/``), every
other backslash pair passes through to Go's RE2. The scanner refuses a raw newline,
reads a carriage return as a newline and NUL as the end of input: in regexes control
characters are written as RE2 ``\\x{..}`` escapes, and stored text never holds one
(it is stored encoded). So no label value can change the statement's structure.

Semantics: regexes are fully anchored (``^(?:re)$``; ``(?s)`` in front for clients
whose ``.`` matches a newline), an empty value is the same as an absent tag. Stored
text in the reversible ``base64:`` form (see ``influxdb_line``) cannot be matched by
a regex inside InfluxDB, so regex conditions also select every encoded value; the
store checks every series it reads against the decoded labels.
"""
import re
from typing import Optional, Tuple

from chalicelib.matchers import Matcher, MatchType
from chalicelib.model import Query
from chalicelib.storage.influxdb.line_protocol import (BITS_FIELD, ENCODED_PREFIX,
                                                       HISTOGRAM_FIELD, NAME_TAG, VALUE_FIELD,
                                                       stored_key, stored_measurement,
                                                       stored_tag)

# InfluxDB's representable time range (models.MinNanoTime / MaxNanoTime).
MIN_NANOS = -9223372036854775806
MAX_NANOS = 9223372036854775806
ENCODED = "/^" + ENCODED_PREFIX + "/"
_OPERATORS = {MatchType.EQ: "=", MatchType.NEQ: "!=", MatchType.RE: "=~", MatchType.NRE: "!~"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A backslash and the character it escapes, or one character (a trailing backslash too).
_REGEX_PIECE = re.compile(r"\\?[\s\S]")
_SLASHES = {"/": "\\/"}


def _hex(char: str) -> str:
    return "\\x{%02x}" % ord(char)


def _quoted(text: str, quote: str) -> str:
    if _CONTROL.search(text):  # InfluxQL cannot name them; stored text never holds one
        raise ValueError(f"control characters cannot appear in an InfluxQL literal: {text!r}")
    escaped = text.replace("\\", "\\\\").replace(quote, "\\" + quote)
    return quote + escaped + quote


def string_literal(text: str) -> str:
    """An InfluxQL string literal holding exactly ``text``."""
    return _quoted(text, "'")


def identifier(name: str) -> str:
    """A double-quoted InfluxQL identifier naming exactly ``name``."""
    return _quoted(name, '"')


def _regex_piece(match: "re.Match[str]") -> str:
    piece = match.group()
    if _CONTROL.match(piece[-1]):
        return _hex(piece[-1])  # escaped or not: RE2's \x{..} for the same character
    return _SLASHES.get(piece, piece)  # an unescaped / would end the literal


def regex_literal(pattern: str, dot_all: bool = False) -> str:
    """``/^(?:pattern)$/`` as an InfluxQL regex literal, RE2 meaning unchanged."""
    body = _REGEX_PIECE.sub(_regex_piece, pattern)
    return "/" + ("(?s)" if dot_all else "") + "^(?:" + body + ")$/"


def tag_reference(name: str) -> str:
    """The tag holding label ``name`` in a WHERE clause: cast to ``::tag``, because InfluxQL
    resolves a bare name to the field when one has that name (``value``, ``value_bits``)."""
    return identifier(stored_key(name)) + "::tag"


def condition(matcher: Matcher) -> str:
    """The WHERE condition selecting what ``matcher`` selects (absent tag = empty value).
    A point without a ``__name__`` tag (written by another tool, e.g. Telegraf) is named by
    its measurement: name matchers also let it through, and the store decides on the name
    read back."""
    if matcher.name == NAME_TAG and not matcher.matches_empty:
        key = tag_reference(matcher.name)
        return f"({key} = '' OR {_condition(matcher)})"
    return _condition(matcher)


def _condition(matcher: Matcher) -> str:
    key = tag_reference(matcher.name)
    if matcher.type in (MatchType.EQ, MatchType.NEQ):
        literal = string_literal(stored_tag(matcher.value))
        if matcher.value and matcher.matches_empty:  # != "x" also selects an absent tag
            return f"({key} = '' OR {key} != {literal})"
        return f"{key} {_OPERATORS[matcher.type]} {literal}"
    regex = regex_literal(matcher.value, matcher.dot_all)
    operator = _OPERATORS[matcher.type]
    encoded = f"{key} =~ {ENCODED}"
    if matcher.matches_empty:
        return f"({key} = '' OR {key} {operator} {regex} OR {encoded})"
    return f"(({key} != '' AND {key} {operator} {regex}) OR {encoded})"


def source(matchers: Tuple[Matcher, ...], prefix: str = "") -> str:
    """The FROM clause: one measurement for ``__name__="x"``, a regex for ``=~``, else all."""
    narrowing = {m.type: m for m in matchers if m.name == NAME_TAG and not m.matches_empty}
    if MatchType.EQ in narrowing:
        return prefix + identifier(stored_measurement(narrowing[MatchType.EQ].value))
    if MatchType.RE in narrowing:
        regex = regex_literal(narrowing[MatchType.RE].value, narrowing[MatchType.RE].dot_all)
        return prefix + regex[:-1] + "|^" + ENCODED_PREFIX + "/"
    return prefix + "/.*/"


def select_statement(query: Query, retention_policy: Optional[str] = None,
                     database: Optional[str] = None) -> str:
    """The InfluxQL answering ``query``: points in the inclusive millisecond range (the
    fields of float samples and of native histograms), one result series per tag set."""
    prefix = ""
    if retention_policy:
        prefix = f"{identifier(database or '')}.{identifier(retention_policy)}."
    start = min(max(query.start_ms * 1_000_000, MIN_NANOS), MAX_NANOS)
    end = min(max(query.end_ms * 1_000_000, MIN_NANOS), MAX_NANOS)
    where = [condition(m) for m in query.matchers]
    where.append(f"time >= {start} AND time <= {end}")
    # InfluxQL gives a field one type across the measurements of a statement and drops the
    # values of the others: ::string keeps the stale markers and histograms whatever
    # another tool wrote under those names elsewhere (measured on influxd 1.6.7).
    fields = (f"{identifier(VALUE_FIELD)}::field, {identifier(BITS_FIELD)}::string, "
              f"{identifier(HISTOGRAM_FIELD)}::string")
    return (f"SELECT {fields} FROM {source(query.matchers, prefix)} "
            f"WHERE {' AND '.join(where)} GROUP BY *")
