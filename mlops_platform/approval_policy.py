"""The approval policy document a project's approval Lambdas and the admin CLI both evaluate."""

from __future__ import annotations

from typing import Any

from mlops_platform.approval.policy import Policy
from mlops_platform.config import PlatformConfig
from mlops_platform.naming import Naming


def policy_document(config: PlatformConfig, project: str) -> dict[str, Any]:
    """The ``APPROVAL_POLICY`` document of ``project``: its approval section plus registry names."""
    settings = config.projects[project]
    approval = settings.approval
    naming = Naming(config.platform)
    return {
        "project": settings.name,
        "model_package_group": naming.model_package_group(settings.name),
        "approvers": list(approval.approvers),
        "primary_metric": approval.primary_metric,
        "metric_thresholds": dict(sorted(approval.metric_thresholds.items())),
        "required_evidence": list(approval.required_evidence),
        "allow_self_approval": approval.allow_self_approval,
        "approver_role_arn": naming.approver_role_arn(settings.name),
        "studio_role_arn": naming.role_arn(settings.name, "dev", "lead"),
    }


def load_policy(config: PlatformConfig, project: str) -> Policy:
    """The project's :class:`Policy`, from the same document its approval Lambdas get."""
    return Policy.from_dict(policy_document(config, project))
