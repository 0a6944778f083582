"""Least-privilege IAM policies generated from a stage's configuration.

``python -m deploy.policies --stage dev --account 123456789012 --region us-east-1``
writes ``out/policies/``:

- ``execution-policy.json``: the Lambda function's role (its own log group;
  Timestream on the stage's table only; DescribeEndpoints, which takes no resource).
- ``prometheus-user-policy.json``: the IAM user whose access keys Prometheus sends.
- ``deployment-policy.json``: the user who runs ``chalice deploy`` or deploys the
  packaged SAM template (the original connector's list, trimmed to what this stack creates).

With ``--account '*' --region '*'`` it prints the policy kept as
``.chalice/policy-<stage>.json``, which ``chalice deploy`` attaches to the role.
"""
import argparse
import json
import os
import re
from typing import Dict

from deploy import influxdb
from deploy.stage import ROOT, Stage, load_stage

VERSION = "2012-10-17"
ACCOUNT = re.compile(r"^(\d{12}|\*)$")
REGION = re.compile(r"^([a-z]{2}(-gov)?-[a-z]+-\d|\*)$")


def table_arn(stage: Stage, account: str, region: str) -> str:
    return (f"arn:aws:timestream:{region}:{account}:database/{stage.database}"
            f"/table/{stage.table}")


def timestream_statements(stage: Stage, account: str, region: str) -> list:
    return [
        {"Sid": "ReadWriteTheTable", "Effect": "Allow",
         "Action": ["timestream:WriteRecords", "timestream:Select"],
         "Resource": table_arn(stage, account, region)},
        {"Sid": "DiscoverEndpoints", "Effect": "Allow",
         "Action": ["timestream:DescribeEndpoints"], "Resource": "*"},
    ]


def execution_policy(stage: Stage, account: str, region: str) -> dict:
    """The Lambda role's policy (for `chalice deploy`; the SAM template has its own copy)."""
    log_group = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{stage.function_name}"
    return {"Version": VERSION, "Statement": [
        {"Sid": "WriteOwnLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [log_group, log_group + ":*"]},
        *timestream_statements(stage, account, region)]}


def prometheus_user_policy(stage: Stage, account: str, region: str) -> dict:
    """The policy of the IAM user whose keys Prometheus sends in basic_auth."""
    return {"Version": VERSION, "Statement": timestream_statements(stage, account, region)}


def deployment_policy(stage: Stage, account: str, region: str) -> dict:
    """What deploying this stack needs, with chalice deploy or the SAM template."""
    def arn(service: str, resource: str) -> str:
        return f"arn:aws:{service}:{region}:{account}:{resource}"
    prefix = stage.app_name
    return {"Version": VERSION, "Statement": [
        {"Sid": "ListAndDescribe", "Effect": "Allow",
         "Action": ["cloudformation:ListStacks", "cloudformation:GetTemplateSummary",
                    "iam:ListRoles", "lambda:ListFunctions"],
         "Resource": "*"},
        {"Sid": "ApiGateway", "Effect": "Allow",
         "Action": ["apigateway:GET", "apigateway:POST", "apigateway:PUT", "apigateway:PATCH",
                    "apigateway:DELETE"],
         "Resource": [f"arn:aws:apigateway:{region}::/restapis",
                      f"arn:aws:apigateway:{region}::/restapis/*",
                      f"arn:aws:apigateway:{region}::/tags/*"]},
        {"Sid": "FunctionRole", "Effect": "Allow",
         "Action": ["iam:GetRole", "iam:CreateRole", "iam:TagRole", "iam:PutRolePolicy",
                    "iam:GetRolePolicy", "iam:DeleteRolePolicy", "iam:PassRole"],
         "Resource": [f"arn:aws:iam::{account}:role/{prefix}-*",
                      f"arn:aws:iam::{account}:role/{prefix}*-ApiHandlerRole-*"]},
        {"Sid": "Function", "Effect": "Allow",
         "Action": ["lambda:CreateFunction", "lambda:GetFunction",
                    "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
                    "lambda:UpdateFunctionConfiguration", "lambda:AddPermission",
                    "lambda:RemovePermission", "lambda:GetPolicy", "lambda:TagResource",
                    "lambda:ListTags"],
         "Resource": [arn("lambda", f"function:{prefix}-*"),
                      arn("lambda", f"function:{prefix}*-APIHandler-*")]},
        {"Sid": "Stack", "Effect": "Allow",
         "Action": ["cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet",
                    "cloudformation:ExecuteChangeSet", "cloudformation:DescribeStacks",
                    "cloudformation:DescribeStackEvents", "cloudformation:GetTemplate"],
         "Resource": [arn("cloudformation", f"stack/{prefix}*/*"),
                      f"arn:aws:cloudformation:{region}:aws:transform/Serverless-2016-10-31"]},
        {"Sid": "PackageBucket", "Effect": "Allow",
         "Action": ["s3:CreateBucket", "s3:GetObject", "s3:PutObject", "s3:GetBucketLocation",
                    "s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:PutBucketTagging",
                    "s3:PutEncryptionConfiguration", "s3:PutBucketVersioning",
                    "s3:PutBucketPublicAccessBlock"],
         "Resource": ["arn:aws:s3:::aws-sam-cli-managed-default*"]},
    ]}


POLICIES = {
    "execution-policy.json": execution_policy,
    "prometheus-user-policy.json": prometheus_user_policy,
    "deployment-policy.json": deployment_policy,
}


def generate(stage: Stage, account: str, region: str,
             secret_arn: str = "") -> Dict[str, dict]:
    """Every policy, by file name; ValueError on a malformed account or region (or, for an
    InfluxDB stage, secret ARN)."""
    if not ACCOUNT.match(account):
        raise ValueError(f"ACCOUNT must be a 12-digit AWS account id, got {account!r}")
    if not REGION.match(region):
        raise ValueError(f"REGION must be an AWS region such as us-east-1, got {region!r}")
    if stage.backend == "influxdb":
        return influxdb_policies(stage, account, region, secret_arn)
    return {name: build(stage, account, region) for name, build in POLICIES.items()}


def influxdb_policies(stage: Stage, account: str, region: str, secret_arn: str) -> dict:
    """A Timestream for InfluxDB stage: the function's role reads the one secret and attaches
    to the VPC; Prometheus sends no AWS keys, so there is no Prometheus user policy.
    With account and region ``*`` (the .chalice file for `chalice deploy`) and no
    secret ARN, the secret is left as a wildcard to replace with ``make policies``' output."""
    if account == "*" and not secret_arn:
        secret = "arn:aws:secretsmanager:*:*:secret:*"
    else:
        secret = influxdb.check_secret_arn(secret_arn, account, region)
    deployment = deployment_policy(stage, account, region)
    deployment["Statement"] += influxdb.deployment_statements()
    return {
        "execution-policy.json": influxdb.execution_policy(
            execution_policy(stage, account, region)["Statement"], secret, account, region),
        "deployment-policy.json": deployment,
    }


def dumps(policy: dict) -> str:
    return json.dumps(policy, indent=2) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--secret-arn", default="",
                        help="InfluxDB stages: the ARN of the InfluxDB credentials secret")
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "policies"))
    args = parser.parse_args()
    try:
        policies = generate(load_stage(args.stage), args.account, args.region, args.secret_arn)
    except ValueError as exc:
        parser.error(str(exc))
    os.makedirs(args.out, exist_ok=True)
    for name, policy in policies.items():
        with open(os.path.join(args.out, name), "w") as handle:
            handle.write(dumps(policy))
        print(os.path.join(args.out, name))


if __name__ == "__main__":
    main()
