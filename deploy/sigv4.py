"""``EnableSigV4Auth``: API Gateway checks who calls, the function uses its own role.

With ``true``, both methods (``POST /write``, ``POST /read``) use API Gateway's ``AWS_IAM``
authorization (the ``x-amazon-apigateway-auth`` extension of the API's OpenAPI body): API
Gateway admits only requests signed with Signature Version 4 for the service ``execute-api``
by an IAM identity allowed ``execute-api:Invoke`` on the method, and answers anything else
403 without calling the function. The function then calls Timestream (or reads its InfluxDB
secret) with its own role (``AUTH_MODE=sigv4``, chalicelib/auth.py), and refuses a request
that API Gateway did not authenticate with IAM. No IAM secret is written in
``prometheus.yml``: a SigV4 proxy beside Prometheus signs its requests with the host's
credentials (instance profile, task role...). Prometheus's own ``sigv4`` block cannot do it:
it signs remote write only, for the service ``aps`` (Amazon Managed Service for Prometheus).

The default is ``false`` (the Go connector's template defaults to ``true``): a stack deployed
before this parameter existed, and every ``prometheus.yml`` sending IAM keys in
``basic_auth``, keep working after an update; turning it on needs the proxy first.
"""
import copy
from typing import Dict

from deploy.stage import Stage

PARAMETER = "EnableSigV4Auth"
CONDITION = "SigV4AuthEnabled"
ROUTES = ("/write", "/read")


def parameters() -> dict:
    return {PARAMETER: {
        "Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
        "Description": "true: API Gateway admits only requests signed with SigV4 (service "
                       "execute-api, by an IAM identity allowed execute-api:Invoke: a SigV4 "
                       "proxy beside Prometheus), and the function uses its own role; false: "
                       "Prometheus sends IAM keys in basic auth."}}


def conditions() -> dict:
    return {CONDITION: {"Fn::Equals": [{"Ref": PARAMETER}, "true"]}}


def adapt_merge_template(stage: Stage, template: dict) -> dict:
    """The parameter, its condition, AUTH_MODE and the methods' authorization type."""
    template = copy.deepcopy(template)
    template["Parameters"].update(parameters())
    template.setdefault("Conditions", {}).update(conditions())
    variables = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    otherwise = variables.get("AUTH_MODE", stage.auth_mode)
    variables["AUTH_MODE"] = {"Fn::If": [CONDITION, "sigv4", otherwise]}
    paths = template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]["paths"]
    for route in ROUTES:
        paths[route]["post"]["x-amazon-apigateway-auth"] = {
            "type": {"Fn::If": [CONDITION, "AWS_IAM", "NONE"]}}
    return template


def invoke_policy(stage: Stage, account: str, region: str, api_id: str = "*") -> Dict:
    """The policy of the identity the SigV4 proxy signs with: ``execute-api:Invoke`` on the
    stage's two methods (``api_id``: the stack's ``RestAPIId`` output; ``*``: any API of the
    account and region with that stage name and those routes)."""
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "InvokeWriteAndRead", "Effect": "Allow", "Action": ["execute-api:Invoke"],
        "Resource": [f"arn:aws:execute-api:{region}:{account}:{api_id}/"
                     f"{stage.api_gateway_stage}/POST{route}" for route in ROUTES]}]}
