"""The Query API emulation refuses what Timestream refuses (each rule is cited in
harness/timestream/query_service.py): a test of the instrument the read tests rely on."""
import botocore.exceptions
import pytest

from harness.timestream.env import DATABASE, TABLE, emulated_query_client, timestream_env
from harness.timestream.query_service import java_double, to_duckdb
from harness.timestream.write_rules import WriteRules

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


# -- multi-measure records (harness/timestream/write_rules.py cites each rule) -------------

NOW = 1_800_000_000_000


def multi(*measures, name="h#histogram", dims=(("job", "a"),), time=NOW, **extra):
    return {"MeasureName": name, "MeasureValueType": "MULTI", "Time": str(time),
            "Dimensions": [{"Name": n, "Value": v} for n, v in dims],
            "MeasureValues": [{"Name": n, "Value": v, "Type": t} for n, v, t in measures],
            **extra}


TEXT = ("__histogram", '{"count":1}', "VARCHAR")
COUNT = ("__histogram_count", "1.0", "DOUBLE")


def rules():
    return WriteRules(clock=lambda: NOW / 1000)


def refused(table, *records, common=None):
    """How the table answers one WriteRecords call of these records."""
    request = {"Records": list(records), **({"CommonAttributes": common} if common else {})}
    return table.write_records(request)


def test_multi_measure_records_are_stored_and_queried_as_columns():
    table = rules()
    assert refused(table, multi(TEXT, COUNT), multi(TEXT, time=NOW - 1),
                   {"MeasureName": "up", "MeasureValue": "1", "Time": str(NOW),
                    "Dimensions": [{"Name": "job", "Value": "a"}]}) is None
    client, service = emulated_query_client(table.records)
    service.client = client
    _, rows = run(service, f"SHOW MEASURES FROM {T}")
    assert [[r["Data"][0]["ScalarValue"], r["Data"][1]["ScalarValue"]] for r in rows] == [
        ["h#histogram", "multi"], ["up", "double"]]
    _, rows = run(service, f"DESCRIBE {T}")
    assert [[d["ScalarValue"] for d in r["Data"]] for r in rows] == [
        ["job", "varchar", "DIMENSION"],
        ["measure_name", "varchar", "MEASURE_NAME"], ["time", "timestamp", "TIMESTAMP"],
        ["__histogram", "varchar", "MULTI"], ["__histogram_count", "double", "MULTI"],
        ["measure_value::double", "double", "MEASURE_VALUE"]]
    columns, rows = run(service, f'SELECT measure_name, CREATE_TIME_SERIES(time, "__histogram") '
                                 f'AS s FROM {T} WHERE "__histogram" IS NOT NULL '
                                 "GROUP BY measure_name")
    assert columns[1]["Type"] == {"TimeSeriesMeasureValueColumnInfo": {
        "Type": {"ScalarType": "VARCHAR"}}}
    assert [p["Value"]["ScalarValue"] for p in rows[0]["Data"][1]["TimeSeriesValue"]] == [
        '{"count":1}'] * 2
    _, rows = run(service, f'SELECT "__histogram_count", measure_value::double FROM {T} '
                           "ORDER BY measure_name, time")
    assert [[d.get("ScalarValue") for d in r["Data"]] for r in rows] == [
        [None, None], ["1.0", None], [None, "1.0"]]


def test_common_attributes_of_a_multi_call_are_merged_into_each_record():
    table = rules()
    common = {"MeasureName": "h#histogram", "MeasureValueType": "MULTI",
              "Dimensions": [{"Name": "job", "Value": "a"}], "Time": str(NOW)}
    assert refused(table, {"MeasureValues": multi(TEXT)["MeasureValues"],
                           "Dimensions": [{"Name": "i", "Value": "1"}]}, common=common) is None
    [record] = table.records()
    assert (record["MeasureName"], record["MeasureValueType"], len(record["Dimensions"])) == (
        "h#histogram", "MULTI", 2)


@pytest.mark.parametrize("record,message", [
    (multi(TEXT, MeasureValue="1"), "MeasureValue is not allowed for type MULTI"),
    (multi(), "A record of type MULTI needs MeasureValues"),
    ({**multi(TEXT), "MeasureValueType": "DOUBLE", "MeasureValue": "1"},
     "MeasureValues are only allowed for type MULTI"),
    ({**multi(), "MeasureValueType": "TIMESTAMP", "MeasureValue": "1"},
     "TIMESTAMP is an invalid measure value type"),
    ({**multi(), "MeasureValueType": "FLOAT", "MeasureValue": "1"},
     "FLOAT is an invalid measure value type"),
    (multi(TEXT, TEXT), "Duplicate measure names in a record"),
    (multi(("", "1", "VARCHAR")), "Measure name '' is empty or a system identifier"),
    (multi(("time", "1", "VARCHAR")), "Measure name 'time' is empty or a system identifier"),
    (multi(("ts_x", "1", "VARCHAR")), "Measure name 'ts_x' is empty or a system identifier"),
    (multi(("measure_name_x", "1", "VARCHAR")), "is empty or a system identifier"),
    (multi(("measure_value", "1", "VARCHAR")), "is empty or a system identifier"),
    (multi(("v", "", "VARCHAR")), "The value of measure 'v' must be 1 to 2048 characters"),
    (multi(("v", "x" * 2049, "VARCHAR")), "must be 1 to 2048 characters long"),
    (multi(("v", "1", "MULTI")), "MULTI is an invalid type for measure 'v'"),
    (multi(("v", "NaN", "DOUBLE")), "finite DOUBLE (NaN and Infinity cannot be written)"),
    (multi(("v", "abc", "DOUBLE")), "Measure value 'abc' is not a DOUBLE"),
])
def test_malformed_multi_records_fail_the_whole_call(record, message):
    table = rules()
    refusal = refused(table, multi(TEXT, time=NOW - 1), record)
    assert (refusal.status, refusal.code) == (400, "ValidationException")
    assert message in refusal.message
    assert table.records() == []


def test_measures_of_2048_bytes_of_values_are_taken_with_2_kb_of_dimensions():
    table = rules()
    dims = (("d", "x" * 2047),)  # 2 048 bytes of dimension name and value
    assert refused(table, multi(("v", "x" * 2048, "VARCHAR"), name="m", dims=dims)) is None
    assert refused(table, multi(("v", "x" * 2031, "VARCHAR"), ("time_x", "1", "BIGINT"),
                                ("n", "2.5", "DOUBLE"), ("flag", "true", "BOOLEAN"),
                                name="m", time=NOW - 1)) is None  # 2031 + 8 + 8 + 1


def rejected_reasons(refusal):
    assert (refusal.status, refusal.code) == (419, "RejectedRecordsException")
    return [(r["RecordIndex"], r["Reason"]) for r in refusal.rejected]


def test_measure_values_over_2048_bytes_are_rejected_and_the_others_stored():
    table = rules()
    fits = multi(("a", "x" * 1024, "VARCHAR"), ("b", "é" * 512, "VARCHAR"), name="m")
    over = multi(("a", "x" * 1024, "VARCHAR"), ("b", "é" * 512 + "x", "VARCHAR"), name="m",
                 time=NOW - 1)  # 1 025 bytes in 513 characters
    assert rejected_reasons(refused(table, fits, over)) == [
        (1, "The measure values take 2049 bytes, over the limit of 2048 (ts-limits: Measure "
            "value size per multi-measure record).")]
    assert len(table.records()) == 1
    eight = multi(*[(f"n{i}", "1", "BIGINT") for i in range(255)], ("x", "x" * 9, "VARCHAR"),
                  name="m", time=NOW - 2)  # a BIGINT is 8 bytes
    assert rejected_reasons(refused(table, eight))[0][1].startswith(
        "The measure values take 2049 bytes")


def test_a_dimension_over_2_kb_is_rejected_in_a_multi_record_too():
    assert rejected_reasons(refused(rules(), multi(TEXT, dims=(("d", "x" * 2048),)))) == [
        (0, "Dimension names and values take 2049 bytes, over the 2 KB limit.")]


def test_a_multi_record_holds_at_most_256_measures():
    many = [(f"m{i}", "1", "BOOLEAN") for i in range(257)]
    assert rejected_reasons(refused(rules(), multi(*many[:256]), multi(*many, time=NOW - 1))) \
        == [(1, "A multi-measure record can have at most 256 measures, got 257 (ts-limits: "
                "Measures per multi-measure record).")]


def test_a_table_holds_at_most_1024_measures_of_multi_measure_records():
    table = rules()
    for start in range(0, 1024, 256):
        assert refused(table, multi(*[(f"m{i}", "1", "BIGINT")
                                      for i in range(start, start + 256)],
                                    time=NOW - start)) is None
    assert refused(table, multi(("m5", "2", "BIGINT"), time=NOW - 5000)) is None
    assert rejected_reasons(refused(table, multi(("new", "1", "BIGINT"), time=NOW - 5001))) == [
        (0, "The table would exceed its limit of 1024 measures of multi-measure records "
            "(ts-limits: Unique measures across multi-measure records per table).")]


def test_a_measure_name_holds_one_type_single_or_multi():
    table = rules()
    double = {"MeasureName": "x", "MeasureValue": "1", "Time": str(NOW),
              "Dimensions": [{"Name": "job", "Value": "a"}]}
    assert rejected_reasons(refused(table, double, multi(TEXT, name="x"))) == [
        (1, "Measure x was ingested as DOUBLE, not MULTI.")]
    assert refused(table, multi(TEXT, name="y")) is None
    assert rejected_reasons(refused(table, {**double, "MeasureName": "y"})) == [
        (0, "Measure y was ingested as MULTI, not DOUBLE.")]


def test_a_measure_keeps_the_type_it_was_first_written_with():
    table = rules()
    assert refused(table, multi(("v", "1", "BIGINT"), name="a")) is None
    assert rejected_reasons(refused(table, multi(("v", "1.5", "DOUBLE"), name="b"))) == [
        (0, "Measure v was ingested as BIGINT, not DOUBLE.")]
    assert rejected_reasons(refused(table, multi(("w", "1", "BIGINT"), name="c"),
                                    multi(("w", "x", "VARCHAR"), name="d"))) == [
        (1, "Measure w was ingested as BIGINT, not VARCHAR.")]


def test_dimensions_and_measures_share_one_namespace_of_columns():
    table = rules()
    assert refused(table, multi(TEXT)) is None
    double = {"MeasureName": "up", "MeasureValue": "1", "Time": str(NOW),
              "Dimensions": [{"Name": "__histogram", "Value": "x"}]}
    assert rejected_reasons(refused(table, double)) == [
        (0, "Dimension name __histogram is already the name of a measure of this table.")]
    assert rejected_reasons(refused(table, multi(("job", "1", "BIGINT"), name="m"))) == [
        (0, "Measure name job is already the name of a dimension of this table.")]
    assert rejected_reasons(refused(rules(), multi(("i", "1", "BIGINT"), name="m",
                                                   dims=(("i", "1"),)))) == [
        (0, "Measure name i is already the name of a dimension of this table.")]
    assert rejected_reasons(refused(rules(), multi(COUNT, name="m"), {
        **double, "Dimensions": [{"Name": "__histogram_count", "Value": "x"}]})) == [
        (1, "Dimension name __histogram_count is already the name of a measure of this "
            "table.")]


def test_a_multi_record_rewritten_is_taken_and_another_value_is_a_conflict():
    table = rules()
    assert refused(table, multi(TEXT, COUNT)) is None
    assert refused(table, multi(COUNT, ("__histogram_count", "1", "DOUBLE"))) is not None
    assert refused(table, {**multi(COUNT, TEXT)}) is None  # the same measures, any order
    assert refused(table, multi(TEXT, ("__histogram_count", "1", "DOUBLE"))) is None  # 1 == 1.0
    for other in (multi(TEXT), multi(TEXT, ("__histogram_count", "2.0", "DOUBLE")),
                  multi(("__histogram", '{"count":2}', "VARCHAR"), COUNT)):
        refusal = refused(table, other)
        assert refusal.rejected[0]["ExistingVersion"] == 1
        assert refusal.rejected[0]["Reason"].startswith("A record already exists")
    assert len(table.records()) == 1


def test_the_emulation_takes_multi_records_from_a_boto3_client():
    with timestream_env(clock=lambda: NOW / 1000) as env:
        env.write_client.write_records(DatabaseName=DATABASE, TableName=TABLE,
                                       Records=[multi(TEXT, COUNT)])
        with pytest.raises(botocore.exceptions.ClientError, match="RejectedRecords"):
            env.write_client.write_records(DatabaseName=DATABASE, TableName=TABLE, Records=[
                multi(("__histogram", "x" * 2048, "VARCHAR"), COUNT, time=NOW - 1)])
        with pytest.raises(botocore.exceptions.ClientError, match="ValidationException"):
            env.write_client.write_records(DatabaseName=DATABASE, TableName=TABLE, Records=[
                multi(("__histogram", "x" * 2049, "VARCHAR"), time=NOW - 2)])
        assert [r["MeasureName"] for r in env.records()] == ["h#histogram"]
