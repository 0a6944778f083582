"""`make package`: the SAM template (seed parameters and outputs, wired; the optional VPC
parameters, which change nothing by default; the dashboard and alarms on the connector's own
metrics; cfn-lint clean) and the Lambda zip (Linux wheels of the native dependencies,
importable)."""
import base64
import copy
import json
import os
import posixpath
import re
import subprocess
import sys
import time
import zipfile
from urllib.parse import urlsplit

import pytest
import yaml
from botocore.awsrequest import AWSResponse

from chalicelib.auth import Credentials
from chalicelib.config import Settings
from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series
from chalicelib.telemetry import names
from chalicelib.storage.timestream import build
from deploy import architectures, influxdb, observability, sigv4, timestream_table, vpc
from deploy.package import (TIMEOUTS_MS, execution_policy_document, merge_template, package,
                            stage_merge_template)
from deploy.stage import load_stage
from tests.support.emf import valid_emf
from harness.processes import ROOT
from tests.support import context, elf
from tests.support.cloudformation import CfnLoader, Stack

SEED_PARAMETERS = {
    "APIGatewayStageName": None, "DefaultDatabase": "PrometheusDatabase",
    "DefaultTable": "PrometheusMetricsTable", "ExecutionPolicyName": "LambdaExecutionPolicy",
    "LogLevel": "info", "MemorySize": 512, "ReadThrottlingBurstLimit": 1200,
    "TimeoutInMillis": 30000, "WriteThrottlingBurstLimit": 1200,
}
SEED_OUTPUTS = {"InvokeReadURL", "InvokeWriteURL", "DefaultDatabase", "DefaultTable"}


@pytest.fixture(scope="module", params=["dev", "prod"])
def packaged(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("package") / request.param
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template_path = package(request.param, str(out))
    with open(template_path) as handle:
        template = yaml.load(handle, Loader=CfnLoader)
    return request.param, template_path, template, out / "deployment.zip"


def test_template_passes_cfn_lint(packaged):
    _, path, _, _ = packaged
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "cfn-lint"),
                             "--format", "parseable", path], capture_output=True, text=True)
    errors = [line for line in result.stdout.splitlines() if ":E" in line or line.startswith("E")]
    assert errors == [] and result.returncode in (0, 4, 8), result.stdout + result.stderr


def test_seed_parameters_with_their_defaults(packaged):
    stage, _, template, _ = packaged
    parameters = template["Parameters"]
    for name, default in SEED_PARAMETERS.items():
        assert name in parameters
        expected = stage if name == "APIGatewayStageName" else default
        assert parameters[name]["Default"] == expected, name
    assert parameters["LogLevel"]["AllowedValues"] == ["info", "debug", "warn", "error"]
    assert 30000 in parameters["TimeoutInMillis"]["AllowedValues"]


def test_parameters_are_wired_to_what_they_name(packaged):
    _, _, template, _ = packaged
    resources = template["Resources"]
    function = resources["APIHandler"]["Properties"]
    env = function["Environment"]["Variables"]
    assert env["DEFAULT_DATABASE"] == {"Ref": "DefaultDatabase"}
    assert env["DEFAULT_TABLE"] == {"Ref": "DefaultTable"}
    assert env["LOG_LEVEL"] == {"Ref": "LogLevel"}
    assert env["STORAGE_BACKEND"] == "timestream"
    assert function["MemorySize"] == {"Ref": "MemorySize"}
    timeout = {"Fn::FindInMap": ["Timeouts", {"Ref": "TimeoutInMillis"}, "FunctionSeconds"]}
    assert function["Timeout"] == timeout
    mapping = template["Mappings"]["Timeouts"]
    assert {int(k): v["FunctionSeconds"] * 1000 for k, v in mapping.items()} == \
        {ms: ms for ms in TIMEOUTS_MS}
    assert all(v["IntegrationMillis"] <= 29000 for v in mapping.values())
    assert all(float(v["DeadlineSeconds"]) * 1000 < min(int(k), v["IntegrationMillis"])
               for k, v in mapping.items())
    role = resources["ApiHandlerRole"]["Properties"]["Policies"]
    assert [p["PolicyName"] for p in role] == [{"Ref": "ExecutionPolicyName"}]
    api = resources["RestAPI"]["Properties"]
    assert api["StageName"] == {"Ref": "APIGatewayStageName"}
    throttles = {s["ResourcePath"]: s["ThrottlingBurstLimit"] for s in api["MethodSettings"]}
    assert throttles == {"/~1read": {"Ref": "ReadThrottlingBurstLimit"},
                         "/~1write": {"Ref": "WriteThrottlingBurstLimit"}}
    paths = api["DefinitionBody"]["paths"]
    for path in ("/read", "/write"):
        integration = paths[path]["post"]["x-amazon-apigateway-integration"]
        assert integration["timeoutInMillis"]["Fn::FindInMap"][2] == "IntegrationMillis"
        assert integration["type"] == "aws_proxy"
    assert api["DefinitionBody"]["x-amazon-apigateway-binary-media-types"] == ["*/*"]


def test_seed_outputs(packaged):
    _, _, template, _ = packaged
    outputs = template["Outputs"]
    assert SEED_OUTPUTS <= set(outputs)
    assert outputs["InvokeWriteURL"]["Value"]["Fn::Sub"].endswith("/${APIGatewayStageName}/write")
    assert outputs["InvokeReadURL"]["Value"]["Fn::Sub"].endswith("/${APIGatewayStageName}/read")
    assert outputs["DefaultTable"]["Value"] == {"Ref": "DefaultTable"}


def test_zip_holds_linux_wheels_of_the_native_dependencies(packaged):
    _, _, template, zip_path = packaged
    runtime = template["Resources"]["APIHandler"]["Properties"]["Runtime"]  # e.g. python3.11
    tag = "cp" + runtime.replace("python", "").replace(".", "")
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        wheels = {name.split("-")[0]: archive.read(name).decode()
                  for name in names if name.endswith(".dist-info/WHEEL")}
    assert f"cramjam/cramjam.{tag.replace('cp', 'cpython-')}-x86_64-linux-gnu.so" in names
    assert any(re.match(r"google/_upb/_message\..*so$", n) for n in names)
    assert f"_re2.{tag.replace('cp', 'cpython-')}-x86_64-linux-gnu.so" in names
    assert "re2.py" in names
    assert f"google_crc32c/_crc32c.{tag.replace('cp', 'cpython-')}-x86_64-linux-gnu.so" in names
    assert {"app.py", "chalicelib/protocol/codec.py", "chalicelib/protocol/prompb/remote_pb2.py",
            "chalice/app.py"} <= set(names)
    assert not any(n.startswith(("pip/", "pytest", "moto/", "duckdb")) for n in names)
    for dist in ("cramjam", "protobuf", "google_re2", "google_crc32c"):
        platforms = re.findall(r"Tag: \S+-\S+-(\S+)", wheels[dist])
        # The Lambda Python runtimes run on glibc >= 2.26 (Amazon Linux 2), x86_64.
        assert any(glibc_needed(p) <= (2, 26) for p in platforms), (dist, platforms)


def glibc_needed(platform: str, machine: str = "x86_64") -> tuple:
    """The glibc a manylinux wheel tag for ``machine`` needs; (99,) for anything else."""
    if platform == f"manylinux2014_{machine}":
        return (2, 17)
    match = re.fullmatch(rf"manylinux_(\d+)_(\d+)_{machine}", platform)
    return (int(match.group(1)), int(match.group(2))) if match else (99,)


# What a manylinux wheel may take from the system (PEP 599/600's list), and so what the Lambda
# runtime provides; every other library a native module needs must be in the zip.
SYSTEM_LIBRARIES = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1",
                    "libstdc++.so.6", "libgcc_s.so.1", "libutil.so.1", "libcrypt.so.1",
                    "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}


def test_the_architecture_parameter_chooses_the_functions_instruction_set(packaged):
    _, _, template, _ = packaged
    parameter = template["Parameters"]["Architecture"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("x86_64", ["x86_64", "arm64"])
    for architecture in ("x86_64", "arm64"):
        function = function_of(Stack(template, {"Architecture": architecture}))
        assert function["Architectures"] == [architecture]


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_zip_carries_native_modules_for_both_architectures(packaged, machine):
    """The one zip runs on either: each extension module resolves, as Python's import system
    resolves it on ``machine`` (EXTENSION_SUFFIXES: the machine's own suffix, then .abi3.so,
    then .so), to a shared object built for that machine, whose libraries are the system's
    or bundled in the zip for that machine, and that needs no newer glibc than the Lambda
    Python runtimes have (2.26, Amazon Linux 2)."""
    _, _, template, zip_path = packaged
    runtime = template["Resources"]["APIHandler"]["Properties"]["Runtime"]
    own = architectures.extension_suffix(runtime, machine)
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        modules = {architectures.module_of(n) for n in names} - {""}
        assert modules == {"cramjam/cramjam", "_re2", "google/_upb/_message",
                           "google_crc32c/_crc32c"}
        bundled = {}
        for name in names:
            if ".libs/" in name:
                bundled.setdefault(posixpath.basename(name), []).append(elf.read(archive.read(name)))
        for module in sorted(modules):
            found = next(module + suffix for suffix in (own, ".abi3.so", ".so")
                         if module + suffix in names)
            shared = elf.read(archive.read(found))
            assert shared.machine == machine, (module, found)
            assert shared.glibc <= (2, 26), (found, shared.glibc)
            for library in shared.needed:
                if library in SYSTEM_LIBRARIES:
                    continue
                assert [lib.machine for lib in bundled[library]] == [machine], (found, library)
                assert all(lib.glibc <= (2, 26) and set(lib.needed) <= SYSTEM_LIBRARIES
                           for lib in bundled[library]), library
    assert f"cramjam/cramjam{own}" in names and f"_re2{own}" in names
    assert f"google_crc32c/_crc32c{own}" in names


def test_the_aarch64_modules_come_from_aarch64_manylinux_wheels(packaged):
    """The arm64 build merged into the zip (Chalice's, cached) picked wheels for
    manylinux aarch64 the runtime's glibc takes, of the same versions as the x86_64 ones."""
    _, _, template, zip_path = packaged
    runtime = template["Resources"]["APIHandler"]["Properties"]["Runtime"]
    with zipfile.ZipFile(architectures.build_arm64(ROOT, runtime)) as archive, \
            zipfile.ZipFile(zip_path) as merged:
        wheels = {name.split("-")[0]: archive.read(name).decode()
                  for name in archive.namelist() if name.endswith(".dist-info/WHEEL")}
        versions = {name.split("/")[0] for name in archive.namelist() if ".dist-info/" in name}
        assert versions == {name.split("/")[0] for name in merged.namelist()
                            if ".dist-info/" in name}
    for dist in ("cramjam", "protobuf", "google_re2", "google_crc32c"):
        platforms = re.findall(r"Tag: \S+-\S+-(\S+)", wheels[dist])
        assert any(glibc_needed(p, "aarch64") <= (2, 26) for p in platforms), (dist, platforms)


def test_packaged_app_imports_and_answers_on_the_lambda_path(packaged, tmp_path):
    _, _, _, zip_path = packaged
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(tmp_path)
    event = {"requestContext": {"resourcePath": "/write", "httpMethod": "POST", "stage": "dev"},
             "headers": {"content-type": "application/x-protobuf", "content-encoding": "snappy"},
             "pathParameters": {}, "multiValueQueryStringParameters": None,
             "stageVariables": {}, "body": base64.b64encode(b"x").decode(),
             "isBase64Encoded": True}
    # -S: no site-packages, so every import below must come from the zip.
    script = ("import sys; sys.path.insert(0, '.'); import json, os, cramjam, snappy, "
              "google._upb._message, _re2, re2, app; "
              "assert all(m.__file__.startswith(os.getcwd()) for m in (cramjam, snappy, _re2, app)); "
              "import google._upb._message as upb; assert upb.__file__.endswith('.abi3.so'); "
              "assert sys.modules['cramjam.cramjam'].__file__.endswith('-x86_64-linux-gnu.so'); "
              "assert snappy.uncompress(snappy.compress(b'ok')) == b'ok'; "
              "assert re2.fullmatch('(a+)+b', 'aab'); "
              f"print(json.dumps(app.app({event!r}, None)))")
    env = {"PATH": os.environ.get("PATH", ""), "STORAGE_BACKEND": "timestream",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_LAMBDA_FUNCTION_NAME": "connector",
           "METRICS_NAMESPACE": "Team/Connector"}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    *printed, last = result.stdout.strip().splitlines()
    response = json.loads(last)
    # The request's one EMF document, printed by the zip's own metrics library.
    [document] = [json.loads(line) for line in printed if line.startswith('{"_aws"')]
    valid_emf(document)
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Team/Connector"
    assert (document["Stage"], document["Route"]) == ("dev", "/write")
    assert document["SamplesReceived"] == [0.0] and document["SamplesFailed"] == [0.0]
    # No credentials: refused before anything else; 500 on /write so Prometheus keeps the data.
    assert response["statusCode"] == 500
    assert "missing credentials" in base64.b64decode(response["body"]).decode() \
        if response.get("isBase64Encoded") else "missing credentials" in response["body"]


def test_readme_claims_only_the_tls_the_template_sets(packaged):
    """API Gateway's default execute-api endpoint of a REGIONAL API uses the TLS_1_0 security
    policy; only a custom domain name takes another. The template sets none."""
    with open(os.path.join(ROOT, "README.md")) as handle:
        readme = handle.read()
    assert "SecurityPolicy" not in json.dumps(packaged[2], default=str)
    assert "with TLS 1.2" not in readme
    assert "`TLS_1_0` security policy" in readme


# A private deployment as the README's `sam deploy --parameter-overrides` line sets it.
PRIVATE = {"VpcId": "vpc-0a1b2c3d", "VpcSubnetIds": "subnet-0a1b,subnet-2c3d",
           "VpcSecurityGroupIds": "sg-0a1b2c", "TimestreamIngestCell": "ingest-cell2",
           "TimestreamQueryCell": "query-cell2"}
CELL_URLS = {
    "TIMESTREAM_WRITE_ENDPOINT_URL": "https://ingest-cell2.timestream.us-east-1.amazonaws.com",
    "TIMESTREAM_QUERY_ENDPOINT_URL": "https://query-cell2.timestream.us-east-1.amazonaws.com"}
VPC_STATEMENTS = {"AttachToTheVpc", "ManageTheInterfaces", "ListTheInterfaces"}


def vpc_conditions(stack: Stack) -> list:
    return [value for name, value in stack.conditions.items() if name in vpc.conditions()]


def function_of(stack: Stack) -> dict:
    return stack.resources["APIHandler"]["Properties"]


def statement_ids(stack: Stack) -> set:
    statements = stack.resources["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    return {s.get("Sid") for s in statements["Statement"]}


def endpoints_of(stack: Stack) -> dict:
    return {name: r["Properties"] for name, r in stack.resources.items()
            if r["Type"] == "AWS::EC2::VPCEndpoint"}


def test_vpc_parameters_are_optional(packaged):
    _, _, template, _ = packaged
    parameters = template["Parameters"]
    assert {name: (p["Type"], p["Default"]) for name, p in parameters.items()
            if name in vpc.parameters()} == {
        "VpcId": ("String", ""), "VpcSubnetIds": ("CommaDelimitedList", ""),
        "VpcSecurityGroupIds": ("CommaDelimitedList", ""), "TimestreamIngestCell": ("String", ""),
        "TimestreamQueryCell": ("String", ""), "CreateTimestreamVpcEndpoints": ("String", "true")}
    for name, good, bad in [("TimestreamIngestCell", "ingest-cell2", "query-cell2"),
                            ("TimestreamQueryCell", "query-cell2", "ingest-cell2"),
                            ("VpcId", "vpc-0a1b2c3d", "subnet-0a1b")]:
        pattern = re.compile(parameters[name]["AllowedPattern"])
        assert pattern.match(good) and pattern.match("") and not pattern.match(bad), name
    # A whole address from describe-endpoints is refused: only its first label is the cell.
    assert not re.match(parameters["TimestreamIngestCell"]["AllowedPattern"],
                        "ingest-cell2.timestream.us-east-1.amazonaws.com")


def test_by_default_the_vpc_parameters_change_nothing(packaged):
    stage, _, template, _ = packaged
    stack = Stack(template, {})
    assert not any(stack.conditions.values()) and stack.rules_broken == []
    assert endpoints_of(stack) == {}
    function = function_of(stack)
    assert "VpcConfig" not in function
    assert not set(CELL_URLS) & set(function["Environment"]["Variables"])
    role = stack.resources["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    assert role["Statement"] == stack.resolve(execution_policy_document())["Statement"]
    # The whole merge template resolves to today's, resource for resource.
    before = observability.adapt_merge_template(load_stage(stage), sigv4.adapt_merge_template(
        load_stage(stage), merge_template(load_stage(stage))))
    after = stage_merge_template(load_stage(stage))
    assert Stack(after, {}).resources == Stack(before, {}).resources


def test_in_a_vpc_with_cells_the_function_calls_the_cells_through_interface_endpoints(packaged):
    _, _, template, _ = packaged
    stack = Stack(template, PRIVATE)
    assert all(vpc_conditions(stack)) and stack.rules_broken == []
    function = function_of(stack)
    assert function["VpcConfig"] == {"SubnetIds": ["subnet-0a1b", "subnet-2c3d"],
                                     "SecurityGroupIds": ["sg-0a1b2c"]}
    assert {k: v for k, v in function["Environment"]["Variables"].items()
            if k in CELL_URLS} == CELL_URLS
    network = {"VpcEndpointType": "Interface", "VpcId": "vpc-0a1b2c3d",
               "SubnetIds": ["subnet-0a1b", "subnet-2c3d"], "SecurityGroupIds": ["sg-0a1b2c"],
               "PrivateDnsEnabled": True}
    assert endpoints_of(stack) == {
        "TimestreamIngestEndpoint": {
            **network, "ServiceName": "com.amazonaws.us-east-1.timestream.ingest-cell2"},
        "TimestreamQueryEndpoint": {
            **network, "ServiceName": "com.amazonaws.us-east-1.timestream.query-cell2"}}
    assert VPC_STATEMENTS <= statement_ids(stack)
    assert not VPC_STATEMENTS & statement_ids(Stack(template, {}))


def test_parameters_apart(packaged):
    """Cells alone pin the public cell endpoints; subnets alone only attach the function;
    CreateTimestreamVpcEndpoints=false uses endpoints the VPC already has."""
    _, _, template, _ = packaged
    cells = Stack(template, {k: PRIVATE[k] for k in ("TimestreamIngestCell",
                                                     "TimestreamQueryCell")})
    assert endpoints_of(cells) == {} and "VpcConfig" not in function_of(cells)
    assert CELL_URLS.items() <= function_of(cells)["Environment"]["Variables"].items()
    network = Stack(template, {k: PRIVATE[k] for k in ("VpcSubnetIds", "VpcSecurityGroupIds")})
    assert endpoints_of(network) == {} and "VpcConfig" in function_of(network)
    assert not set(CELL_URLS) & set(function_of(network)["Environment"]["Variables"])
    existing = Stack(template, {**PRIVATE, "VpcId": "", "CreateTimestreamVpcEndpoints": "false"})
    assert existing.rules_broken == [] and endpoints_of(existing) == {}
    assert CELL_URLS.items() <= function_of(existing)["Environment"]["Variables"].items()
    assert VPC_STATEMENTS <= statement_ids(existing)


@pytest.mark.parametrize("given,broken", [
    ({"VpcSubnetIds": "subnet-0a1b"}, ["SecurityGroupsWithTheSubnets"]),
    ({**PRIVATE, "VpcId": ""}, ["VpcOfTheEndpoints"]),
    ({**PRIVATE, "VpcId": "", "TimestreamQueryCell": ""}, ["VpcOfTheEndpoints"]),
    ({**PRIVATE, "VpcSecurityGroupIds": ""}, ["SecurityGroupsWithTheSubnets"])])
def test_rules_refuse_an_incomplete_network_before_creating_anything(packaged, given, broken):
    assert Stack(packaged[2], given).rules_broken == broken


def test_with_the_cells_set_the_connector_calls_nothing_but_the_two_cells(packaged):
    """The environment the template gives a private deployment, read by the connector: a
    write (DescribeTable, WriteRecords) goes to the ingest cell, a read to the query cell, and
    nothing asks for endpoint discovery, which is not reachable from a VPC without NAT."""
    _, _, template, _ = packaged
    env = function_of(Stack(template, PRIVATE))["Environment"]["Variables"]
    settings = Settings.from_env({**{k: v for k, v in env.items() if isinstance(v, str)},
                                  "AWS_REGION": "us-east-1"})
    store = build(settings, Credentials("AKIDEXAMPLE", "secret"))
    calls = []

    def answer(request, **kwargs):
        operation = request.headers["X-Amz-Target"].decode().split(".")[-1]
        calls.append((urlsplit(request.url).netloc, operation))
        return AWSResponse(request.url, 200, {}, _Raw(json.dumps(CANNED[operation]).encode()))

    for client in (store.write_client, store.reader.runner.client):
        client.meta.events.register("before-send", answer)
    try:
        store.write([Series((("__name__", "up"),), [int(time.time() * 1000)], [1.0])],
                    context())
        store.read(Query(0, 2 ** 40, (Matcher.of(0, "__name__", "up"),)), context())
    finally:
        store.executor.shutdown()
    ingest, query = (urlsplit(url).netloc for url in CELL_URLS.values())
    assert set(calls) == {(ingest, "DescribeTable"), (ingest, "WriteRecords"), (query, "Query")}


CANNED = {
    "DescribeTable": {"Table": {"RetentionProperties": {
        "MemoryStoreRetentionPeriodInHours": 24, "MagneticStoreRetentionPeriodInDays": 7}}},
    "WriteRecords": {"RecordsIngested": {"Total": 1, "MemoryStore": 1, "MagneticStore": 0}},
    "Query": {"QueryId": "q", "Rows": [], "ColumnInfo": []},
}


class _Raw:
    """The body of a response a before-send handler gives botocore instead of sending."""

    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self, **kwargs):
        yield self.content


def readme_section(heading: str) -> str:
    with open(os.path.join(ROOT, "README.md")) as handle:
        text = handle.read()
    section = text[text.index(heading):]
    return section[:section.index("\n### ", 1)]


def test_readme_private_deployment_is_what_the_template_does(packaged):
    """The README's steps: the cells from describe-endpoints, then its `sam deploy` line,
    whose overrides are the template's parameters and deploy the two endpoints."""
    _, _, template, _ = packaged
    section = readme_section("### Deploy privately (VPC, PrivateLink)")
    assert "aws timestream-write describe-endpoints" in section
    assert "aws timestream-query describe-endpoints" in section
    assert "make policies STAGE=dev ACCOUNT=123456789012 REGION=us-east-1 VPC=1" in section
    overrides = re.search(r'--parameter-overrides "([^"]+)"', section).group(1)
    given = dict(pair.split("=", 1) for pair in overrides.split())
    assert set(given) <= set(template["Parameters"])
    stack = Stack(template, given)
    assert stack.rules_broken == [] and all(vpc_conditions(stack))
    assert [e["ServiceName"] for e in endpoints_of(stack).values()] == [
        f"com.amazonaws.us-east-1.timestream.{given['TimestreamIngestCell']}",
        f"com.amazonaws.us-east-1.timestream.{given['TimestreamQueryCell']}"]
    deploy = readme_section("### SAM / CloudFormation template")
    for name in vpc.parameters():
        assert f"`{name}`" in deploy, name


# The operator's view: dashboard and alarms on the connector's own metrics (its EMF output,
# named in chalicelib/telemetry/names.py), the function's and the API's.
ALARMS = {"NoSamplesStoredAlarm", "WritesFailingAlarm", "SamplesRejectedAlarm",
          "BackendThrottlesAlarm", "ApiServerErrorsAlarm", "FunctionErrorsAlarm",
          "FunctionDurationAlarm"}
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:oncall"
ROUTE_METRICS = {"/write": {**names.WRITE_METRICS, **names.COMMON_METRICS},
                 "/read": {**names.READ_METRICS, **names.COMMON_METRICS}}


@pytest.fixture(scope="module", params=["dev", "prod", "influxdb"])
def every_stage(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("package") / request.param
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(package(request.param, str(out))) as handle:
        return load_stage(request.param), yaml.load(handle, Loader=CfnLoader)


def alarms_of(stack: Stack) -> dict:
    return {name: r["Properties"] for name, r in stack.resources.items()
            if r["Type"] == "AWS::CloudWatch::Alarm"}


def dashboard_of(stack: Stack) -> dict:
    [body] = [r["Properties"]["DashboardBody"] for r in stack.resources.values()
              if r["Type"] == "AWS::CloudWatch::Dashboard"]
    return json.loads(body)


def widget_metrics(stack: Stack) -> list:
    """(namespace, name, {dimension: value}, options) of every line of every graph."""
    found = []
    for widget in dashboard_of(stack)["widgets"]:
        for line in widget["properties"].get("metrics", []):
            options = line[-1] if isinstance(line[-1], dict) else {}
            fields = line[:-1] if options else line
            found.append((fields[0], fields[1], dict(zip(fields[2::2], fields[3::2])), options))
    return found


def alarm_metrics(stack: Stack) -> list:
    """(namespace, name, {dimension: value}) of every metric an alarm reads."""
    found = []
    for alarm in alarms_of(stack).values():
        metrics = [q["MetricStat"]["Metric"] for q in alarm.get("Metrics", []) if "MetricStat" in q]
        for metric in metrics or [alarm]:
            found.append((metric["Namespace"], metric["MetricName"],
                          {d["Name"]: d["Value"] for d in metric["Dimensions"]}))
    return found


def connector_metrics(stack: Stack, namespace: str = names.DEFAULT_NAMESPACE) -> list:
    return [(name, dims) for ns, name, dims, *_ in widget_metrics(stack) + alarm_metrics(stack)
            if ns == namespace]


def test_the_dashboard_and_the_alarms_are_in_every_stage(every_stage):
    stage, template = every_stage
    stack = Stack(template, {})
    dashboard = stack.resources["Dashboard"]["Properties"]
    assert dashboard["DashboardName"] == "PrometheusTimestreamConnector-us-east-1"
    assert set(alarms_of(stack)) == ALARMS
    assert {a["AlarmName"] for a in alarms_of(stack).values()} == {
        "PrometheusTimestreamConnector-" + name.removesuffix("Alarm") for name in ALARMS}
    status = dashboard_of(stack)["widgets"][0]
    assert status["type"] == "alarm"
    assert sorted(status["properties"]["alarms"]) == sorted("${%s.Arn}" % n for n in ALARMS)
    assert stack.resolve(template["Outputs"]["DashboardURL"]["Value"]).endswith(
        "region=us-east-1#dashboards/dashboard/${Dashboard}")


def test_every_connector_metric_is_one_the_app_emits_on_that_route(every_stage):
    """A metric renamed on either side (names.py or the template) fails here or when
    packaging; the dimensions are exactly Stage (the stage's name) and Route."""
    stage, template = every_stage
    stack = Stack(template, {})
    used = connector_metrics(stack)
    assert used
    for name, dims in used:
        assert list(dims) == list(names.DIMENSIONS), (name, dims)
        assert dims["Stage"] == stage.name  # APIGatewayStageName's default
        assert name in ROUTE_METRICS[dims["Route"]], (name, dims)
    # The app names the API stage serving the request: the template follows the parameter.
    renamed = connector_metrics(Stack(template, {"APIGatewayStageName": "v1"}))
    assert renamed and all(dims["Stage"] == "v1" for _, dims in renamed)
    shown = {(name, dims["Route"]) for name, dims in used}
    timestream_only = {"TimestreamWriteUnits", "LateSamples"}
    # The dashboard shows every metric the app emits, Timestream's on Timestream stages only.
    assert {name for name, _ in shown} == set(names.WRITE_METRICS) | set(names.READ_METRICS) | \
        set(names.COMMON_METRICS) - (set() if stage.backend == "timestream" else timestream_only)


def test_the_namespace_parameter_moves_every_connector_metric(every_stage):
    stage, template = every_stage
    env = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env[names.NAMESPACE_ENV] == {"Ref": "MetricsNamespace"}
    assert template["Parameters"]["MetricsNamespace"]["Default"] == names.DEFAULT_NAMESPACE
    moved = Stack(template, {"MetricsNamespace": "Team/Prometheus"})
    assert connector_metrics(moved, "Team/Prometheus") == connector_metrics(Stack(template, {}))
    assert connector_metrics(moved) == []
    pattern = re.compile(template["Parameters"]["MetricsNamespace"]["AllowedPattern"])
    assert pattern.match("Team/Prometheus") and pattern.match(names.DEFAULT_NAMESPACE)
    assert not pattern.match("AWS/Lambda") and not pattern.match("")
    assert not pattern.match('a"b') and not pattern.match("a b")  # kept JSON- and Sub-safe


def test_a_metric_the_app_does_not_emit_cannot_be_packaged(monkeypatch):
    monkeypatch.setattr(names, "WRITE_METRICS", {
        ("SamplesWritten" if name == "SamplesStored" else name): unit
        for name, unit in names.WRITE_METRICS.items()})
    with pytest.raises(ValueError, match="SamplesStored"):
        stage_merge_template(load_stage("dev"))


def test_function_and_api_metrics_name_what_the_stack_creates(every_stage):
    """AWS/Lambda by the function's name; AWS/ApiGateway by ApiName, the REST API's name: with
    an OpenAPI body and no Name, the body's info.title, and by the API Gateway stage."""
    stage, template = every_stage
    api = template["Resources"]["RestAPI"]
    assert api["Type"] == "AWS::Serverless::Api" and "Name" not in api["Properties"]
    title = api["Properties"]["DefinitionBody"]["info"]["title"]
    for given, api_stage in [({}, stage.name), ({"APIGatewayStageName": "v1"}, "v1")]:
        stack = Stack(template, given)
        metrics = [(ns, name, dims) for ns, name, dims, *_ in widget_metrics(stack)] + \
            alarm_metrics(stack)
        lambdas = [dims for ns, _, dims in metrics if ns == "AWS/Lambda"]
        apis = [dims for ns, _, dims in metrics if ns == "AWS/ApiGateway"]
        assert lambdas and all(d in ({"FunctionName": "${APIHandler}"},
                                     {"FunctionName": {"Ref": "APIHandler"}}) for d in lambdas)
        assert apis and all(d == {"ApiName": title, "Stage": api_stage} for d in apis)
        assert {name for ns, name, _ in metrics if ns == "AWS/ApiGateway"} == {
            "Count", "4XXError", "5XXError", "Latency"}
        assert {name for ns, name, _ in metrics if ns == "AWS/Lambda"} == {
            "Errors", "Throttles", "Duration", "ConcurrentExecutions"}


@pytest.mark.parametrize("given,actions,topic", [
    ({}, None, False),
    ({"AlarmTopicArn": TOPIC_ARN}, [TOPIC_ARN], False),
    ({"AlarmEmail": "oncall@example.com"}, [{"Ref": "AlarmTopic"}], True),
    ({"AlarmTopicArn": TOPIC_ARN, "AlarmEmail": "oncall@example.com"},
     [TOPIC_ARN, {"Ref": "AlarmTopic"}], True)])
def test_alarms_notify_only_a_given_topic_or_email(every_stage, given, actions, topic):
    _, template = every_stage
    stack = Stack(template, given)
    for name, alarm in alarms_of(stack).items():
        assert alarm.get("AlarmActions") == actions and alarm.get("OKActions") == actions, name
    topics = {name: r["Properties"] for name, r in stack.resources.items()
              if r["Type"] == "AWS::SNS::Topic"}
    assert topics == ({"AlarmTopic": {
        "DisplayName": "Prometheus connector alarms",
        "Subscription": [{"Protocol": "email", "Endpoint": "oncall@example.com"}]}}
        if topic else {})


def test_alarm_destination_parameters_refuse_what_cannot_be_one(every_stage):
    _, template = every_stage
    parameters = template["Parameters"]
    topic = re.compile(parameters["AlarmTopicArn"]["AllowedPattern"])
    assert topic.match(TOPIC_ARN) and topic.match("")
    assert not topic.match("oncall") and not topic.match("arn:aws:sqs:us-east-1:123456789012:q")
    email = re.compile(parameters["AlarmEmail"]["AllowedPattern"])
    assert email.match("oncall@example.com") and email.match("")
    assert not email.match("oncall") and not email.match("a b@example.com")


def test_no_samples_stored_fires_on_missing_data_after_no_data_minutes(every_stage):
    stage, template = every_stage
    assert template["Parameters"]["NoDataMinutes"]["Default"] == 15
    for given, minutes in [({}, "15"), ({"NoDataMinutes": 45}, "45")]:
        alarm = alarms_of(Stack(template, given))["NoSamplesStoredAlarm"]
        assert alarm["MetricName"] == "SamplesStored" and alarm["Statistic"] == "Sum"
        assert alarm["Dimensions"] == [{"Name": "Stage", "Value": stage.name},
                                       {"Name": "Route", "Value": "/write"}]
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == \
            (60, minutes, minutes)
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
        assert alarm["TreatMissingData"] == "breaching"
    others = [a for n, a in alarms_of(Stack(template, {})).items() if n != "NoSamplesStoredAlarm"]
    assert all(a["TreatMissingData"] == "notBreaching" for a in others)


def test_loss_and_throttling_alarms(every_stage):
    _, template = every_stage
    alarms = alarms_of(Stack(template, {}))
    rejected, failing = alarms["SamplesRejectedAlarm"], alarms["WritesFailingAlarm"]
    assert (rejected["MetricName"], rejected["Threshold"], rejected["EvaluationPeriods"]) == \
        ("SamplesRejected", 0, 1)
    assert (failing["MetricName"], failing["Threshold"], failing["DatapointsToAlarm"]) == \
        ("SamplesFailed", 0, 3)
    throttles = alarms["BackendThrottlesAlarm"]
    assert (throttles["EvaluationPeriods"], throttles["DatapointsToAlarm"]) == (3, 3)
    [expression] = [q for q in throttles["Metrics"] if q.get("ReturnData")]
    assert expression["Expression"] == "FILL(m0, 0) + FILL(m1, 0)"
    server = alarms["ApiServerErrorsAlarm"]
    assert (server["MetricName"], server["Statistic"], server["Threshold"]) == \
        ("5XXError", "Average", 0.05)


@pytest.mark.parametrize("millis", TIMEOUTS_MS)
def test_the_duration_alarm_sits_below_the_time_a_request_has(packaged, millis):
    """80 % of the shorter of the Lambda timeout and API Gateway's 29 s; the dashboard draws
    it and the timeout."""
    _, _, template, _ = packaged
    stack = Stack(template, {"TimeoutInMillis": millis})
    alarm = alarms_of(stack)["FunctionDurationAlarm"]
    assert (alarm["MetricName"], alarm["ExtendedStatistic"]) == ("Duration", "p99")
    assert alarm["Threshold"] == min(millis, 29000) * 80 // 100
    graph = next(w for w in dashboard_of(stack)["widgets"]
                 if w["properties"].get("title", "").startswith("Lambda duration"))
    lines = {a["label"]: a["value"] for a in graph["properties"]["annotations"]["horizontal"]}
    assert lines == {"Lambda timeout": millis, "FunctionDuration alarm": alarm["Threshold"]}


def without_observability(stage_name: str) -> dict:
    stage = load_stage(stage_name)
    if stage.backend == "influxdb":
        return sigv4.adapt_merge_template(stage, influxdb.adapt_merge_template(
            stage, merge_template(stage)))
    return sigv4.adapt_merge_template(stage, timestream_table.adapt_merge_template(
        vpc.adapt_merge_template(merge_template(stage))))


@pytest.mark.parametrize("stage_name", ["dev", "prod", "influxdb"])
def test_by_default_only_the_dashboard_alarms_and_namespace_are_added(stage_name):
    before = Stack(without_observability(stage_name), {})
    after_template = stage_merge_template(load_stage(stage_name))
    after = Stack(after_template, {})
    assert set(after.resources) - set(before.resources) == {"Dashboard"} | ALARMS
    role = json.dumps(after.resources["ApiHandlerRole"])
    assert "cloudwatch:" not in role  # the app's metrics are log lines (EMF)
    function = copy.deepcopy(after.resources["APIHandler"])
    assert function["Properties"]["Environment"]["Variables"].pop(names.NAMESPACE_ENV) == \
        names.DEFAULT_NAMESPACE
    assert function == before.resources["APIHandler"]
    assert {k: v for k, v in after.resources.items() if k in before.resources and
            k != "APIHandler"} == {k: v for k, v in before.resources.items() if k != "APIHandler"}
    assert set(after_template["Outputs"]) - set(without_observability(stage_name)["Outputs"]) == \
        {"DashboardURL", "AlarmTopic"}
    assert after_template["Outputs"]["AlarmTopic"]["Condition"] == "HasAlarmEmail"
    assert not any(after.conditions.values())


def test_readme_see_it_run_is_what_the_template_does(packaged):
    _, _, template, _ = packaged
    section = readme_section("### See it run")
    overrides = re.search(r'--parameter-overrides "([^"]+)"', section).group(1)
    given = dict(pair.split("=", 1) for pair in overrides.split())
    assert "AlarmEmail" in given and set(given) <= set(template["Parameters"])
    stack = Stack(template, given)
    assert "AlarmTopic" in stack.resources
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms_of(stack).values())
    for name in list(observability.parameters()) + [a.removesuffix("Alarm") for a in ALARMS]:
        assert f"`{name}`" in section, name
    with open(os.path.join(ROOT, "docs", "operations.md")) as handle:
        operations = handle.read()
    for name in [a.removesuffix("Alarm") for a in ALARMS] + list(names.WRITE_METRICS) + \
            list(names.READ_METRICS) + list(names.COMMON_METRICS):
        assert f"`{name}`" in operations, name
