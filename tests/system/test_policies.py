"""`make policies`: least-privilege IAM policies that pass parliament's audit."""
import fnmatch
import json
import os
import re
import subprocess
import sys
import time
import warnings

import pytest

from chalicelib.errors import ResponseTooLarge
from chalicelib.matchers import Matcher
from chalicelib.model import Query, Series
from chalicelib.storage.timestream.iam import (ACTIONS, ANY, TABLE,
                                               statement_kind)
from deploy import package
from deploy.policies import STACK_NAME, dumps, execution_policy, generate
from deploy.stage import load_stage
from harness.processes import ROOT
from harness.timestream.env import timestream_env
from tests.support import context

ACCOUNT, REGION = "123456789012", "eu-west-1"
# parliament does not know the AWS-owned ARN of the SAM transform (account "aws"); it is
# the ARN AWS documents and the original connector's policy uses.
KNOWN_FALSE_POSITIVES = {("INVALID_ARN", f"arn:aws:cloudformation:{REGION}:aws:transform/"
                                         "Serverless-2016-10-31")}


def audit(policy: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from parliament import analyze_policy_string
    findings = analyze_policy_string(json.dumps(policy)).findings
    return {(f.issue, f.location.get("string", "")) for f in findings} - KNOWN_FALSE_POSITIVES


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_policies_pass_the_audit(stage):
    for name, policy in generate(load_stage(stage), ACCOUNT, REGION).items():
        assert audit(policy) == set(), name


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_table_arns_name_account_region_database_and_table(stage):
    policies = generate(load_stage(stage), ACCOUNT, REGION)
    table = (f"arn:aws:timestream:{REGION}:{ACCOUNT}:database/PrometheusDatabase/"
             "table/PrometheusMetricsTable")
    for name in ("execution-policy.json", "prometheus-user-policy.json"):
        statements = policies[name]["Statement"]
        resources = {s["Sid"]: s["Resource"] for s in statements}
        actions = {a for s in statements for a in s["Action"]}
        assert resources["ReadWriteTheTable"] == table
        assert resources["ActionsWithoutResource"] == "*"
        # AWS's "Allowing SELECT operations" example: Select with DescribeTable, ListMeasures.
        assert actions >= {"timestream:WriteRecords", "timestream:Select",
                           "timestream:DescribeTable", "timestream:ListMeasures",
                           "timestream:DescribeEndpoints", "timestream:CancelQuery"}
        assert not any(a.endswith("*") for a in actions)
    logs = policies["execution-policy.json"]["Statement"][0]["Resource"]
    assert logs[0] == (f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/"
                       f"timestream-prometheus-connector-{stage}")
    for statement in policies["deployment-policy.json"]["Statement"]:
        for resource in [statement["Resource"]] if isinstance(statement["Resource"], str) \
                else statement["Resource"]:
            assert resource == "*" or ACCOUNT in resource or REGION in resource \
                or resource.startswith("arn:aws:s3:::aws-sam-cli-managed-default")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_policy_chalice_deploy_attaches_is_the_generated_one(stage):
    """`chalice deploy` attaches the stage's iam_policy_file: it must be the execution policy
    `make policies` generates, for the account and region it names ('*' as committed)."""
    path = os.path.join(ROOT, ".chalice", load_stage(stage).policy_file)
    with open(path) as handle:
        text = handle.read()
    region, account = json.loads(text)["Statement"][0]["Resource"][0].split(":")[3:5]
    assert text == dumps(execution_policy(load_stage(stage), account, region)), \
        f"{path} is stale: run make policies (or python -m deploy.policies --account '*' " \
        "--region '*') to regenerate it"


def test_make_policies_writes_the_file_chalice_deploy_attaches(tmp_path):
    subprocess.run([sys.executable, "-m", "deploy.policies", "--stage", "prod", "--account",
                    ACCOUNT, "--region", REGION, "--out", str(tmp_path / "out"),
                    "--chalice-dir", str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    attached = (tmp_path / "policy-prod.json").read_text()
    assert attached == (tmp_path / "out" / "execution-policy.json").read_text()
    assert f"arn:aws:timestream:{REGION}:{ACCOUNT}:database/" in attached


@pytest.mark.parametrize("stack_name", [STACK_NAME, "MyConnector"])
def test_deployment_policy_covers_the_stack_sam_deploy_creates(stack_name):
    """`sam deploy --stack-name <name> --resolve-s3` creates that stack (function and role
    named after it) and SAM's managed stack with its artifact bucket; `chalice deploy`
    creates a role and function named after the app and stage."""
    policy = generate(load_stage("dev"), ACCOUNT, REGION,
                      stack_name=stack_name)["deployment-policy.json"]

    def granted(action, resource):
        return any(action in st["Action"] and any(
            fnmatch.fnmatchcase(resource, pattern) for pattern in
            ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]))
            for st in policy["Statement"])
    stacks = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/"
    assert granted("cloudformation:CreateChangeSet", stacks + f"{stack_name}/0a1b2c")
    assert granted("cloudformation:ExecuteChangeSet",
                   stacks + "aws-sam-cli-managed-default/0a1b2c")
    assert not granted("cloudformation:CreateChangeSet", stacks + "SomeoneElsesStack/0a1b2c")
    assert granted("s3:CreateBucket",
                   "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-1x2y3z")
    assert granted("s3:PutObject",
                   "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-1x2y3z/key")
    for name in (f"{stack_name}-APIHandler-AbC123", "timestream-prometheus-connector-dev"):
        assert granted("lambda:CreateFunction",
                       f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
    for name in (f"{stack_name}-ApiHandlerRole-AbC123", "timestream-prometheus-connector-dev"):
        assert granted("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{name}")


def test_every_timestream_call_the_code_makes_is_granted():
    """Record the calls a write and reads (pages, a cancelled query) make, and check each
    against the one map (timestream_iam.ACTIONS) and the generated policies."""
    calls = set()

    def record(params, model, **kwargs):
        service = model.service_model.service_name
        if model.name == "Query":
            calls.add(("sql", statement_kind(params["QueryString"])))
        else:
            calls.add((service, model.name))
    now = int(time.time() * 1000)
    with timestream_env() as env:
        for client in (env.write_client, env.query_client):
            client.meta.events.register("provide-client-params", record)
        env.store.write([Series((("__name__", "m"), ("i", str(i))), [now], [1.0])
                         for i in range(1500)], context())
        env.store.read(Query(0, 2 ** 62, (Matcher.of(0, "__name__", "m"),)), context(10 ** 6))
        with pytest.raises(ResponseTooLarge):
            env.store.read(Query(0, 2 ** 62, (Matcher.of(0, "__name__", "m"),)), context(10))
    assert {("sql", "SELECT"), ("sql", "SHOW MEASURES"), ("timestream-query", "CancelQuery"),
            ("timestream-write", "WriteRecords")} <= calls
    table = (f"arn:aws:timestream:{REGION}:{ACCOUNT}:database/PrometheusDatabase/"
             "table/PrometheusMetricsTable")
    for stage in ("dev", "prod"):
        policies = generate(load_stage(stage), ACCOUNT, REGION)
        for name in ("execution-policy.json", "prometheus-user-policy.json"):
            for call in calls:
                assert call in ACTIONS, f"{call} is missing from timestream_iam.ACTIONS"
                action, on = ACTIONS[call]
                resource = table if on == TABLE else "*"
                assert any(action in st["Action"] and st["Resource"] == resource
                           for st in policies[name]["Statement"]), (name, call)
        template = package.execution_policy_document()["Statement"]
        for call in calls:
            action, on = ACTIONS[call]
            assert any(action in st["Action"] and (st["Resource"] == "*") == (on == ANY)
                       for st in template), call


@pytest.mark.parametrize("sql,kind", [
    ("SELECT 1", "SELECT"), ("SHOW MEASURES FROM \"d\".\"t\" LIKE 'up'", "SHOW MEASURES"),
    ("SHOW TABLES FROM \"d\"", "SHOW"), ("describe \"d\".\"t\"", "DESCRIBE"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH"), ("", "")])
def test_a_query_is_authorized_by_the_kind_of_statement_it_runs(sql, kind):
    assert statement_kind(sql) == kind


@pytest.mark.parametrize("account,region", [("12345", REGION), (ACCOUNT, "nowhere"),
                                            ("1234567890123", REGION)])
def test_bad_account_or_region_is_refused(account, region):
    with pytest.raises(ValueError):
        generate(load_stage("dev"), account, region)


def test_local_stage_has_nothing_to_deploy():
    with pytest.raises(ValueError, match="does not use Timestream"):
        load_stage("local")


def test_make_policies_writes_four_files(tmp_path):
    subprocess.run([sys.executable, "-m", "deploy.policies", "--stage", "dev", "--account",
                    ACCOUNT, "--region", REGION, "--out", str(tmp_path / "out"),
                    "--chalice-dir", str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    assert sorted(os.listdir(tmp_path / "out")) == [
        "deployment-policy.json", "execution-policy.json", "prometheus-sigv4-policy.json",
        "prometheus-user-policy.json"]
    bad = subprocess.run([sys.executable, "-m", "deploy.policies", "--stage", "dev",
                          "--account", "x", "--region", REGION], cwd=ROOT, capture_output=True)
    assert bad.returncode == 2 and b"12-digit" in bad.stderr


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_vpc_deployment_adds_only_the_network_statements(stage):
    """`make policies VPC=1`: the deployer may also describe the VPC (Lambda checks VpcConfig)
    and create, change and delete interface endpoints of AWS services in this account and
    region; the function's and Prometheus's policies are the same."""
    plain = generate(load_stage(stage), ACCOUNT, REGION)
    private = generate(load_stage(stage), ACCOUNT, REGION, in_vpc=True)
    for name in ("execution-policy.json", "prometheus-user-policy.json"):
        assert private[name] == plain[name]
    added = private["deployment-policy.json"]["Statement"][
        len(plain["deployment-policy.json"]["Statement"]):]
    assert audit(private["deployment-policy.json"]) == set()
    actions = {a for s in added for a in s["Action"]}
    assert actions == {"ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs",
                       "ec2:DescribeVpcEndpoints", "ec2:CreateVpcEndpoint",
                       "ec2:ModifyVpcEndpoint", "ec2:DeleteVpcEndpoints",
                       "route53:AssociateVPCWithHostedZone"}
    create = next(s for s in added if "ec2:CreateVpcEndpoint" in s["Action"])
    assert create["Condition"] == {"StringEqualsIfExists": {"ec2:VpceServiceOwner": "amazon"}}
    for statement in added:
        for resource in [statement["Resource"]] if isinstance(statement["Resource"], str) \
                else statement["Resource"]:
            assert resource in ("*", "arn:aws:route53:::hostedzone/*") or \
                resource.startswith(f"arn:aws:ec2:{REGION}:{ACCOUNT}:"), resource


def test_make_policies_vpc_flag(tmp_path):
    subprocess.run([sys.executable, "-m", "deploy.policies", "--stage", "dev", "--account",
                    ACCOUNT, "--region", REGION, "--vpc", "--out", str(tmp_path / "out"),
                    "--chalice-dir", str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    deployment = json.loads((tmp_path / "out" / "deployment-policy.json").read_text())
    assert any("ec2:CreateVpcEndpoint" in s["Action"] for s in deployment["Statement"])


@pytest.mark.parametrize("stage,stack_name", [("dev", STACK_NAME), ("prod", "MyConnector"),
                                              ("influxdb", STACK_NAME)])
def test_deployment_policy_covers_the_stacks_dashboard_alarms_and_topic(stage, stack_name):
    """The dashboard (named after the stack and region; dashboards have no region in their
    ARN), the alarms (named after the stack) and the topic for AlarmEmail (CloudFormation
    names it after the stack), and nobody else's."""
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:x" if stage == "influxdb" else ""
    policy = generate(load_stage(stage), ACCOUNT, REGION, secret,
                      stack_name=stack_name)["deployment-policy.json"]
    assert audit(policy) == set()

    def granted(action, resource):
        return any(action in st["Action"] and any(
            fnmatch.fnmatchcase(resource, pattern) for pattern in
            ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]))
            for st in policy["Statement"])
    dashboard = f"arn:aws:cloudwatch::{ACCOUNT}:dashboard/"
    alarm = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:"
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:"
    for action in ("PutDashboard", "GetDashboard", "DeleteDashboards"):
        assert granted(f"cloudwatch:{action}", dashboard + f"{stack_name}-{REGION}")
        assert not granted(f"cloudwatch:{action}", dashboard + f"Other-{REGION}")
    for action in ("PutMetricAlarm", "DescribeAlarms", "DeleteAlarms"):
        assert granted(f"cloudwatch:{action}", alarm + f"{stack_name}-NoSamplesStored")
        assert not granted(f"cloudwatch:{action}", alarm + "Other-NoSamplesStored")
    for action in ("CreateTopic", "Subscribe", "DeleteTopic"):
        assert granted(f"sns:{action}", topic + f"{stack_name}-AlarmTopic-1A2B3C")
        assert not granted(f"sns:{action}", topic + "Other-AlarmTopic-1A2B3C")
    # The app's metrics are log lines (EMF): no policy grants PutMetricData.
    for policy in generate(load_stage(stage), ACCOUNT, REGION, secret).values():
        assert not any("cloudwatch:PutMetricData" in st["Action"] for st in policy["Statement"])


# The README's steps: who runs each `aws`, `sam` and `chalice` command of its code blocks, and
# what it needs ({function}, {role}, {stack}, {db}, {table}, {sam_bucket}: that stage's names).
DEPLOYER, PROMETHEUS, OWN_BUCKET, ADMIN = "deployer", "prometheus", "own bucket", "administrator"
ROLLBACK = [("lambda:DeleteFunction", "{function}"), ("lambda:RemovePermission", "{function}"),
            ("iam:DeleteRolePolicy", "{role}"), ("iam:DeleteRole", "{role}"),
            ("apigateway:DELETE", "{api}"), ("cloudformation:DescribeStackEvents", "{stack}")]
CREATE = [("cloudformation:CreateChangeSet", "{stack}"),
          ("cloudformation:ExecuteChangeSet", "{stack}"),
          ("lambda:CreateFunction", "{function}"), ("iam:CreateRole", "{role}"),
          ("iam:PutRolePolicy", "{role}"), ("iam:PassRole", "{role}"),
          ("apigateway:POST", "{apis}"), ("lambda:AddPermission", "{function}")]
DISCOVER = [("timestream:DescribeEndpoints", "*")]
STEPS = {
    "sam deploy": (DEPLOYER, CREATE + ROLLBACK + [("s3:PutObject", "{sam_bucket}/key"),
                                                 ("cloudformation:DeleteStack", "{stack}")]),
    "aws cloudformation deploy": (DEPLOYER, CREATE + ROLLBACK),
    "sam delete": (DEPLOYER, ROLLBACK + [("cloudformation:DeleteStack", "{stack}"),
                                         ("s3:DeleteObject", "{sam_bucket}/key")]),
    "chalice deploy": (DEPLOYER, [("lambda:CreateFunction", "{chalice_function}"),
                                  ("iam:CreateRole", "{chalice_role}"),
                                  ("iam:PassRole", "{chalice_role}"),
                                  ("apigateway:POST", "{apis}")]),
    "chalice delete": (DEPLOYER, [("lambda:DeleteFunction", "{chalice_function}"),
                                  ("iam:ListRolePolicies", "{chalice_role}"),
                                  ("iam:DeleteRolePolicy", "{chalice_role}"),
                                  ("iam:DeleteRole", "{chalice_role}"),
                                  ("apigateway:DELETE", "{api}")]),
    "aws timestream-write create-database": (DEPLOYER, DISCOVER + [
        ("timestream:CreateDatabase", "{db}")]),
    "aws timestream-write create-table": (DEPLOYER, DISCOVER + [
        ("timestream:CreateTable", "{table}")]),
    "aws timestream-write delete-table": (DEPLOYER, DISCOVER + [
        ("timestream:DeleteTable", "{table}")]),
    "aws timestream-write delete-database": (DEPLOYER, DISCOVER + [
        ("timestream:DeleteDatabase", "{db}")]),
    "aws timestream-write describe-endpoints": (DEPLOYER, DISCOVER),
    "aws timestream-query describe-endpoints": (DEPLOYER, DISCOVER),
    "aws timestream-query query": (PROMETHEUS, DISCOVER + [("timestream:Select", "{table}")]),
    "aws timestream-write write-records": (PROMETHEUS, DISCOVER + [
        ("timestream:WriteRecords", "{table}")]),
    # Into a bucket of the user's own, which no generated policy can name (the README says so).
    "sam package": (OWN_BUCKET, []), "aws cloudformation package": (OWN_BUCKET, []),
    "aws s3 cp": (OWN_BUCKET, []),
    # docs/influxdb.md: the instance, the secret and the network are the administrator's.
    "aws timestream-influxdb create-db-instance": (ADMIN, []),
    "aws timestream-influxdb get-db-instance": (ADMIN, []),
    "aws timestream-influxdb delete-db-instance": (ADMIN, []),
    "aws secretsmanager create-secret": (ADMIN, []),
    "aws secretsmanager delete-secret": (ADMIN, []),
}
COMMAND = re.compile(r"(?:^|[\s:(])(?:\.venv/bin/)?(aws [a-z0-9-]+ [a-z-]+|sam [a-z]+|"
                     r"chalice [a-z]+)\b([^\n#]*)")


def sh_commands(document: str) -> list:
    """Every `aws`, `sam` and `chalice` command of a document's sh blocks (comments included),
    as (command, the rest of its line, continuation lines joined)."""
    with open(os.path.join(ROOT, document)) as handle:
        blocks = re.findall(r"```sh\n(.*?)```", handle.read(), re.S)
    return [match.groups() for block in blocks
            for match in COMMAND.finditer(block.replace("\\\n", " "))]


def names(stage: str, stack: str) -> dict:
    """The ARNs a step of that stage and stack acts on."""
    loaded = load_stage(stage)
    chalice_name = f"{loaded.app_name}-{stage}"
    db = f"arn:aws:timestream:{REGION}:{ACCOUNT}:database/{loaded.database}"
    return {"function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{stack}-APIHandler-AbC1",
            "role": f"arn:aws:iam::{ACCOUNT}:role/{stack}-ApiHandlerRole-AbC1",
            "chalice_function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{chalice_name}",
            "chalice_role": f"arn:aws:iam::{ACCOUNT}:role/{chalice_name}",
            "stack": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/0a1b",
            "api": f"arn:aws:apigateway:{REGION}::/restapis/a1b2c3",
            "apis": f"arn:aws:apigateway:{REGION}::/restapis",
            "sam_bucket": "arn:aws:s3:::aws-sam-cli-managed-default-samclisourcebucket-1x2y",
            "db": db, "table": f"{db}/table/{loaded.table}"}


def allows(policy: dict, action: str, resource: str) -> bool:
    return any(action in st["Action"] and any(
        fnmatch.fnmatchcase(resource, pattern) for pattern in
        ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]))
        for st in policy["Statement"])


DOCUMENTS = [("README.md", "dev", STACK_NAME),
             ("docs/influxdb.md", "influxdb", "PrometheusInfluxDBConnector")]


@pytest.mark.parametrize("document,stage,stack", DOCUMENTS)
def test_every_documented_step_is_allowed_to_the_identity_that_runs_it(document, stage, stack):
    """Each command of the document's code blocks is in STEPS, and the policy `make policies`
    gives the user who runs it allows each action that step needs."""
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:x" if stage == "influxdb" else ""
    policies = generate(load_stage(stage), ACCOUNT, REGION, secret, stack_name=stack)
    identities = {DEPLOYER: policies["deployment-policy.json"],
                  PROMETHEUS: policies.get("prometheus-user-policy.json")}
    arns = names(stage, stack)
    commands = sh_commands(document)
    assert commands, document
    for command, rest in commands:
        assert command in STEPS, f"{document}: who runs {command!r}, needing what?"
        identity, needs = STEPS[command]
        if "--stack-name" in rest:
            assert f"--stack-name {stack}" in rest, (document, command, rest)
        if identity == PROMETHEUS:
            assert "--profile prometheus" in rest, (document, command)
        for action, resource in needs:
            assert allows(identities[identity], action, resource.format(**arns)), \
                (document, command, identity, action)


@pytest.mark.parametrize("stage", ["dev", "prod", "influxdb"])
def test_cloudformation_can_roll_back_a_failed_first_create(stage):
    """CloudFormation deletes what it created as the deploying user: the function, its
    permission, the role and its policy, the API; the user may then delete the stack."""
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:x" if stage == "influxdb" else ""
    policy = generate(load_stage(stage), ACCOUNT, REGION, secret)["deployment-policy.json"]
    for action, resource in ROLLBACK + [("cloudformation:DeleteStack", "{stack}")]:
        assert allows(policy, action, resource.format(**names(stage, STACK_NAME))), action
    assert not allows(policy, "lambda:DeleteFunction",
                      f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:SomeoneElses")
    assert not allows(policy, "iam:DeleteRole", f"arn:aws:iam::{ACCOUNT}:role/Admin")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_identity_gets_only_its_own_steps(stage):
    """The deploying user creates and deletes the database and table but reads and writes no
    sample; the Prometheus user reads and writes but creates and deletes nothing."""
    policies = generate(load_stage(stage), ACCOUNT, REGION)
    arns = names(stage, STACK_NAME)
    deployer = policies["deployment-policy.json"]
    prometheus = policies["prometheus-user-policy.json"]
    for action in ("timestream:Select", "timestream:WriteRecords"):
        assert not allows(deployer, action, arns["table"]), action
    for action in ("timestream:CreateTable", "timestream:DeleteTable"):
        assert allows(deployer, action, arns["table"]), action
        assert not allows(prometheus, action, arns["table"]), action
    other = arns["table"].replace("PrometheusMetricsTable", "Other")
    assert not allows(deployer, "timestream:DeleteTable", other)
    actions = {a for st in prometheus["Statement"] for a in st["Action"]}
    assert not any(a.split(":")[1].startswith(("Create", "Delete")) for a in actions)


def test_the_influxdb_stage_deploys_only_through_its_template():
    """No document runs `chalice deploy` on the influxdb stage, nor copies a policy file
    `make policies` already writes; both say that the stage deploys through the template."""
    for document in ("README.md", "docs/influxdb.md"):
        for command, rest in sh_commands(document):
            if command.startswith("chalice"):
                assert "influxdb" not in rest, (document, command, rest)
        with open(os.path.join(ROOT, document)) as handle:
            text = handle.read()
        assert not re.search(r"\bcp\b[^\n]*\.chalice/", text), document
        assert "deploys only through its SAM template" in " ".join(text.split()), document
    assert not [c for c, _ in sh_commands("docs/influxdb.md") if c.startswith("chalice")]
    with open(os.path.join(ROOT, "docs/influxdb.md")) as handle:
        assert "STACK_NAME=PrometheusInfluxDBConnector" in handle.read()  # its sam deploy's


@pytest.mark.parametrize("stage", ["dev", "prod", "influxdb"])
def test_the_sigv4_policy_invokes_the_two_methods_and_nothing_else(stage):
    """EnableSigV4Auth=true: the identity the SigV4 proxy signs with may call POST /write and
    POST /read of the stage (of one API with API_ID, else of any in the account and region),
    and do nothing else: no Timestream right, no other method or stage."""
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:x" if stage == "influxdb" else ""
    api_stage = load_stage(stage).api_gateway_stage
    for api_id in ("*", "a1b2c3d4e5"):
        policy = generate(load_stage(stage), ACCOUNT, REGION, secret,
                          api_id=api_id)["prometheus-sigv4-policy.json"]
        assert audit(policy) == set()
        [statement] = policy["Statement"]
        assert statement["Action"] == ["execute-api:Invoke"]
        method = f"arn:aws:execute-api:{REGION}:{ACCOUNT}:a1b2c3d4e5/{api_stage}/POST/"
        for route in ("write", "read"):
            assert allows(policy, "execute-api:Invoke", method + route)
        for other in (method + "metrics", method.replace("/POST/", "/GET/") + "write",
                      method.replace(f"/{api_stage}/", "/other/") + "write",
                      method.replace(ACCOUNT, "210987654321") + "write"):
            assert not allows(policy, "execute-api:Invoke", other), other
    elsewhere = generate(load_stage(stage), ACCOUNT, REGION, secret, api_id="a1b2c3d4e5")
    assert not allows(elsewhere["prometheus-sigv4-policy.json"], "execute-api:Invoke",
                      f"arn:aws:execute-api:{REGION}:{ACCOUNT}:f6g7h8i9j0/{api_stage}/POST/write")


@pytest.mark.parametrize("api_id", ["A1B2C3D4E5", "a1b2", "a1b2c3d4e5/*"])
def test_an_api_id_that_is_none_is_refused(api_id):
    with pytest.raises(ValueError, match="RestAPIId"):
        generate(load_stage("dev"), ACCOUNT, REGION, api_id=api_id)
