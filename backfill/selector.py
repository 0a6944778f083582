"""A PromQL series selector (``MATCH=``) as remote-read label matchers.

``up``, ``{job="node"}``, ``http_requests_total{code=~"5..", method!="GET"}``, and
Prometheus 3's quoted UTF-8 names: ``{"http.server.duration", "service.name"="api"}``.
"""
import re
from typing import List, Tuple

from chalicelib.protocol.prompb import types_pb2

#: Every series: what ``MATCH`` means when it is not given.
EVERY_SERIES = '{__name__=~".+"}'
OPERATORS = {"=": types_pb2.LabelMatcher.EQ, "!=": types_pb2.LabelMatcher.NEQ,
             "=~": types_pb2.LabelMatcher.RE, "!~": types_pb2.LabelMatcher.NRE}
_TOKEN = re.compile(r'''\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
                       |(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)|(?P<op>=~|!~|!=|=)|(?P<punct>[{},]))''',
                    re.VERBOSE | re.DOTALL)
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", '"': '"', "'": "'"}

Matcher = Tuple[int, str, str]


class SelectorError(ValueError):
    """A MATCH that is not a series selector."""


def _unquote(token: str) -> str:
    if token[0] == "`":
        return token[1:-1]
    body, out, index = token[1:-1], [], 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        code = body[index + 1]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            index += 2
        elif code in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[code]
            out.append(chr(int(body[index + 2:index + 2 + size], 16)))
            index += 2 + size
        else:
            raise SelectorError(f"unknown escape \\{code} in {token}")
    return "".join(out)


def _tokens(text: str) -> List[Tuple[str, str]]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if not found:
            raise SelectorError(f"cannot read the selector {text!r} at {text[pos:pos + 20]!r}")
        kind = found.lastgroup
        tokens.append((kind, found.group(kind)))
        pos = found.end()
    return tokens


def parse(text: str) -> List[Matcher]:
    """The (type, name, value) matchers of a series selector; SelectorError if it is not one."""
    tokens = _tokens(text)
    matchers: List[Matcher] = []
    index = 0
    if tokens and tokens[0][0] == "name":
        matchers.append((OPERATORS["="], "__name__", tokens[0][1]))
        index = 1
    if index < len(tokens):
        if tokens[index] != ("punct", "{") or tokens[-1] != ("punct", "}"):
            raise SelectorError(f"expected {{...}} in {text!r}")
        inner = tokens[index + 1:-1]
        while inner:
            if inner[0][0] not in ("name", "string"):
                raise SelectorError(f"expected a label name in {text!r}")
            name = inner[0][1] if inner[0][0] == "name" else _unquote(inner[0][1])
            if len(inner) > 1 and inner[1][0] == "op":
                if len(inner) < 3 or inner[2][0] != "string":
                    raise SelectorError(f"expected a quoted value after {name} in {text!r}")
                matchers.append((OPERATORS[inner[1][1]], name, _unquote(inner[2][1])))
                inner = inner[3:]
            elif inner[0][0] == "string":  # a quoted metric name alone (Prometheus 3)
                matchers.append((OPERATORS["="], "__name__", name))
                inner = inner[1:]
            else:
                raise SelectorError(f"expected an operator after {name} in {text!r}")
            if inner:
                if inner[0] != ("punct", ","):
                    raise SelectorError(f"expected ',' in {text!r}")
                inner = inner[1:]
    if not matchers:
        raise SelectorError(f"empty selector {text!r}")
    if all(_matches_empty(m) for m in matchers):
        raise SelectorError(f"{text!r} matches the empty label set: add a matcher that does "
                            'not, e.g. {__name__=~".+"}')
    return matchers


def _matches_empty(matcher: Matcher) -> bool:
    kind, _, value = matcher
    if kind == OPERATORS["="]:
        return value == ""
    if kind == OPERATORS["!="]:
        return value != ""
    if kind == OPERATORS["=~"]:
        return re.fullmatch(value, "") is not None
    return re.fullmatch(value, "") is None
