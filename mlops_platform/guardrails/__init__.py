"""The platform's own synth-time rules for what AWS would refuse at deploy or run time.

cdk-nag checks best practice; these check what makes a first deploy into a
fresh account fail (or fail silently later), grouped by what AWS checks:
``keys`` (key policies vs the services and roles that use the keys),
``quotas`` (limits of new accounts), ``networking`` (HyperPod and FSx for
Lustre), ``sagemaker`` (model packages vs endpoint variants) and ``projects``
(one project's policies kept off another's resources). Each module's
docstring cites the documentation behind its rules. :class:`GuardrailsPlugin`
runs them all on every synth as a CDK validation plugin, so a finding fails it.
"""

from __future__ import annotations

from collections.abc import Iterable

import jsii
from aws_cdk import (
    IPolicyValidationContext,
    IPolicyValidationPlugin,
    PolicyValidationPluginReport,
    PolicyViolatingResource,
    PolicyViolation,
)

from mlops_platform.guardrails import keys, networking, projects, quotas, sagemaker
from mlops_platform.guardrails.core import Finding, GuardrailSettings, StackTemplate, StageTemplates

_MODULES = (keys, quotas, networking, sagemaker, projects)
RULES: dict[str, str] = {rule: text for module in _MODULES for rule, text in module.RULES.items()}

__all__ = ["RULES", "Finding", "GuardrailSettings", "GuardrailsPlugin", "check_stage", "check_template"]


def check_stage(stage: StageTemplates, settings: GuardrailSettings = GuardrailSettings()) -> list[Finding]:
    """Every rule over the templates of one stage."""
    findings: list[Finding] = []
    for module in _MODULES:
        findings.extend(module.check(stage, settings))
    return findings


def check_template(
    template: dict,
    settings: GuardrailSettings = GuardrailSettings(),
    *,
    account: str = "123456789012",
    region: str = "us-east-1",
) -> list[Finding]:
    """Every rule over one template, as if it were the only stack of its stage."""
    return check_stage(StageTemplates([StackTemplate("template.json", template, account, region)]), settings)


@jsii.implements(IPolicyValidationPlugin)
class GuardrailsPlugin:
    """CDK validation plugin running every rule over the templates of a stage.

    ``settings`` carries what config allows (default: nothing beyond the rules).
    """

    def __init__(self, settings: GuardrailSettings = GuardrailSettings()) -> None:
        self._settings = settings

    @property
    def name(self) -> str:
        return "MLOpsGuardrails"

    @property
    def version(self) -> str | None:
        return "2"

    @property
    def rule_ids(self) -> list[str] | None:
        return list(RULES)

    def validate(self, context: IPolicyValidationContext) -> PolicyValidationPluginReport:
        stage = StageTemplates.from_paths(list(context.template_paths))
        by_rule: dict[str, list[tuple[Finding, str]]] = {}
        for finding in check_stage(stage, self._settings):
            by_rule.setdefault(finding.rule, []).append((finding, finding.template))
        return PolicyValidationPluginReport(
            success=not by_rule,
            violations=[
                PolicyViolation(
                    rule_name=rule,
                    description=RULES[rule] + _details(found),
                    violating_resources=[
                        PolicyViolatingResource(
                            locations=[finding.location], resource_logical_id=finding.logical_id, template_path=path
                        )
                        for finding, path in found
                    ],
                    severity="error",
                )
                for rule, found in sorted(by_rule.items())
            ],
        )


def _details(found: Iterable[tuple[Finding, str]]) -> str:
    details = sorted({f"{finding.logical_id}: {finding.detail}" for finding, _ in found if finding.detail})
    return (" " + "; ".join(details)) if details else ""
