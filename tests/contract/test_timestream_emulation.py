"""The Query API emulation refuses what Timestream refuses (each rule is cited in
harness/timestream/query_service.py): a test of the instrument the read tests rely on."""
import botocore.exceptions
import pytest

from harness.timestream.env import DATABASE, TABLE, emulated_query_client
from harness.timestream.query_service import java_double, to_duckdb

T = f'"{DATABASE}"."{TABLE}"'
RECORDS = [
    {"MeasureName": "up", "MeasureValueType": "DOUBLE", "MeasureValue": "1.0", "Time": "1000",
     "TimeUnit": "MILLISECONDS", "Dimensions": [{"Name": "job", "Value": "a"}]},
    {"MeasureName": "up", "MeasureValueType": "DOUBLE", "MeasureValue": "0.5", "Time": "2000",
     "TimeUnit": "MILLISECONDS", "Dimensions": [{"Name": "job", "Value": "a"},
                                                 {"Name": "pod", "Value": "p"}]},
    {"MeasureName": "n", "MeasureValueType": "BIGINT", "MeasureValue": "3", "Time": "1000",
     "TimeUnit": "MILLISECONDS", "Dimensions": [{"Name": "host", "Value": "h"}]},
]


@pytest.fixture
def service():
    client, service = emulated_query_client(lambda: RECORDS)
    service.client = client
    return service


def run(service, sql, **kwargs):
    """Every page of ``sql``: (ColumnInfo, rows)."""
    rows, token, columns = [], None, None
    while True:
        page = service.client.query(QueryString=sql, **({"NextToken": token} if token else {}),
                                    **kwargs)
        rows += page["Rows"]
        columns = page["ColumnInfo"] or columns
        token = page.get("NextToken")
        if not token:
            return columns, rows


def error(service, sql, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        run(service, sql, **kwargs)
    return raised.value.response["Error"]


def test_the_first_page_holds_only_a_next_token(service):
    first = service.client.query(QueryString=f"SELECT measure_name FROM {T}")
    assert first["Rows"] == [] and "NextToken" in first


def test_max_rows_is_at_most_1000(service):
    assert error(service, f"SELECT 1 FROM {T}", MaxRows=1001)["Code"] == "ValidationException"


def test_next_token_is_bound_to_its_query(service):
    token = service.client.query(QueryString=f"SELECT measure_name FROM {T}")["NextToken"]
    with pytest.raises(botocore.exceptions.ClientError, match="Invalid pagination token"):
        service.client.query(QueryString=f"SELECT time FROM {T}", NextToken=token)


def test_a_client_token_reused_with_other_parameters_fails(service):
    service.client.query(QueryString=f"SELECT 1 FROM {T}", ClientToken="t" * 32)
    with pytest.raises(botocore.exceptions.ClientError, match="ClientToken"):
        service.client.query(QueryString=f"SELECT 2 FROM {T}", ClientToken="t" * 32)


def test_a_client_token_is_idempotent_for_five_minutes_refused_after_and_new_after_4_hours(
        service):
    now = [1000.0]
    service.clock = lambda: now[0]
    first = service.client.query(QueryString=f"SELECT 1 FROM {T}", ClientToken="w" * 32)
    now[0] += 300
    again = service.client.query(QueryString=f"SELECT 1 FROM {T}", ClientToken="w" * 32)
    assert again["QueryId"] == first["QueryId"]  # the same query, not a new execution
    now[0] += 1
    with pytest.raises(botocore.exceptions.ClientError, match="5-minute idempotency window"):
        service.client.query(QueryString=f"SELECT 1 FROM {T}", ClientToken="w" * 32)
    now[0] += 4 * 3600
    later = service.client.query(QueryString=f"SELECT 1 FROM {T}", ClientToken="w" * 32)
    assert later["QueryId"] != first["QueryId"]


def test_unknown_columns_fail_as_timestream_fails(service):
    assert error(service, f"SELECT nope FROM {T}") == {
        "Code": "ValidationException", "Message": "line 1:1: Column 'nope' does not exist"}
    service.hidden = {"pod"}
    assert "Column 'pod' does not exist" in error(service, f'SELECT "pod" FROM {T}')["Message"]


def test_a_table_without_doubles_has_no_double_column():
    client, service = emulated_query_client(lambda: RECORDS[2:])
    service.client = client
    assert "Column 'measure_value::double' does not exist" in error(
        service, f"SELECT measure_value::double FROM {T}")["Message"]


def test_describe_answers_columns_types_and_attribute_types(service):
    columns, rows = run(service, f"DESCRIBE {T}")
    assert [c["Name"] for c in columns] == ["Column", "Type", "Timestream attribute type"]
    assert [[d["ScalarValue"] for d in r["Data"]] for r in rows] == [
        ["host", "varchar", "DIMENSION"], ["job", "varchar", "DIMENSION"],
        ["pod", "varchar", "DIMENSION"], ["measure_name", "varchar", "MEASURE_NAME"],
        ["time", "timestamp", "TIMESTAMP"], ["measure_value::bigint", "bigint", "MEASURE_VALUE"],
        ["measure_value::double", "double", "MEASURE_VALUE"]]
    service.hidden = {"pod"}
    assert "pod" not in str(run(service, f"DESCRIBE {T}")[1])


def test_show_measures_lists_types_and_dimensions_per_measure(service):
    columns, rows = run(service, f"SHOW MEASURES FROM {T}")
    assert [c["Name"] for c in columns] == ["measure_name", "data_type", "dimensions"]
    listed = {r["Data"][0]["ScalarValue"]: (r["Data"][1]["ScalarValue"],
                                           [d["RowValue"]["Data"][0]["ScalarValue"]
                                            for d in r["Data"][2]["ArrayValue"]])
              for r in rows}
    assert listed == {"n": ("bigint", ["host"]), "up": ("double", ["job", "pod"])}
    assert len(run(service, f"SHOW MEASURES FROM {T} LIKE 'u_'")[1]) == 1


def test_create_time_series_refuses_null_values(service):
    sql = (f"SELECT measure_name, CREATE_TIME_SERIES(time, measure_value::double) AS s "
           f"FROM {T} GROUP BY measure_name")
    assert "cannot be null" in error(service, sql)["Message"]
    _, rows = run(service, sql.replace("GROUP BY", "WHERE measure_value::double IS NOT NULL "
                                                   "GROUP BY"))
    points = rows[0]["Data"][1]["TimeSeriesValue"]
    assert [p["Time"] for p in points] == ["1970-01-01 00:00:02.000000000",
                                           "1970-01-01 00:00:01.000000000"]
    assert [p["Value"]["ScalarValue"] for p in points] == ["0.5", "1.0"]


def test_rows_over_one_megabyte_fail_the_query():
    big = [{"MeasureName": "m", "MeasureValueType": "DOUBLE", "MeasureValue": "1.5",
            "Time": str(1000 + i), "TimeUnit": "MILLISECONDS",
            "Dimensions": [{"Name": "j", "Value": "x"}]} for i in range(20_000)]
    client, service = emulated_query_client(lambda: big)
    service.client = client
    sql = (f"SELECT CREATE_TIME_SERIES(time, measure_value::double) AS s FROM {T}")
    assert "max page response size" in error(service, sql)["Message"]


def test_sql_dialect_differences_stay_out_of_literals():
    assert to_duckdb("SELECT measure_value::double, 'measure_value::double 1h', \"1h\" "
                     "FROM t GROUP BY bin(time, 1h)") == (
        "SELECT \"measure_value::double\", 'measure_value::double 1h', \"1h\" "
        "FROM t GROUP BY ts_bin(time, INTERVAL 1 hour)")


@pytest.mark.parametrize("value,text", [(1.0, "1.0"), (0.1 + 0.2, "0.30000000000000004"),
                                        (1e-300, "1.0E-300"), (12345678.0, "1.2345678E7"),
                                        (0.001, "0.001"), (-2.5e-4, "-2.5E-4"),
                                        (1.7976931348623155e308, "1.7976931348623155E308")])
def test_doubles_read_as_java_prints_them(value, text):
    assert java_double(value) == text
    assert float(text) == value


def test_query_strings_and_client_tokens_have_documented_lengths(service):
    assert error(service, "SELECT 1 FROM " + T + " WHERE " + "1 = 1 AND " * 30_000 + "1 = 1")[
        "Message"].startswith("QueryString")
    with pytest.raises(botocore.exceptions.ClientError, match="ClientToken"):
        service.client.query(QueryString=f"SELECT 1 FROM {T}", ClientToken="x" * 129)


def test_each_endpoint_refuses_the_other_apis_operations_and_names_itself():
    """Ingest and query are separate endpoints (cells): a client pointed at the wrong one
    is refused, as the connector with one TIMESTREAM_ENDPOINT_URL for both would be."""
    import boto3

    from harness.timestream.env import DATABASE, TABLE, install_sql_functions
    from harness.timestream.query_service import QueryService
    from harness.timestream.server import TimestreamServer
    from harness.timestream.write_rules import WriteRules
    rules = WriteRules()
    server = TimestreamServer(DATABASE, TABLE, rules,
                              QueryService(DATABASE, TABLE, rules.records, install_sql_functions))
    keys = {"region_name": "us-east-1", "aws_access_key_id": "AKID",
            "aws_secret_access_key": "secret"}
    try:
        wrong_query = boto3.client("timestream-query", endpoint_url=server.ingest_url, **keys)
        with pytest.raises(botocore.exceptions.ClientError, match="UnknownOperationException"):
            wrong_query.query(QueryString=f"SELECT 1 FROM {T}")
        wrong_write = boto3.client("timestream-write", endpoint_url=server.query_url, **keys)
        with pytest.raises(botocore.exceptions.ClientError, match="UnknownOperationException"):
            wrong_write.describe_table(DatabaseName=DATABASE, TableName=TABLE)
        right = boto3.client("timestream-write", endpoint_url=server.ingest_url, **keys)
        assert right.describe_table(DatabaseName=DATABASE, TableName=TABLE)["Table"][
            "TableName"] == TABLE
        assert right.describe_endpoints()["Endpoints"][0]["Address"] \
            == server.ingest_url.replace("http://", "")
    finally:
        server.stop()
