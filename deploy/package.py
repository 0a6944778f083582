"""`make package STAGE=dev`: `chalice package` with a merge template that gives the
stack the original connector's parameters and outputs.

``python -m deploy.package --stage dev`` writes ``out/dev/``: ``sam.yaml`` (the
SAM/CloudFormation template) and ``deployment.zip`` (the Lambda code, with the native modules
of both architectures the ``Architecture`` parameter offers: deploy/architectures.py).
Parameter defaults come from the stage in ``.chalice/config.json``.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

from chalicelib.storage.timestream.iam import ANY, TABLE, actions_on
from chalicelib.version import VERSION
from deploy import architectures, influxdb, observability, sar, sigv4, timestream_table, vpc
from deploy.stage import ROOT, Stage, load_stage

LOG_LEVELS = ["info", "debug", "warn", "error"]
# API Gateway REST integrations time out after at most 29 s.
MAX_INTEGRATION_MILLIS = 29_000
TIMEOUTS_MS = [3_000, 5_000, 10_000, 15_000, 20_000, 25_000, 29_000, 30_000, 45_000, 60_000,
               90_000, 120_000, 300_000, 600_000, 900_000]
DEADLINE_MARGIN_MS = 2_000  # the app answers this long before the first timeout hits


def timeout_mapping() -> dict:
    """CloudFormation cannot divide: every allowed TimeoutInMillis maps to its derived values."""
    mapping = {}
    for millis in TIMEOUTS_MS:
        integration = min(millis, MAX_INTEGRATION_MILLIS)
        mapping[str(millis)] = {
            "FunctionSeconds": millis // 1000,
            "IntegrationMillis": integration,
            "DeadlineSeconds": str((integration - DEADLINE_MARGIN_MS) / 1000),
        }
    return mapping


def parameters(stage: Stage) -> dict:
    """The original connector's parameters, with this stage's defaults."""
    return {
        "APIGatewayStageName": {
            "Type": "String", "Default": stage.api_gateway_stage,
            "AllowedPattern": "^[A-Za-z0-9_-]+$",
            "Description": "The stage name of the API Gateway. Stage names can contain only "
                           "alphanumeric characters, hyphens, and underscores."},
        "DefaultDatabase": {
            "Type": "String", "Default": stage.database, "MinLength": 3,
            "Description": "The Timestream database samples are written to and read from."},
        "DefaultTable": {
            "Type": "String", "Default": stage.table, "MinLength": 3,
            "Description": "The Timestream table samples are written to and read from."},
        "ExecutionPolicyName": {
            "Type": "String", "Default": "LambdaExecutionPolicy",
            "Description": "The name of the execution policy created for AWS Lambda."},
        "LogLevel": {
            "Type": "String", "Default": stage.log_level, "AllowedValues": LOG_LEVELS,
            "Description": "The connector's log level."},
        "MemorySize": {
            "Type": "Number", "Default": stage.memory_size, "MinValue": 128, "MaxValue": 10240,
            "Description": "The memory size of the AWS Lambda function."},
        "ReadThrottlingBurstLimit": {
            "Type": "Number", "Default": 1200, "MinValue": 0,
            "Description": "The number of burst read requests per second that API Gateway "
                           "permits."},
        "TimeoutInMillis": {
            "Type": "Number", "Default": stage.timeout_seconds * 1000,
            "AllowedValues": TIMEOUTS_MS,
            "Description": "How long the connector may run on AWS Lambda per request. The "
                           "API Gateway integration waits at most 29000 of it."},
        "WriteThrottlingBurstLimit": {
            "Type": "Number", "Default": 1200, "MinValue": 0,
            "Description": "The number of burst write requests per second that API Gateway "
                           "permits."},
        **architectures.parameters(),
    }


def _sub(text: str) -> dict:
    return {"Fn::Sub": text}


def _timeout(key: str) -> dict:
    return {"Fn::FindInMap": ["Timeouts", {"Ref": "TimeoutInMillis"}, key]}


def execution_policy_document() -> dict:
    """The function role's policy, on this stack's own log group and table."""
    log_group = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:" \
                "/aws/lambda/${AWS::StackName}-APIHandler-*"
    table = "arn:${AWS::Partition}:timestream:${AWS::Region}:${AWS::AccountId}:" \
            "database/${DefaultDatabase}/table/${DefaultTable}"
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [_sub(log_group), _sub(log_group + ":*")]},
        {"Effect": "Allow", "Action": actions_on(TABLE), "Resource": _sub(table)},
        {"Effect": "Allow", "Action": actions_on(ANY), "Resource": "*"},
    ]}


def merge_template(stage: Stage) -> dict:
    """What `chalice package --merge-template` adds to Chalice's own template."""
    url = "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${APIGatewayStageName}"
    integration = {"x-amazon-apigateway-integration": {
        "timeoutInMillis": _timeout("IntegrationMillis")}}
    return {
        "Parameters": parameters(stage),
        "Mappings": {"Timeouts": timeout_mapping()},
        "Resources": {
            "APIHandler": {"Properties": {
                "MemorySize": {"Ref": "MemorySize"},
                "Timeout": _timeout("FunctionSeconds"),
                "Architectures": [{"Ref": "Architecture"}],
                "Environment": {"Variables": {
                    "DEFAULT_DATABASE": {"Ref": "DefaultDatabase"},
                    "DEFAULT_TABLE": {"Ref": "DefaultTable"},
                    "LOG_LEVEL": {"Ref": "LogLevel"},
                    "REQUEST_DEADLINE_SECONDS": _timeout("DeadlineSeconds"),
                    "CONNECTOR_VERSION": VERSION,
                }},
            }},
            "ApiHandlerRole": {"Properties": {"Policies": [{
                "PolicyName": {"Ref": "ExecutionPolicyName"},
                "PolicyDocument": execution_policy_document(),
            }]}},
            "RestAPI": {"Properties": {
                "StageName": {"Ref": "APIGatewayStageName"},
                "EndpointConfiguration": "REGIONAL",
                "MethodSettings": [
                    {"HttpMethod": "POST", "ResourcePath": "/~1read",
                     "ThrottlingBurstLimit": {"Ref": "ReadThrottlingBurstLimit"}},
                    {"HttpMethod": "POST", "ResourcePath": "/~1write",
                     "ThrottlingBurstLimit": {"Ref": "WriteThrottlingBurstLimit"}},
                ],
                "DefinitionBody": {"paths": {"/read": {"post": integration},
                                             "/write": {"post": integration}}},
            }},
        },
        "Outputs": {
            "ConnectorVersion": {"Description": "The connector's version.", "Value": VERSION},
            "EndpointURL": {"Value": _sub(url + "/")},
            "InvokeReadURL": {"Description": "Remote read URL for Prometheus",
                              "Value": _sub(url + "/read")},
            "InvokeWriteURL": {"Description": "Remote write URL for Prometheus",
                               "Value": _sub(url + "/write")},
            "DefaultDatabase": {"Description": "The database destination for queries and "
                                               "ingestion.", "Value": {"Ref": "DefaultDatabase"}},
            "DefaultTable": {"Description": "The database table destination for queries and "
                                            "ingestion.", "Value": {"Ref": "DefaultTable"}},
        },
    }


def stage_merge_template(stage: Stage) -> dict:
    """The merge template of the stage's backend: InfluxDB's (deploy/influxdb.py), or
    Timestream's with the optional private deployment (deploy/vpc.py) and the optional
    database, table and rejected-data bucket (deploy/timestream_table.py); either with the
    dashboard and alarms (deploy/observability.py) and the optional SigV4 authorization
    (deploy/sigv4.py); with the Serverless Application Repository metadata (deploy/sar.py)."""
    template = merge_template(stage)
    template["Metadata"] = sar.metadata(stage, sar.source_code_url())
    if stage.backend == "influxdb":
        template = influxdb.adapt_merge_template(stage, template)
    else:
        template = timestream_table.adapt_merge_template(vpc.adapt_merge_template(template))
    return observability.adapt_merge_template(stage, sigv4.adapt_merge_template(stage, template))


def package(stage_name: str, out_dir: str) -> str:
    """Run `chalice package` for the stage into ``out_dir``; returns the template path."""
    stage = load_stage(stage_name)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    merge_path = os.path.join(os.path.dirname(os.path.abspath(out_dir)),
                              f"{stage_name}-merge-template.json")
    os.makedirs(os.path.dirname(merge_path), exist_ok=True)
    with open(merge_path, "w") as handle:
        json.dump(stage_merge_template(stage), handle, indent=2)
    chalice = os.path.join(os.path.dirname(sys.executable), "chalice")
    subprocess.run([chalice, "package", "--stage", stage_name, "--pkg-format", "cloudformation",
                    "--template-format", "yaml", "--merge-template", merge_path, out_dir],
                   cwd=ROOT, check=True)
    runtime = f"python{sys.version_info.major}.{sys.version_info.minor}"  # as Chalice picks it
    architectures.add_aarch64(os.path.join(out_dir, "deployment.zip"),
                              architectures.build_arm64(ROOT, runtime), runtime)
    for name in (sar.LICENSE_FILE, sar.README_FILE):  # the metadata's LicenseUrl and ReadmeUrl
        shutil.copy(os.path.join(ROOT, name), os.path.join(out_dir, name))
    return os.path.join(out_dir, "sam.yaml")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--out", help="default: out/<stage>")
    args = parser.parse_args()
    out = args.out or os.path.join(ROOT, "out", args.stage)
    try:
        print(package(args.stage, out))
    except ValueError as exc:
        parser.error(str(exc))


if __name__ == "__main__":
    main()
