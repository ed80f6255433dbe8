"""The approval journey end to end on a loopback moto server (``ThreadedMotoServer``).

register (PendingManualApproval) → notify publishes → a wrong principal approves
through the CLI functions → the guard, fed the CloudTrail record of that
approval call, reverts it with the reasons in
ApprovalDescription → notify re-announces it as reverted → a proper approver
approves → the guard records the release and starts the deployment → the CLI
shows what runs where.

Every AWS call goes over HTTP to the server. EventBridge is not in the loop:
each state change is turned into the event SageMaker would emit (from the
version's current description), each approval call into its CloudTrail record
(``approval_event``, naming the caller). moto records a fixed fake user as
LastModifiedBy, so the SageMaker clients of the CLI and of the Lambdas are
wrapped with ``RecordingIdentity``, which records the acting principal the way
real SageMaker does.
"""

from __future__ import annotations

import pytest

from mlops_platform.approval_policy import policy_document
from mlops_platform.cli import core
from mlops_platform.config import load_config
from tests.approval.lambdas import guard, notify
from tests.approval.support import (
    ALICE_CLI,
    BOB,
    GROUP,
    POLICY_DOCUMENT,
    approval_event,
    state_change_event,
    write_config,
)


@pytest.fixture
def ctx(tmp_path):
    config = load_config(write_config(tmp_path))
    assert policy_document(config, "churn") == POLICY_DOCUMENT
    return core.Context(config)


def event_for(platform, arn, event_id, time):
    """The state change event SageMaker emits for the version's current status."""
    described = platform.describe(arn)
    return state_change_event(
        arn,
        described["ModelApprovalStatus"],
        event_id=event_id,
        time=time,
        description=described.get("ApprovalDescription"),
    )


def test_register_notify_wrong_approver_reverted_then_released(server_platform, ctx):
    platform = server_platform
    settings, lambda_clients = platform.settings(), platform.clients()

    # 1. The dev pipeline (run by bob from Studio) registers a version.
    arn = platform.register(registrant=BOB, auc=0.86, accuracy=0.81)
    assert (
        notify.handle(event_for(platform, arn, "e1", "2026-06-01T08:00:00Z"), settings, lambda_clients)["decision"]
        == "notified"
    )
    [note] = platform.notifications()
    assert note["subject"] == f"[churn] {GROUP} version 1 awaits approval"
    assert f'mlops approve {arn} --as YOUR-NAME --reason "..."' in note["message"]

    pending = core.list_pending(platform.sagemaker, ctx)
    assert [(p.project, p.version, p.arn) for p in pending] == [("churn", 1, arn)]

    # 2. bob approves his own version with the CLI: metrics and evidence pass, so the CLI lets him.
    result = core.approve(platform.sagemaker_as(BOB), platform.s3, ctx, arn, "ship it")
    assert result.changed and result.previous_status == "PendingManualApproval"

    # 3. The guard reverts: bob is not an approver and registered the version himself.
    # A state change event does not reach the guard (it names no approver); the call's CloudTrail record does.
    assert (
        guard.handle(event_for(platform, arn, "e2", "2026-06-01T09:00:00Z"), settings, lambda_clients)["decision"]
        == "dropped"
    )
    call = approval_event(arn, BOB, event_id="e2", time="2026-06-01T09:00:00Z", description="ship it")
    outcome = guard.handle(call, settings, lambda_clients)
    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "PendingManualApproval"
    described = platform.describe(arn)
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert described["ApprovalDescription"].startswith("Reverted by approval guard: ")
    assert "is not an approver of project churn" in described["ApprovalDescription"]
    assert "self-approval is not allowed" in described["ApprovalDescription"]
    [report] = platform.notifications()
    assert "reverted to PendingManualApproval" in report["subject"]

    # 4. The revert is itself a PendingManualApproval change: approvers hear it was reverted.
    notify.handle(event_for(platform, arn, "e3", "2026-06-01T09:00:05Z"), settings, lambda_clients)
    [again] = platform.notifications()
    assert "approval reverted" in again["subject"]
    assert "Its approval was reverted by the approval guard:" in again["message"]
    assert platform.items("release#") == [] and platform.executions() == []

    # 5. alice, an approver, approves with `mlops approve --as alice` (the approver role, source identity
    #    alice); the guard releases to staging and starts the deployment.
    core.approve(platform.sagemaker_as(ALICE_CLI), platform.s3, ctx, arn, "reviewed the evaluation, ok")
    call = approval_event(
        arn, ALICE_CLI, event_id="e4", time="2026-06-01T10:00:00Z", description="reviewed the evaluation, ok"
    )
    outcome = guard.handle(call, settings, lambda_clients)
    assert outcome["decision"] == "released"
    [release] = platform.items("release#")
    assert release["pk"] == "release#churn#staging" and release["status"] == "released"
    assert release["recorded_at"] == "2026-06-01T10:00:00Z" and release["reason"] == "reviewed the evaluation, ok"
    assert "assumed-role/mlops-churn-governance-approver/alice" in release["approved_by"]
    assert "source identity alice" in release["approved_by"]
    [deploy] = platform.executions()
    assert (deploy["PROJECT"], deploy["STAGE"], deploy["MODEL_PACKAGE_ARN"]) == ("churn", "staging", arn)
    [released] = platform.notifications()
    assert released["subject"] == f"[churn] {GROUP} version 1 released to staging"

    # 6. The CLI sees it: nothing pending, version 1 runs in staging.
    assert core.list_pending(platform.sagemaker, ctx) == []
    staging, prod = core.releases_overview(platform.dynamodb, ctx)
    assert staging.stage == "staging" and staging.current.version == 1 and prod.current is None
    shown = core.show_version(platform.sagemaker, platform.s3, platform.dynamodb, ctx, arn)
    assert shown.stages[0].release.version == 1 and shown.stages[0].metrics["auc"] == 0.86
