"""CloudFormation templates as data: YAML with the short tags (``!Ref``, ``!GetAtt``…) kept."""
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
