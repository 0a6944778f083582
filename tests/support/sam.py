"""A SAM template expanded as CloudFormation's ``AWS::Serverless-2016-10-31`` transform does
(aws-sam-translator, the library behind that transform and ``sam validate``)."""
import copy
import os
from unittest import mock

from samtranslator.translator.transform import transform

CODE_URI = "s3://artifacts/deployment.zip"  # what `sam package` puts in CodeUri


class _NoManagedPolicies:
    """The template names no AWS managed policy, so none needs looking up."""

    def load(self) -> dict:
        return {}


def expand(template: dict, region: str = "us-east-1") -> dict:
    """The CloudFormation template the transform makes of ``template`` (code as uploaded)."""
    template = copy.deepcopy(template)
    template["Resources"]["APIHandler"]["Properties"]["CodeUri"] = CODE_URI
    with mock.patch.dict(os.environ, {"AWS_DEFAULT_REGION": region}):
        return transform(template, {}, _NoManagedPolicies())
