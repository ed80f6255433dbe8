"""``mlops promote``: release staging's current version to prod when its shadow test passes, then deploy it.

Governance clients do the release table, model registry and deploy pipeline
work; staging clients, made only once the cheap checks pass, read the shadow
test. Functions over injected boto3 clients; nothing here parses arguments or
prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from mlops_platform.approval import aws
from mlops_platform.approval import releases as releases_mod
from mlops_platform.cli.core import APPROVED, CliError, Context, PolicyRefusal, check_reason, describe, resolve
from mlops_platform.cli.endpoints import iso
from mlops_platform.cli.loadtest import load_test_violations
from mlops_platform.cli.shadow import EndpointMissing, ShadowReport, evaluate_promotion, shadow_report


class PromotionRefused(PolicyRefusal):
    """The promotion rule or the registry refuses; carries the shadow report when one was built."""

    def __init__(self, message: str, report: ShadowReport | None = None, violations: list[str] | None = None) -> None:
        super().__init__(message)
        self.report = report
        self.violations = violations or []


class StagingClients(Protocol):
    @property
    def sagemaker(self) -> Any: ...

    @property
    def cloudwatch(self) -> Any: ...

    @property
    def s3(self) -> Any: ...


@dataclass(frozen=True)
class PromoteResult:
    outcome: str  # promoted | resumed (recorded earlier, pipeline started now) | already
    release: Any  # releases.Release of prod
    pipeline: str
    execution_id: str | None
    report: ShadowReport | None = None


def _start_deployment(codepipeline: Any, ctx: Context, release: Any) -> str:
    """Start the deploy pipeline exactly as the approval Lambdas do (same variables, same token formula)."""
    return str(
        aws.start_deployment(
            codepipeline,
            ctx.naming.deploy_pipeline(),
            project=release.project,
            stage=release.stage,
            model_package_arn=release.model_package_arn,
            token=aws.deployment_token("release", release.model_package_arn, release.stage, release.event_id),
        )
    )


def promote(
    *,
    dynamodb: Any,
    sagemaker: Any,
    sts: Any,
    codepipeline: Any,
    staging: Callable[[], StagingClients],
    ctx: Context,
    project: str,
    reason: str,
    hours: int = 24,
    now: datetime | None = None,
) -> PromoteResult:
    """Release staging's current version to prod when the shadow test passes, then start the deploy pipeline.

    Governance clients do the table, registry and pipeline work; ``staging`` makes
    the staging clients for the shadow report, only once the cheap checks pass.
    Raises :class:`PromotionRefused` (exit 3) when staging has no release, the
    version is no longer Approved, or the shadow test fails the project's rule.
    The shadow report takes a while, so both are checked again around the
    write: a staging release revoked meanwhile refuses before anything is
    recorded, and a version rejected meanwhile gets the prod record just written
    revoked again, with no deployment started. A version prod already serves is
    not recorded again; a record whose pipeline start failed gets its pipeline
    started (same request token), while the version is still Approved.
    """
    reason = check_reason(reason, "with the prod release")
    ctx.projects(project)
    table = releases_mod.ReleaseTable(dynamodb, ctx.releases_table)
    pipeline = ctx.naming.deploy_pipeline()

    candidate = releases_mod.current_release(table.releases(project, "staging"))
    if candidate is None:
        raise PromotionRefused(f"refused: nothing is released to staging for {project}: there is nothing to promote")
    prod = releases_mod.current_release(table.releases(project, "prod"))
    if prod is not None and prod.version == candidate.version:
        return _resume(codepipeline, sagemaker, ctx, table, prod, "already")

    target = resolve(ctx, candidate.model_package_arn)
    status = describe(sagemaker, target).get("ModelApprovalStatus")
    if status != APPROVED:
        raise PromotionRefused(
            f"refused: {target.group} version {target.version} is {status or 'without a status'} in the model "
            "registry, not Approved"
        )

    try:
        clients = staging()
        report = shadow_report(clients.sagemaker, clients.cloudwatch, clients.s3, ctx, project, hours, now=now)
    except EndpointMissing as err:
        raise PromotionRefused(f"refused: no shadow test to judge: {err}") from None
    rule = ctx.config.projects[project].serving.promotion
    violations = evaluate_promotion(report, rule)
    violations += load_test_violations(clients.s3, ctx, project, candidate.model_package_arn, rule, now=now)
    challenger = report.challenger
    if challenger is not None and challenger.model_package_arn != candidate.model_package_arn:
        served = challenger.model_package_arn or "no single model package"
        violations.insert(
            0,
            f"the staging challenger variant {challenger.name} serves {served}, not version {candidate.version} "
            "(the staging release): the shadow numbers are not this version's; wait for its deployment",
        )
    if violations:
        raise PromotionRefused(
            f"refused: {project} version {candidate.version} does not meet the promotion rule: {'; '.join(violations)}",
            report,
            violations,
        )
    # Staging may have revoked the version (rejected, rolled back) while the report read its captures.
    still = releases_mod.current_release(table.releases(project, "staging"))
    if still is None or still.version != candidate.version:
        now_staged = f"version {still.version}" if still else "nothing"
        raise PromotionRefused(
            f"refused: staging's release of {project} changed during the shadow report: it is {now_staged} now, "
            f"not version {candidate.version}; nothing was recorded"
        )

    recorded_at = iso(now or datetime.now(UTC))
    release = releases_mod.Release(
        project=project,
        stage="prod",
        version=candidate.version,
        model_package_arn=candidate.model_package_arn,
        status=releases_mod.RELEASED,
        recorded_at=recorded_at,
        approved_by=str(sts.get_caller_identity()["Arn"]),
        reason=reason,
        event_id=f"promote:{candidate.version}:{recorded_at}",
    )
    if not table.put_release(release):
        # The version has a prod record already: another promote of this second, or an older release.
        existing = table.get_release(project, "prod", candidate.version)
        if existing is None or existing.status != releases_mod.RELEASED:
            raise CliError(f"the prod release of {project} version {candidate.version} changed meanwhile; run again")
        current = releases_mod.current_release(table.releases(project, "prod"))
        if current is None or current.version != existing.version:
            raise PromotionRefused(
                f"refused: prod recorded {project} version {existing.version} at {existing.recorded_at} and it is "
                f"still released but superseded by version {current.version if current else '-'}; a version cannot "
                "be released twice: reject the newer version to roll prod back to it"
            )
        return _resume(codepipeline, sagemaker, ctx, table, existing, "already", report)
    # A rejection before the write found no prod record to revoke: check the registry once the record exists.
    status = _registry_status(sagemaker, candidate.model_package_arn)
    if status != APPROVED:
        table.revoke(
            release,
            revoked_at=iso(now or datetime.now(UTC)),
            reason=f"{status or 'deleted'} in the model registry: rejected during promotion",
            event_id=release.event_id,
            was_current=False,
        )
        raise PromotionRefused(
            f"refused: {target.group} version {target.version} changed to {status or 'deleted'} in the model "
            "registry during the promotion: its prod release was revoked again and no deployment was started"
        )
    execution_id = _start_deployment(codepipeline, ctx, release)
    table.set_release_deployment(release, execution_id)
    return PromoteResult("promoted", release, pipeline, execution_id, report)


def _registry_status(sagemaker: Any, arn: str) -> str | None:
    """The version's ModelApprovalStatus now; None when it no longer exists."""
    package = aws.describe_package(sagemaker, arn)
    return None if package is None else package.get("ModelApprovalStatus")


def _resume(
    codepipeline: Any,
    sagemaker: Any,
    ctx: Context,
    table: Any,
    release: Any,
    outcome: str,
    report: ShadowReport | None = None,
) -> PromoteResult:
    """A prod release recorded before: start its pipeline when that never happened (and it is still Approved)."""
    pipeline = ctx.naming.deploy_pipeline()
    if release.deployment_execution_id:
        return PromoteResult(outcome, release, pipeline, release.deployment_execution_id, report)
    status = _registry_status(sagemaker, release.model_package_arn)
    if status != APPROVED:
        # Its rejected handler revokes the record and rolls prod back; deploying it now would undo that.
        raise PromotionRefused(
            f"refused: prod release of {release.project} version {release.version} never started its deployment, "
            f"and the version is {status or 'deleted'} in the model registry now: not deploying it"
        )
    execution_id = _start_deployment(codepipeline, ctx, release)
    table.set_release_deployment(release, execution_id)
    return PromoteResult("resumed", release, pipeline, execution_id, report)
