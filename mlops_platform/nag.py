"""cdk-nag wiring: which rule packs run, and the one way to acknowledge a finding.

Every pack runs as a CDK validation plugin, so any unacknowledged finding makes
``app.synth()`` raise and the synth exit non-zero; the report lands in
``cdk.out/validation-report.json``. checkov (``make lint``) scans the synthesized
templates independently; :func:`checkov_skip` is the one way to skip one of its checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import cdk_nag
from aws_cdk import Acknowledgment, CfnResource, Stage, Validations
from constructs import IConstruct

from mlops_platform.guardrails import GuardrailSettings, GuardrailsPlugin

_PACKS: dict[str, Any] = {
    "AwsSolutions": cdk_nag.AwsSolutionsChecks,
    "NIST.800-53.R5": cdk_nag.NIST80053R5Checks,
    "HIPAA.Security": cdk_nag.HIPAASecurityChecks,
    "PCI.DSS.321": cdk_nag.PCIDSS321Checks,
    "Serverless": cdk_nag.ServerlessChecks,
}


def add_rule_packs(stage: Stage, packs: Iterable[str], guardrails: GuardrailSettings = GuardrailSettings()) -> None:
    """Run the named cdk-nag packs, and always the platform's own guardrails (``guardrails``: what config allows)."""
    Validations.of(stage).add_plugins(*(_PACKS[name](stage) for name in packs), GuardrailsPlugin(guardrails))


def acknowledge(resource: IConstruct, rule: str, reason: str) -> None:
    """Accept one finding on one resource, with the reason it is acceptable here.

    ``rule`` is a single finding id such as ``AwsSolutions-IAM5[Action::s3:List*]``;
    pass the construct whose resource is flagged, never a stack or stage.
    """
    if not reason.strip():
        raise ValueError(f"acknowledging {rule} needs a reason")
    Validations.of(resource).acknowledge(Acknowledgment(id=rule, reason=reason))


_CHECKOV_ID = re.compile(r"CKV2?_[A-Z0-9]+_[0-9]+")


def checkov_skip(resource: IConstruct, check_id: str, reason: str) -> None:
    """Skip one checkov check on one resource, with the reason it does not apply here.

    ``check_id`` is a single checkov id such as ``CKV_AWS_117``; pass the construct
    whose CloudFormation resource is flagged (an L2 construct, whose ``default_child``
    is used, or the ``CfnResource`` itself), never a stack. The skip lands in that
    resource's ``Metadata.checkov.skip`` beside any skips already there.
    """
    if not _CHECKOV_ID.fullmatch(check_id):
        raise ValueError(f"{check_id!r} is not one checkov check id (e.g. CKV_AWS_117)")
    if not reason.strip():
        raise ValueError(f"skipping {check_id} needs a reason")
    cfn = resource if isinstance(resource, CfnResource) else resource.node.default_child
    if not isinstance(cfn, CfnResource):
        raise TypeError(f"{resource.node.path} has no CloudFormation resource to put a checkov skip on")
    metadata = dict(cfn.get_metadata("checkov") or {})
    skips = list(metadata.get("skip", []))
    for skip in skips:
        if skip["id"] == check_id:
            if skip["comment"] != reason:
                raise ValueError(f"{cfn.node.path} already skips {check_id} for another reason")
            return
    cfn.add_metadata("checkov", {**metadata, "skip": [*skips, {"id": check_id, "comment": reason}]})


def acknowledge_deploy_time_function(function: IConstruct, why: str, *, invoked: str, reaches: str) -> None:
    """A CDK-managed function CloudFormation invokes only while deploying: no concurrency, DLQ or VPC.

    ``why`` says which function it is; ``invoked``: how often it runs; ``reaches``: what it calls. The
    same three reasons go to cdk-nag (NIST 800-53) and to checkov (CKV_AWS_115, 116, 117).
    """
    reasons = (
        ("NIST.800.53.R5-LambdaConcurrency", "CKV_AWS_115", f"{why}; {invoked}."),
        ("NIST.800.53.R5-LambdaDLQ", "CKV_AWS_116", f"{why}; failures fail the deployment, no event to keep."),
        ("NIST.800.53.R5-LambdaInsideVPC", "CKV_AWS_117", f"{why}; {reaches}."),
    )
    for rule, check_id, reason in reasons:
        acknowledge(function, rule, reason)
        checkov_skip(function, check_id, reason)
