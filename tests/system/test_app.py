"""The routes through Chalice's own request handling (what Lambda runs)."""
import base64
import dataclasses

import pytest
from chalice.test import Client

import app as app_module
from chalicelib.protocol import codec
from chalicelib.protocol.prompb import remote_pb2
from harness.remote import HEADERS, read_request, write_request


@pytest.fixture
def client(tmp_path, monkeypatch):
    settings = dataclasses.replace(app_module.SETTINGS, backend="sqlite",
                                   data_dir=str(tmp_path), read_sample_limit=100)
    monkeypatch.setattr(app_module, "SETTINGS", settings)
    with Client(app_module.app, stage_name="local") as client:
        yield client


def post(client, path, message=None, body=None, headers=HEADERS):
    body = codec.encode_message(message) if message is not None else body
    return client.http.post(path, headers=headers, body=body)


def read(client, request) -> remote_pb2.ReadResponse:
    response = post(client, "/read", request)
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert response.headers["Content-Encoding"] == "snappy"
    decoded = remote_pb2.ReadResponse()
    decoded.ParseFromString(codec.decompress(response.body, 1 << 20))
    return decoded


def test_write_then_read_without_accept_header(client):
    assert post(client, "/write", write_request(({"__name__": "up", "job": "a"}, [(1000, 1.0)])
                                                )).status_code == 204
    result = read(client, read_request((0, 2000, [(0, "__name__", "up")])))
    series = result.results[0].timeseries[0]
    assert [(l.name, l.value) for l in series.labels] == [("__name__", "up"), ("job", "a")]
    assert [(s.timestamp, s.value) for s in series.samples] == [(1000, 1.0)]


def test_lambda_event_without_accept_gets_base64_binary_body(client, tmp_path):
    """As API Gateway invokes the function: binary body in, isBase64Encoded out."""
    body = codec.encode_message(read_request((0, 1, [(0, "__name__", "up")])))
    event = {
        "requestContext": {"resourcePath": "/read", "httpMethod": "POST", "stage": "dev"},
        "headers": {"content-type": "application/x-protobuf", "content-encoding": "snappy"},
        "pathParameters": {}, "multiValueQueryStringParameters": None, "stageVariables": {},
        "body": base64.b64encode(body).decode(), "isBase64Encoded": True,
    }
    response = app_module.app(event, None)
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    decoded = remote_pb2.ReadResponse()
    decoded.ParseFromString(codec.decompress(base64.b64decode(response["body"]), 1 << 20))
    assert len(decoded.results) == 1


def test_metadata_only_and_empty_requests_succeed(client):
    request = remote_pb2.WriteRequest()
    request.metadata.add(metric_family_name="up")
    assert post(client, "/write", request).status_code == 204
    assert post(client, "/write", remote_pb2.WriteRequest()).status_code == 204


def test_one_result_per_query_in_request_order(client):
    post(client, "/write", write_request(({"__name__": "a"}, [(1, 1.0)]),
                                         ({"__name__": "b"}, [(1, 2.0)])))
    result = read(client, read_request((0, 5, [(0, "__name__", "b")]),
                                       (0, 5, [(0, "__name__", "missing")]),
                                       (0, 5, [(0, "__name__", "a")])))
    assert [[s.value for ts in r.timeseries for s in ts.samples] for r in result.results] == \
        [[2.0], [], [1.0]]


@pytest.mark.parametrize("labels,message", [
    ({"__name__": "m", "": "x"}, "empty label name"),
    ({"job": "x"}, "without a metric name"),
    ({"__name__": "", "job": "x"}, "without a metric name"),
])
def test_invalid_labels_are_400_with_reason(client, labels, message):
    response = post(client, "/write", write_request((labels, [(1, 1.0)])))
    assert response.status_code == 400
    assert message in response.body.decode()
    assert response.headers["Content-Type"].startswith("text/plain")


def test_duplicate_label_names_are_400(client):
    request = write_request(({"__name__": "m", "a": "1"}, [(1, 1.0)]))
    request.timeseries[0].labels.add(name="a", value="2")
    response = post(client, "/write", request)
    assert response.status_code == 400
    assert "duplicate label name 'a'" in response.body.decode()


def test_bad_write_bodies(client):
    assert post(client, "/write", body=b"garbage").status_code == 400
    assert post(client, "/write", body=b"x", headers={"Content-Type": "application/json"}
                ).status_code == 415
    bomb = bytes([0x80, 0x80, 0x80, 0x80, 0x08]) + b"\x00"
    response = post(client, "/write", body=bomb)
    assert response.status_code == 413
    assert "over the limit" in response.body.decode()


def test_invalid_regex_and_unsupported_regex_are_400(client):
    for pattern, message in [("(", 'invalid regex "(": missing )'),
                             ("(?=a)", 'invalid regex "(?=a)": invalid perl operator: (?=')]:
        response = post(client, "/read", read_request((0, 1, [(2, "job", pattern)])))
        assert response.status_code == 400
        assert message in response.body.decode()


def test_read_sample_limit_gives_clear_error(client):
    post(client, "/write", write_request(({"__name__": "m"}, [(t, 1.0) for t in range(150)])))
    response = post(client, "/read", read_request((0, 1000, [(0, "__name__", "m")])))
    assert response.status_code == 400
    assert "more than 100 samples" in response.body.decode()
    assert len(read(client, read_request((0, 99, [(0, "__name__", "m")]))).results[0]
               .timeseries[0].samples) == 100


def test_the_limit_counts_samples_across_queries(client):
    post(client, "/write", write_request(({"__name__": "m"}, [(t, 1.0) for t in range(60)])))
    query = (0, 1000, [(0, "__name__", "m")])
    assert post(client, "/read", read_request(query, query)).status_code == 400


def test_unexpected_error_is_generic_500_without_details(client, monkeypatch):
    def boom(*args):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(app_module.handlers, "write", boom)
    response = post(client, "/write", write_request())
    assert response.status_code == 500
    assert b"secret internals" not in response.body


def test_get_is_not_allowed(client):
    assert client.http.get("/write").status_code == 405


def test_valid_series_are_stored_when_others_are_refused(client):
    good = [({"__name__": "mixed", "i": str(i)}, [(1, float(i))]) for i in range(10)]
    bad = ({"__name__": "mixed", "": "v\x1b[2J\nforged log line"}, [(1, 9.0), (2, 9.0)])
    response = post(client, "/write", write_request(*good[:5], bad, *good[5:]))
    assert response.status_code == 400
    text = response.body.decode()
    assert text.startswith("2 of 12 samples rejected (10 stored; 1 series refused): "
                           "empty label name in series mixed{"), text
    assert "\\x1b[2J\\nforged" in text and text.rstrip("\n").isprintable(), text
    result = read(client, read_request((0, 5, [(0, "__name__", "mixed")])))
    assert sorted(s.samples[0].value for s in result.results[0].timeseries) == \
        [float(i) for i in range(10)]


def test_a_400_names_at_most_five_refused_series(client):
    bad = [({"job": f"{i}bad"}, [(1, 1.0)]) for i in range(8)]
    text = post(client, "/write", write_request(*bad)).body.decode()
    assert text.startswith("8 of 8 samples rejected (0 stored; 8 series refused): ")
    assert text.count("without a metric name") == 5 and text.endswith("; and 3 more\n")
