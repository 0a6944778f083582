"""The client's regex dialect, from its User-Agent."""
import pytest

from chalicelib.protocol import read as dialect
@pytest.mark.parametrize("agent,dot_all", [
    ("Prometheus/3.0.0", True),
    ("Prometheus/3.5.0-rc.1", True),
    ("Prometheus/10.1.0", True),
    ("Prometheus/2.42.0", False),
    ("Prometheus/2.55.1", False),
    ("Prometheus/1.8.2", False),
    ("prometheus/2.53.0", False),
    ("Grafana/11.0", True),      # not Prometheus: the current Prometheus's semantics
    ("", True),
    ("Prometheus", True),
    ("NotPrometheus/2.1", True),
])
def test_dot_matches_newline_from_user_agent(agent, dot_all):
    assert dialect.dot_matches_newline({"User-Agent": agent}) is dot_all


def test_header_name_is_case_insensitive_and_absent_means_default():
    assert dialect.dot_matches_newline({"user-agent": "Prometheus/2.42.0"}) is False
    assert dialect.dot_matches_newline({}) is True


def test_other_headers_around_the_user_agent_do_not_count():
    """API Gateway and proxies add headers (sorting before and after ``user-agent``)."""
    headers = {"Accept": "*/*", "X-Amzn-Trace-Id": "Root=1-5759e988",
               "Via": "Prometheus/3.0.0 proxy", "User-Agent": "Prometheus/2.42.0"}
    assert dialect.dot_matches_newline(headers) is False
    assert dialect.dot_matches_newline({"Via": "Prometheus/2.42.0"}) is True
