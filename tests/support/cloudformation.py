"""CloudFormation templates as data: YAML with the short tags (``!Ref``, ``!GetAtt``…) kept."""
from typing import Optional

import yaml


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags kept as {"Fn::X": ...}."""


def _tag(loader, suffix, node):
    name = "Ref" if suffix == "Ref" else "Fn::" + suffix
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


CfnLoader.add_multi_constructor("!", _tag)


PSEUDO = {"AWS::Region": "us-east-1", "AWS::URLSuffix": "amazonaws.com", "AWS::Partition": "aws",
          "AWS::AccountId": "123456789012", "AWS::StackName": "PrometheusTimestreamConnector"}
NO_VALUE = object()


def parameter_values(template: dict, given: dict) -> dict:
    """Every parameter's value as CloudFormation passes it: ``given`` over the defaults,
    a CommaDelimitedList split into its list."""
    values = {}
    for name, spec in template["Parameters"].items():
        value = str(given.get(name, spec.get("Default", "")))
        values[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else value
    return values


class Stack:
    """A template as CloudFormation would deploy it for some parameter values: conditions
    decided, resources whose condition is false left out, Fn::If chosen, AWS::NoValue removed,
    parameters, pseudo parameters and mappings put in (other Refs and GetAtts kept)."""

    def __init__(self, template: dict, given: dict) -> None:
        self.values = {**PSEUDO, **parameter_values(template, given)}
        self.mappings = template.get("Mappings", {})
        self._conditions = template.get("Conditions", {})
        self.conditions = {name: self.condition(name) for name in self._conditions}
        self.resources = {name: self.resolve(resource)
                          for name, resource in template["Resources"].items()
                          if self.conditions.get(resource.get("Condition"), True)}
        self.rules_broken = [name for name, rule in template.get("Rules", {}).items()
                             if self.resolve(rule.get("RuleCondition", True))
                             and not all(self.resolve(a["Assert"]) for a in rule["Assertions"])]

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self._conditions[name]))

    def resolve(self, node):
        """``node`` with every intrinsic function this evaluator knows worked out."""
        if isinstance(node, list):
            return [item for item in map(self.resolve, node) if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            function = FUNCTIONS.get(key)
            if function is not None:
                return function(self, arg)
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items())
                if v is not NO_VALUE}

    def _ref(self, name: str):
        if name == "AWS::NoValue":
            return NO_VALUE
        return self.values.get(name, {"Ref": name})

    def _sub(self, text: str, variables: Optional[dict] = None) -> str:
        """Parameters, pseudo parameters and ``variables`` put in; ``${Resource}`` and
        ``${Resource.Attribute}`` kept."""
        for name, value in {**self.values, **(variables or {})}.items():
            if isinstance(value, (str, int, float)):
                text = text.replace("${%s}" % name, str(value))
        return text

    def _find_in_map(self, arg: list):
        mapping, key, name = (str(self.resolve(x)) for x in arg)
        return self.mappings[mapping][key][name]


FUNCTIONS = {
    "Ref": Stack._ref,
    "Condition": Stack.condition,
    "Fn::If": lambda s, a: s.resolve(a[1] if s.condition(a[0]) else a[2]),
    "Fn::Not": lambda s, a: not s.resolve(a[0]),
    "Fn::And": lambda s, a: all(s.resolve(x) for x in a),
    "Fn::Or": lambda s, a: any(s.resolve(x) for x in a),
    "Fn::Equals": lambda s, a: s.resolve(a[0]) == s.resolve(a[1]),
    "Fn::Join": lambda s, a: a[0].join(s.resolve(a[1])),
    "Fn::EachMemberEquals": lambda s, a: all(x == s.resolve(a[1]) for x in s.resolve(a[0])),
    "Fn::Sub": lambda s, a: s._sub(a) if isinstance(a, str) else s._sub(a[0], s.resolve(a[1])),
    "Fn::FindInMap": Stack._find_in_map,
}
