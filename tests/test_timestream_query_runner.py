"""Paging and result decoding of the Timestream query client (botocore Stubber)."""
import boto3
import pytest
from botocore.stub import Stubber

from chalicelib.errors import BackendUnavailable
from chalicelib.storage import timestream
from chalicelib.storage.timestream import Deadline
from chalicelib.storage.timestream_query import TimestreamQueryRunner

COLUMNS = [{"Name": "measure_name", "Type": {"ScalarType": "VARCHAR"}},
           {"Name": "ts_ms", "Type": {"ScalarType": "BIGINT"}},
           {"Name": "job", "Type": {"ScalarType": "VARCHAR"}}]


def page(rows, token=None):
    response = {"QueryId": "q", "ColumnInfo": COLUMNS,
                "Rows": [{"Data": [{"NullValue": True} if v is None else {"ScalarValue": v}
                                   for v in row]} for row in rows]}
    if token:
        response["NextToken"] = token
    return response


@pytest.fixture
def client():
    return boto3.client("timestream-query", region_name="us-east-1",
                        endpoint_url="http://127.0.0.1:1")


def test_follows_next_token_through_empty_pages(client):
    with Stubber(client) as stub:
        stub.add_response("query", page([], token="t1"), {"QueryString": "S", "MaxRows": 1000})
        stub.add_response("query", page([["up", "1", "a"]], token="t2"),
                          {"QueryString": "S", "MaxRows": 1000, "NextToken": "t1"})
        stub.add_response("query", page([["up", "2", None]]),
                          {"QueryString": "S", "MaxRows": 1000, "NextToken": "t2"})
        rows = list(TimestreamQueryRunner(client).rows("S", Deadline(10)))
    assert rows == [{"measure_name": "up", "ts_ms": "1", "job": "a"},
                    {"measure_name": "up", "ts_ms": "2", "job": None}]


def test_describe_lists_dimension_columns(client):
    columns = [{"Name": n, "Type": {"ScalarType": "VARCHAR"}}
               for n in ("Column", "Type", "Timestream attribute type")]
    rows = [["job", "varchar", "DIMENSION"], ["measure_name", "varchar", "MEASURE_NAME"],
            ["time", "timestamp", "TIMESTAMP"], ["measure_value::double", "double",
                                                 "MEASURE_VALUE"]]
    response = {"QueryId": "q", "ColumnInfo": columns,
                "Rows": [{"Data": [{"ScalarValue": v} for v in row]} for row in rows]}
    with Stubber(client) as stub:
        stub.add_response("query", response,
                          {"QueryString": 'DESCRIBE "Db"."Tb"', "MaxRows": 1000})
        assert TimestreamQueryRunner(client).dimensions("Db", "Tb", Deadline(10)) == {"job"}


def test_throttled_queries_are_retried_then_503(client, monkeypatch):
    monkeypatch.setattr(timestream.time, "sleep", lambda s: None)
    with Stubber(client) as stub:
        stub.add_client_error("query", "ThrottlingException", http_status_code=400)
        stub.add_response("query", page([["up", "1", "a"]]))
        assert len(list(TimestreamQueryRunner(client).rows("S", Deadline(30)))) == 1
    with Stubber(client) as stub:
        for _ in range(50):
            stub.add_client_error("query", "ThrottlingException", http_status_code=400)
        with pytest.raises(BackendUnavailable, match="retry later"):
            list(TimestreamQueryRunner(client).rows("S", Deadline(0.6)))
