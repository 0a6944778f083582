"""The template's optional Timestream database, table and rejected-data bucket: nothing by
default, each under its parameters when asked for; the deployer's policy follows."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from deploy import timestream_table
from deploy.package import package
from deploy.policies import generate
from deploy.stage import load_stage
from tests.support.cloudformation import CfnLoader, Stack
from tests.system.test_policies import ACCOUNT, REGION, audit

CREATED = {"TimestreamDatabase", "TimestreamTable", "RejectedDataBucket"}
BOTH = {"CreateTimestreamDatabase": "true", "CreateTimestreamTable": "true"}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory):
    out = tmp_path_factory.mktemp("table") / "dev"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    path = package("dev", str(out))
    with open(path) as handle:
        return path, yaml.load(handle, Loader=CfnLoader)


def created(stack: Stack) -> dict:
    return {name: r for name, r in stack.resources.items() if name in CREATED}


def test_by_default_nothing_is_created_and_the_rest_is_unchanged(packaged):
    _, template = packaged
    stack = Stack(template, {})
    assert not any(stack.conditions[name] for name in timestream_table.conditions())
    assert created(stack) == {}
    assert template["Outputs"]["RejectedDataLocation"]["Condition"] == "TableTakesMagneticWrites"
    assert {p: template["Parameters"][p]["Default"] for p in timestream_table.parameters()} == {
        "CreateTimestreamDatabase": "false", "CreateTimestreamTable": "false",
        "MemoryStoreRetentionHours": 24, "MagneticStoreRetentionDays": 365,
        "EnableMagneticStoreWrites": "true", "RejectedDataBucketName": ""}
    # The table's settings change nothing while the table is not created.
    settings = {"MemoryStoreRetentionHours": 1, "EnableMagneticStoreWrites": "false",
                "RejectedDataBucketName": "my-reports"}
    assert Stack(template, settings).resources == stack.resources


def test_database_table_and_bucket_when_asked(packaged):
    _, template = packaged
    stack = Stack(template, {**BOTH, "MemoryStoreRetentionHours": 12,
                             "MagneticStoreRetentionDays": 730})
    made = created(stack)
    assert set(made) == CREATED
    for resource in made.values():
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert made["TimestreamDatabase"]["Properties"] == {"DatabaseName": "PrometheusDatabase"}
    table = made["TimestreamTable"]["Properties"]
    assert table["DatabaseName"] == {"Ref": "TimestreamDatabase"}  # created first
    assert table["TableName"] == "PrometheusMetricsTable"
    assert table["RetentionProperties"] == {"MemoryStoreRetentionPeriodInHours": "12",
                                            "MagneticStoreRetentionPeriodInDays": "730"}
    assert table["MagneticStoreWriteProperties"] == {
        "EnableMagneticStoreWrites": True,
        "MagneticStoreRejectedDataLocation": {"S3Configuration": {
            "BucketName": {"Ref": "RejectedDataBucket"},
            "ObjectKeyPrefix": "timestream-rejected/", "EncryptionOption": "SSE_S3"}}}
    bucket = made["RejectedDataBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
        "ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_a_table_in_an_existing_database_reporting_to_an_existing_bucket(packaged):
    _, template = packaged
    stack = Stack(template, {"CreateTimestreamTable": "true", "RejectedDataBucketName": "my-reports",
                             "DefaultDatabase": "Metrics"})
    assert set(created(stack)) == {"TimestreamTable"}
    table = stack.resources["TimestreamTable"]["Properties"]
    assert table["DatabaseName"] == "Metrics"
    location = table["MagneticStoreWriteProperties"]["MagneticStoreRejectedDataLocation"]
    assert location["S3Configuration"]["BucketName"] == "my-reports"
    output = stack.resolve(template["Outputs"]["RejectedDataLocation"]["Value"])
    assert output == "s3://my-reports/timestream-rejected/"


def test_without_magnetic_writes_no_bucket(packaged):
    _, template = packaged
    stack = Stack(template, {**BOTH, "EnableMagneticStoreWrites": "false"})
    assert set(created(stack)) == {"TimestreamDatabase", "TimestreamTable"}
    assert stack.resources["TimestreamTable"]["Properties"]["MagneticStoreWriteProperties"] == \
        {"EnableMagneticStoreWrites": False}
    assert not stack.conditions["TableTakesMagneticWrites"]


def test_the_influxdb_stage_has_none_of_it():
    from deploy.package import stage_merge_template
    template = stage_merge_template(load_stage("influxdb"))
    assert not set(timestream_table.parameters()) & set(template["Parameters"])
    assert not CREATED & set(template["Resources"])


def test_the_template_with_everything_created_passes_cfn_lint(packaged, tmp_path):
    """cfn-lint, with the switches' defaults turned on so every part is in play."""
    path, _ = packaged
    with open(path) as handle:
        text = handle.read()
    template = yaml.load(text, Loader=CfnLoader)
    for name in BOTH:
        template["Parameters"][name]["Default"] = "true"
    flipped = tmp_path / "sam.yaml"
    flipped.write_text(json.dumps(template))
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "cfn-lint"),
                             "--format", "parseable", str(flipped)], capture_output=True, text=True)
    errors = [line for line in result.stdout.splitlines() if ":E" in line or line.startswith("E")]
    assert errors == [] and result.returncode in (0, 4, 8), result.stdout + result.stderr


TAGGING = {"timestream:ListTagsForResource", "timestream:TagResource", "timestream:UntagResource"}


def without_tagging(policy: dict) -> dict:
    """parliament knows Timestream's tagging actions only on scheduled queries; databases and
    tables take them too (the Service Authorization Reference)."""
    return {**policy, "Statement": [{**st, "Action": [a for a in st["Action"] if a not in TAGGING]}
                                    for st in policy["Statement"]]}


@pytest.mark.parametrize("stack_name", ["PrometheusTimestreamConnector", "MyConnector"])
def test_the_deployers_policy_follows(stack_name):
    import fnmatch
    stage = load_stage("dev")
    plain = generate(stage, ACCOUNT, REGION, stack_name=stack_name)["deployment-policy.json"]
    policy = generate(stage, ACCOUNT, REGION, stack_name=stack_name,
                      create_table=True)["deployment-policy.json"]
    added = policy["Statement"][len(plain["Statement"]):]
    assert policy["Statement"][:len(plain["Statement"])] == plain["Statement"]
    assert audit(without_tagging(policy)) == set()

    def granted(action, resource, statements=None):
        return any(action in st["Action"] and any(
            fnmatch.fnmatchcase(resource, pattern) for pattern in
            ([st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]))
            for st in (added if statements is None else statements))
    database = f"arn:aws:timestream:{REGION}:{ACCOUNT}:database/PrometheusDatabase"
    table = database + "/table/PrometheusMetricsTable"
    # Creating the stage's database and table is the deployer's already (the README has it
    # create them by hand); the switch adds what the stack itself does to them.
    for action, resource in [("timestream:CreateDatabase", database),
                             ("timestream:CreateTable", table),
                             ("timestream:DescribeEndpoints", "*")]:
        assert granted(action, resource, plain["Statement"]), action
    assert not granted("timestream:CreateTable", database + "/table/Other", policy["Statement"])
    assert granted("timestream:UpdateTable", table) and granted("timestream:TagResource", table)
    # CloudFormation names the bucket <stack name in lower case>-<logical id in lower case>-<id>.
    bucket = f"arn:aws:s3:::{stack_name.lower()}-rejecteddatabucket-1a2b3c4d5e6f"
    assert granted("s3:CreateBucket", bucket) and granted("s3:PutObject", bucket + "/x")
    # The stack keeps the database and table on deletion: nothing deletes them but the
    # deployer's own clean-up of the stage's table (the README's Clean up).
    assert not any("timestream:Delete" in a for st in added for a in st["Action"])


def test_the_readme_names_every_parameter():
    from tests.system.test_package import readme_section
    section = readme_section("### SAM / CloudFormation template")
    for name in timestream_table.parameters():
        assert f"`{name}`" in section, name
    assert "CREATE_TABLE=1" in section
