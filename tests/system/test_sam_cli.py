"""The SAM CLI on the templates, offline: `sam validate --lint` on every stage's, `sam package`
of the prod template into S3 served by moto, and the CLI's own publish routine on the result with
the Serverless Application Repository client stubbed, so that a template the CLI would refuse
to publish fails here. The CLI lives in its own environment (`make test` makes it: see
requirements-sam.txt)."""
import json
import os
import subprocess
import sys

import boto3
import pytest
import yaml

from chalicelib.version import VERSION
from deploy import sar
from deploy.package import package
from harness.processes import ROOT, Process, free_port, wait_for_port
from tests.support.cloudformation import CfnLoader

SAM_BIN = os.path.join(ROOT, ".venv-sam", "bin")
REPOSITORY = "https://github.com/example-org/timestream-prometheus-connector"
BUCKET = "sar-artifacts"
OFFLINE = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
           "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}

pytestmark = pytest.mark.skipif(not os.path.exists(os.path.join(SAM_BIN, "sam")),
                                reason="no SAM CLI in .venv-sam: make test installs it")


def sam(*args: str, cwd: str, env: dict = None) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
                   **OFFLINE, **(env or {})}
    return subprocess.run([os.path.join(SAM_BIN, "sam"), *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def packaged_dirs(tmp_path_factory):
    """Every stage packaged, prod with its source URL."""
    dirs = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOURCE_CODE_URL", REPOSITORY)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for stage in ("dev", "prod", "influxdb"):
            out = tmp_path_factory.mktemp("sam") / stage
            package(stage, str(out))
            dirs[stage] = str(out)
    return dirs


@pytest.mark.parametrize("stage", ["dev", "prod", "influxdb"])
def test_sam_validate_lint(packaged_dirs, stage):
    result = sam("validate", "--lint", "--template-file", "sam.yaml", cwd=packaged_dirs[stage])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@pytest.fixture(scope="module")
def uploaded(packaged_dirs, tmp_path_factory):
    """`sam package` of prod into a moto S3 bucket: the packaged template and the objects."""
    port = free_port()
    log = str(tmp_path_factory.mktemp("moto") / "moto.log")
    moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
    with Process([moto, "-p", str(port)], log) as server:
        wait_for_port(port, server.proc, timeout=60)
        endpoint = {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}"}
        s3 = boto3.client("s3", endpoint_url=endpoint["AWS_ENDPOINT_URL_S3"], **{
            "aws_access_key_id": "x", "aws_secret_access_key": "x", "region_name": "us-east-1"})
        s3.create_bucket(Bucket=BUCKET)
        result = sam("package", "--template-file", "sam.yaml", "--s3-bucket", BUCKET,
                     "--output-template-file", "packaged.yaml", cwd=packaged_dirs["prod"],
                     env=endpoint)
        assert result.returncode == 0, result.stdout + result.stderr
        objects = {o["Key"]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
                   for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    return os.path.join(packaged_dirs["prod"], "packaged.yaml"), objects


def key_of(url: str) -> str:
    assert url.startswith(f"s3://{BUCKET}/"), url
    return url[len(f"s3://{BUCKET}/"):]


def test_sam_package_uploads_the_code_license_and_readme(uploaded):
    path, objects = uploaded
    with open(path) as handle:
        template = yaml.load(handle, Loader=CfnLoader)
    application = template["Metadata"][sar.KEY]
    with open(os.path.join(ROOT, "LICENSE"), "rb") as handle:
        assert objects[key_of(application["LicenseUrl"])] == handle.read()
    with open(os.path.join(ROOT, "README.md"), "rb") as handle:
        assert objects[key_of(application["ReadmeUrl"])] == handle.read()
    code = template["Resources"]["APIHandler"]["Properties"]["CodeUri"]
    assert objects[key_of(code)][:2] == b"PK"  # the Lambda zip


def publish(path: str, mode: str) -> dict:
    script = os.path.join(ROOT, "tests", "support", "sar_publish.py")
    result = subprocess.run([os.path.join(SAM_BIN, "python"), script, path, mode],
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": os.environ.get("PATH", ""), **OFFLINE})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("mode,actions", [
    ("create", ["CREATE_APPLICATION"]),
    ("update", ["UPDATE_APPLICATION", "CREATE_APPLICATION_VERSION"])])
def test_sam_publish_sends_the_whole_metadata(uploaded, mode, actions):
    """A first publish creates the application with every property; a later one updates it
    and adds this version."""
    path, _ = uploaded
    result = publish(path, mode)
    assert "error" not in result, result
    assert result["actions"] == actions
    assert result["application_id"].endswith(":applications/timestream-prometheus-connector")
    if mode == "create":
        assert result["details"]["SemanticVersion"] == VERSION


@pytest.mark.parametrize("prop", ["Name", "Description", "Author"])
def test_sam_publish_refuses_a_template_missing_what_it_needs(uploaded, tmp_path, prop):
    path, _ = uploaded
    with open(path) as handle:
        template = yaml.load(handle, Loader=CfnLoader)
    del template["Metadata"][sar.KEY][prop]
    broken = tmp_path / "packaged.yaml"
    broken.write_text(json.dumps(template))
    assert "error" in publish(str(broken), "create")
    assert sar.missing(template) == [prop]


@pytest.mark.parametrize("prop", [p for p in sar.REQUIRED if p not in ("Name", "Description",
                                                                       "Author")])
def test_what_sam_publish_would_let_through_the_check_refuses(uploaded, prop):
    """SemanticVersion, the URLs, the license and labels are optional to SAM's routine; a
    template without them publishes an application without a version, a license or a
    source link, so `make publish` checks them first."""
    path, _ = uploaded
    with open(path) as handle:
        template = yaml.load(handle, Loader=CfnLoader)
    del template["Metadata"][sar.KEY][prop]
    assert sar.missing(template) == [prop]
