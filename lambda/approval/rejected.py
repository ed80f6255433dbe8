"""Revoke a version that is rejected or whose approval is withdrawn, and roll back what it served.

Trigger: EventBridge rule on ``aws.sagemaker`` / ``SageMaker Model Package State
Change`` with ``detail.ModelPackageGroupName = <group>`` and
``detail.ModelApprovalStatus`` ``Rejected`` (by an approver, or by the guard)
or ``PendingManualApproval`` (Approved -> Pending withdraws an approval; a
newly registered version has no release, so nothing happens for it).

It re-describes the version first: one that is ``Approved`` again by now is
left alone (stale event). A rejection whose event finds the version
``PendingManualApproval`` with the approval guard's revert description was
overwritten by a concurrent revert: Rejected is restored (a rejection is never
downgraded). Then, for each serving stage (staging, prod):

* the version was never released there: nothing;
* it was released but is not what the stage serves: its record is marked
  ``revoked`` so no later rollback returns to it;
* it is the stage's current release: its record is marked ``revoked``, a
  rollback record names the release recorded before it (or that the stage now
  has no model to serve), and the deploy pipeline is started for that previous
  version (variables ``PROJECT``, ``STAGE``, ``MODEL_PACKAGE_ARN`` -- ``none``
  when nothing is left, so the deploy removes the endpoint; a
  ``clientRequestToken`` derived from the rollback record).

Then one notification to the approvers' topic says what happened per stage
(for a withdrawal, only when something was released).

Idempotency: every table write is conditional and records its progress
(``status``, ``was_current``, the rollback record and its
``deployment_execution_id``), so a duplicate delivery finds the work done and
a retry after a partial failure resumes it. The notification is marked per
event (``pk="event#<project>#<id>"``, ``sk="rejected"``) after publishing: a
crash in between sends it again rather than never.

Errors: malformed events, events of another project's group and versions that
no longer exist are logged and dropped (the handler returns normally). AWS
faults (throttling, AccessDenied, 5xx) are raised: Lambda retries the
asynchronous invocation twice, then sends the event to the dead-letter queue.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from mlops_platform.approval import messages
from mlops_platform.approval.aws import Clients, deployment_token, get_clients, publish, start_deployment
from mlops_platform.approval.handling import Outcome, accept, decide, load_package
from mlops_platform.approval.policy import APPROVED, PENDING, REJECTED, PackageEvidence
from mlops_platform.approval.releases import (
    NO_MODEL,
    NO_MODEL_ARN,
    RELEASED,
    REVOKED,
    ROLLED_BACK,
    STAGES,
    ReleaseTable,
    Rollback,
    previous_release,
)
from mlops_platform.approval.releases import current_release as current_of
from mlops_platform.approval.settings import Settings, get_settings
from mlops_platform.approval.state_change import StateChange

HANDLER = "rejected"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, get_settings(), get_clients())


def handle(event: Any, settings: Settings, clients: Clients) -> Outcome:
    accepted = accept(event, settings, HANDLER, (REJECTED, PENDING))
    if isinstance(accepted, Outcome):
        return accepted
    change, _ = accepted
    loaded = load_package(clients, change.arn, with_report=False)
    if loaded is None:
        return decide(HANDLER, settings, change, "dropped", reason="model package no longer exists")
    _, package = loaded
    if package.status == APPROVED:
        return decide(HANDLER, settings, change, "stale", current_status=package.status)
    restored = False
    if change.status == REJECTED and package.status == PENDING and package.reverted_by_guard is not None:
        # The guard's revert to Pending overwrote this rejection: a rejection is never downgraded.
        clients.sagemaker.update_model_package(
            ModelPackageArn=change.arn,
            ModelApprovalStatus=REJECTED,
            ApprovalDescription=change.approval_description or "Rejected (restored after a concurrent guard revert)",
        )
        package = replace(package, status=REJECTED, approval_description=change.approval_description)
        restored = True

    table = ReleaseTable(clients.dynamodb, settings.releases_table)
    outcomes = [_stage(stage, change, package, settings, clients, table) for stage in STAGES]
    touched = [o for o in outcomes if o.released_here]
    summary = {o.stage: o.summary for o in outcomes}
    if change.status == PENDING and not touched:
        return decide(HANDLER, settings, change, "ignored", reason="pending version was never released", stages=summary)

    if table.event_done(settings.project, change.event_id, HANDLER):
        return decide(HANDLER, settings, change, "duplicate", stages=summary, restored_rejection=restored)
    subject, body = messages.rejected(settings.policy, package, outcomes, change.status)
    message_id = publish(clients.sns, settings.topic_arn, subject, body)
    table.mark_event(
        settings.project, change.event_id, HANDLER, expires_at=change.expires_at(), recorded_at=change.recorded_at
    )
    rolled_back = any(o.rolled_back for o in outcomes)
    return decide(
        HANDLER,
        settings,
        change,
        "rolled_back" if rolled_back else ("rejected" if change.status == REJECTED else "revoked"),
        stages=summary,
        message_id=message_id,
        restored_rejection=restored,
    )


def _stage(
    stage: str,
    change: StateChange,
    package: PackageEvidence,
    settings: Settings,
    clients: Clients,
    table: ReleaseTable,
) -> messages.StageOutcome:
    project = settings.project
    releases = table.releases(project, stage)
    mine = next((r for r in releases if r.version == change.version), None)
    if mine is None:
        return messages.StageOutcome(
            stage, f"version {change.version} was never released here; nothing to do", released_here=False
        )

    if mine.status == RELEASED:
        current = current_of(releases)
        was_current = current is not None and current.version == mine.version
        if table.revoke(
            mine,
            revoked_at=change.recorded_at,
            reason=package.approval_description or "",
            event_id=change.event_id,
            was_current=was_current,
        ):
            mine = replace(mine, status=REVOKED, was_current=was_current, revoked_event_id=change.event_id)
        else:  # revoked concurrently by a duplicate delivery
            reread = table.get_release(project, stage, change.version)
            if reread is None or reread.status != REVOKED:
                raise RuntimeError(f"release record of {change.arn} in {stage} changed while revoking it")
            mine = reread

    if not mine.was_current:
        return messages.StageOutcome(
            stage, f"version {change.version} was released earlier but is not what runs; marked revoked"
        )

    revoking_event = mine.revoked_event_id or change.event_id
    rollback = table.get_rollback(project, stage, change.version)
    if rollback is None or rollback.event_id != revoking_event:
        target = previous_release(table.releases(project, stage), change.version)
        candidate = Rollback(
            project=project,
            stage=stage,
            revoked_version=change.version,
            revoked_model_package_arn=change.arn,
            outcome=ROLLED_BACK if target else NO_MODEL,
            recorded_at=mine.revoked_at or change.recorded_at,
            reason=package.approval_description or "",
            event_id=revoking_event,
            target_version=target.version if target else None,
            target_model_package_arn=target.model_package_arn if target else None,
        )
        if table.put_rollback(candidate):
            rollback = candidate
        else:  # written concurrently by a duplicate delivery
            rollback = table.get_rollback(project, stage, change.version)
            if rollback is None:
                raise RuntimeError(f"rollback record of {change.arn} in {stage} vanished while writing it")

    # With no previous version the deploy exports no manifest, which removes the stage's endpoint.
    target_arn = rollback.target_model_package_arn or NO_MODEL_ARN
    execution_id = rollback.deployment_execution_id
    if execution_id is None:
        execution_id = start_deployment(
            clients.codepipeline,
            settings.deploy_pipeline_name,
            project=project,
            stage=stage,
            model_package_arn=target_arn,
            token=deployment_token("rollback", target_arn, stage, rollback.event_id),
        )
        table.set_rollback_deployment(rollback, execution_id)
    if rollback.outcome == NO_MODEL or not rollback.target_model_package_arn:
        return messages.StageOutcome(
            stage,
            f"version {change.version} was the current release and is revoked; there is no previous version, "
            f"so {stage} has no model to serve; deployment {execution_id} removes its endpoint",
            rolled_back=True,
        )
    return messages.StageOutcome(
        stage,
        f"version {change.version} was the current release and is revoked; rolled back to version "
        f"{rollback.target_version}, deployment {execution_id} started",
        rolled_back=True,
    )
