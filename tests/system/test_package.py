"""`make package`: the SAM template (seed parameters and outputs, wired; cfn-lint clean)
and the Lambda zip (Linux wheels of the native dependencies, importable)."""
import base64
import json
import os
import re
import subprocess
import sys
import zipfile

import pytest
import yaml

from deploy.package import TIMEOUTS_MS, package
from harness.processes import ROOT
from tests.support.cloudformation import CfnLoader

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


def glibc_needed(platform: str) -> tuple:
    """The glibc a manylinux x86_64 wheel tag needs; (99,) for anything else."""
    if platform == "manylinux2014_x86_64":
        return (2, 17)
    match = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", platform)
    return (int(match.group(1)), int(match.group(2))) if match else (99,)


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
              "assert snappy.uncompress(snappy.compress(b'ok')) == b'ok'; "
              "assert re2.fullmatch('(a+)+b', 'aab'); "
              f"print(json.dumps(app.app({event!r}, None)))")
    env = {"PATH": os.environ.get("PATH", ""), "STORAGE_BACKEND": "timestream",
           "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    response = json.loads(result.stdout.strip().splitlines()[-1])
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
