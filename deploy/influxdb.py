"""Deployment of a Timestream for InfluxDB stage (STORAGE_BACKEND=influxdb).

The function runs inside the VPC of the InfluxDB instance (VpcConfig: subnets and a
security group that may reach the instance on its port) and reads the instance's
credentials from the AWS Secrets Manager secret named by ``InfluxSecretArn``. So its
role gets exactly: its own logs, ``secretsmanager:GetSecretValue`` on that secret, and
the network-interface actions Lambda needs to attach to a VPC (the actions of AWS's
``AWSLambdaVPCAccessExecutionRole``, scoped to the account and region's network
interfaces, subnets and security groups; DescribeNetworkInterfaces takes only ``*``).
"""
import copy
import re
from typing import Callable

from deploy.stage import Stage

SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$")
# What deploying a function with VpcConfig needs besides the Timestream stack's list.
DEPLOY_VPC_ACTIONS = ["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"]
TIMESTREAM_ONLY_PARAMETERS = ("DefaultDatabase", "DefaultTable")


def parameters(stage: Stage) -> dict:
    """The template parameters that name the InfluxDB instance and its network."""
    return {
        "InfluxEndpoint": {
            "Type": "String", "AllowedPattern": "^https?://[^/]+$",
            "Description": "URL of the InfluxDB instance, e.g. https://<id>-<account>."
                           "timestream-influxdb.<region>.on.aws:8086 (its Endpoint and Port)."},
        "InfluxDatabase": {
            "Type": "String", "Default": stage.database, "MinLength": 1,
            "Description": "The v1 database samples are written to and read from; on "
                           "InfluxDB 2.x/3.x the database of the bucket's DBRP mapping."},
        "InfluxRetentionPolicy": {
            "Type": "String", "Default": "",
            "Description": "Retention policy (v1) or the DBRP mapping's; empty: the "
                           "database's default."},
        "InfluxSecretArn": {
            "Type": "String", "AllowedPattern": SECRET_ARN.pattern,
            "Description": "ARN of the Secrets Manager secret holding the InfluxDB token or "
                           "username/password (the instance's secret, or one you create)."},
        "SubnetIds": {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "Subnets of the InfluxDB instance's VPC for the function."},
        "SecurityGroupIds": {
            "Type": "List<AWS::EC2::SecurityGroup::Id>",
            "Description": "Security groups for the function; the instance's must allow "
                           "them on its port."},
    }


def secret_statement(secret_arn) -> dict:
    return {"Sid": "ReadTheInfluxDBSecret", "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"], "Resource": secret_arn}


def vpc_statements(ec2_arn: Callable[[str], object]) -> list:
    """Attaching to the VPC (the actions of ``AWSLambdaVPCAccessExecutionRole``): network
    interfaces, subnets and security groups of this account and region, and the one action
    that takes no resource ARN. ``ec2_arn("subnet/*")`` builds an ARN for the account."""
    interfaces = ec2_arn("network-interface/*")
    return [
        {"Sid": "AttachToTheVpc", "Effect": "Allow", "Action": ["ec2:CreateNetworkInterface"],
         "Resource": [interfaces, ec2_arn("subnet/*"), ec2_arn("security-group/*")]},
        {"Sid": "ManageTheInterfaces", "Effect": "Allow",
         "Action": ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses"], "Resource": interfaces},
        {"Sid": "ListTheInterfaces", "Effect": "Allow",
         "Action": ["ec2:DescribeNetworkInterfaces"], "Resource": "*"},
    ]


def _template_ec2_arn(resource: str) -> dict:
    return {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:" + resource}


def adapt_merge_template(stage: Stage, template: dict) -> dict:
    """The Timestream merge template turned into the InfluxDB one: InfluxDB parameters,
    environment, VpcConfig, role policy and outputs instead of the table's."""
    template = copy.deepcopy(template)
    for name in TIMESTREAM_ONLY_PARAMETERS:
        template["Parameters"].pop(name, None)
        template["Outputs"].pop(name, None)
    template["Parameters"].update(parameters(stage))
    function = template["Resources"]["APIHandler"]["Properties"]
    variables = function["Environment"]["Variables"]
    variables.pop("DEFAULT_DATABASE", None)
    variables.pop("DEFAULT_TABLE", None)
    variables.update({
        "STORAGE_BACKEND": "influxdb",
        "AUTH_MODE": "role",
        "INFLUXDB_URL": {"Ref": "InfluxEndpoint"},
        "INFLUXDB_DATABASE": {"Ref": "InfluxDatabase"},
        "INFLUXDB_RETENTION_POLICY": {"Ref": "InfluxRetentionPolicy"},
        "INFLUXDB_SECRET_ARN": {"Ref": "InfluxSecretArn"},
    })
    function["VpcConfig"] = {"SubnetIds": {"Ref": "SubnetIds"},
                             "SecurityGroupIds": {"Ref": "SecurityGroupIds"}}
    for policy in template["Resources"]["ApiHandlerRole"]["Properties"]["Policies"]:
        document = policy["PolicyDocument"]
        document["Statement"] = [s for s in document["Statement"] if _is_logs(s)] + [
            secret_statement({"Ref": "InfluxSecretArn"})] + vpc_statements(_template_ec2_arn)
    template["Outputs"]["InfluxDatabase"] = {
        "Description": "The InfluxDB database samples go to.", "Value": {"Ref": "InfluxDatabase"}}
    return template


def _is_logs(statement: dict) -> bool:
    return all(action.startswith("logs:") for action in statement["Action"])


def execution_policy(logs_statements: list, secret_arn: str, account: str,
                     region: str) -> dict:
    """The function role's policy: its logs, the secret, the VPC attachment."""
    return {"Version": "2012-10-17",
            "Statement": [s for s in logs_statements if _is_logs(s)]
            + [secret_statement(secret_arn)]
            + vpc_statements(lambda resource: f"arn:aws:ec2:{region}:{account}:{resource}")}


def deployment_statements() -> list:
    """What a deployer needs in addition for a function with VpcConfig."""
    return [{"Sid": "DescribeTheVpc", "Effect": "Allow", "Action": list(DEPLOY_VPC_ACTIONS),
             "Resource": "*"}]


def check_secret_arn(secret_arn: str, account: str, region: str) -> str:
    """``secret_arn`` if it is a Secrets Manager ARN in ``account``/``region``; ValueError."""
    if not SECRET_ARN.match(secret_arn or ""):
        raise ValueError("SECRET_ARN must be the ARN of the InfluxDB secret "
                         f"(arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME), got {secret_arn!r}")
    _, _, _, arn_region, arn_account, _ = secret_arn.split(":", 5)
    if (account != "*" and arn_account != account) or (region != "*" and arn_region != region):
        raise ValueError(f"SECRET_ARN {secret_arn} is not in account {account} / region {region}")
    return secret_arn
