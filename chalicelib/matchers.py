"""Prometheus label matchers with Prometheus's exact semantics.

- ``=~`` / ``!~`` are fully anchored (``foo.*`` means ``^(?:foo.*)$``), RE2 syntax,
  evaluated by RE2 itself (google-re2): linear time whatever the pattern, so no
  regex can stall the server, and the same meaning as Prometheus's Go ``regexp``.
- An empty value is the same as an absent label: ``{a=""}`` selects series
  without ``a``; ``{a!=""}`` selects series that have it.

Where C++ RE2 accepts more than Go's ``regexp`` (``\\C``, nesting deeper than Go's
limit of 1000), the pattern is refused as Prometheus refuses it. Every refusal is
a BadRequest (400) naming the pattern and RE2's reason.

One request's regexes share a budget (``RegexBudget``): each distinct regex counts its
compiled RE2 program once, so a small request cannot make the server compile (and hold)
hundreds of large programs.
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
#: RE2 instructions one request's distinct regexes may compile to in all. Prometheus's own
#: regexes are a few dozen each; ``\pL{300}`` alone is about 359 000 (0.2 s, 8 MB).
REQUEST_REGEX_INSTRUCTIONS = 1_000_000
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

    __slots__ = ("pattern", "size", "_match")

    def __init__(self, pattern: str, compiled: "re2._Regexp") -> None:
        self.pattern = pattern
        self.size = compiled.programsize  # RE2 instructions
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


class RegexBudget:
    """The RE2 instructions one request's regexes may still compile to; each distinct
    regex (pattern and dialect) is charged once. Not thread-safe: one per request."""

    def __init__(self, instructions: int = REQUEST_REGEX_INSTRUCTIONS) -> None:
        self.limit = instructions
        self.left = instructions
        self._charged: set = set()

    def charge(self, key: tuple, regex: Regex) -> None:
        """Count ``regex`` (once per ``key``); BadRequest once the budget is spent."""
        if key in self._charged:
            return
        self._charged.add(key)
        self.left -= regex.size
        if self.left < 0:
            raise BadRequest(
                f"the regexes of this request compile to more than {self.limit} RE2 "
                f"instructions in all ({quoted(regex.pattern, 60)} alone is {regex.size}): "
                "use fewer or simpler regexes")


def compile_anchored(pattern: str, dot_all: bool,
                     budget: Optional[RegexBudget] = None) -> Regex:
    """The RE2 regex ``pattern``, anchored at both ends as Prometheus anchors it;
    BadRequest if Prometheus would refuse it, or if it is more than ``budget`` has left.

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
    if budget is not None:
        budget.charge(key, regex)
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
    def of(cls, type_: int, name: str, value: str, dot_all: bool = False,
           budget: Optional[RegexBudget] = None) -> "Matcher":
        """Build and validate a matcher (BadRequest on unknown type or bad regex, or a regex
        over what the request's ``budget`` has left)."""
        try:
            match_type = MatchType(type_)
        except ValueError:
            raise BadRequest(f"unknown matcher type {type_} for label {quoted(name)}") from None
        if not name:
            raise BadRequest("matcher with an empty label name")
        regex = (compile_anchored(value, dot_all, budget)
                 if match_type in (MatchType.RE, MatchType.NRE) else None)
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
