"""Notify approvers when a model package version awaits manual approval.

Trigger: EventBridge rule on ``aws.sagemaker`` / ``SageMaker Model Package State
Change`` with ``detail.ModelPackageGroupName = <group>`` and
``detail.ModelApprovalStatus = PendingManualApproval`` (a new registration, or a
version the approval guard sent back).

What it does: re-describes the version (a version approved or rejected since
the event is not announced), reads its evaluation report, and publishes one
summary to the approvers' SNS topic: metrics against thresholds (pass/fail),
evidence, who registered it, whether the guard reverted an approval, and the
exact ``mlops approve/reject`` commands.

Delivery is at least once: the event is marked done in the releases table
(``pk="event#<project>#<id>"``, ``sk="notify"``, ``expires_at`` = event time
+ 7 days) only after publishing, so a crash in between makes the retry publish
again rather than lose the email; a delivery that finds the mark does nothing.

Errors: malformed events, events of another project's group and versions that
no longer exist are logged and dropped (the handler returns normally, so
there is no retry storm). AWS faults (throttling, AccessDenied, 5xx) are
raised: Lambda retries the asynchronous invocation twice, then sends the
event to the function's dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from mlops_platform.approval import messages
from mlops_platform.approval.aws import Clients, get_clients, publish
from mlops_platform.approval.handling import Outcome, accept, decide, load_package
from mlops_platform.approval.policy import PENDING, evaluate_model
from mlops_platform.approval.releases import ReleaseTable
from mlops_platform.approval.settings import Settings, get_settings

HANDLER = "notify"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, get_settings(), get_clients())


def handle(event: Any, settings: Settings, clients: Clients) -> Outcome:
    accepted = accept(event, settings, HANDLER, (PENDING,))
    if isinstance(accepted, Outcome):
        return accepted
    change, _ = accepted
    loaded = load_package(clients, change.arn)
    if loaded is None:
        return decide(HANDLER, settings, change, "dropped", reason="model package no longer exists")
    description, package = loaded
    if package.status != PENDING:
        return decide(HANDLER, settings, change, "stale", current_status=package.status)

    model_check = evaluate_model(settings.policy, package)
    table = ReleaseTable(clients.dynamodb, settings.releases_table)
    if table.event_done(settings.project, change.event_id, HANDLER):
        return decide(HANDLER, settings, change, "duplicate", reason="event already notified")
    subject, body = messages.pending(settings.policy, package, model_check)
    message_id = publish(clients.sns, settings.topic_arn, subject, body)
    table.mark_event(
        settings.project, change.event_id, HANDLER, expires_at=change.expires_at(), recorded_at=change.recorded_at
    )
    return decide(
        HANDLER,
        settings,
        change,
        "notified",
        message_id=message_id,
        meets_policy=model_check.allowed,
        reverted_by_guard=package.reverted_by_guard is not None,
    )
