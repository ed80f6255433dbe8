"""Composes the whole platform: one CDK Stage per account role, stacks per project inside."""

from __future__ import annotations

from aws_cdk import App, Environment, Stack, Stage, Tags

from mlops_platform.config import ROLES, SERVING_STAGES, PlatformConfig
from mlops_platform.nag import add_rule_packs
from mlops_platform.naming import Naming
from stacks.baseline import BaselineStack
from stacks.build import BuildStack
from stacks.governance import ApprovalStack, RegistryStack
from stacks.serving import ServingStack
from stacks.studio import StudioStack, WorkspaceStack


def build_platform(app: App, config: PlatformConfig) -> dict[str, Stage]:
    """Add the four account-role stages to ``app`` and return them by role.

    Stage ids are the roles in PascalCase (``Governance``, ``Dev`` ...); stack
    names carry the platform prefix, role and project, so every role and project
    can share one account.
    """
    platform = config.platform
    naming = Naming(platform)
    # Staging and prod models read their artifacts from the dev bucket with the dev key.
    dev_readers = [
        (naming.model_role_arn(name, stage), naming.project_prefix(name))
        for name in config.projects
        for stage in SERVING_STAGES
    ]
    stages: dict[str, Stage] = {}
    for role in ROLES:
        account = platform.accounts.of(role)
        stage = Stage(app, role.capitalize(), env=Environment(account=account.id, region=account.region))
        stages[role] = stage
        add_rule_packs(stage, platform.nag.packs)
        Tags.of(stage).add("mlops:platform", platform.prefix)
        Tags.of(stage).add("mlops:role", role)
        for key, value in sorted(platform.tags.items()):
            Tags.of(stage).add(key, value)

        baseline = BaselineStack(
            stage,
            "Baseline",
            stack_name=naming.stack_name(role, "baseline"),
            description=f"{platform.prefix} {role}: key, artifacts bucket and network (stateful)",
            role=role,
            platform=platform,
            naming=naming,
            external_readers=dev_readers if role == "dev" else (),
        )
        studio = None
        if role in platform.studio.accounts:
            studio = StudioStack(
                stage,
                "Studio",
                stack_name=naming.stack_name(role, "studio"),
                description=f"{platform.prefix} {role}: SageMaker Studio domain (stateful)",
                role=role,
                platform=platform,
                naming=naming,
                baseline=baseline,
            )
        for name, project in config.projects.items():
            project_id = "".join(part.capitalize() for part in name.split("-"))

            def stack_props(part: str, what: str) -> dict:
                return {
                    "stack_name": naming.stack_name(role, part, name),
                    "description": f"{platform.prefix} {role}, project {name}: {what}",
                }

            project_stacks: list[Stack] = []
            if role == "governance":
                registry = RegistryStack(
                    stage, f"{project_id}Registry", project=project, naming=naming,
                    **stack_props("registry", "model package group (stateful)"),
                )
                approval = ApprovalStack(
                    stage, f"{project_id}Approval", project=project, key=baseline.key,
                    **stack_props("approval", "approval workflow"),
                )
                project_stacks += [registry, approval]
            if studio is not None:
                project_stacks.append(WorkspaceStack(
                    stage, f"{project_id}Workspace", role=role, project=project, platform=platform,
                    naming=naming, baseline=baseline, studio=studio,
                    **stack_props("workspace", "Studio persona roles and user profiles"),
                ))
            if role == "dev":
                project_stacks.append(BuildStack(
                    stage, f"{project_id}Build", project=project, naming=naming, baseline=baseline,
                    **stack_props("build", "model build pipeline"),
                ))
            if role in SERVING_STAGES:
                project_stacks.append(ServingStack(
                    stage, f"{project_id}Serving", stage=role, project=project, naming=naming, baseline=baseline,
                    **stack_props("serving", "model serving"),
                ))
            for stack in project_stacks:
                Tags.of(stack).add("mlops:project", name)
    return stages
