"""Approval guard: check every approval against the project's policy, then release or revert.

Trigger: EventBridge rule on ``aws.sagemaker`` / ``SageMaker Model Package State
Change`` with ``detail.ModelPackageGroupName = <group>`` and
``detail.ModelApprovalStatus = Approved``.

What it does:

1. Re-describes the version and acts only if its *current* status is still
   ``Approved`` (stale and duplicate events after a revert do nothing).
2. Reads the evaluation report from S3 and evaluates the policy (``policy.py``)
   with the approver taken from ``LastModifiedBy`` (``CreatedBy`` when the
   version was registered already approved).
3. Violation: ``UpdateModelPackage`` back to ``PendingManualApproval`` (wrong or
   self approver) or ``Rejected`` (metrics/evidence), with
   ``ApprovalDescription = "Reverted by approval guard: <reasons>"``, and a
   report to the approvers' topic.
4. Valid: records the release for stage ``staging`` in the releases table
   (conditional put: a duplicate approval writes once), starts the deploy
   pipeline with variables ``PROJECT``, ``STAGE`` and ``MODEL_PACKAGE_ARN`` and a
   ``clientRequestToken`` derived from the release record, stores the
   execution id on the record, then tells the topic the version was released.
   Each step is recorded on the release item, so a retry after a partial
   failure resumes where it stopped and a duplicate delivery does nothing.

Errors: malformed events, events of another project's group and versions that
no longer exist are logged and dropped (the handler returns normally). AWS
faults (throttling, AccessDenied, 5xx) are raised: Lambda retries the
asynchronous invocation twice, then sends the event to the dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from mlops_platform.approval import messages
from mlops_platform.approval.aws import Clients, deployment_token, get_clients, publish, start_deployment
from mlops_platform.approval.handling import Outcome, accept, decide, load_package
from mlops_platform.approval.policy import APPROVED, REVERT_PREFIX, approver_of, evaluate, join_limited
from mlops_platform.approval.releases import RELEASED, Release, ReleaseTable
from mlops_platform.approval.settings import Settings, get_settings

HANDLER = "guard"
STAGE = "staging"
DESCRIPTION_LIMIT = 1024


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, get_settings(), get_clients())


def handle(event: Any, settings: Settings, clients: Clients) -> Outcome:
    change = accept(event, settings, HANDLER, APPROVED)
    if isinstance(change, Outcome):
        return change
    loaded = load_package(clients, change.arn)
    if loaded is None:
        return decide(HANDLER, settings, change, "dropped", reason="model package no longer exists")
    _, package = loaded
    if package.status != APPROVED:
        return decide(HANDLER, settings, change, "stale", current_status=package.status)

    policy = settings.policy
    approver = approver_of(package)
    decision = evaluate(policy, package, approver)
    if not decision.allowed:
        description = REVERT_PREFIX + join_limited(decision.violations, DESCRIPTION_LIMIT - len(REVERT_PREFIX))
        clients.sagemaker.update_model_package(
            ModelPackageArn=change.arn,
            ModelApprovalStatus=decision.revert_to,
            ApprovalDescription=description,
        )
        subject, body = messages.reverted(policy, package, decision, approver)
        message_id = publish(clients.sns, settings.topic_arn, subject, body)
        return decide(
            HANDLER,
            settings,
            change,
            "reverted",
            revert_to=decision.revert_to,
            violations=list(decision.violations),
            approver=approver.describe() if approver else None,
            message_id=message_id,
        )

    table = ReleaseTable(clients.dynamodb, settings.releases_table)
    release = Release(
        project=policy.project,
        stage=STAGE,
        version=change.version,
        model_package_arn=change.arn,
        status=RELEASED,
        recorded_at=change.recorded_at,
        approved_by=approver.describe() if approver else "unknown",
        reason=package.approval_description or "",
        event_id=change.event_id,
    )
    written = table.put_release(release)
    if not written:
        existing = table.get_release(policy.project, STAGE, change.version)
        if existing is None or existing.status != RELEASED:
            # Released by this very event earlier and revoked since: nothing left to do.
            return decide(HANDLER, settings, change, "duplicate", reason="release already recorded and revoked")
        release = existing

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
        steps.append("deployment")
    if not release.notified:
        subject, body = messages.released(policy, package, STAGE, approver, execution_id)
        publish(clients.sns, settings.topic_arn, subject, body)
        table.set_release_notified(release)
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
