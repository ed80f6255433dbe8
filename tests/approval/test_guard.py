"""guard.py against moto: registry, S3 report, SNS (via SQS), DynamoDB releases table, CodePipeline.

The guard is fed the CloudTrail record of the approval call (``approval_event``):
the approver is that call's caller, never ``LastModifiedBy``. moto gaps:
CreatedBy/LastModifiedBy come from ``RecordingIdentity`` (moto reports a fixed
fake user); moto's CodePipeline keeps the ``variables`` of
StartPipelineExecution but ignores ``clientRequestToken``, so the execution
count below measures the handler's own idempotency.
"""

from __future__ import annotations

import json

import pytest

from tests.approval.lambdas import guard
from tests.approval.support import (
    ALICE,
    ALICE_CLI,
    APPROVER_CLI,
    BOB,
    GROUP,
    PIPELINE_ROLE,
    Faulty,
    approval_event,
    state_change_event,
)

TIME = "2026-05-04T11:30:00Z"


def approve(platform, arn, by, *, event_id="evt-approve", reason="looks good"):
    platform.set_status(arn, "Approved", by, reason)
    event = approval_event(arn, by, event_id=event_id, time=TIME, description=reason)
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
    # EventBridge may also deliver the record again under another id.
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
    assert described["ApprovalDescription"].startswith(
        "Reverted by approval guard: arn:aws:sts::123456789012:assumed-role/mlops-churn-dev-data-scientist/SageMaker"
    )
    assert "source identity churn-bob" in described["ApprovalDescription"]
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
    event = approval_event(arn, ALICE, time=TIME)  # the version is still pending
    outcome = guard.handle(event, platform.settings(), platform.clients())
    assert outcome["decision"] == "stale"
    assert platform.notifications() == [] and platform.items() == [] and platform.executions() == []


def test_retry_after_a_failed_deployment_start_resumes(platform):
    arn = platform.register()
    platform.set_status(arn, "Approved", ALICE, "ok")
    event = approval_event(arn, ALICE, time=TIME)
    throttled = Faulty(platform.codepipeline, {"start_pipeline_execution": ("ThrottlingException", 400)})

    with pytest.raises(Exception, match="ThrottlingException"):
        guard.handle(event, platform.settings(), platform.clients(codepipeline=throttled))
    [release] = platform.items("release#")
    assert "deployment_execution_id" not in release and platform.notifications() == []

    outcome = guard.handle(event, platform.settings(), platform.clients())
    assert outcome["decision"] == "resumed" and outcome["steps"] == ["deployment", "notification"]
    assert len(platform.executions()) == 1 and len(platform.notifications()) == 1
    assert platform.items("release#")[0]["deployment_execution_id"] == platform.executions()[0]["id"]


def test_approval_by_alice_through_the_cli_is_released(platform):
    arn = platform.register(registrant=PIPELINE_ROLE)
    _, outcome = approve(platform, arn, ALICE_CLI)
    assert outcome["decision"] == "released"
    [release] = platform.items("release#")
    assert "assumed-role/mlops-churn-governance-approver/alice" in release["approved_by"]
    assert "source identity alice" in release["approved_by"]


def test_self_approval_is_detected_across_studio_and_cli(platform):
    """alice registered from Studio and approves from the CLI: the same person, by source identity."""
    arn = platform.register(registrant=ALICE)
    _, outcome = approve(platform, arn, ALICE_CLI)
    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "PendingManualApproval"
    assert "self-approval is not allowed" in platform.describe(arn)["ApprovalDescription"]


def test_the_approver_is_the_caller_of_the_approval_call_not_last_modified_by(platform):
    """bob approves; alice touches the version afterwards (LastModifiedBy = alice): still bob's approval."""
    arn = platform.register(registrant=PIPELINE_ROLE)
    platform.set_status(arn, "Approved", BOB, "mine")
    platform.sagemaker_as(ALICE_CLI).update_model_package(
        ModelPackageArn=arn, CustomerMetadataProperties={"ticket": "ML-1"}
    )
    assert platform.describe(arn)["LastModifiedBy"] == ALICE_CLI
    outcome = guard.handle(approval_event(arn, BOB, time=TIME), platform.settings(), platform.clients())
    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "PendingManualApproval"
    assert platform.describe(arn)["ModelApprovalStatus"] == "PendingManualApproval"
    assert platform.items("release#") == [] and platform.executions() == []


def test_approval_call_without_a_caller_identity_is_sent_back_to_pending(platform):
    arn = platform.register(registrant=PIPELINE_ROLE)
    platform.set_status(arn, "Approved", ALICE, "ok")
    outcome = guard.handle(approval_event(arn, None, time=TIME), platform.settings(), platform.clients())
    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "PendingManualApproval"
    assert "approver unknown" in platform.describe(arn)["ApprovalDescription"]


def test_a_state_change_event_is_dropped_by_the_guard(platform):
    """The guard acts on the approval call's CloudTrail record only; a state change names no approver."""
    arn = platform.register()
    platform.set_status(arn, "Approved", ALICE, "ok")
    outcome = guard.handle(state_change_event(arn, "Approved", time=TIME), platform.settings(), platform.clients())
    assert outcome["decision"] == "dropped" and outcome["reason"].startswith("malformed event")
    assert platform.describe(arn)["ModelApprovalStatus"] == "Approved"
    assert platform.items() == [] and platform.notifications() == [] and platform.executions() == []


def test_a_failed_approval_call_is_dropped(platform):
    arn = platform.register()
    event = approval_event(arn, BOB, time=TIME, error_code="AccessDeniedException")
    outcome = guard.handle(event, platform.settings(), platform.clients())
    assert outcome["decision"] == "dropped" and "AccessDeniedException" in outcome["reason"]
    assert platform.describe(arn)["ModelApprovalStatus"] == "PendingManualApproval"
    assert platform.items() == [] and platform.notifications() == [] and platform.executions() == []


def test_a_call_that_does_not_approve_is_ignored(platform):
    arn = platform.register()
    platform.set_status(arn, "Rejected", ALICE_CLI, "no")
    event = approval_event(arn, ALICE_CLI, status="Rejected", time=TIME)
    outcome = guard.handle(event, platform.settings(), platform.clients())
    assert outcome["decision"] == "ignored"
    assert platform.describe(arn)["ModelApprovalStatus"] == "Rejected"
    assert platform.items() == [] and platform.notifications() == []
