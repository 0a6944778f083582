"""Upgrades keep the URLs: every stage's template, expanded as CloudFormation expands it, keeps
the resources of deploy/stable_resources.json (logical id, type, the properties whose change
would replace them), so a stack update never replaces the API, its stage, the function, its
role or its invoke permission."""
import copy
import json
import os
import re
from typing import List

import pytest
import yaml

from deploy.package import package
from harness.processes import ROOT
from tests.support.cloudformation import CfnLoader
from tests.support.sam import expand

with open(os.path.join(ROOT, "deploy", "stable_resources.json")) as _handle:
    STABLE = json.load(_handle)
ABSENT = None


def replaced(resources: dict, stable: dict = STABLE) -> List[str]:
    """What in ``resources`` (an expanded template's) would replace a pinned resource."""
    problems = []
    for name, pinned in stable["resources"].items():
        resource = resources.get(name)
        if resource is None or resource["Type"] != pinned["Type"]:
            problems.append(f"{name}: not a {pinned['Type']} any more")
            continue
        if "Condition" in resource:
            problems.append(f"{name}: created only under {resource['Condition']}")
        properties = resource.get("Properties", {})
        for key, value in pinned["Replacing"].items():
            if properties.get(key, ABSENT) != value:
                problems.append(f"{name}.{key}: {properties.get(key, ABSENT)!r} instead of {value!r}")
    deployment = stable["deployment"]
    found = [name for name, r in resources.items() if r["Type"] == deployment["Type"]]
    if len(found) != 1 or not re.match(deployment["LogicalIdPattern"], found[0]):
        problems.append(f"API deployments {found}, not one matching {deployment['LogicalIdPattern']}")
    return problems


@pytest.fixture(scope="module", params=["dev", "prod", "influxdb"])
def expanded(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("stable") / request.param
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(package(request.param, str(out))) as handle:
        return expand(yaml.load(handle, Loader=CfnLoader))


def test_every_stage_keeps_the_pinned_resources(expanded):
    resources = expanded["Resources"]
    assert replaced(resources) == []
    [deployment] = [n for n, r in resources.items() if r["Type"] == STABLE["deployment"]["Type"]]
    assert resources["RestAPIStage"]["Properties"]["DeploymentId"] == {"Ref": deployment}


@pytest.mark.parametrize("change,problem", [
    (lambda r: r.update(MyAPI=r.pop("RestAPI")), "RestAPI: not a AWS::ApiGateway::RestApi"),
    (lambda r: r["APIHandler"]["Properties"].update(FunctionName="connector"),
     "APIHandler.FunctionName"),
    (lambda r: r["ApiHandlerRole"]["Properties"].update(RoleName="connector"),
     "ApiHandlerRole.RoleName"),
    (lambda r: r["RestAPIStage"]["Properties"].update(StageName="v2"), "RestAPIStage.StageName"),
    (lambda r: r["APIHandler"].update(Condition="InVpc"), "APIHandler: created only under"),
])
def test_a_change_that_would_replace_one_fails(expanded, change, problem):
    resources = copy.deepcopy(expanded["Resources"])
    change(resources)
    assert any(p.startswith(problem) for p in replaced(resources)), replaced(resources)


def test_the_readme_says_how_to_upgrade():
    with open(os.path.join(ROOT, "README.md")) as handle:
        readme = handle.read()
    section = readme[readme.index("### Upgrade"):]
    section = section[:section.index("\n### ", 1)]
    assert "deploy/stable_resources.json" in section
    for name in STABLE["resources"]:
        assert f"`{name}`" in section, name
