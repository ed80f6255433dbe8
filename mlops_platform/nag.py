"""cdk-nag wiring: which rule packs run, and the one way to acknowledge a finding.

Every pack runs as a CDK validation plugin, so any unacknowledged finding makes
``app.synth()`` raise and the synth exit non-zero; the report lands in
``cdk.out/validation-report.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import cdk_nag
from aws_cdk import Acknowledgment, Stage, Validations
from constructs import IConstruct

from mlops_platform.guardrails import GuardrailsPlugin

_PACKS: dict[str, Any] = {
    "AwsSolutions": cdk_nag.AwsSolutionsChecks,
    "NIST.800-53.R5": cdk_nag.NIST80053R5Checks,
    "HIPAA.Security": cdk_nag.HIPAASecurityChecks,
    "PCI.DSS.321": cdk_nag.PCIDSS321Checks,
    "Serverless": cdk_nag.ServerlessChecks,
}


def add_rule_packs(stage: Stage, packs: Iterable[str]) -> None:
    """Run the named cdk-nag packs, and always the platform's own SageMaker guardrails, over ``stage``."""
    Validations.of(stage).add_plugins(*(_PACKS[name](stage) for name in packs), GuardrailsPlugin())


def acknowledge(resource: IConstruct, rule: str, reason: str) -> None:
    """Accept one finding on one resource, with the reason it is acceptable here.

    ``rule`` is a single finding id such as ``AwsSolutions-IAM5[Action::s3:List*]``;
    pass the construct whose resource is flagged, never a stack or stage.
    """
    if not reason.strip():
        raise ValueError(f"acknowledging {rule} needs a reason")
    Validations.of(resource).acknowledge(Acknowledgment(id=rule, reason=reason))
