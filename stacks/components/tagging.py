"""Tags on the resources ``Tags.of`` cannot reach.

CDK's own custom-resource providers (the VPC's default-security-group
restriction, for one) create their role and function as plain ``CfnResource``s,
which are not taggable to CDK. This aspect copies the stack's tags onto them,
so every taggable resource carries the stage, project and cost-center tags.
"""

from __future__ import annotations

import jsii
from aws_cdk import CfnResource, IAspect, Stack, TagManager
from constructs import IConstruct

# Types CloudFormation tags (a ``Tags`` list) that CDK's providers create untaggable.
RAW_TAGGABLE_TYPES = ("AWS::IAM::Role", "AWS::Lambda::Function")


@jsii.implements(IAspect)
class TagProviderResources:
    """Give plain CfnResources of :data:`RAW_TAGGABLE_TYPES` their stack's tags (added after ``Tags.of`` ran)."""

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource) or node.cfn_resource_type not in RAW_TAGGABLE_TYPES:
            return
        if TagManager.is_taggable(node):
            return
        tags = Stack.of(node).tags.tag_values()
        if tags:
            node.add_property_override("Tags", [{"Key": key, "Value": tags[key]} for key in sorted(tags)])
