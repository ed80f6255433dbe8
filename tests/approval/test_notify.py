"""notify.py against moto: SageMaker registry, S3 report, SNS topic (read through an SQS subscription), DynamoDB.

moto does not record the caller in CreatedBy/LastModifiedBy: the platform
fixture wraps DescribeModelPackage with ``RecordingIdentity`` (tests/approval/support.py).
"""

from __future__ import annotations

import json

from tests.approval.lambdas import notify
from tests.approval.support import APPROVER_CLI, BOB, GROUP, PIPELINE_ROLE, state_change_event


def test_pending_version_is_announced_with_evidence_and_commands(platform, capsys):
    arn = platform.register(auc=0.82, accuracy=0.65, registrant=BOB)
    outcome = notify.handle(state_change_event(arn, "PendingManualApproval"), platform.settings(), platform.clients())

    assert outcome["decision"] == "notified" and outcome["meets_policy"] is False
    [note] = platform.notifications()
    assert note["subject"] == f"[churn] {GROUP} version 1 awaits approval"
    body = note["message"]
    assert f"Model package group {GROUP}, version 1, awaits manual approval." in body
    assert "Registered by: Studio user churn-bob" in body
    auc_line = next(line for line in body.splitlines() if line.strip().startswith("auc (primary)"))
    assert "0.82" in auc_line and ">= 0.75" in auc_line and auc_line.rstrip().endswith("pass")
    accuracy_line = next(line for line in body.splitlines() if line.strip().startswith("accuracy"))
    assert "0.65" in accuracy_line and accuracy_line.rstrip().endswith("FAIL")
    assert "metric accuracy = 0.65 is below the threshold 0.7" in body
    assert f'mlops approve {arn} --as YOUR-NAME --reason "..."' in body
    assert f'mlops reject {arn} --as YOUR-NAME --reason "..."' in body
    assert "reverted by the approval guard" not in body

    # One structured decision line on stdout.
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert line["decision"] == "notified" and line["project"] == "churn" and line["arn"] == arn
    assert line["status"] == "PendingManualApproval" and line["handler"] == "notify"


def test_reverted_version_says_the_guard_reverted_it(platform):
    arn = platform.register()
    reason = "Reverted by approval guard: Studio user churn-bob is not an approver of project churn"
    platform.set_status(arn, "PendingManualApproval", APPROVER_CLI, reason)
    notify.handle(
        state_change_event(arn, "PendingManualApproval", description=reason), platform.settings(), platform.clients()
    )
    [note] = platform.notifications()
    assert "approval reverted" in note["subject"]
    assert "Its approval was reverted by the approval guard:" in note["message"]
    assert "churn-bob is not an approver of project churn" in note["message"]


def test_duplicate_delivery_notifies_once(platform):
    arn = platform.register()
    event = state_change_event(arn, "PendingManualApproval", event_id="evt-1", time="2026-05-04T10:00:00Z")
    first = notify.handle(event, platform.settings(), platform.clients())
    second = notify.handle(event, platform.settings(), platform.clients())

    assert (first["decision"], second["decision"]) == ("notified", "duplicate")
    assert len(platform.notifications()) == 1
    [marker] = platform.items("event#")
    assert marker["pk"] == "event#churn#evt-1" and marker["sk"] == "notify"
    # TTL: seven days after the event time, not the clock.
    assert int(marker["expires_at"]) == 1777888800 + 7 * 24 * 3600


def test_version_decided_since_the_event_is_not_announced(platform):
    arn = platform.register(registrant=PIPELINE_ROLE)
    platform.set_status(arn, "Approved", APPROVER_CLI, "ok")
    outcome = notify.handle(state_change_event(arn, "PendingManualApproval"), platform.settings(), platform.clients())
    assert outcome["decision"] == "stale" and outcome["current_status"] == "Approved"
    assert platform.notifications() == [] and platform.items("event#") == []


def test_missing_report_is_announced_as_a_problem(platform):
    arn = platform.register(evaluation=False, baseline=None)
    notify.handle(state_change_event(arn, "PendingManualApproval"), platform.settings(), platform.clients())
    [note] = platform.notifications()
    assert "no evaluation report attached to read it from" in note["message"]
    assert "MISSING (required)" in note["message"]
