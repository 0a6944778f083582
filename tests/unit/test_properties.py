"""Property tests (hypothesis): matchers mean what RE2 means under Prometheus's own
anchoring, and the wire codec round-trips whatever a client may send."""
import math
import struct

import re2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.errors import BadRequest
from chalicelib.matchers import Matcher, MatchType
from chalicelib.protocol import codec
from chalicelib.protocol import write_v1 as translate
from chalicelib.protocol.prompb import remote_pb2
from harness.remote import HEADERS

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Regex pieces Prometheus users write, and the characters that make them interesting.
ALPHABET = "ab\n.\u00e9\u0130\u0663 K\u212a"
atoms = st.sampled_from(["a", "b", ".", "\\d", "\\w", "\\s", "[ab]", "[^a]", "\\n", "\u00e9",
                         "[[:alpha:]]", "\\pL", "\\x{e9}", "(?i:k)", "\\Qa.\\E", "", "\\b", "^",
                         "$", "\\z"])


def combine(children):
    return st.one_of(
        st.tuples(children, children).map("".join),
        st.tuples(children, children).map("|".join),
        st.tuples(children, st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "*?", "{,2}"]))
        .map(lambda t: f"(?:{t[0]}){t[1]}"),
        children.map(lambda c: f"({c})"),
        st.tuples(st.sampled_from(["(?i)", "(?s)", "(?U)", "(?-s)"]), children).map("".join),
    )


patterns = st.recursive(atoms, combine, max_leaves=8)
values = st.text(alphabet=ALPHABET, max_size=6)


def prometheus_says(pattern: str, value: str, dot_all: bool) -> bool:
    """What Prometheus evaluates: the pattern inside ^(?:…)$ (2.x) or ^(?s:…)$ (3.x)."""
    options = re2.Options()
    options.log_errors = False
    wrapped = ("^(?s:" if dot_all else "^(?:") + pattern + ")$"
    return re2.search(wrapped, value, options) is not None


@SETTINGS
@given(patterns, values, st.booleans())
def test_regex_matchers_agree_with_re2_as_prometheus_anchors_it(pattern, value, dot_all):
    try:
        matcher = Matcher.of(MatchType.RE, "k", pattern, dot_all)
    except BadRequest:
        return  # refusals are tested on their own
    expected = prometheus_says(pattern, value, dot_all)
    assert matcher.matches_value(value) is expected
    assert Matcher.of(MatchType.NRE, "k", pattern, dot_all).matches_value(value) is not expected
    assert matcher.matches({}) is prometheus_says(pattern, "", dot_all)  # absent label == ""


@SETTINGS
@given(st.text(max_size=8), values)
def test_equality_matchers_compare_exact_text(expected, value):
    assert Matcher.of(MatchType.EQ, "k", expected).matches_value(value) is (value == expected)
    assert Matcher.of(MatchType.NEQ, "k", expected).matches_value(value) is (value != expected)


@SETTINGS
@given(st.text(max_size=30))
def test_any_text_either_compiles_or_is_a_bad_request_never_a_crash(pattern):
    try:
        Matcher.of(MatchType.RE, "k", pattern)
    except BadRequest as exc:
        assert str(exc).startswith("invalid regex") and str(exc).isprintable()


names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True)
float_bits = st.integers(min_value=0, max_value=(1 << 64) - 1)
series = st.tuples(
    st.dictionaries(names.filter(lambda n: n != "__name__"), st.text(min_size=1, max_size=10),
                    max_size=4),
    names, st.lists(st.tuples(st.integers(-(1 << 62), 1 << 62), float_bits), min_size=1,
                    max_size=5, unique_by=lambda s: s[0]))


def as_float(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def bits_of(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


@SETTINGS
@given(st.lists(series, max_size=5))
def test_write_requests_round_trip_through_the_codec_and_translation(generated):
    request = remote_pb2.WriteRequest()
    for labels, name, samples in generated:
        ts = request.timeseries.add()
        for label, value in sorted({**labels, "__name__": name}.items()):
            ts.labels.add(name=label, value=value)
        for timestamp, bits in samples:
            ts.samples.add(timestamp=timestamp, value=as_float(bits))
    decoded = codec.decode_write_request(codec.encode_message(request), HEADERS, 1 << 24)
    result = translate.series_from_write_request(decoded)
    assert result.refused == []
    assert [(dict(s.labels), list(s.timestamps), [bits_of(v) for v in s.values])
            for s in result.series] == \
        [({**labels, "__name__": name}, [t for t, _ in samples], [b for _, b in samples])
         for labels, name, samples in generated]


@SETTINGS
@given(st.lists(series, max_size=4))
def test_read_responses_round_trip(generated):
    result = remote_pb2.QueryResult()
    for labels, name, samples in generated:
        ts = result.timeseries.add()
        for label, value in sorted({**labels, "__name__": name}.items()):
            ts.labels.add(name=label, value=value)
        for timestamp, bits in samples:
            ts.samples.add(timestamp=timestamp, value=as_float(bits))
    response = remote_pb2.ReadResponse(results=[result])
    body = codec.encode_read_response(response)
    again = remote_pb2.ReadResponse()
    again.ParseFromString(codec.decompress(body, 1 << 24))
    assert again.SerializeToString() == response.SerializeToString()
    for ts in again.results[0].timeseries:
        assert all(isinstance(s.value, float) and (math.isnan(s.value) or True) for s in ts.samples)
