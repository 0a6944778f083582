"""Deploying the `influxdb` stage: `make package` (SAM template with the InfluxDB endpoint,
database/retention policy, secret ARN and VpcConfig; cfn-lint clean; the zip writes to and
reads from a real influxd on the Lambda path) and `make policies` (the secret and the VPC
attachment, nothing more; parliament clean)."""
import base64
import json
import os
import subprocess
import sys
import zipfile

import pytest
import yaml

from chalicelib.protocol import codec
from deploy.package import package
from deploy.policies import dumps, generate
from deploy.stage import load_stage
from harness.processes import ROOT
from harness.remote import read_request, write_request
from tests.support.cloudformation import CfnLoader
from tests.system.test_policies import audit

ACCOUNT, REGION = "123456789012", "eu-west-1"
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:InfluxDB-auth-parameters-x-AbCdEf"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    out = tmp_path_factory.mktemp("package") / "influxdb"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    path = package("influxdb", str(out))
    with open(path) as handle:
        return path, yaml.load(handle, Loader=CfnLoader), out / "deployment.zip"


def test_template_passes_cfn_lint(packaged):
    path, _, _ = packaged
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "cfn-lint"),
                             "--format", "parseable", path], capture_output=True, text=True)
    errors = [line for line in result.stdout.splitlines() if ":E" in line or line.startswith("E")]
    assert errors == [] and result.returncode in (0, 4, 8), result.stdout + result.stderr


def test_parameters_name_the_instance_and_its_network_and_are_wired(packaged):
    _, template, _ = packaged
    parameters = template["Parameters"]
    assert parameters["InfluxDatabase"]["Default"] == "prometheus"
    assert parameters["SubnetIds"]["Type"] == "List<AWS::EC2::Subnet::Id>"
    assert parameters["SecurityGroupIds"]["Type"] == "List<AWS::EC2::SecurityGroup::Id>"
    assert {"InfluxEndpoint", "InfluxRetentionPolicy", "InfluxSecretArn"} <= set(parameters)
    assert "DefaultTable" not in parameters
    function = template["Resources"]["APIHandler"]["Properties"]
    env = function["Environment"]["Variables"]
    # The connector's own credentials (the secret); with EnableSigV4Auth=true, for callers API
    # Gateway authenticated with IAM only.
    assert env["STORAGE_BACKEND"] == "influxdb"
    assert env["AUTH_MODE"] == {"Fn::If": ["SigV4AuthEnabled", "sigv4", "role"]}
    assert env["INFLUXDB_URL"] == {"Ref": "InfluxEndpoint"}
    assert env["INFLUXDB_DATABASE"] == {"Ref": "InfluxDatabase"}
    assert env["INFLUXDB_RETENTION_POLICY"] == {"Ref": "InfluxRetentionPolicy"}
    assert env["INFLUXDB_SECRET_ARN"] == {"Ref": "InfluxSecretArn"}
    assert "DEFAULT_TABLE" not in env
    assert function["VpcConfig"] == {"SubnetIds": {"Ref": "SubnetIds"},
                                     "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}
    assert {"InvokeReadURL", "InvokeWriteURL", "InfluxDatabase"} <= set(template["Outputs"])


def test_role_reads_the_one_secret_and_attaches_to_the_vpc_nothing_more(packaged):
    _, template, _ = packaged
    [policy] = template["Resources"]["ApiHandlerRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in s["Action"]}
    assert not any(a.startswith("timestream:") for a in actions)
    secret = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
    assert secret == [{"Sid": "ReadTheInfluxDBSecret", "Effect": "Allow",
                       "Action": ["secretsmanager:GetSecretValue"],
                       "Resource": {"Ref": "InfluxSecretArn"}}]
    assert actions == {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                       "secretsmanager:GetSecretValue", "ec2:CreateNetworkInterface",
                       "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
                       "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}


def test_packaged_zip_writes_to_and_reads_from_influxdb_on_the_lambda_path(packaged, tmp_path,
                                                                           influx_server):
    _, _, zip_path = packaged
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(tmp_path)
    headers = {"content-type": "application/x-protobuf", "content-encoding": "snappy"}

    def event(path, message):
        return {"requestContext": {"resourcePath": path, "httpMethod": "POST",
                                   "stage": "influxdb"},
                "headers": headers, "pathParameters": {}, "multiValueQueryStringParameters": None,
                "stageVariables": {}, "isBase64Encoded": True,
                "body": base64.b64encode(codec.encode_message(message)).decode()}

    write = event("/write", write_request(({"__name__": "packaged", "a": "b"}, [(5, 2.5)])))
    read = event("/read", read_request((0, 10, [(0, "__name__", "packaged")])))
    # -S: no site-packages, so every import comes from the zip.
    script = ("import sys; sys.path.insert(0, '.'); import json, app; "
              f"print(json.dumps([app.app({write!r}, None), app.app({read!r}, None)]))")
    env = {"PATH": os.environ.get("PATH", ""), "STORAGE_BACKEND": "influxdb", "AUTH_MODE": "role",
           "INFLUXDB_URL": influx_server.url, "INFLUXDB_DATABASE": "packaged",
           "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run([sys.executable, "-I", "-S", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    wrote, answered = json.loads(result.stdout.strip().splitlines()[-1])
    assert wrote["statusCode"] == 204, wrote
    assert answered["statusCode"] == 200, answered
    from chalicelib.protocol.prompb import remote_pb2
    response = remote_pb2.ReadResponse()
    response.ParseFromString(codec.decompress(base64.b64decode(answered["body"]), 1 << 20))
    [series] = response.results[0].timeseries
    assert [(s.timestamp, s.value) for s in series.samples] == [(5, 2.5)]


def test_make_policies_grants_the_secret_and_the_vpc_only():
    policies = generate(load_stage("influxdb"), ACCOUNT, REGION, SECRET)
    # No Prometheus user policy: Prometheus sends no AWS keys (with EnableSigV4Auth=true, the
    # SigV4 proxy's identity may invoke the API, nothing more).
    assert sorted(policies) == ["deployment-policy.json", "execution-policy.json",
                                "prometheus-sigv4-policy.json"]
    for name, policy in policies.items():
        assert audit(policy) == set(), name
    statements = policies["execution-policy.json"]["Statement"]
    resources = {s["Sid"]: s["Resource"] for s in statements}
    assert resources["ReadTheInfluxDBSecret"] == SECRET
    assert resources["WriteOwnLogs"][0].startswith(f"arn:aws:logs:{REGION}:{ACCOUNT}:")
    assert [s["Sid"] for s in statements] == ["WriteOwnLogs", "ReadTheInfluxDBSecret",
                                              "AttachToTheVpc", "ManageTheInterfaces",
                                              "ListTheInterfaces"]
    assert resources["AttachToTheVpc"] == [
        f"arn:aws:ec2:{REGION}:{ACCOUNT}:{kind}/*"
        for kind in ("network-interface", "subnet", "security-group")]
    assert resources["ListTheInterfaces"] == "*"  # the action takes no resource ARN
    deployment = {a for s in policies["deployment-policy.json"]["Statement"] for a in s["Action"]}
    assert {"ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeVpcs"} <= deployment


@pytest.mark.parametrize("secret", ["", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
                                    f"arn:aws:secretsmanager:{REGION}:999999999999:secret:x",
                                    "arn:aws:s3:::bucket"])
def test_a_missing_or_foreign_secret_arn_is_refused(secret):
    with pytest.raises(ValueError, match="SECRET_ARN"):
        generate(load_stage("influxdb"), ACCOUNT, REGION, secret)


def test_make_policies_command_takes_the_secret_arn(tmp_path):
    subprocess.run(["make", "--no-print-directory", "policies", f"VENV={sys.prefix}",
                    "STAGE=influxdb", f"ACCOUNT={ACCOUNT}", f"REGION={REGION}",
                    f"SECRET_ARN={SECRET}", f"CHALICE_DIR={tmp_path}"],  # not the committed file
                   cwd=ROOT, check=True, capture_output=True)
    with open(os.path.join(ROOT, "out", "policies", "execution-policy.json")) as handle:
        assert SECRET in handle.read()


def test_chalice_deploy_policy_file_is_generated():
    path = os.path.join(ROOT, ".chalice", "policy-influxdb.json")
    with open(path) as handle:
        assert handle.read() == dumps(generate(load_stage("influxdb"), "*", "*")[
            "execution-policy.json"]), f"{path} is stale: regenerate it from deploy.policies"
