"""Remote read: the request's queries, the client's regex dialect, and series encoded
for the answer (the answer's framing is ``codec``'s and ``streamed``'s).

What the asking client means by a regex is decided from its ``User-Agent``.
Prometheus 3.0 changed regex semantics: ``.`` matches every character, newline
included; Prometheus 2.x (and 1.x) exclude ``\\n``. A remote-read request says
which Prometheus sent it in its ``User-Agent`` (``Prometheus/3.1.0``). Clients
that are not Prometheus, or do not say, get the current Prometheus's semantics
(3.x: ``.`` matches a newline).
"""
import re
from typing import List, Mapping, Optional

from chalicelib.errors import BadRequest
from chalicelib.matchers import Matcher, RegexBudget
from chalicelib.model import Query, Series
from chalicelib.protocol.histograms import to_message
from chalicelib.protocol.prompb import remote_pb2, types_pb2

_PROMETHEUS = re.compile(r"Prometheus/(\d+)\.", re.IGNORECASE)


def prometheus_major(headers: Mapping[str, str]) -> Optional[int]:
    """The Prometheus major version in the request's User-Agent; None if it names none."""
    agent = next((v for k, v in headers.items() if k.lower() == "user-agent"), "")
    match = _PROMETHEUS.match(agent)
    return int(match.group(1)) if match else None


def dot_matches_newline(headers: Mapping[str, str]) -> bool:
    """Whether ``.`` in the request's regexes matches ``\\n``: Prometheus >= 3, and
    clients that are not Prometheus (they get the current Prometheus's semantics)."""
    major = prometheus_major(headers)
    return major is None or major >= 3


def queries_from_read_request(request: remote_pb2.ReadRequest, dot_all: bool,
                              budget: Optional[RegexBudget] = None) -> List[Query]:
    """The request's queries as model objects (BadRequest on a bad matcher or range, or
    regexes over the request's ``budget``).

    ``dot_all``: the client's regex dialect (``.`` matches ``\\n``, Prometheus 3)."""
    queries = []
    for index, query in enumerate(request.queries):
        if query.end_timestamp_ms < query.start_timestamp_ms:
            raise BadRequest(f"query {index}: end {query.end_timestamp_ms} is before "
                             f"start {query.start_timestamp_ms}")
        matchers = tuple(Matcher.of(m.type, m.name, m.value, dot_all, budget)
                         for m in query.matchers)
        if not matchers:
            raise BadRequest(f"query {index}: at least one matcher is required")
        queries.append(Query(query.start_timestamp_ms, query.end_timestamp_ms, matchers))
    return queries


def encoded_series(series: Series) -> bytes:
    """``series`` as an encoded ``prometheus.TimeSeries`` (for a response built one
    series at a time, see fastpath.proto)."""
    message = types_pb2.TimeSeries()
    _fill(message, series)
    return message.SerializeToString()


def _fill(ts: types_pb2.TimeSeries, item: Series) -> None:
    add_label = ts.labels.add
    for name, value in item.labels:
        add_label(name=name, value=value)
    add_sample = ts.samples.add  # faster than building Sample objects and extending
    for timestamp, value in zip(item.timestamps, item.values):
        add_sample(timestamp=timestamp, value=value)
    if item.histograms:
        ts.histograms.extend(map(to_message, item.histograms))
