"""What the ``mlops`` commands do, as functions over injected boto3 clients.

Nothing here parses arguments or prints: :mod:`mlops_platform.cli.app` does
that. Failures a user can fix raise :class:`CliError` with an exit code and one
line of text; AWS errors propagate as botocore exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mlops_platform.approval import policy as policy_mod
from mlops_platform.approval import releases as releases_mod
from mlops_platform.approval.aws import describe_package, read_report
from mlops_platform.approval.state_change import parse_arn
from mlops_platform.approval_policy import load_policy
from mlops_platform.config import PlatformConfig
from mlops_platform.naming import Naming

PENDING, APPROVED, REJECTED = policy_mod.PENDING, policy_mod.APPROVED, policy_mod.REJECTED


class CliError(Exception):
    """A problem the user can fix: one line of text and the exit code."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class PolicyRefusal(CliError):
    """The version's metrics or evidence violate the project's approval policy."""

    exit_code = 3


@dataclass(frozen=True)
class Context:
    """Config and names the commands work from."""

    config: PlatformConfig

    @property
    def naming(self) -> Naming:
        return Naming(self.config.platform)

    @property
    def releases_table(self) -> str:
        return self.naming.releases_table()

    def projects(self, only: str | None = None) -> list[str]:
        if only is None:
            return sorted(self.config.projects)
        if only not in self.config.projects:
            known = ", ".join(sorted(self.config.projects)) or "none"
            raise CliError(f"unknown project '{only}' (projects in config: {known})")
        return [only]

    def group(self, project: str) -> str:
        return self.naming.model_package_group(project)

    def project_of_group(self, group: str) -> str:
        for project in self.config.projects:
            if self.group(project).lower() == group.lower():
                return project
        known = ", ".join(sorted(self.group(p) for p in self.config.projects)) or "none"
        raise CliError(f"unknown project: model package group '{group}' is not in config (groups: {known})")


@dataclass(frozen=True)
class Target:
    """A model package version named on the command line."""

    arn: str
    project: str
    group: str
    version: int


def resolve(ctx: Context, arn: str) -> Target:
    """Project, group and version of a model package ARN; CliError if it is not one of ours."""
    parsed = parse_arn(arn.strip())
    if parsed is None:
        raise CliError(
            f"'{arn}' is not a model package version ARN (arn:aws:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION)"
        )
    group, version = parsed
    project = ctx.project_of_group(group)
    return Target(arn=arn.strip(), project=project, group=ctx.group(project), version=version)


def describe(sagemaker: Any, target: Target) -> dict[str, Any]:
    """DescribeModelPackage; CliError when the version does not exist."""
    description = describe_package(sagemaker, target.arn)
    if description is None:
        raise CliError(f"unknown model package: {target.arn} does not exist")
    return description


def evidence(sagemaker: Any, s3: Any, target: Target) -> tuple[dict[str, Any], Any]:
    """DescribeModelPackage and the parsed evidence (policy.PackageEvidence) of a version."""
    description = describe(sagemaker, target)
    report, problem = read_report(s3, policy_mod.evaluation_report_uri(description))
    return description, policy_mod.parse_package(description, report, problem)


# --------------------------------------------------------------------------- approvals list


@dataclass(frozen=True)
class PendingVersion:
    project: str
    group: str
    version: int | None
    arn: str
    created: datetime | None
    description: str


def list_pending(sagemaker: Any, ctx: Context, project: str | None = None) -> list[PendingVersion]:
    """Versions waiting for manual approval, newest first per project."""
    rows: list[PendingVersion] = []
    for name in ctx.projects(project):
        group = ctx.group(name)
        kwargs: dict[str, Any] = {
            "ModelPackageGroupName": group,
            "ModelApprovalStatus": PENDING,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
            "MaxResults": 100,
        }
        while True:
            page = sagemaker.list_model_packages(**kwargs)
            for summary in page.get("ModelPackageSummaryList", []):
                rows.append(
                    PendingVersion(
                        project=name,
                        group=group,
                        version=summary.get("ModelPackageVersion"),
                        arn=summary["ModelPackageArn"],
                        created=summary.get("CreationTime"),
                        description=summary.get("ModelPackageDescription", ""),
                    )
                )
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return rows


# --------------------------------------------------------------------------- approvals show


@dataclass(frozen=True)
class StageView:
    """What a stage serves now, with that version's metrics for comparison."""

    stage: str
    release: Any  # releases.Release | None
    metrics: dict[str, float] | None = None
    problem: str | None = None


@dataclass(frozen=True)
class VersionReport:
    target: Target
    description: dict[str, Any]
    package: Any  # policy.PackageEvidence
    policy: Any  # policy.Policy
    model_check: Any  # policy.Decision (metrics and evidence only)
    stages: list[StageView] = field(default_factory=list)


def show_version(sagemaker: Any, s3: Any, dynamodb: Any, ctx: Context, arn: str) -> VersionReport:
    target = resolve(ctx, arn)
    policy = load_policy(ctx.config, target.project)
    description, package = evidence(sagemaker, s3, target)
    table = releases_mod.ReleaseTable(dynamodb, ctx.releases_table)
    stages = []
    for stage in releases_mod.STAGES:
        current = releases_mod.current_release(table.releases(target.project, stage))
        if current is None:
            stages.append(StageView(stage, None))
            continue
        try:
            _, served = evidence(sagemaker, s3, resolve(ctx, current.model_package_arn))
        except CliError as err:
            stages.append(StageView(stage, current, None, str(err)))
            continue
        metrics = dict(served.metrics) if served.metrics is not None else None
        stages.append(StageView(stage, current, metrics, served.report_problem))
    return VersionReport(
        target=target,
        description=description,
        package=package,
        policy=policy,
        model_check=policy_mod.evaluate_model(policy, package),
        stages=stages,
    )


# --------------------------------------------------------------------------- approve / reject


@dataclass(frozen=True)
class UpdateResult:
    target: Target
    status: str
    changed: bool
    previous_status: str | None


def approve(sagemaker: Any, s3: Any, ctx: Context, arn: str, reason: str) -> UpdateResult:
    """Approve after checking metrics and evidence against the policy (the guard checks the approver).

    Raises :class:`PolicyRefusal` (exit 3) before calling UpdateModelPackage
    when the version itself violates the policy.
    """
    reason = check_reason(reason)
    target = resolve(ctx, arn)
    policy = load_policy(ctx.config, target.project)
    description, package = evidence(sagemaker, s3, target)
    if package.status == APPROVED:
        return UpdateResult(target, APPROVED, False, APPROVED)
    decision = policy_mod.evaluate_model(policy, package)
    if not decision.allowed:
        raise PolicyRefusal(
            f"refused: {target.group} version {target.version} does not meet the approval policy of project "
            f"{target.project}: {decision.reason}"
        )
    sagemaker.update_model_package(ModelPackageArn=target.arn, ModelApprovalStatus=APPROVED, ApprovalDescription=reason)
    return UpdateResult(target, APPROVED, True, package.status)


def check_approver_name(ctx: Context, project: str, person: str) -> None:
    """PolicyRefusal (exit 3) unless ``person`` is one of the project's named approvers."""
    names = [a for a in ctx.config.projects[project].approval.approvers if not a.startswith("arn:")]
    if person not in names:
        listed = ", ".join(names) or "none (approvers are IAM roles only)"
        raise PolicyRefusal(
            f"refused: '{person}' is not an approver of project {project} (approvers by name: {listed})"
        )


def check_own_approver_role(ctx: Context, project: str, caller_arn: str) -> None:
    """CliError unless the caller's own role is an approver role ARN of the project (then no --as is needed)."""
    policy = load_policy(ctx.config, project)
    roles = [a for a in policy.approvers if a.startswith("arn:")]
    principal = policy_mod.normalize_principal(caller_arn)
    if principal in {policy_mod.normalize_principal(r) for r in roles}:
        return
    names = [a for a in policy.approvers if not a.startswith("arn:")]
    raise CliError(
        f"say who approves: pass --as NAME (approvers of {project}: {', '.join(names) or 'none by name'}); "
        f"your session {caller_arn} is not an approver role{' (' + ', '.join(roles) + ')' if roles else ''}"
    )


def reject(sagemaker: Any, ctx: Context, arn: str, reason: str) -> UpdateResult:
    reason = check_reason(reason)
    target = resolve(ctx, arn)
    description = describe(sagemaker, target)
    previous = description.get("ModelApprovalStatus")
    if previous == REJECTED:
        return UpdateResult(target, REJECTED, False, previous)
    sagemaker.update_model_package(ModelPackageArn=target.arn, ModelApprovalStatus=REJECTED, ApprovalDescription=reason)
    return UpdateResult(target, REJECTED, True, previous)


def check_reason(reason: str, recorded: str = "as the ApprovalDescription") -> str:
    """The stripped ``--reason``; CliError when empty or longer than the 1024 characters SageMaker allows."""
    reason = (reason or "").strip()
    if not reason:
        raise CliError(f"--reason must not be empty: it is recorded {recorded}")
    if len(reason) > 1024:
        raise CliError(f"--reason is {len(reason)} characters; SageMaker allows at most 1024")
    return reason


# --------------------------------------------------------------------------- releases


@dataclass(frozen=True)
class StageReleases:
    project: str
    stage: str
    current: Any  # releases.Release | None
    releases: list[Any]  # releases.Release
    rollbacks: list[Any]  # releases.Rollback


def releases_overview(dynamodb: Any, ctx: Context, project: str | None = None) -> list[StageReleases]:
    """Per project and stage: the current release, every release record and every rollback."""
    table = releases_mod.ReleaseTable(dynamodb, ctx.releases_table)
    out = []
    for name in ctx.projects(project):
        for stage in releases_mod.STAGES:
            records = table.releases(name, stage)
            out.append(
                StageReleases(
                    project=name,
                    stage=stage,
                    current=releases_mod.current_release(records),
                    releases=records,
                    rollbacks=table.rollbacks(name, stage),
                )
            )
    return out
