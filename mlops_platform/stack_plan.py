"""Which CloudFormation stacks a project adds in each account role, without building them.

The same decisions as ``stacks/platform.py`` (``_project_stacks``), as plain data
and without importing CDK, so ``mlops new-project`` can say what a synth will add;
``tests/teams/test_new_project.py`` holds the two to the same list by
comparing with a synthesized app.
"""

from __future__ import annotations

from mlops_platform.config import ROLES, SERVING_STAGES, PlatformSettings, ProjectSettings
from mlops_platform.naming import Naming


def project_stack_parts(platform: PlatformSettings, project: ProjectSettings) -> dict[str, list[str]]:
    """The stack name parts (``registry``, ``build`` ...) of ``project`` per account role, in creation order.

    Governance: registry, approval. Every Studio account: workspace. Dev: features
    (only with a feature group), build. Staging and prod: serving (always, with an
    endpoint once a version is released).
    """
    plan: dict[str, list[str]] = {}
    for role in ROLES:
        parts: list[str] = []
        if role == "governance":
            parts += ["registry", "approval"]
        if role in platform.studio.accounts:
            parts.append("workspace")
        if role == "dev":
            if project.features.feature_groups:
                parts.append("features")
            parts.append("build")
        if role in SERVING_STAGES:
            parts.append("serving")
        plan[role] = parts
    return plan


def project_stacks(platform: PlatformSettings, project: ProjectSettings) -> dict[str, list[str]]:
    """The stack names of ``project`` per account role, e.g. ``{"dev": ["mlops-dev-churn-workspace", ...]}``."""
    naming = Naming(platform)
    return {
        role: [naming.stack_name(role, part, project.name) for part in parts]
        for role, parts in project_stack_parts(platform, project).items()
    }


def construct_id(project: str) -> str:
    """The PascalCase id ``stacks/platform.py`` gives a project's stacks (``churn-eu`` -> ``ChurnEu``)."""
    return "".join(part.capitalize() for part in project.split("-"))
