"""What the asking client means by a regex, decided from its ``User-Agent``.

Prometheus 3.0 changed regex semantics: ``.`` matches every character, newline
included; Prometheus 2.x (and 1.x) exclude ``\\n``. A remote-read request says
which Prometheus sent it in its ``User-Agent`` (``Prometheus/3.1.0``). Clients
that are not Prometheus, or do not say, get the current Prometheus's semantics
(3.x: ``.`` matches a newline).
"""
import re
from typing import Mapping, Optional

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
