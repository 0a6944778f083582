"""Least-privilege IAM policies generated from a stage's configuration.

``python -m deploy.policies --stage dev --account 123456789012 --region us-east-1``
writes ``out/policies/``:

- ``execution-policy.json``: the Lambda function's role (its own log group;
  Timestream on the stage's table only; DescribeEndpoints, which takes no resource).
- ``prometheus-user-policy.json``: the IAM user whose access keys Prometheus sends.
- ``prometheus-sigv4-policy.json``: with ``EnableSigV4Auth=true``, the identity a SigV4 proxy
  beside Prometheus signs with (``execute-api:Invoke`` on ``POST /write`` and ``POST /read`` of
  the stage; ``--api-id``: the stack's ``RestAPIId``, default any API): deploy/sigv4.py.
- ``deployment-policy.json``: the user who runs ``chalice deploy`` or deploys the
  packaged SAM template (the original connector's list, trimmed to what this stack creates, and
  the stack's dashboard, alarms and alarm topic: deploy/observability.py), what CloudFormation
  needs to delete them again (a failed first create rolls back), and on Timestream stages
  creating and deleting the stage's database and table; with ``--vpc``, also
  what the SAM template's VPC parameters need (deploy/vpc.py); with ``--create-table``, what
  creating the database, table and rejected-data bucket needs (deploy/timestream_table.py).

It also writes the execution policy to the stage's ``iam_policy_file``
(``.chalice/policy-<stage>.json``), the file ``chalice deploy`` attaches to the role: what
``make policies`` prints is what gets deployed. The committed file is the one for
``--account '*' --region '*'``.
"""
import argparse
import json
import os
import re
from typing import Dict

from chalicelib.storage.timestream.iam import ANY, TABLE, actions_on
from deploy import influxdb, observability, sigv4, timestream_table, vpc
from deploy.stage import ROOT, Stage, load_stage

VERSION = "2012-10-17"
STACK_NAME = "PrometheusTimestreamConnector"  # the README's `sam deploy --stack-name`
# `sam deploy --resolve-s3` creates this stack, holding the artifact bucket
# aws-sam-cli-managed-default-samclisourcebucket-<random>.
SAM_MANAGED_STACK = "aws-sam-cli-managed-default"
STACK = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
ACCOUNT = re.compile(r"^(\d{12}|\*)$")
REGION = re.compile(r"^([a-z]{2}(-gov)?-[a-z]+-\d|\*)$")
API_ID = re.compile(r"^([a-z0-9]{10}|\*)$")  # a REST API id, as in the RestAPIId output


def table_arn(stage: Stage, account: str, region: str) -> str:
    return (f"arn:aws:timestream:{region}:{account}:database/{stage.database}"
            f"/table/{stage.table}")


def timestream_statements(stage: Stage, account: str, region: str) -> list:
    """What the connector's Timestream calls need (chalicelib/storage/timestream/iam.py)."""
    return [
        {"Sid": "ReadWriteTheTable", "Effect": "Allow", "Action": actions_on(TABLE),
         "Resource": table_arn(stage, account, region)},
        {"Sid": "ActionsWithoutResource", "Effect": "Allow", "Action": actions_on(ANY),
         "Resource": "*"},
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


def database_statements(stage: Stage, account: str, region: str) -> list:
    """The README's `aws timestream-write` steps the deploying user runs: creating the stage's
    database and table before the first deploy, deleting them when cleaning up (nothing else:
    the verification queries run with the Prometheus user's keys)."""
    database = f"arn:aws:timestream:{region}:{account}:database/{stage.database}"
    return [
        {"Sid": "CreateAndDeleteTheDatabaseAndTable", "Effect": "Allow",
         "Action": ["timestream:CreateDatabase", "timestream:DescribeDatabase",
                    "timestream:DeleteDatabase", "timestream:CreateTable",
                    "timestream:DescribeTable", "timestream:DeleteTable"],
         "Resource": [database, table_arn(stage, account, region)]},
        {"Sid": "DiscoverTimestreamEndpoints", "Effect": "Allow",
         "Action": ["timestream:DescribeEndpoints"], "Resource": "*"},
    ]


def deployment_policy(stage: Stage, account: str, region: str,
                      stack_name: str = STACK_NAME) -> dict:
    """What deploying this stack needs: `chalice deploy` (role and function named after the
    app), or `sam deploy --stack-name <stack_name> --resolve-s3` (role and function named
    after the stack, plus SAM's own managed stack and its artifact bucket); and what
    CloudFormation, acting as the deploying user, needs to delete them again (a failed first
    create rolls back; `sam delete`, `chalice delete`)."""
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
                    "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:DeleteRolePolicy",
                    "iam:DeleteRole", "iam:PassRole"],
         "Resource": [f"arn:aws:iam::{account}:role/{prefix}-*",
                      f"arn:aws:iam::{account}:role/{stack_name}-ApiHandlerRole-*"]},
        {"Sid": "Function", "Effect": "Allow",
         "Action": ["lambda:CreateFunction", "lambda:GetFunction",
                    "lambda:GetFunctionConfiguration", "lambda:UpdateFunctionCode",
                    "lambda:UpdateFunctionConfiguration", "lambda:AddPermission",
                    "lambda:RemovePermission", "lambda:GetPolicy", "lambda:TagResource",
                    "lambda:ListTags", "lambda:DeleteFunction"],
         "Resource": [arn("lambda", f"function:{prefix}-*"),
                      arn("lambda", f"function:{stack_name}-APIHandler-*")]},
        {"Sid": "Stack", "Effect": "Allow",
         "Action": ["cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet",
                    "cloudformation:ExecuteChangeSet", "cloudformation:DescribeStacks",
                    "cloudformation:DescribeStackEvents", "cloudformation:GetTemplate",
                    "cloudformation:DeleteStack"],
         "Resource": [arn("cloudformation", f"stack/{stack_name}/*"),
                      arn("cloudformation", f"stack/{SAM_MANAGED_STACK}/*"),
                      f"arn:aws:cloudformation:{region}:aws:transform/Serverless-2016-10-31"]},
        {"Sid": "PackageBucket", "Effect": "Allow",
         "Action": ["s3:CreateBucket", "s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                    "s3:ListBucket", "s3:GetBucketLocation",
                    "s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:PutBucketTagging",
                    "s3:PutEncryptionConfiguration", "s3:PutBucketVersioning",
                    "s3:PutBucketPublicAccessBlock"],
         "Resource": [f"arn:aws:s3:::{SAM_MANAGED_STACK}-samclisourcebucket-*",
                      f"arn:aws:s3:::{SAM_MANAGED_STACK}-samclisourcebucket-*/*"]},
        *observability.deployment_statements(account, region, stack_name),
    ]}


POLICIES = {
    "execution-policy.json": execution_policy,
    "prometheus-user-policy.json": prometheus_user_policy,
}


def generate(stage: Stage, account: str, region: str, secret_arn: str = "",
             stack_name: str = STACK_NAME, in_vpc: bool = False,
             create_table: bool = False, api_id: str = "*") -> Dict[str, dict]:
    """Every policy, by file name; ValueError on a malformed account, region, stack name or
    API id (or, for an InfluxDB stage, secret ARN). ``in_vpc``: a Timestream stage deployed
    with the template's VPC parameters (an InfluxDB stage always is); ``create_table``: with
    the template's parameters that create the database and table; ``api_id``: the API the
    SigV4 policy may invoke."""
    if not ACCOUNT.match(account):
        raise ValueError(f"ACCOUNT must be a 12-digit AWS account id, got {account!r}")
    if not REGION.match(region):
        raise ValueError(f"REGION must be an AWS region such as us-east-1, got {region!r}")
    if not STACK.match(stack_name):
        raise ValueError(f"STACK_NAME must be a CloudFormation stack name, got {stack_name!r}")
    if not API_ID.match(api_id):
        raise ValueError(f"API_ID must be the stack's RestAPIId output (10 lower-case letters "
                         f"and digits), got {api_id!r}")
    invoke = {"prometheus-sigv4-policy.json": sigv4.invoke_policy(stage, account, region, api_id)}
    if stage.backend == "influxdb":
        return {**influxdb_policies(stage, account, region, secret_arn, stack_name), **invoke}
    deployment = deployment_policy(stage, account, region, stack_name)
    deployment["Statement"] += database_statements(stage, account, region)
    if in_vpc:
        deployment["Statement"] += vpc.deployment_statements(account, region)
    if create_table:
        deployment["Statement"] += timestream_table.deployment_statements(
            stage, account, region, stack_name)
    return {**{name: build(stage, account, region) for name, build in POLICIES.items()},
            "deployment-policy.json": deployment, **invoke}


def influxdb_policies(stage: Stage, account: str, region: str, secret_arn: str,
                      stack_name: str = STACK_NAME) -> dict:
    """A Timestream for InfluxDB stage: the function's role reads the one secret and attaches
    to the VPC; Prometheus sends no AWS keys, so there is no Prometheus user policy.
    With account and region ``*`` (the .chalice file for `chalice deploy`) and no
    secret ARN, the secret is left as a wildcard to replace with ``make policies``' output."""
    if account == "*" and not secret_arn:
        secret = "arn:aws:secretsmanager:*:*:secret:*"
    else:
        secret = influxdb.check_secret_arn(secret_arn, account, region)
    deployment = deployment_policy(stage, account, region, stack_name)
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
    parser.add_argument("--stack-name", default=STACK_NAME)
    parser.add_argument("--vpc", action="store_true",
                        help="Timestream stages: the deployer may also create the VPC "
                             "endpoints and VpcConfig of the template's VPC parameters")
    parser.add_argument("--create-table", action="store_true",
                        help="Timestream stages: the deployer may also create the database, "
                             "table and rejected-data bucket of the template's parameters")
    parser.add_argument("--api-id", default="*",
                        help="the stack's RestAPIId output: the API the SigV4 policy may invoke")
    parser.add_argument("--out", default=os.path.join(ROOT, "out", "policies"))
    parser.add_argument("--chalice-dir", default=os.path.join(ROOT, ".chalice"),
                        help="where the stage's iam_policy_file is (chalice deploy attaches it)")
    args = parser.parse_args()
    try:
        stage = load_stage(args.stage)
        policies = generate(stage, args.account, args.region, args.secret_arn, args.stack_name,
                            args.vpc, args.create_table, args.api_id)
    except ValueError as exc:
        parser.error(str(exc))
    os.makedirs(args.out, exist_ok=True)
    paths = {os.path.join(args.out, name): policy for name, policy in policies.items()}
    # The very policy `chalice deploy` attaches to the function's role.
    paths[os.path.join(args.chalice_dir, stage.policy_file)] = policies["execution-policy.json"]
    for path, policy in paths.items():
        with open(path, "w") as handle:
            handle.write(dumps(policy))
        print(path)


if __name__ == "__main__":
    main()
