"""SAM CLI's own publish routine (what `sam publish` runs) on a packaged template, with the
Serverless Application Repository client stubbed by botocore's Stubber.

Run with the SAM CLI's Python: ``python sar_publish.py PACKAGED_TEMPLATE create|update``.
Prints the routine's result as JSON, or ``{"error": ...}`` when it refuses the template.
"""
import json
import sys

import boto3
from botocore.stub import ANY, Stubber
from samcli.vendor.serverlessrepo import publish_application
from samcli.vendor.serverlessrepo.parser import get_app_metadata, parse_template

APPLICATION_ID = "arn:aws:serverlessrepo:us-east-1:123456789012:applications/{name}"
CONFLICT = "Application with id {id} already exists"


def expected(metadata: dict) -> dict:
    """CreateApplication's parameters: every metadata property, and the template body."""
    return {**{key: metadata[key] for key in (
        "Name", "Description", "Author", "SpdxLicenseId", "LicenseUrl", "ReadmeUrl", "Labels",
        "HomePageUrl", "SourceCodeUrl", "SemanticVersion")}, "TemplateBody": ANY}


def main(path: str, mode: str) -> None:
    with open(path) as handle:
        text = handle.read()
    client = boto3.client("serverlessrepo", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    stubber = Stubber(client)
    try:
        metadata = parse_template(text)["Metadata"]["AWS::ServerlessRepo::Application"]
        get_app_metadata(parse_template(text))
        app_id = APPLICATION_ID.format(name=metadata.get("Name"))
        if mode == "create":
            stubber.add_response("create_application", {"ApplicationId": app_id},
                                 expected(metadata))
        else:
            stubber.add_client_error("create_application", "ConflictException",
                                     CONFLICT.format(id=app_id), 409)
            stubber.add_response("update_application", {"ApplicationId": app_id})
            stubber.add_response("create_application_version", {"ApplicationId": app_id}, {
                "ApplicationId": app_id, "SemanticVersion": metadata["SemanticVersion"],
                "SourceCodeUrl": metadata["SourceCodeUrl"], "TemplateBody": ANY})
        with stubber:
            result = publish_application(text, sar_client=client)
            stubber.assert_no_pending_responses()
    except Exception as exc:  # noqa: BLE001 (reported to the test, which names the cause)
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
