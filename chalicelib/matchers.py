"""Prometheus label matchers with Prometheus's exact semantics.

- ``=~`` / ``!~`` are fully anchored (``foo.*`` means ``^(?:foo.*)$``), RE2 syntax.
- An empty value is the same as an absent label: ``{a=""}`` selects series
  without ``a``; ``{a!=""}`` selects series that have it.

Python's ``re`` is a superset of RE2 for most syntax. Constructs RE2 refuses
(lookaround, backreferences, atomic groups, possessive quantifiers) are refused
here too, and RE2-only syntax Python would read differently (POSIX classes
``[[:alpha:]]``, ``\\pL``, ``\\z``) is refused rather than answered wrongly.
Both backends share these rules: the embedded store evaluates them in Python,
the Timestream backend translates them to SQL.
"""
import enum
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping, Optional, Pattern

from chalicelib.errors import BadRequest


class MatchType(enum.IntEnum):
    """Matcher kinds, numbered as in ``prometheus.LabelMatcher.Type``."""

    EQ = 0
    NEQ = 1
    RE = 2
    NRE = 3


SYMBOLS = {MatchType.EQ: "=", MatchType.NEQ: "!=", MatchType.RE: "=~", MatchType.NRE: "!~"}

# Refused because RE2 (and so Prometheus) refuses them, or reads them otherwise.
_UNSUPPORTED = (
    (re.compile(r"\(\?[=!]|\(\?<[=!]"), "lookaround assertions"),
    (re.compile(r"\(\?P="), "backreferences"),
    (re.compile(r"\(\?\("), "conditional groups"),
    (re.compile(r"\(\?>"), "atomic groups"),
    (re.compile(r"(?:[*+?}])\+"), "possessive quantifiers"),
)
_UNSUPPORTED_ESCAPES = {
    **{str(d): "backreferences" for d in range(1, 10)},
    "p": "Unicode classes (\\p)", "P": "Unicode classes (\\P)",
    "z": "\\z", "C": "\\C", "Q": "\\Q...\\E quoting", "E": "\\Q...\\E quoting",
}


def check_regex(pattern: str) -> None:
    """Raise BadRequest if ``pattern`` is not RE2 syntax this connector can honour."""
    def refuse(what: str) -> BadRequest:
        return BadRequest(f"unsupported regex {pattern!r}: {what} are not supported")

    outside = []  # the pattern outside character classes, escapes blanked out
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            if escaped in _UNSUPPORTED_ESCAPES:
                raise refuse(_UNSUPPORTED_ESCAPES[escaped])
            outside.append("__")
            index += 2
        elif in_class:
            if pattern.startswith("[:", index):
                raise refuse("POSIX character classes")
            in_class = char != "]"
            index += 1
        elif char == "[":
            in_class = True
            index += 1
            index += pattern.startswith("^", index)
            index += pattern.startswith("]", index)  # a leading "]" is literal
            outside.append("_")
        else:
            outside.append(char)
            index += 1
    text = "".join(outside)
    for construct, name in _UNSUPPORTED:
        if construct.search(text):
            raise refuse(name)


_LEADING_FLAGS = re.compile(r"\(\?[ims]+\)")


def anchored_source(pattern: str) -> str:
    """The regex source Prometheus evaluates, ``^(?:pattern)$`` without the anchors
    (callers use ``fullmatch``); a leading flag group such as ``(?i)`` stays in front,
    where Python requires it and where it means the same as in RE2."""
    flags = _LEADING_FLAGS.match(pattern)
    if flags:
        return flags.group(0) + "(?:" + pattern[flags.end():] + ")"
    return "(?:" + pattern + ")"


@lru_cache(maxsize=4096)
def compile_anchored(pattern: str, dot_all: bool = False) -> Pattern[str]:
    """Compile a Prometheus regex, anchored at both ends; BadRequest if invalid.

    ``dot_all``: ``.`` also matches a newline, as in Prometheus 3 (2.x: it does not)."""
    check_regex(pattern)
    try:
        return re.compile(anchored_source(pattern), re.DOTALL if dot_all else 0)
    except re.error as exc:
        raise BadRequest(f"invalid regex {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class Matcher:
    """One label matcher; ``matches`` takes a label mapping."""

    type: MatchType
    name: str
    value: str
    #: Regex dialect of the asking client: ``.`` matches ``\n`` (Prometheus 3) or not (2.x).
    dot_all: bool = False
    regex: Optional[Pattern[str]] = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, type_: int, name: str, value: str, dot_all: bool = False) -> "Matcher":
        """Build and validate a matcher (BadRequest on unknown type or bad regex)."""
        try:
            match_type = MatchType(type_)
        except ValueError:
            raise BadRequest(f"unknown matcher type {type_} for label {name!r}") from None
        if not name:
            raise BadRequest("matcher with an empty label name")
        regex = (compile_anchored(value, dot_all) if match_type in (MatchType.RE, MatchType.NRE)
                 else None)
        return cls(match_type, name, value, dot_all, regex)

    def matches_value(self, value: str) -> bool:
        """Whether a label value ("" when the label is absent) satisfies the matcher."""
        if self.type is MatchType.EQ:
            return value == self.value
        if self.type is MatchType.NEQ:
            return value != self.value
        matched = self.regex.fullmatch(value) is not None
        return matched if self.type is MatchType.RE else not matched

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with ``labels`` is selected."""
        return self.matches_value(labels.get(self.name, ""))

    @property
    def matches_empty(self) -> bool:
        """Whether a series *without* this label is selected."""
        return self.matches_value("")

    def __str__(self) -> str:
        return f"{self.name}{SYMBOLS[self.type]}{self.value!r}"


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfies every matcher."""
    return all(m.matches(labels) for m in matchers)
