"""Prometheus label matchers with Prometheus's exact semantics.

- ``=~`` / ``!~`` are fully anchored (``foo.*`` means ``^(?:foo.*)$``), RE2 syntax,
  evaluated by RE2 itself (google-re2): linear time whatever the pattern, so no
  regex can stall the server, and the same meaning as Prometheus's Go ``regexp``.
- An empty value is the same as an absent label: ``{a=""}`` selects series
  without ``a``; ``{a!=""}`` selects series that have it.

Where C++ RE2 accepts more than Go's ``regexp`` (``\\C``, nesting deeper than Go's
limit of 1000), the pattern is refused as Prometheus refuses it. Every refusal is
a BadRequest (400) naming the pattern and RE2's reason.
"""
import enum
from dataclasses import dataclass
from typing import Iterable, Mapping, Optional

import re2

from chalicelib.caches import BoundedCache
from chalicelib.errors import BadRequest
from chalicelib.quoting import escape, quoted


class MatchType(enum.IntEnum):
    """Matcher kinds, numbered as in ``prometheus.LabelMatcher.Type``."""

    EQ = 0
    NEQ = 1
    RE = 2
    NRE = 3


#: Go's regexp/syntax refuses expressions nested deeper than this (maxHeight).
MAX_NESTING = 1000
#: RE2's memory budget per compiled regex (its default): larger programs are refused.
MAX_REGEX_MEMORY = 8 << 20
#: Compiled regexes kept, bounded by an estimate of their size in bytes.
REGEX_CACHE_BYTES = 32 << 20
#: Estimated bytes per instruction of a cached RE2 program: ~16, with as much again for
#: the DFA states a match builds lazily (the pattern's characters are counted as if each
#: were an instruction).
_INSTRUCTION_BYTES = 32  # pragma: no mutate (an estimate: 31 or 33 keep as many regexes)


def _options(dot_all: bool) -> "re2.Options":
    options = re2.Options()
    options.dot_nl = dot_all
    # Only speed: the whole match's span is all that is read, captured groups or not.
    options.never_capture = True  # pragma: no mutate (speed only)
    options.log_errors = False
    options.max_mem = MAX_REGEX_MEMORY
    return options


_OPTIONS = {False: _options(False), True: _options(True)}
_CACHE: BoundedCache = BoundedCache(REGEX_CACHE_BYTES)


class Regex:
    """A compiled RE2 regex that answers whether it matches a whole value."""

    __slots__ = ("pattern", "_match")

    def __init__(self, pattern: str, compiled: "re2._Regexp") -> None:
        self.pattern = pattern
        # The binding's own Match (google-re2 is pinned): ~2x faster than ``fullmatch``,
        # which builds a match object and offsets nobody reads here.
        self._match = compiled._regexp.Match

    def fullmatch(self, value: str) -> bool:
        """Whether the regex matches all of ``value`` (RE2, linear time)."""
        data = value.encode("utf-8")
        # The whole match's span first (then named groups': RE2 still captures those).
        return self._match(_BOTH, data, 0, len(data))[0] != _NO_MATCH


_BOTH = re2._re2.RE2.Anchor.ANCHOR_BOTH  # the extension module under every google-re2
_NO_MATCH = (-1, -1)


def compile_anchored(pattern: str, dot_all: bool) -> Regex:
    """The RE2 regex ``pattern``, anchored at both ends as Prometheus anchors it;
    BadRequest if Prometheus would refuse it.

    ``dot_all``: ``.`` also matches a newline, as in Prometheus 3 (2.x: it does not)."""
    key = (pattern, dot_all)
    regex = _CACHE.get(key)
    if regex is None:
        _refuse_what_go_refuses(pattern)
        try:
            compiled = re2.compile(pattern.encode("utf-8"), _OPTIONS[dot_all])
        except re2.error as exc:
            raise BadRequest(f"invalid regex {quoted(pattern)}: {_reason(exc)}") from None
        regex = Regex(pattern, compiled)
        _CACHE.put(key, regex, _INSTRUCTION_BYTES * (compiled.programsize + len(pattern)))
    return regex


def _reason(exc: Exception) -> str:
    """RE2's reason, e.g. ``invalid repetition size: {1001}`` (its fragment escaped)."""
    reason = exc.args[0].decode("utf-8", "replace")  # google-re2 (pinned) raises bytes
    if "pattern too large" in reason:
        return "pattern too large: compiled, it exceeds RE2's memory limit"
    head, _, fragment = reason.partition(": ")
    return f"{head}: {escape(fragment, 60)}" if fragment else head


def _refuse_what_go_refuses(pattern: str) -> None:
    """C++ RE2 accepts ``\\C`` (any byte) and any nesting depth; Go does not."""
    depth = deepest = 0
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            if pattern.startswith("C", index + 1):
                raise BadRequest(f"invalid regex {quoted(pattern)}: invalid escape sequence \\C")
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            index += 1 + pattern.startswith("^", index + 1)
            index += pattern.startswith("]", index)  # a leading "]" is literal
            continue
        elif char == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif char == ")":
            depth -= 1
        index += 1
    if deepest >= MAX_NESTING:
        raise BadRequest(f"invalid regex {quoted(pattern, 60)}: expression nests too deeply "
                         f"({deepest} groups, at most {MAX_NESTING - 1})")


@dataclass(frozen=True)
class Matcher:
    """One label matcher; ``matches`` takes a label mapping."""

    type: MatchType
    name: str
    value: str
    #: Regex dialect of the asking client: ``.`` matches ``\n`` (Prometheus 3) or not (2.x).
    dot_all: bool
    regex: Optional[Regex]

    @classmethod
    def of(cls, type_: int, name: str, value: str, dot_all: bool = False) -> "Matcher":
        """Build and validate a matcher (BadRequest on unknown type or bad regex)."""
        try:
            match_type = MatchType(type_)
        except ValueError:
            raise BadRequest(f"unknown matcher type {type_} for label {quoted(name)}") from None
        if not name:
            raise BadRequest("matcher with an empty label name")
        regex = (compile_anchored(value, dot_all) if match_type in (MatchType.RE, MatchType.NRE)
                 else None)
        return cls(match_type, name, value, dot_all, regex)

    def matches_value(self, value: str) -> bool:
        """Whether a label value ("" when the label is absent) satisfies the matcher."""
        return _TESTS[self.type](self, value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a series with ``labels`` is selected."""
        return self.matches_value(labels.get(self.name, ""))

    @property
    def matches_empty(self) -> bool:
        """Whether a series *without* this label is selected."""
        return self.matches_value("")


_TESTS = {
    MatchType.EQ: lambda matcher, value: value == matcher.value,
    MatchType.NEQ: lambda matcher, value: value != matcher.value,
    MatchType.RE: lambda matcher, value: matcher.regex.fullmatch(value),
    MatchType.NRE: lambda matcher, value: not matcher.regex.fullmatch(value),
}


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfies every matcher."""
    return all(m.matches(labels) for m in matchers)
