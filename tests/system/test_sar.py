"""The Serverless Application Repository metadata `make package` writes, and the one version
the template, `make publish` and the app read."""
import os
import re
import subprocess
import sys

import pytest
import yaml

from chalicelib.version import VERSION
from deploy import sar
from deploy.package import package
from harness.processes import ROOT
from tests.support.cloudformation import CfnLoader

REPOSITORY = "https://github.com/example-org/timestream-prometheus-connector"


def load(path) -> dict:
    with open(path) as handle:
        return yaml.load(handle, Loader=CfnLoader)


@pytest.fixture(scope="module")
def prod(tmp_path_factory):
    out = tmp_path_factory.mktemp("sar") / "prod"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCE_CODE_URL", REPOSITORY)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        path = package("prod", str(out))
    return out, load(path)


def test_prod_metadata_is_complete_for_publishing(prod):
    out, template = prod
    assert sar.missing(template) == []
    application = template["Metadata"][sar.KEY]
    assert set(application) == set(sar.REQUIRED)
    assert application["SemanticVersion"] == VERSION
    assert application["SourceCodeUrl"] == application["HomePageUrl"] == REPOSITORY
    assert application["SpdxLicenseId"] == "Apache-2.0"
    # SAR's own constraints on these properties.
    assert re.fullmatch(r"[a-zA-Z0-9-]{1,140}", application["Name"])
    assert re.fullmatch(r"[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?", application["Author"])
    assert 1 <= len(application["Description"]) <= 256
    assert 1 <= len(application["Labels"]) <= 10 and all(
        re.fullmatch(r"[a-zA-Z0-9+\-_:/@]{1,127}", label) for label in application["Labels"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", application["SemanticVersion"])
    # sam package uploads the files the two URLs name, relative to the template.
    for name in (application["LicenseUrl"], application["ReadmeUrl"]):
        with open(out / name) as copied, open(os.path.join(ROOT, name)) as original:
            assert copied.read() == original.read()
    assert "Apache License" in (out / application["LicenseUrl"]).read_text()[:200]


def test_the_deployed_stack_shows_its_version(prod):
    _, template = prod
    env = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["CONNECTOR_VERSION"] == VERSION
    assert template["Outputs"]["ConnectorVersion"]["Value"] == VERSION


def test_make_publish_reads_the_same_version():
    result = subprocess.run(["make", "-n", "publish", "BUCKET=b", "REGION=eu-west-1"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert f"published version {VERSION} " in result.stdout
    assert "sam package --template-file sam.yaml --s3-bucket b" in result.stdout
    assert "publish --template out/prod/packaged.yaml --region eu-west-1" in result.stdout


def test_without_a_source_url_the_check_refuses_the_template(tmp_path):
    template = {"Metadata": {sar.KEY: {name: "x" for name in sar.REQUIRED
                                       if name not in ("SourceCodeUrl", "HomePageUrl")}}}
    path = tmp_path / "sam.yaml"
    path.write_text(yaml.safe_dump(template))
    result = subprocess.run([sys.executable, "-m", "deploy.sar", "check", str(path)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 1 and "SourceCodeUrl, HomePageUrl" in result.stderr
    assert "SOURCE_CODE_URL" in result.stderr


@pytest.mark.parametrize("remote,url", [
    ("git@github.com:o/r.git", "https://github.com/o/r"),
    ("https://github.com/o/r.git", "https://github.com/o/r"),
    ("ssh://git@github.com/o/r", "https://github.com/o/r"),
    ("/srv/git/r", None)])
def test_the_origin_remote_as_an_https_address(remote, url):
    assert sar.https_url(remote) == url


def test_the_license_is_apache_2():
    with open(os.path.join(ROOT, "LICENSE")) as handle:
        text = handle.read()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def readme_deploy() -> str:
    with open(os.path.join(ROOT, "README.md")) as handle:
        text = handle.read()
    section = text[text.index("\n## Deploy\n"):]
    return section[:section.index("\n## ", 1)]


def test_the_readme_deploy_section_starts_with_the_click(prod):
    """First the one click (SAR's deploy link to the published name, CloudFormation's
    quick-create link to a template in the user's S3), then `sam deploy --guided`, then
    `chalice deploy`."""
    _, template = prod
    deploy = readme_deploy()
    headings = re.findall(r"\n### (.+)", deploy)
    assert headings[0] == "One click"
    assert headings.index("SAM / CloudFormation template (`sam deploy --guided`)") < \
        headings.index("`chalice deploy`")
    name = template["Metadata"][sar.KEY]["Name"]
    assert re.search(r"https://console\.aws\.amazon\.com/lambda/home\?region=REGION#/create/app"
                     r"\?applicationId=arn:aws:serverlessrepo:REGION:PUBLISHER_ACCOUNT_ID:"
                     rf"applications/{name}\n", deploy)
    link = re.search(r"https://console\.aws\.amazon\.com/cloudformation/home\?region=([a-z0-9-]+)"
                     r"#/stacks/create/review\?templateURL=(\S+)&stackName=(\S+)\n", deploy)
    region, url, stack = link.groups()
    uploaded = re.search(r"aws s3 cp packaged\.yaml s3://([^/]+)/(\S+)", deploy).groups()
    assert url == f"https://{uploaded[0]}.s3.{region}.amazonaws.com/{uploaded[1]}"
    assert f"--region {region} --output-template-file packaged.yaml" in deploy
    assert stack == "PrometheusTimestreamConnector"
    for capability in ("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"):
        assert capability in deploy
    assert "sam deploy --guided --template-file sam.yaml" in deploy


@pytest.fixture(scope="module", params=["dev", "prod", "influxdb"])
def every_stage(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("sar-types") / request.param
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return load(package(request.param, str(out)))


def test_every_resource_is_of_a_type_the_repository_accepts(every_stage):
    """Every resource the template declares (all of them, whatever the conditions decide) and
    every resource the SAM transform makes of them is of a type on AWS's list
    (deploy/sar.py cites it)."""
    from tests.support.sam import expand
    declared = {r["Type"] for r in every_stage["Resources"].values()}
    expanded = {r["Type"] for r in expand(every_stage)["Resources"].values()}
    assert sar.unaccepted(every_stage) == [] and sar.unaccepted(expand(every_stage)) == []
    assert {"AWS::Serverless::Function", "AWS::Serverless::Api"} <= declared
    assert {"AWS::Lambda::Function", "AWS::ApiGateway::RestApi"} <= expanded


def test_the_check_refuses_a_resource_the_repository_does_not_take(tmp_path):
    template = {"Metadata": {sar.KEY: {name: "x" for name in sar.REQUIRED}},
                "Resources": {"Function": {"Type": "AWS::Serverless::Function"},
                              "Cluster": {"Type": "AWS::EKS::Cluster"}}}
    path = tmp_path / "sam.yaml"
    path.write_text(yaml.safe_dump(template))
    assert sar.check(str(path)) == ["AWS::EKS::Cluster"]
    result = subprocess.run([sys.executable, "-m", "deploy.sar", "check", str(path)], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 1 and "does not accept: AWS::EKS::Cluster" in result.stderr
