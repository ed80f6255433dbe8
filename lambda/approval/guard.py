"""Approval guard: check every approval against the project's policy, then release or revert.

Trigger: EventBridge rule on the CloudTrail record ("AWS API Call via
CloudTrail") of ``UpdateModelPackage`` or ``CreateModelPackage`` with
``modelApprovalStatus = Approved`` for a version of ``<group>``. The approver
is the caller of that call (:mod:`mlops_platform.approval.api_call`), never
whoever touched the package last.

What it does:

1. A version already released to staging is never re-evaluated or reverted:
   the event only resumes that release's unfinished steps.
2. Re-describes the version and acts only if its *current* status is still
   ``Approved`` (stale and duplicate events after a revert do nothing).
3. Checks the approver first (listed, not the registrant); only then reads the
   evaluation report and checks metrics and evidence.
4. Violation: ``UpdateModelPackage`` back to ``PendingManualApproval`` (wrong or
   self approver) or ``Rejected`` (metrics/evidence), with
   ``ApprovalDescription = "Reverted by approval guard: <reasons>"``, and a
   report to the approvers' topic. A version that is Rejected by then is left
   Rejected.
5. Valid: records the release for stage ``staging`` (conditional put), then
   describes the version again: if it was rejected or withdrawn meanwhile the
   record is revoked again and nothing is deployed. Otherwise starts the deploy
   pipeline (variables ``PROJECT``, ``STAGE``, ``MODEL_PACKAGE_ARN``; a
   ``clientRequestToken`` derived from the record), stores the execution id,
   and tells the topic once (the record is marked before publishing).

Errors: malformed events, failed calls, events of another project's group and
versions that no longer exist are logged and dropped. AWS faults are raised:
Lambda retries twice, then the failure record goes to the dead-letter queue.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mlops_platform.approval import messages
from mlops_platform.approval.api_call import parse_approval_call
from mlops_platform.approval.aws import (
    Clients,
    deployment_token,
    describe_package,
    get_clients,
    publish,
    read_report,
    start_deployment,
)
from mlops_platform.approval.handling import Outcome, accept, decide
from mlops_platform.approval.policy import (
    APPROVED,
    PENDING,
    REVERT_PREFIX,
    Decision,
    Identity,
    PackageEvidence,
    evaluate,
    evaluation_report_uri,
    identity_violations,
    join_limited,
    parse_package,
)
from mlops_platform.approval.releases import RELEASED, Release, ReleaseTable, current_release
from mlops_platform.approval.settings import Settings, get_settings
from mlops_platform.approval.state_change import StateChange

HANDLER = "guard"
STAGE = "staging"
DESCRIPTION_LIMIT = 1024


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, get_settings(), get_clients())


def handle(event: Any, settings: Settings, clients: Clients) -> Outcome:
    accepted = accept(event, settings, HANDLER, (APPROVED,), parse_approval_call)
    if isinstance(accepted, Outcome):
        return accepted
    change, approver = accepted
    policy = settings.policy
    table = ReleaseTable(clients.dynamodb, settings.releases_table)

    existing = table.get_release(policy.project, STAGE, change.version)
    if existing is not None and existing.status == RELEASED:
        # Released before: this event (a retry, or a later call) never re-evaluates or reverts it.
        description = describe_package(clients.sagemaker, change.arn)
        if description is None:
            return decide(HANDLER, settings, change, "dropped", reason="model package no longer exists")
        return _finish(change, settings, clients, table, existing, parse_package(description), written=False)

    description = describe_package(clients.sagemaker, change.arn)
    if description is None:
        return decide(HANDLER, settings, change, "dropped", reason="model package no longer exists")
    package = parse_package(description)
    if package.status != APPROVED:
        return decide(HANDLER, settings, change, "stale", current_status=package.status)

    # Identity first: evidence is read only for an approval that an approver made.
    identity = identity_violations(policy, package, approver)
    if identity:
        return _revert(change, settings, clients, package, Decision(False, tuple(identity), PENDING), approver)
    report, problem = read_report(clients.s3, evaluation_report_uri(description))
    package = parse_package(description, report, problem)
    decision = evaluate(policy, package, approver)
    if not decision.allowed:
        return _revert(change, settings, clients, package, decision, approver)

    release = Release(
        project=policy.project,
        stage=STAGE,
        version=change.version,
        model_package_arn=package.arn or change.arn,
        status=RELEASED,
        recorded_at=change.recorded_at,
        approved_by=approver.describe() if approver else "unknown",
        reason=change.approval_description or package.approval_description or "",
        event_id=change.event_id,
    )
    written = table.put_release(release)
    if not written:
        existing = table.get_release(policy.project, STAGE, change.version)
        if existing is None or existing.status != RELEASED:
            # Released by this very event earlier and revoked since: nothing left to do.
            return decide(HANDLER, settings, change, "duplicate", reason="release already recorded and revoked")
        release = existing

    # A rejection or withdrawal between the first describe and the write found nothing to revoke: undo here.
    now = describe_package(clients.sagemaker, change.arn)
    status = now.get("ModelApprovalStatus") if now else None
    if status != APPROVED:
        was_current = _is_current(table, release)
        revoked = table.revoke(
            release,
            revoked_at=change.recorded_at,
            reason=f"{status or 'deleted'} while the approval guard released it",
            event_id=change.event_id,
            was_current=was_current,
        )
        return decide(
            HANDLER,
            settings,
            change,
            "withdrawn",
            current_status=status,
            revoked=revoked,
            reason="the version was rejected or withdrawn while it was being released; nothing deployed",
        )
    return _finish(change, settings, clients, table, release, package, written=written)


def _is_current(table: ReleaseTable, release: Release) -> bool:
    current = current_release(table.releases(release.project, release.stage))
    return current is not None and current.version == release.version


def _revert(
    change: StateChange,
    settings: Settings,
    clients: Clients,
    package: PackageEvidence,
    decision: Decision,
    approver: Identity | None,
) -> Outcome:
    """Send the version back; a version that is Rejected by now stays Rejected."""
    policy = settings.policy
    target = decision.revert_to or PENDING
    if target == PENDING:
        latest = describe_package(clients.sagemaker, change.arn)
        if latest is None or latest.get("ModelApprovalStatus") != APPROVED:
            status = latest.get("ModelApprovalStatus") if latest else "deleted"
            return decide(
                HANDLER, settings, change, "stale", current_status=status, violations=list(decision.violations)
            )
    description = REVERT_PREFIX + join_limited(decision.violations, DESCRIPTION_LIMIT - len(REVERT_PREFIX))
    clients.sagemaker.update_model_package(
        ModelPackageArn=change.arn, ModelApprovalStatus=target, ApprovalDescription=description
    )
    subject, body = messages.reverted(policy, package, decision, approver)
    message_id = publish(clients.sns, settings.topic_arn, subject, body)
    return decide(
        HANDLER,
        settings,
        change,
        "reverted",
        revert_to=target,
        violations=list(decision.violations),
        approver=approver.describe() if approver else None,
        message_id=message_id,
    )


def _finish(
    change: StateChange,
    settings: Settings,
    clients: Clients,
    table: ReleaseTable,
    release: Release,
    package: PackageEvidence,
    *,
    written: bool,
) -> Outcome:
    """Start the release's deployment and announce it, whichever of the two has not happened yet."""
    policy = settings.policy
    steps = []
    execution_id = release.deployment_execution_id
    if execution_id is None:
        execution_id = start_deployment(
            clients.codepipeline,
            settings.deploy_pipeline_name,
            project=policy.project,
            stage=STAGE,
            model_package_arn=release.model_package_arn,
            token=deployment_token("release", release.model_package_arn, STAGE, release.event_id),
        )
        table.set_release_deployment(release, execution_id)
        release = replace(release, deployment_execution_id=execution_id)
        steps.append("deployment")
    if not release.notified and table.claim_release_notification(release):
        subject, body = messages.released(policy, package, STAGE, release.approved_by, execution_id)
        try:
            publish(clients.sns, settings.topic_arn, subject, body)
        except Exception:
            table.give_back_release_notification(release)
            raise
        steps.append("notification")

    if written:
        outcome = "released"
    elif steps:
        outcome = "resumed"
    else:
        outcome = "duplicate"
    return decide(
        HANDLER,
        settings,
        change,
        outcome,
        stage=STAGE,
        deployment_execution_id=execution_id,
        steps=steps,
        approver=release.approved_by,
    )
