"""guard.py against moto: registry, S3 report, SNS (via SQS), DynamoDB releases table, CodePipeline.

moto gaps: CreatedBy/LastModifiedBy come from ``RecordingIdentity`` (moto reports
a fixed fake user); moto's CodePipeline keeps the ``variables`` of
StartPipelineExecution but ignores ``clientRequestToken``, so the execution
count below measures the handler's own idempotency.
"""

from __future__ import annotations

import json

import pytest

from tests.approval.lambdas import guard
from tests.approval.support import (
    ALICE,
    APPROVER_CLI,
    BOB,
    GROUP,
    PIPELINE_ROLE,
    Faulty,
    state_change_event,
)

TIME = "2026-05-04T11:30:00Z"


def approve(platform, arn, by, *, event_id="evt-approve", reason="looks good"):
    platform.set_status(arn, "Approved", by, reason)
    event = state_change_event(arn, "Approved", event_id=event_id, time=TIME, description=reason)
    return event, guard.handle(event, platform.settings(), platform.clients())


def test_valid_approval_is_released_to_staging_and_deployed(platform, capsys):
    arn = platform.register(registrant=PIPELINE_ROLE)
    _, outcome = approve(platform, arn, ALICE)

    assert outcome["decision"] == "released" and outcome["stage"] == "staging"
    [release] = platform.items("release#")
    assert release["pk"] == "release#churn#staging" and release["sk"] == "0000000001"
    assert release["model_package_arn"] == arn and release["version"] == "1"
    assert release["status"] == "released" and release["stage"] == "staging" and release["project"] == "churn"
    assert release["recorded_at"] == TIME and release["reason"] == "looks good"
    assert "churn-alice" in release["approved_by"]
    [execution] = platform.executions()
    assert execution == {
        "id": release["deployment_execution_id"],
        "PROJECT": "churn",
        "STAGE": "staging",
        "MODEL_PACKAGE_ARN": arn,
    }
    [note] = platform.notifications()
    assert note["subject"] == f"[churn] {GROUP} version 1 released to staging"
    assert execution["id"] in note["message"]
    assert platform.describe(arn)["ModelApprovalStatus"] == "Approved"
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert line["decision"] == "released" and line["status"] == "Approved" and line["project"] == "churn"


def test_duplicate_approval_releases_deploys_and_notifies_once(platform):
    arn = platform.register()
    event, first = approve(platform, arn, ALICE)
    second = guard.handle(event, platform.settings(), platform.clients())
    # SageMaker may also send a second event (another id) for the same change.
    third = guard.handle({**event, "id": "evt-other"}, platform.settings(), platform.clients())

    assert [first["decision"], second["decision"], third["decision"]] == ["released", "duplicate", "duplicate"]
    assert len(platform.items("release#")) == 1
    assert len(platform.executions()) == 1
    assert len(platform.notifications()) == 1


def test_approval_by_an_approver_role_is_released(platform):
    arn = platform.register(registrant=BOB)
    _, outcome = approve(platform, arn, APPROVER_CLI)
    assert outcome["decision"] == "released"
    assert "assumed-role/mlops-approver/mlops-cli-carol" in platform.items("release#")[0]["approved_by"]


def test_approval_by_a_non_approver_is_sent_back_to_pending(platform):
    arn = platform.register(registrant=PIPELINE_ROLE)
    _, outcome = approve(platform, arn, BOB)

    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "PendingManualApproval"
    described = platform.describe(arn)
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["ApprovalDescription"].startswith("Reverted by approval guard: Studio user churn-bob")
    assert "is not an approver of project churn" in described["ApprovalDescription"]
    [note] = platform.notifications()
    assert note["subject"] == f"[churn] approval of {GROUP} version 1 reverted to PendingManualApproval"
    assert "can still approve this version" in note["message"] and f"mlops approve {arn}" in note["message"]
    assert platform.items("release#") == [] and platform.executions() == []


def test_self_approval_is_sent_back_to_pending(platform):
    arn = platform.register(registrant=ALICE)
    _, outcome = approve(platform, arn, ALICE)
    assert outcome["revert_to"] == "PendingManualApproval"
    assert "registered this version; self-approval is not allowed" in platform.describe(arn)["ApprovalDescription"]


@pytest.mark.parametrize(
    ("register", "violation"),
    [
        ({"auc": 0.6}, "metric auc = 0.6 is below the threshold 0.75"),
        ({"baseline": None}, "evidence missing: data-quality baseline"),
        ({"evaluation": False}, "evidence missing: evaluation report"),
        ({"body": "not json"}, "is not JSON"),
        (
            {"body": {"binary_classification_metrics": {"auc": {"value": 0.9}}}},
            "accuracy: not in the evaluation report",
        ),
    ],
)
def test_model_violations_are_rejected(platform, register, violation):
    arn = platform.register(**register)
    _, outcome = approve(platform, arn, ALICE)

    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "Rejected"
    described = platform.describe(arn)
    assert described["ModelApprovalStatus"] == "Rejected"
    assert violation in described["ApprovalDescription"]
    [note] = platform.notifications()
    assert "reverted to Rejected" in note["subject"] and violation in note["message"]
    assert platform.items("release#") == [] and platform.executions() == []


def test_duplicate_after_a_revert_is_stale(platform):
    arn = platform.register()
    event, first = approve(platform, arn, BOB)
    second = guard.handle(event, platform.settings(), platform.clients())
    assert (first["decision"], second["decision"]) == ("reverted", "stale")
    assert second["current_status"] == "PendingManualApproval"
    assert len(platform.notifications()) == 1


def test_stale_approval_event_does_nothing(platform):
    arn = platform.register()
    event = state_change_event(arn, "Approved", time=TIME)  # the version is still pending
    outcome = guard.handle(event, platform.settings(), platform.clients())
    assert outcome["decision"] == "stale"
    assert platform.notifications() == [] and platform.items() == [] and platform.executions() == []


def test_retry_after_a_failed_deployment_start_resumes(platform):
    arn = platform.register()
    platform.set_status(arn, "Approved", ALICE, "ok")
    event = state_change_event(arn, "Approved", time=TIME)
    throttled = Faulty(platform.codepipeline, {"start_pipeline_execution": ("ThrottlingException", 400)})

    with pytest.raises(Exception, match="ThrottlingException"):
        guard.handle(event, platform.settings(), platform.clients(codepipeline=throttled))
    [release] = platform.items("release#")
    assert "deployment_execution_id" not in release and platform.notifications() == []

    outcome = guard.handle(event, platform.settings(), platform.clients())
    assert outcome["decision"] == "resumed" and outcome["steps"] == ["deployment", "notification"]
    assert len(platform.executions()) == 1 and len(platform.notifications()) == 1
    assert platform.items("release#")[0]["deployment_execution_id"] == platform.executions()[0]["id"]
