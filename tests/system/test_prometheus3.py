"""What a Prometheus 3 client sends and expects, built from the specifications
(Prometheus 3 is not installable here), through the routes, on every backend."""
import struct

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.caches import ClearedWhenFull
from chalicelib.errors import ResponseTooLarge
from chalicelib.model import Series
from chalicelib.protocol import codec, streamed
from chalicelib.protocol import write_v1 as translate
from chalicelib.protocol import write_v2 as translate_v2
from chalicelib.protocol.prompb import remote_pb2, types_pb2, write_v2_pb2
from harness.remote import (HEADERS, V2, V2_HEADERS, WRITTEN, read_request,
                            write_request)
from harness.timestream.write_rules import refuses_dimension_name
from tests.support import ESTIMATE_SLACK, memory_held_after
from tests.support.streamed_reader import as_bits, decode_xor, read_frames

UTF8_LABELS = {"__name__": "http.server.request.duration", "service.name": "api",
               "日本語": "値", "a:b": "c", "time": "t", "job": "classic", "😀": "x\ny",
               "x_y.z": "1"}


class Backend:
    """A store and, for Timestream, the records it sent on the wire."""

    def __init__(self, store, wire=None) -> None:
        self.store, self.wire = store, wire

    def dimension_names(self):
        return {d["Name"] for r in self.wire.records() for d in r.get("Dimensions", [])}


@pytest.fixture(params=["sqlite", "timestream", "influxdb"])
def backend(request, tmp_path):
    if request.param == "influxdb":
        from harness.influxd import fresh_store
        yield Backend(fresh_store(request.getfixturevalue("influx_server")))
        return
    if request.param == "sqlite":
        from chalicelib.storage.sqlite import SQLiteStore
        yield Backend(SQLiteStore(str(tmp_path / "data")))
        return
    from harness.timestream.env import timestream_env
    with timestream_env(magnetic_writes=True) as env:  # the tests write 1970 times
        yield Backend(env.store, env.wire)


@pytest.fixture
def client(backend, monkeypatch):
    monkeypatch.setattr(app_module.storage, "store_for_request",
                        lambda settings, headers, **kwargs: backend.store)
    with Client(app_module.app, stage_name="local") as client:
        yield client


def post(client, path, body, headers):
    return client.http.post(path, headers=headers, body=body)


def write_v1(client, request):
    return post(client, "/write", codec.encode_message(request), HEADERS)


def read(client, request, user_agent=None) -> remote_pb2.ReadResponse:
    headers = dict(HEADERS, **({"User-Agent": user_agent} if user_agent else {}))
    response = post(client, "/read", codec.encode_message(request), headers)
    assert response.status_code == 200, response.body
    decoded = remote_pb2.ReadResponse()
    decoded.ParseFromString(codec.decompress(response.body, 1 << 24))
    return decoded


def labels_of(result):
    return [{l.name: l.value for l in ts.labels} for ts in result.timeseries]


def test_utf8_names_are_stored_and_read_back_unchanged(client, backend):
    assert write_v1(client, write_request((UTF8_LABELS, [(1000, 1.5)]))).status_code == 204
    queries = [[(0, "__name__", "http.server.request.duration")],
               [(0, "service.name", "api"), (0, "__name__", "http.server.request.duration")],
               [(2, "日本語", "値|z"), (0, "a:b", "c")],
               [(2, "__name__", "http\\.server\\..*")]]
    response = read(client, read_request(*[(0, 2000, q) for q in queries]))
    for result in response.results:
        assert labels_of(result) == [UTF8_LABELS]
        assert [(s.timestamp, s.value) for s in result.timeseries[0].samples] == [(1000, 1.5)]
    if backend.wire is not None:
        names = backend.dimension_names()
        assert "job" in names and "__time" in names  # classic names as before
        assert not [n for n in names if refuses_dimension_name(n) or len(n.encode()) > 60]


def test_utf8_name_does_not_collide_with_classic_names(client):
    series = [({"__name__": "m", "a.b": "utf8"}, [(1, 1.0)]),
              ({"__name__": "m", "a_b": "classic"}, [(1, 2.0)]),
              ({"__name__": "m", "__U__a_2e_b": "lookalike"}, [(1, 3.0)])]
    assert write_v1(client, write_request(*series)).status_code == 204
    for labels, samples in series:
        name = next(n for n in labels if n != "__name__")
        [result] = read(client, read_request((0, 10, [(0, name, labels[name])]))).results
        assert labels_of(result) == [labels]


def test_invalid_utf8_in_a_label_name_is_400(client):
    body = bytearray(write_request(({"__name__": "m", "ab": "v"}, [(1, 1.0)])).SerializeToString())
    body[body.index(b"ab")] = 0xFF  # "\xffb": not UTF-8
    response = post(client, "/write", codec.snappy.compress(bytes(body)), HEADERS)
    assert response.status_code == 400
    assert b"UTF-8" in response.body


@pytest.mark.parametrize("user_agent,matches", [
    ("Prometheus/3.0.0", True), ("Prometheus/3.5.0", True), ("Prometheus/2.42.0", False),
    ("Prometheus/2.55.1", False), (None, True)])
def test_dot_matches_newline_as_the_asking_prometheus_does(client, user_agent, matches):
    write_v1(client, write_request(({"__name__": "m", "path": "a\nb"}, [(1, 1.0)]),
                                   ({"__name__": "m", "path": "ab"}, [(1, 2.0)])))
    expected = [{"__name__": "m", "path": "a\nb"}] if matches else []
    result = read(client, read_request((0, 10, [(2, "path", "a.b")])), user_agent).results[0]
    assert labels_of(result) == expected
    negated = read(client, read_request((0, 10, [(3, "path", "a.b"), (0, "__name__", "m")])),
                   user_agent).results[0]
    assert labels_of(negated) == ([{"__name__": "m", "path": "ab"}] if matches else
                                  [{"__name__": "m", "path": "a\nb"}, {"__name__": "m", "path": "ab"}])


# --- remote write 2.0, requests built from the specification -------------------------

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def write_v2(client, v2: V2):
    return post(client, "/write", v2.body(), V2_HEADERS)


def samples_of(result, shift=0):
    return [[(s.timestamp - shift, struct.pack("<d", s.value)) for s in ts.samples]
            for ts in result.timeseries]


def test_rw2_utf8_series_is_the_same_series_as_rw1(client):
    """Written with 1.0 and with 2.0 (other timestamps), it reads back as one series."""
    assert write_v1(client, write_request((UTF8_LABELS, [(1000, 1.0), (2000, 2.0)]))
                    ).status_code == 204
    response = write_v2(client, V2().series(UTF8_LABELS, [(3000, 3.0), (4000, STALE_NAN)]))
    assert response.status_code == 204, response.body
    assert [response.headers[h] for h in WRITTEN] == ["2", "0", "0"]
    [result] = read(client, read_request((0, 5000, [(0, "service.name", "api")]))).results
    assert labels_of(result) == [UTF8_LABELS]
    assert [t for t, _ in samples_of(result)[0]] == [1000, 2000, 3000, 4000]


def mixed_payloads(base: int):
    """The same data as a 1.0 and a 2.0 request: interned labels, NaN and stale
    markers, a native histogram series, exemplars and one series that cannot be read
    (1.0: no metric name; 2.0: a label reference outside the symbol table)."""
    up = {"__name__": "up", "job": "api", "instance": "a:1"}
    rate = {"__name__": "http.requests", "job": "api", "instance": "a:1", "code": "200"}
    floats = [(base, 1.0), (base + 1, float("nan")), (base + 2, STALE_NAN),
              (base + 3, float("inf")), (base + 4, -0.0)]
    v1 = write_request((up, floats), (rate, [(base, 5.0), (base + 1, 6.0)]),
                       ({"job": "no name"}, [(base, 1.0)]))
    v1.timeseries.add().labels.add(name="__name__", value="latency")
    v1.timeseries[-1].histograms.add(timestamp=base, count_int=3, sum=1.5)
    v2 = V2().series(up, floats, exemplars=[(base, 1.0)], help_text="up?", unit="")
    v2.series(rate, [(base, 5.0), (base + 1, 6.0)])
    v2.series({"__name__": "latency"}, histograms=[base])
    v2.series({}, [(base, 1.0)], refs=[v2.ref("__name__"), 999])
    return v1, v2


def test_rw2_payload_stores_what_the_rw1_payload_stores(client):
    v1, _ = mixed_payloads(1000)
    _, v2 = mixed_payloads(10_000)
    assert write_v1(client, v1).status_code == 400  # the series without a metric name
    response = write_v2(client, v2)
    assert response.status_code == 400
    text = response.body.decode()
    assert "1 of 9 samples rejected (8 stored; 1 series refused)" in text
    assert "label reference 999 is outside the symbol table" in text
    assert "exemplar" not in text  # not kept, counted: the Exemplars-Written header says 0
    assert [response.headers[h] for h in WRITTEN] == ["7", "1", "0"]
    matchers = [(2, "__name__", ".+")]
    old = read(client, read_request((0, 9999, matchers))).results[0]
    new = read(client, read_request((10_000, 19_999, matchers))).results[0]
    assert labels_of(new) == labels_of(old) and len(labels_of(new)) == 3
    assert samples_of(new, shift=9000) == samples_of(old)
    [old_latency] = [ts for ts in old.timeseries if ts.histograms]
    [new_latency] = [ts for ts in new.timeseries if ts.histograms]
    assert old_latency.histograms[0].timestamp + 9000 == new_latency.histograms[0].timestamp
    new_latency.histograms[0].timestamp -= 9000
    assert new_latency == old_latency


def test_rw2_translation_equals_rw1_translation():
    v1, v2 = mixed_payloads(1000)
    one = translate.series_from_write_request(
        codec.decode_write_request(codec.encode_message(v1), HEADERS, 1 << 20))
    two = translate_v2.series_from_request(codec.decode_write_request_v2(v2.body(), 1 << 20))
    assert [(s.labels, list(s.timestamps), [struct.pack("<d", v) for v in s.values])
            for s in two.series] == \
        [(s.labels, list(s.timestamps), [struct.pack("<d", v) for v in s.values])
         for s in one.series]
    assert [s.histograms for s in two.series] == [s.histograms for s in one.series]
    assert [len(s.histograms) for s in two.series] == [0, 0, 1]
    assert (two.exemplars, two.metadata, one.exemplars, one.metadata) == (1, 4, 0, 0)
    assert len(two.refused) == len(one.refused) == 1


def test_rw2_label_cache_is_bounded_in_bytes_and_refills_after_emptying(monkeypatch):
    monkeypatch.setattr(translate_v2, "_LABELS", ClearedWhenFull(2 << 20))  # entries <= 2 KiB
    sizes = []
    for batch in range(4):  # 4 x 500 series of ~1 100 bytes (estimated): emptied once
        v2 = V2()
        for i in range(500):
            v2.series({"__name__": f"m{batch}-{i}", "job": "j", "path": f"/{i:0200}"},
                      [(i, float(i))])
        decoded = translate_v2.series_from_request(v2.request).series
        assert [(s.labels, list(s.timestamps)) for s in decoded] == [
            ((("__name__", f"m{batch}-{i}"), ("job", "j"), ("path", f"/{i:0200}")), [i])
            for i in range(500)]
        sizes.append(len(translate_v2._LABELS))
        assert 0 < translate_v2._LABELS.bytes <= 2 << 20
    assert sizes[:3] == [500, 1000, 1500] and 0 < sizes[3] < 500


@pytest.mark.parametrize("labels,value", [
    (1, "x"), (20, ""), (5, "x" * 200), (3, "x" * 3000),  # ASCII, short to long
    (5, "é" * 5), (5, "€" * 5), (5, "\U0001f600" * 5), (3, "\U0001f600" * 1000),
    (3, "x" * 3000 + "{i}"),  # one symbol, the value of three labels: held once
])
def test_rw2_label_cache_bytes_are_the_memory_it_holds_rounded_up(monkeypatch, labels, value):
    """What the cache's bound counts is at least what it really holds (and not far more)."""
    monkeypatch.setattr(translate_v2, "_LABELS",
                        ClearedWhenFull(translate_v2.LABELS_CACHE_MAX_BYTES))
    shared = "{i}" in value
    requests = [V2().series({"__name__": "metric", **{
        f"label{j}": value.format(i=i) if shared else f"{value}{i}-{j}" for j in range(labels)}},
        [(1, 1.0)]).request for i in range(500)]
    def work():
        for request in requests:
            translate_v2.series_from_request(request)

    held = memory_held_after(work)
    assert held <= translate_v2._LABELS.bytes <= ESTIMATE_SLACK * held


@pytest.mark.parametrize("refs,message", [
    ([1, 2, 3], "3 label references, not name/value pairs"),
    ([1, 50], "label reference 50 is outside the symbol table (3 symbols)"),
    ([1, 3], "label reference 3 is outside the symbol table (3 symbols)"),  # the first past it
    ([2**32 - 1, 1], "label reference 4294967295 is outside"),
])
def test_bad_symbol_references_are_400_and_the_rest_is_stored(client, refs, message):
    v2 = V2().series({"__name__": "good"}, [(1, 1.0)])  # symbols: "", "__name__", "good"
    v2.request.timeseries.add(labels_refs=refs).samples.add(timestamp=1, value=2.0)
    response = write_v2(client, v2)
    assert response.status_code == 400 and message in response.body.decode()
    assert response.headers[WRITTEN[0]] == "1"
    [result] = read(client, read_request((0, 10, [(0, "__name__", "good")]))).results
    assert len(result.timeseries) == 1


def test_series_after_a_refused_series_are_stored(client):
    v2 = V2().series({}, [(1, 1.0)], refs=[1, 99])  # refused: reference outside the table
    v2.series({"__name__": "after"}, [(1, 1.0)])
    response = write_v2(client, v2)
    assert response.status_code == 400 and "label reference 99" in response.body.decode()
    assert response.headers[WRITTEN[0]] == "1"
    [result] = read(client, read_request((0, 10, [(0, "__name__", "after")]))).results
    assert len(result.timeseries) == 1


def test_bad_metadata_reference_is_400(client):
    v2 = V2().series({"__name__": "m"}, [(1, 1.0)])
    v2.request.timeseries[0].metadata.unit_ref = 77
    response = write_v2(client, v2)
    assert response.status_code == 400
    assert "metadata reference 77 is outside the symbol table" in response.body.decode()
    assert response.headers[WRITTEN[0]] == "0"


def test_rw2_metadata_only_and_empty_requests_are_204_with_headers(client):
    for v2 in (V2(), V2().series({"__name__": "m"})):
        response = write_v2(client, v2)
        assert response.status_code == 204, response.body
        assert [response.headers[h] for h in WRITTEN] == ["0", "0", "0"]


def test_rw2_series_after_a_metadata_only_series_are_stored(client):
    v2 = V2().series({"__name__": "described"}, help_text="no samples yet")
    v2.series({"__name__": "later"}, [(1, 1.0)], exemplars=[(1, 1.0)])
    v2.series({"__name__": "last"}, [(2, 2.0)])
    response = write_v2(client, v2)
    assert response.status_code == 204  # the exemplar is counted, not kept: the header says 0
    assert [response.headers[h] for h in WRITTEN] == ["2", "0", "0"]
    [result] = read(client, read_request((0, 10, [(2, "__name__", "later|last")]))).results
    assert sorted(labels["__name__"] for labels in labels_of(result)) == ["last", "later"]


def test_rw2_body_read_as_rw1_would_be_empty_so_the_type_must_be_negotiated(client):
    """The reserved fields make a 2.0 body parse as an empty 1.0 request: only the
    Content-Type tells them apart, and 1.0 answers carry no Written headers."""
    v2 = V2().series({"__name__": "m"}, [(1, 1.0)])
    response = post(client, "/write", v2.body(), HEADERS)
    assert response.status_code == 204 and WRITTEN[0] not in response.headers
    assert read(client, read_request((0, 10, [(0, "__name__", "m")]))).results[0] \
        .timeseries == []


def test_unknown_write_message_is_415_listing_supported_types(client):
    headers = dict(V2_HEADERS, **{"Content-Type": "application/x-protobuf;proto=x.y.Request"})
    response = post(client, "/write", V2().body(), headers)
    assert response.status_code == 415
    assert "proto=io.prometheus.write.v2.Request" in response.body.decode()


def test_invalid_protobuf_v2_body_is_400(client):
    response = post(client, "/write", codec.snappy.compress(b"\x22\x05ab"), V2_HEADERS)
    assert response.status_code == 400
    assert "io.prometheus.write.v2.Request" in response.body.decode()


# --- streamed remote read (STREAMED_XOR_CHUNKS), as Prometheus >= 2.55 asks for it --------

def read_streamed(client, request, accepted=(1, 0)):
    """The frames of a streamed answer, checked with the test's own reader (CRC, lengths,
    chunks), merged per query and series: {query_index: [(labels, [(t, bits)])]}."""
    request.accepted_response_types.extend(accepted)
    response = post(client, "/read", codec.encode_message(request),
                    dict(HEADERS, **{"User-Agent": "Prometheus/3.5.0"}))
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == \
        "application/x-streamed-protobuf; proto=prometheus.ChunkedReadResponse"
    assert "Content-Encoding" not in response.headers
    answers = {}
    for frame in read_frames(response.body):
        [series] = frame.chunked_series
        labels = {l.name: l.value for l in series.labels}
        found = answers.setdefault(frame.query_index, [])
        if not found or found[-1][0] != labels:
            found.append((labels, []))
        for chunk in series.chunks:
            samples = decode_xor(chunk.data)
            assert chunk.type == 1 and 1 <= len(samples) <= 120
            assert (chunk.min_time_ms, chunk.max_time_ms) == (samples[0][0], samples[-1][0])
            found[-1][1].extend(samples)
    return answers


def as_samples_answer(response: remote_pb2.ReadResponse):
    return {index: [({l.name: l.value for l in ts.labels},
                     [(s.timestamp, as_bits(s.value)) for s in ts.samples])
                    for ts in result.timeseries]
            for index, result in enumerate(response.results) if result.timeseries}


def test_streamed_read_decodes_to_exactly_the_samples_answer(client):
    many = [(t, float(t % 13) if t % 50 else STALE_NAN) for t in range(0, 300_000, 1000)]
    write_v1(client, write_request(
        (UTF8_LABELS, [(1000, 1.5), (2000, float("nan")), (3000, STALE_NAN)]),
        ({"__name__": "many", "job": "a"}, many),
        ({"__name__": "many", "job": "b"}, [(5, -0.0), (6, float("inf"))])))
    request = read_request((0, 400_000, [(0, "__name__", "many")]),
                           (0, 10, [(0, "__name__", "missing")]),
                           (0, 400_000, [(2, "service.name", "a.i")]),
                           (100_000, 200_000, [(0, "job", "a")]))
    samples = as_samples_answer(read(client, request, "Prometheus/3.5.0"))
    frames = read_streamed(client, request)
    assert frames == samples
    assert set(frames) == {0, 2, 3} and len(frames[0][0][1]) == 300


def test_streamed_read_as_api_gateway_invokes_the_function(client):
    """Lambda proxy event without an Accept header: the frames come back base64-encoded."""
    import base64
    write_v1(client, write_request(({"__name__": "up"}, [(1, 1.0)])))
    request = read_request((0, 10, [(0, "__name__", "up")]))
    request.accepted_response_types.append(1)
    event = {
        "requestContext": {"resourcePath": "/read", "httpMethod": "POST", "stage": "dev"},
        "headers": {"content-type": "application/x-protobuf", "content-encoding": "snappy",
                    "user-agent": "Prometheus/3.5.0"},
        "pathParameters": {}, "multiValueQueryStringParameters": None, "stageVariables": {},
        "body": base64.b64encode(codec.encode_message(request)).decode(),
        "isBase64Encoded": True,
    }
    response = app_module.app(event, None)
    assert response["statusCode"] == 200 and response["isBase64Encoded"] is True
    [frame] = read_frames(base64.b64decode(response["body"]))
    assert decode_xor(frame.chunked_series[0].chunks[0].data) == [(1, as_bits(1.0))]


@pytest.mark.parametrize("accepted,streamed", [
    ((), False), ((0,), False), ((0, 1), False), ((1,), True), ((1, 0), True),
    ((7, 1), True), ((7, 0), False)])
def test_response_type_in_the_clients_order(client, accepted, streamed):
    request = read_request((0, 10, [(0, "__name__", "up")]))
    request.accepted_response_types.extend(accepted)
    response = post(client, "/read", codec.encode_message(request), HEADERS)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith(
        "application/x-streamed-protobuf" if streamed else "application/x-protobuf")


def test_only_unknown_response_types_are_400(client):
    request = read_request((0, 10, [(0, "__name__", "up")]))
    request.accepted_response_types.append(7)
    response = post(client, "/read", codec.encode_message(request), HEADERS)
    assert response.status_code == 400
    assert "[7]" in response.body.decode()


def test_streamed_read_keeps_the_sample_limit(client, monkeypatch):
    import dataclasses
    monkeypatch.setattr(app_module, "SETTINGS",
                        dataclasses.replace(app_module.SETTINGS, read_sample_limit=100))
    write_v1(client, write_request(({"__name__": "m"}, [(t, 1.0) for t in range(150)])))
    request = read_request((0, 1000, [(0, "__name__", "m")]))
    request.accepted_response_types.append(1)
    response = post(client, "/read", codec.encode_message(request), HEADERS)
    assert response.status_code == 400 and b"more than 100 samples" in response.body


def test_frames_are_capped_and_a_series_split_over_them():
    labels = (("__name__", "m"), ("job", "x" * 50))
    timestamps = list(range(0, 5000))
    series = Series(labels, timestamps, [float(t * 7 % 11) for t in timestamps])
    frames = list(streamed.series_frames(3, series, max_frame_bytes=2000))
    parsed = read_frames(b"".join(frames))
    assert len(parsed) > 3
    for frame, raw in zip(parsed, frames):
        assert frame.query_index == 3
        assert [(l.name, l.value) for l in frame.chunked_series[0].labels] == list(labels)
        # a frame passes the cap by at most one chunk, as in Prometheus
        biggest_chunk = max(c.ByteSize() for c in frame.chunked_series[0].chunks)
        assert len(raw) <= 2000 + biggest_chunk + 16
    assert [s for f in parsed for c in f.chunked_series[0].chunks
            for s in decode_xor(c.data)] == [(t, as_bits(v)) for t, v in
                                             zip(timestamps, series.values)]


def test_frames_are_built_one_query_at_a_time():
    reads = []

    def read_query(query):
        reads.append(query)
        return [Series((("__name__", f"m{query}"),), [1], [1.0])]
    frames = streamed.frames([0, 1, 2], read_query)
    next(frames)
    assert reads == [0]  # the second query is read only when its frames are due
    assert len(list(frames)) == 2 and reads == [0, 1, 2]


def test_streamed_read_keeps_the_byte_limit(client, monkeypatch):
    import dataclasses
    monkeypatch.setattr(app_module, "SETTINGS",
                        dataclasses.replace(app_module.SETTINGS, read_byte_limit=5000))
    write_v1(client, write_request(({"__name__": "m"}, [(t, 1.0) for t in range(1000)])))
    request = read_request((0, 1000, [(0, "__name__", "m")]))
    request.accepted_response_types.append(1)
    response = post(client, "/read", codec.encode_message(request), HEADERS)
    assert response.status_code == 400 and b"READ_BYTE_LIMIT" in response.body


def test_joined_frames_respect_the_response_byte_limit():
    with pytest.raises(ResponseTooLarge, match="MAX_RESPONSE_BYTES"):
        streamed.join(iter([b"x" * 60, b"y" * 60]), 100)
    assert streamed.join(iter([b"x" * 60, b"y" * 40]), 100) == b"x" * 60 + b"y" * 40


def test_a_frame_is_cut_when_its_labels_and_chunks_reach_the_cap():
    """As Prometheus's StreamChunkedReadResponses: chunks are added while the frame's
    bytes left (cap minus labels minus chunks so far) stay positive."""
    labels = (("__name__", "m"), ("job", "x"))
    timestamps = list(range(240))  # two chunks of 120
    series = Series(labels, timestamps, [1.0] * 240)
    [whole] = read_frames(b"".join(streamed.series_frames(0, series, 1 << 20)))
    label_bytes = sum(label.ByteSize() for label in whole.chunked_series[0].labels)
    first = whole.chunked_series[0].chunks[0].ByteSize()
    for cap, chunks_per_frame in ((label_bytes + first, [1, 1]),
                                  (label_bytes + first + 1, [2])):
        parsed = read_frames(b"".join(streamed.series_frames(0, series, cap)))
        assert [len(f.chunked_series[0].chunks) for f in parsed] == chunks_per_frame


def test_each_chunk_counts_its_own_size_towards_the_cap():
    """A small chunk then a big one: the frame is full after the big one."""
    import random
    rng = random.Random(3)
    values = [1.0] * 120 + [rng.random() for _ in range(120)] + [1.0] * 120
    series = Series((("__name__", "m"),), list(range(360)), values)
    [whole] = read_frames(b"".join(streamed.series_frames(0, series, 1 << 20)))
    label_bytes = sum(label.ByteSize() for label in whole.chunked_series[0].labels)
    small, big, _ = (chunk.ByteSize() for chunk in whole.chunked_series[0].chunks)
    assert big > 2 * small
    parsed = read_frames(b"".join(streamed.series_frames(0, series, label_bytes + small + big)))
    assert [len(f.chunked_series[0].chunks) for f in parsed] == [2, 1]


def test_frames_are_cut_at_prometheus_default_of_1_mib():
    """--storage.remote.read-max-bytes-in-frame defaults to 1048576 bytes."""
    def frame_sizes(pad: int):
        labels = (("__name__", "m"), ("pad", "x" * pad))
        series = Series(labels, list(range(240)), [1.0] * 240)  # two equal chunks
        parsed = read_frames(b"".join(streamed.frames([0], lambda query: [series])))
        return [len(f.chunked_series[0].chunks) for f in parsed], parsed

    _, [probe] = frame_sizes(1000)
    chunk = probe.chunked_series[0].chunks[0].ByteSize()
    pad = 1_048_576 - chunk
    while sum(label.ByteSize() for label in probe.chunked_series[0].labels[:1]) + \
            types_pb2.Label(name="pad", value="x" * pad).ByteSize() > 1_048_576 - chunk:
        pad -= 1  # labels + one chunk exactly fill the frame
    assert frame_sizes(pad)[0] == [1, 1]
    assert frame_sizes(pad - 1)[0] == [2]


def native_histograms_v2(base: int) -> V2:
    """Remote write 2.0 as Prometheus 3 sends native histograms: integer and float ones,
    custom buckets (NHCB), a counter reset and a stale marker, with exemplars."""
    v2 = V2()
    v2.series({"__name__": "rpc_seconds", "job": "api"}, exemplars=[(base, 0.2)])
    ts = v2.request.timeseries[-1]
    for i in range(3):
        h = ts.histograms.add(timestamp=base + i, count_int=4 + i, sum=1.5 * i, schema=2,
                              zero_threshold=1e-3, zero_count_int=1,
                              positive_deltas=[1, 1 + i], negative_deltas=[1],
                              reset_hint=write_v2_pb2.Histogram.RESET_HINT_YES if i == 2 else 0)
        h.positive_spans.add(offset=-1, length=1)
        h.positive_spans.add(offset=2, length=1)
        h.negative_spans.add(offset=0, length=1)
    ts.histograms.add(timestamp=base + 3, sum=STALE_NAN)
    v2.series({"__name__": "queue_depth", "job": "api"})
    h = v2.request.timeseries[-1].histograms.add(
        timestamp=base, count_float=2.5, sum=4.0, schema=-53, custom_values=[1.0, 10.0],
        positive_counts=[2.0, 0.5], reset_hint=write_v2_pb2.Histogram.RESET_HINT_GAUGE)
    h.positive_spans.add(offset=0, length=2)
    return v2


def test_prometheus_3_native_histograms_round_trip_through_samples_reads(client):
    v2 = native_histograms_v2(1000)
    response = write_v2(client, v2)
    assert response.status_code == 204, response.body
    assert [response.headers[h] for h in WRITTEN] == ["0", "5", "0"]
    answer = read(client, read_request((0, 5000, [(2, "__name__", "rpc_seconds|queue_depth")])),
                  user_agent="Prometheus/3.9.1")
    [result] = answer.results
    got = {labels["__name__"]: ts.histograms for labels, ts in
           zip(labels_of(result), result.timeseries)}
    sent = {v2.request.symbols[ts.labels_refs[1]]: ts.histograms
            for ts in v2.request.timeseries}
    assert set(got) == set(sent) == {"rpc_seconds", "queue_depth"}
    for name, histograms in sent.items():
        assert exactly(got[name]) == exactly(histograms), name
    assert as_bits(got["rpc_seconds"][-1].sum) == as_bits(STALE_NAN)


def exactly(histograms):
    """Histogram messages (either protocol) comparable field by field, floats by their bits."""
    from chalicelib.protocol.histograms import from_message
    from chalicelib.storage.histogram_text import dumps
    return [(h.timestamp, dumps(from_message(h))) for h in histograms]
