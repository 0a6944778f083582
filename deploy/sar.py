"""The template's Serverless Application Repository metadata (``AWS::ServerlessRepo::Application``).

``sam package`` uploads ``LicenseUrl`` and ``ReadmeUrl`` (files next to the template) to S3
and ``sam publish`` creates the application, or a new version of it, from the result.
``SourceCodeUrl`` and ``HomePageUrl`` are the public repository of this code: ``SOURCE_CODE_URL``
in the environment, else the ``origin`` remote as an https address.

``python -m deploy.sar check TEMPLATE`` fails when a property publishing needs is missing, or
a resource is of a type the repository does not take.
"""
import argparse
import os
import re
import subprocess
import sys
from typing import List, Optional

import yaml

from chalicelib.version import VERSION
from deploy.stage import ROOT, Stage

KEY = "AWS::ServerlessRepo::Application"
REQUIRED = ("Name", "Description", "Author", "SpdxLicenseId", "LicenseUrl", "ReadmeUrl",
            "SemanticVersion", "SourceCodeUrl", "HomePageUrl", "Labels")
LICENSE_FILE, README_FILE = "LICENSE", "README.md"
AUTHOR = "timestream-prometheus-connector"  # SAR: lowercase letters, digits and single hyphens
DESCRIPTION = ("Prometheus remote write and remote read on Amazon Timestream: API Gateway and "
               "AWS Lambda, with the parameters and outputs of Amazon's Go connector.")
LABELS = ["prometheus", "timestream", "remote-write", "remote-read", "api-gateway", "lambda"]
# The resource types the templates use, each one the Serverless Application Repository accepts:
# "List of Supported AWS Resources", https://docs.aws.amazon.com/serverlessrepo/latest/devguide/
# list-supported-resources.html ("the complete list of AWS resources that are supported"). It
# names CloudFormation types; AWS::Serverless::* are SAM's, which the repository takes as its
# own format ("Using AWS SAM with the AWS Serverless Application Repository"). A template that
# gains a type fails `check` (and the tests) until that type is looked up there and added here.
# Read on that page when this list was written: the three AWS::ApiGateway types; AWS::IAM::Role
# and AWS::Lambda::Permission are named on the SAM page as accepted with CAPABILITY_IAM /
# CAPABILITY_RESOURCE_POLICY acknowledged. The others were not re-read then: see the page
# before publishing a version that adds one of them for the first time.
ACCEPTED_RESOURCE_TYPES = frozenset({
    "AWS::Serverless::Function", "AWS::Serverless::Api",
    "AWS::ApiGateway::RestApi", "AWS::ApiGateway::Deployment", "AWS::ApiGateway::Stage",
    "AWS::Lambda::Function", "AWS::Lambda::Permission", "AWS::IAM::Role",
    "AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard", "AWS::SNS::Topic",
    "AWS::EC2::VPCEndpoint", "AWS::S3::Bucket",
    "AWS::Timestream::Database", "AWS::Timestream::Table",
})


class _TagsLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (``!Ref``…) read as plain values."""


_TagsLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def https_url(remote: str) -> Optional[str]:
    """``git@host:owner/repo.git`` or ``https://host/owner/repo.git`` as ``https://host/owner/repo``."""
    match = re.fullmatch(r"(?:https://|git@|ssh://git@)([^/:]+)[/:](.+?)(?:\.git)?/?", remote)
    return f"https://{match.group(1)}/{match.group(2)}" if match else None


def source_code_url() -> Optional[str]:
    """SOURCE_CODE_URL, else the origin remote's https address, else None."""
    if os.environ.get("SOURCE_CODE_URL"):
        return os.environ["SOURCE_CODE_URL"]
    result = subprocess.run(["git", "remote", "get-url", "origin"], cwd=ROOT,
                            capture_output=True, text=True)
    return https_url(result.stdout.strip()) if result.returncode == 0 else None


def application_name(stage: Stage) -> str:
    """The application's name: the app's for prod, with the stage's name after it otherwise."""
    return stage.app_name if stage.name == "prod" else f"{stage.app_name}-{stage.name}"


def metadata(stage: Stage, url: Optional[str]) -> dict:
    """The template's Metadata section; without a source URL, its two URL properties are left
    out (``check`` then refuses the template)."""
    application = {
        "Name": application_name(stage), "Description": DESCRIPTION,
        "Author": os.environ.get("SAR_AUTHOR") or AUTHOR, "SpdxLicenseId": "Apache-2.0",
        "LicenseUrl": LICENSE_FILE, "ReadmeUrl": README_FILE, "Labels": LABELS,
        "SemanticVersion": VERSION,
    }
    if url:
        application.update({"SourceCodeUrl": url, "HomePageUrl": url})
    return {KEY: application}


def missing(template: dict) -> List[str]:
    """The properties publishing needs that the template's metadata lacks."""
    application = template.get("Metadata", {}).get(KEY, {})
    return [name for name in REQUIRED if not application.get(name)]


def unaccepted(template: dict) -> List[str]:
    """The template's resource types the repository does not accept (ACCEPTED_RESOURCE_TYPES)."""
    return sorted({resource["Type"] for resource in template.get("Resources", {}).values()}
                  - ACCEPTED_RESOURCE_TYPES)


def check(path: str) -> List[str]:
    """``missing`` of the template file at ``path``, then its ``unaccepted`` resource types."""
    with open(path) as handle:
        template = yaml.load(handle, Loader=_TagsLoader)
    return missing(template) + unaccepted(template)


def main() -> None:
    parser = argparse.ArgumentParser(description="Check a template's SAR metadata.")
    parser.add_argument("command", choices=["check"])
    parser.add_argument("template")
    args = parser.parse_args()
    with open(args.template) as handle:
        template = yaml.load(handle, Loader=_TagsLoader)
    absent, types = missing(template), unaccepted(template)
    if absent:
        sys.exit(f"{args.template}: {KEY} lacks {', '.join(absent)}"
                 + (" (set SOURCE_CODE_URL to the public repository of this code)"
                    if "SourceCodeUrl" in absent else ""))
    if types:
        sys.exit(f"{args.template}: resources of types the Serverless Application Repository "
                 f"does not accept: {', '.join(types)}")


if __name__ == "__main__":
    main()
