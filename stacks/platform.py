"""Composes the whole platform: one CDK Stage per account role, stacks per project inside."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import App, Aspects, Environment, Stack, Stage, Tags
from aws_cdk import aws_dynamodb as dynamodb

from mlops_platform.approval_policy import policy_document
from mlops_platform.config import COST_CENTER_TAG, ROLES, SERVING_STAGES, PlatformConfig, ProjectSettings
from mlops_platform.guardrails import GuardrailSettings
from mlops_platform.nag import add_rule_packs
from mlops_platform.naming import PROJECT_TAG, STAGE_TAG, Naming
from mlops_platform.release_manifest import Manifests
from stacks.baseline import BaselineStack
from stacks.build import BuildStack
from stacks.components.tagging import TagProviderResources
from stacks.deploy import DeployStack
from stacks.feature_store import FeatureStoreStack
from stacks.github_oidc import GitHubOidcStack, account_roles_here
from stacks.governance import ApprovalStack, RegistryStack
from stacks.serving import ServingStack
from stacks.studio import StudioStack, WorkspaceStack
from stacks.training_cluster import TrainingClusterStack


def build_platform(
    app: App, config: PlatformConfig, *, definition_cache: Path, releases: Manifests
) -> dict[str, Stage]:
    """Add the four account-role stages to ``app`` and return them by role.

    Stage ids are the roles in PascalCase (``Governance``, ``Dev`` ...); stack
    names carry the platform prefix, role and project, so every role and project
    can share one account. Pipeline definitions are cached under ``definition_cache``;
    ``releases`` says what each serving stack deploys.
    """
    platform = config.platform
    naming = Naming(platform)
    # Staging and prod models read their artifacts from the dev bucket with the dev key,
    # and the governance approval handlers read the evaluation reports next to them.
    dev_readers = [
        (naming.role_arn(name, role, purpose), naming.project_prefix(name))
        for name in config.projects
        for role, purpose in (
            ("staging", "model"),
            ("prod", "model"),
            ("governance", "notify"),
            ("governance", "guard"),
            ("governance", "approver"),
            # Monitoring jobs read the served version's baselines, which the dev pipeline wrote.
            ("staging", "monitor"),
            ("prod", "monitor"),
        )
    ]
    retraining = sorted(
        p.name for p in config.projects.values() if p.monitoring.enabled and p.monitoring.retraining.enabled
    )
    stages: dict[str, Stage] = {}
    for role in ROLES:
        account = platform.accounts.of(role)
        stage = Stage(app, role.capitalize(), env=Environment(account=account.id, region=account.region))
        stages[role] = stage
        reserved_concurrency = platform.approval_workflow.reserved_concurrency
        add_rule_packs(
            stage, platform.nag.packs, GuardrailSettings(reserved_concurrency=reserved_concurrency is not None)
        )
        for key, value in [("mlops:platform", platform.prefix), (STAGE_TAG, role), *sorted(platform.tags.items())]:
            Tags.of(stage).add(key, value)
        Aspects.of(stage).add(TagProviderResources())

        baseline = BaselineStack(
            stage,
            "Baseline",
            stack_name=naming.stack_name(role, "baseline"),
            description=f"{platform.prefix} {role}: key, artifacts bucket and network (stateful)",
            role=role,
            platform=platform,
            naming=naming,
            external_readers=dev_readers if role == "dev" else (),
            retraining=bool(retraining),
        )
        # One provider per account: the account's first role holds it and the deploy roles of every role there.
        github_roles = account_roles_here(platform, role) if platform.github is not None else ()
        if platform.github is not None and github_roles:
            GitHubOidcStack(
                stage,
                "GitHubOidc",
                stack_name=naming.stack_name(role, "github-oidc"),
                description=f"{platform.prefix} {role}: GitHub Actions OIDC provider and deploy roles "
                f"({', '.join(github_roles)}), deployed once by an admin",
                github=platform.github,
                naming=naming,
                roles=github_roles,
            )
        if role == "governance":
            DeployStack(
                stage,
                "Deploy",
                stack_name=naming.stack_name(role, "deploy"),
                description=f"{platform.prefix} governance: pipeline deploying released model versions",
                config=config,
                naming=naming,
                key=baseline.key,
                releases=_releases_table(baseline),
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
        # Off with the file system kept, the stack stays so that CloudFormation deletes the cluster.
        if role == "dev" and platform.training_cluster.in_app:
            what = (
                "FSx for Lustre + HyperPod Trainium cluster"
                if platform.training_cluster.enabled
                else ("FSx for Lustre only, HyperPod cluster switched off")
            )
            TrainingClusterStack(
                stage,
                "TrainingCluster",
                stack_name=naming.stack_name(role, "training"),
                description=f"{platform.prefix} dev: {what} (stateful)",
                cluster=platform.training_cluster,
                naming=naming,
                baseline=baseline,
            )
        for project in config.projects.values():
            stacks = _project_stacks(stage, role, project, config, naming, baseline, studio, definition_cache, releases)
            for stack in stacks:
                Tags.of(stack).add(PROJECT_TAG, project.name)
                if project.cost_center:
                    Tags.of(stack).add(COST_CENTER_TAG, project.cost_center)
    return stages


def _project_stacks(
    stage: Stage,
    role: str,
    project: ProjectSettings,
    config: PlatformConfig,
    naming: Naming,
    baseline: BaselineStack,
    studio: StudioStack | None,
    definition_cache: Path,
    releases: Manifests,
) -> list[Stack]:
    """The stacks one project has in one account role."""
    project_id = "".join(part.capitalize() for part in project.name.split("-"))

    def props(part: str, what: str) -> dict:
        return {
            "stack_name": naming.stack_name(role, part, project.name),
            "description": f"{config.platform.prefix} {role}, project {project.name}: {what}",
            "project": project,
            "naming": naming,
        }

    stacks: list[Stack] = []
    if role == "governance":
        stacks.append(RegistryStack(stage, f"{project_id}Registry", **props("registry", "model registry (stateful)")))
        stacks.append(
            ApprovalStack(
                stage,
                f"{project_id}Approval",
                key=baseline.key,
                releases=_releases_table(baseline),
                policy=policy_document(config, project.name),
                reserved_concurrency=config.platform.approval_workflow.reserved_concurrency,
                **props("approval", "approval workflow"),
            )
        )
    if studio is not None:
        stacks.append(
            WorkspaceStack(
                stage,
                f"{project_id}Workspace",
                role=role,
                platform=config.platform,
                baseline=baseline,
                studio=studio,
                **props("workspace", "Studio persona roles and user profiles"),
            )
        )
    if role == "dev":
        if project.features.feature_groups:
            stacks.append(
                FeatureStoreStack(
                    stage, f"{project_id}Features", baseline=baseline, **props("features", "feature groups (stateful)")
                )
            )
        stacks.append(
            BuildStack(
                stage,
                f"{project_id}Build",
                baseline=baseline,
                definition_cache=definition_cache,
                **props("build", "model build pipeline"),
            )
        )
    if role in SERVING_STAGES:
        stacks.append(
            ServingStack(
                stage,
                f"{project_id}Serving",
                stage=role,
                baseline=baseline,
                release=releases.get((project.name, role)),
                **props("serving", "model serving"),
            )
        )
    return stacks


def _releases_table(baseline: BaselineStack) -> dynamodb.ITableV2:
    if baseline.releases is None:
        raise ValueError("the governance baseline must hold the release table")
    return baseline.releases
