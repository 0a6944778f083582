"""Remote read's queries: ranges and matchers, in the client's regex dialect (from its
User-Agent)."""
import pytest

from chalicelib.errors import BadRequest
from chalicelib.protocol import read as dialect
from chalicelib.protocol import read as remote_read
from harness.remote import read_request


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


def test_read_queries_need_a_matcher_and_end_not_before_start():
    ok = read_request((5, 5, [(0, "__name__", "up")]), (1, 9, [(0, "__name__", "up")]))
    assert [(q.start_ms, q.end_ms) for q in remote_read.queries_from_read_request(ok, False)] == \
        [(5, 5), (1, 9)]
    backwards = read_request((1, 9, [(0, "__name__", "up")]), (10, 9, [(0, "__name__", "up")]))
    with pytest.raises(BadRequest, match="^query 1: end 9 is before start 10$"):
        remote_read.queries_from_read_request(backwards, False)
    no_matcher = read_request((1, 9, [(0, "__name__", "up")]), (1, 9, []))
    with pytest.raises(BadRequest, match="^query 1: at least one matcher is required$"):
        remote_read.queries_from_read_request(no_matcher, False)


@pytest.mark.parametrize("dot_all", [True, False])
def test_read_matchers_use_the_clients_regex_dialect(dot_all):
    request = read_request((1, 9, [(0, "__name__", "up"), (2, "path", "a.b")]))
    [query] = remote_read.queries_from_read_request(request, dot_all)
    assert [m.matches_value("a\nb") for m in query.matchers] == [False, dot_all]
    assert [m.matches_value("axb") for m in query.matchers] == [False, True]
