"""`make policies`: least-privilege IAM policies that pass parliament's audit."""
import json
import os
import subprocess
import sys
import warnings

import pytest

from deploy.policies import dumps, execution_policy, generate
from deploy.stage import load_stage
from tests.support import ROOT

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
        assert resources["DiscoverEndpoints"] == "*"
        assert actions >= {"timestream:WriteRecords", "timestream:Select",
                           "timestream:DescribeEndpoints"}
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
def test_chalice_deploy_policy_files_are_generated(stage):
    path = os.path.join(ROOT, ".chalice", f"policy-{stage}.json")
    with open(path) as handle:
        assert handle.read() == dumps(execution_policy(load_stage(stage), "*", "*")), \
            f"{path} is stale: regenerate it from deploy.policies"


@pytest.mark.parametrize("account,region", [("12345", REGION), (ACCOUNT, "nowhere"),
                                            ("1234567890123", REGION)])
def test_bad_account_or_region_is_refused(account, region):
    with pytest.raises(ValueError):
        generate(load_stage("dev"), account, region)


def test_local_stage_has_nothing_to_deploy():
    with pytest.raises(ValueError, match="does not use Timestream"):
        load_stage("local")


def test_make_policies_writes_three_files(tmp_path):
    subprocess.run([sys.executable, "-m", "deploy.policies", "--stage", "dev", "--account",
                    ACCOUNT, "--region", REGION, "--out", str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True)
    assert sorted(os.listdir(tmp_path)) == ["deployment-policy.json", "execution-policy.json",
                                            "prometheus-user-policy.json"]
    bad = subprocess.run([sys.executable, "-m", "deploy.policies", "--stage", "dev",
                          "--account", "x", "--region", REGION], cwd=ROOT, capture_output=True)
    assert bad.returncode == 2 and b"12-digit" in bad.stderr
