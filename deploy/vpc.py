"""A private deployment of a Timestream for LiveAnalytics stage: the function in your VPC,
reaching Timestream through interface VPC endpoints (AWS PrivateLink).

Timestream serves writes and queries on the endpoints of the cell the account is mapped to
(``aws timestream-write describe-endpoints`` answers ``ingest-cell2.timestream.<region>.
amazonaws.com``, ``aws timestream-query describe-endpoints`` ``query-cell2…``), and each has
its own interface endpoint service, ``com.amazonaws.<region>.timestream.ingest-<cell>`` and
``com.amazonaws.<region>.timestream.query-<cell>``; with private DNS, the cell's own name
resolves to the endpoint inside the VPC. See "Creating an interface VPC endpoint for
Timestream for LiveAnalytics",
https://docs.aws.amazon.com/timestream/latest/developerguide/VPCEndpoints.vpc-endpoint-create.html

Every parameter but ``CreateTimestreamVpcEndpoints`` defaults to empty, and then every condition
is false: no VpcConfig, no endpoint, no extra role statement, no extra environment variable.
The template's parts:

- ``VpcSubnetIds`` (with ``VpcSecurityGroupIds``): the function gets VpcConfig and its role
  the network-interface actions of ``AWSLambdaVPCAccessExecutionRole`` (scoped, as on the
  ``influxdb`` stage).
- ``TimestreamIngestCell`` / ``TimestreamQueryCell``: the function calls that cell's
  endpoint (``TIMESTREAM_WRITE_ENDPOINT_URL`` / ``TIMESTREAM_QUERY_ENDPOINT_URL``) instead
  of discovering it; in the VPC (and unless ``CreateTimestreamVpcEndpoints`` is ``false``)
  the stack creates the interface endpoint, with private DNS, in ``VpcId``, in those subnets
  and security groups. With both, the function calls nothing but the two cells.
"""
import copy
from typing import List, NamedTuple

from deploy import influxdb



class Cell(NamedTuple):
    """What a cell parameter is about: the prefix of its cells, the AWS CLI service that
    names them, the endpoint resource and the connector's variable."""

    prefix: str
    cli: str
    endpoint: str
    variable: str


IN_VPC = "InVpc"
NO_VALUE = {"Ref": "AWS::NoValue"}
CELLS = {
    "TimestreamIngestCell": Cell("ingest", "timestream-write", "TimestreamIngestEndpoint",
                                 "TIMESTREAM_WRITE_ENDPOINT_URL"),
    "TimestreamQueryCell": Cell("query", "timestream-query", "TimestreamQueryEndpoint",
                                "TIMESTREAM_QUERY_ENDPOINT_URL"),
}
CREATE_ENDPOINTS = "CreateTimestreamVpcEndpoints"
CREATES_ENDPOINTS = "CreatesTimestreamVpcEndpoints"


def parameters() -> dict:
    """The optional parameters of a private deployment; empty: none."""
    cells = {name: {
        "Type": "String", "Default": "", "AllowedPattern": f"^({cell.prefix}-[a-z0-9-]+)?$",
        "Description": f"Your account's Timestream {cell.prefix} cell, e.g. {cell.prefix}-cell2 "
                       f"(the first label of the address `aws {cell.cli} describe-endpoints` "
                       "answers); empty: endpoint discovery."}
        for name, cell in CELLS.items()}
    return {
        "VpcId": {
            "Type": "String", "Default": "", "AllowedPattern": "^(vpc-[0-9a-f]+)?$",
            "Description": "The VPC of VpcSubnetIds, for the Timestream interface endpoints."},
        "VpcSubnetIds": {
            "Type": "CommaDelimitedList", "Default": "",
            "Description": "Subnets for the function (and the Timestream interface endpoints); "
                           "empty: the function runs outside any VPC."},
        "VpcSecurityGroupIds": {
            "Type": "CommaDelimitedList", "Default": "",
            "Description": "Security groups for the function and the endpoints: the "
                           "endpoints' must allow HTTPS (TCP 443) from the function's."},
        **cells,
        CREATE_ENDPOINTS: {
            "Type": "String", "Default": "true", "AllowedValues": ["true", "false"],
            "Description": "false: the VPC already has interface endpoints with private DNS "
                           "for these cells; the stack creates none."},
    }


def _given(name: str) -> dict:
    return {"Fn::Not": [{"Fn::Equals": [{"Ref": name}, ""]}]}


def conditions() -> dict:
    """InVpc (subnets given), Has<cell>, CreatesTimestreamVpcEndpoints and one per endpoint."""
    found = {
        IN_VPC: {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "VpcSubnetIds"}]}, ""]}]},
        CREATES_ENDPOINTS: {"Fn::And": [{"Condition": IN_VPC},
                                        {"Fn::Equals": [{"Ref": CREATE_ENDPOINTS}, "true"]}]},
    }
    for name, cell in CELLS.items():
        found["Has" + name] = _given(name)
        found["Creates" + cell.endpoint] = {
            "Fn::And": [{"Condition": CREATES_ENDPOINTS}, {"Condition": "Has" + name}]}
    return found


def _list_given(name: str) -> dict:
    return {"Fn::Not": [{"Fn::EachMemberEquals": [{"Ref": name}, ""]}]}


def rules() -> dict:
    """Refuse, before anything is created, subnets without security groups and endpoints
    without their VPC."""
    any_cell = {"Fn::Or": [_given(name) for name in CELLS]}
    return {
        "SecurityGroupsWithTheSubnets": {
            "RuleCondition": _list_given("VpcSubnetIds"),
            "Assertions": [{"Assert": _list_given("VpcSecurityGroupIds"),
                            "AssertDescription": "VpcSubnetIds need VpcSecurityGroupIds."}]},
        "VpcOfTheEndpoints": {
            "RuleCondition": {"Fn::And": [
                _list_given("VpcSubnetIds"), any_cell,
                {"Fn::Equals": [{"Ref": CREATE_ENDPOINTS}, "true"]}]},
            "Assertions": [{"Assert": _given("VpcId"),
                            "AssertDescription": "The Timestream interface endpoints need "
                                                 "VpcId, the VPC of VpcSubnetIds."}]},
    }


def cell_url(cell_parameter: str) -> dict:
    """https://<cell>.timestream.<region>.amazonaws.com: what describe-endpoints answers, and
    with private DNS the name of the interface endpoint inside the VPC."""
    return {"Fn::Sub": "https://${%s}.timestream.${AWS::Region}.${AWS::URLSuffix}"
                       % cell_parameter}


def endpoint(cell_parameter: str) -> dict:
    """The interface endpoint of one cell, in the function's subnets and security groups."""
    condition = "Creates" + CELLS[cell_parameter].endpoint
    return {"Type": "AWS::EC2::VPCEndpoint", "Condition": condition, "Properties": {
        "VpcEndpointType": "Interface",
        "ServiceName": {"Fn::Sub": "com.amazonaws.${AWS::Region}.timestream.${%s}"
                                   % cell_parameter},
        "VpcId": {"Ref": "VpcId"},
        "SubnetIds": {"Ref": "VpcSubnetIds"},
        "SecurityGroupIds": {"Ref": "VpcSecurityGroupIds"},
        "PrivateDnsEnabled": True,
    }}


def _ec2_arn(resource: str) -> dict:
    return {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:" + resource}


def role_statements() -> List[dict]:
    """The VPC attachment's statements, each present only in the VPC."""
    return [{"Fn::If": [IN_VPC, statement, NO_VALUE]}
            for statement in influxdb.vpc_statements(_ec2_arn)]


def add_to_function(function: dict) -> None:
    """The function's VpcConfig in the VPC, and the cells' URLs when they are given."""
    function["VpcConfig"] = {"Fn::If": [IN_VPC, {
        "SubnetIds": {"Ref": "VpcSubnetIds"},
        "SecurityGroupIds": {"Ref": "VpcSecurityGroupIds"}}, NO_VALUE]}
    for name, cell in CELLS.items():
        function["Environment"]["Variables"][cell.variable] = {
            "Fn::If": ["Has" + name, cell_url(name), NO_VALUE]}


def adapt_merge_template(template: dict) -> dict:
    """The Timestream merge template with the private deployment's optional parts added."""
    template = copy.deepcopy(template)
    template["Parameters"].update(parameters())
    template.setdefault("Conditions", {}).update(conditions())
    template.setdefault("Rules", {}).update(rules())
    resources = template["Resources"]
    add_to_function(resources["APIHandler"]["Properties"])
    resources.update({cell.endpoint: endpoint(name) for name, cell in CELLS.items()})
    for policy in resources["ApiHandlerRole"]["Properties"]["Policies"]:
        policy["PolicyDocument"]["Statement"] += role_statements()
    return template


def deployment_statements(account: str, region: str) -> List[dict]:
    """What deploying with the VPC parameters needs besides the stack's list: describing the
    VPC (Lambda checks VpcConfig), creating interface endpoints of AWS services (scoped as in
    "Identity and access management for VPC endpoints",
    https://docs.aws.amazon.com/vpc/latest/privatelink/vpc-endpoints-iam.html), changing and
    deleting endpoints of the account and region; private DNS associates the VPC with the
    service's private hosted zone."""
    def arn(resource: str) -> str:
        return f"arn:aws:ec2:{region}:{account}:{resource}"
    network = [arn("subnet/*"), arn("security-group/*")]
    endpoints = arn("vpc-endpoint/*")
    return [
        {"Sid": "DescribeTheVpc", "Effect": "Allow",
         "Action": influxdb.DEPLOY_VPC_ACTIONS + ["ec2:DescribeVpcEndpoints"], "Resource": "*"},
        # The service owner is known only on the endpoint: IfExists lets the VPC, subnets and
        # security groups through.
        {"Sid": "CreateEndpointsOfAwsServices", "Effect": "Allow",
         "Action": ["ec2:CreateVpcEndpoint"], "Resource": [endpoints, arn("vpc/*")] + network,
         "Condition": {"StringEqualsIfExists": {"ec2:VpceServiceOwner": "amazon"}}},
        {"Sid": "ChangeAndDeleteTheEndpoints", "Effect": "Allow",
         "Action": ["ec2:ModifyVpcEndpoint", "ec2:DeleteVpcEndpoints"],
         "Resource": [endpoints] + network},
        {"Sid": "PrivateDnsOfTheEndpoints", "Effect": "Allow",
         "Action": ["route53:AssociateVPCWithHostedZone"],
         "Resource": "arn:aws:route53:::hostedzone/*"},
    ]
