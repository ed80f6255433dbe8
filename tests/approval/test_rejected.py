"""rejected.py against moto: registry, releases table, CodePipeline, SNS (via SQS).

Releases are created by running the guard on real approvals first. moto gaps
as in test_guard.py (RecordingIdentity for LastModifiedBy; moto ignores
clientRequestToken, so execution counts measure our idempotency).
"""

from __future__ import annotations

from tests.approval.lambdas import guard, rejected, releases
from tests.approval.support import ALICE, APPROVER_CLI, GROUP, TABLE, approval_event, state_change_event


def release(platform, arn, n):
    platform.set_status(arn, "Approved", ALICE, f"approval {n}")
    event = approval_event(arn, ALICE, event_id=f"evt-approve-{n}", time=f"2026-05-0{n}T09:00:00Z")
    assert guard.handle(event, platform.settings(), platform.clients())["decision"] == "released"


def reject(platform, arn, *, event_id="evt-reject", reason="drift in production"):
    platform.set_status(arn, "Rejected", APPROVER_CLI, reason)
    event = state_change_event(arn, "Rejected", event_id=event_id, time="2026-05-09T12:00:00Z", description=reason)
    return event, rejected.handle(event, platform.settings(), platform.clients())


def released_versions(platform):
    return [(i["sk"], i["status"]) for i in platform.items("release#churn#staging")]


def test_rejecting_the_current_release_rolls_back_to_the_previous_version(platform):
    v1, v2 = platform.register(), platform.register()
    release(platform, v1, 1)
    release(platform, v2, 2)
    platform.notifications()
    _, outcome = reject(platform, v2)

    assert outcome["decision"] == "rolled_back" and outcome["restored_rejection"] is False
    assert released_versions(platform) == [("0000000001", "released"), ("0000000002", "revoked")]
    revoked = platform.items("release#churn#staging")[1]
    assert revoked["revoked_at"] == "2026-05-09T12:00:00Z" and revoked["revoked_reason"] == "drift in production"
    [rollback] = platform.items("rollback#")
    assert rollback["pk"] == "rollback#churn#staging" and rollback["sk"] == "0000000002"
    assert rollback["target_version"] == "1" and rollback["target_model_package_arn"] == v1
    assert rollback["outcome"] == "rolled_back"
    deploys = platform.executions()
    assert len(deploys) == 3 and deploys[-1]["MODEL_PACKAGE_ARN"] == v1 and deploys[-1]["STAGE"] == "staging"
    assert rollback["deployment_execution_id"] == deploys[-1]["id"]
    [note] = platform.notifications()
    assert note["subject"] == f"[churn] {GROUP} version 2 rejected, staging rolled back"
    assert "staging: version 2 was the current release and is revoked; rolled back to version 1" in note["message"]
    assert "prod: version 2 was never released here" in note["message"]
    assert "Reason: drift in production" in note["message"]


def test_rejecting_the_only_release_leaves_the_stage_without_a_model(platform):
    v1 = platform.register()
    release(platform, v1, 1)
    platform.notifications()
    _, outcome = reject(platform, v1)

    assert outcome["decision"] == "rolled_back"
    [rollback] = platform.items("rollback#")
    assert rollback["outcome"] == "no_model" and "target_version" not in rollback
    executions = platform.executions()
    assert len(executions) == 2  # the original release, then the deploy that removes the endpoint
    assert executions[-1]["MODEL_PACKAGE_ARN"] == "none" and executions[-1]["STAGE"] == "staging"
    [note] = platform.notifications()
    assert "there is no previous version, so staging has no model to serve" in note["message"]
    assert "removes its endpoint" in note["message"]


def test_rejecting_an_unreleased_version_only_notifies(platform):
    arn = platform.register()
    _, outcome = reject(platform, arn)
    assert outcome["decision"] == "rejected"
    assert platform.items("release#") == [] and platform.items("rollback#") == [] and platform.executions() == []
    [note] = platform.notifications()
    assert note["subject"] == f"[churn] {GROUP} version 1 rejected"


def test_rejecting_an_older_release_marks_it_revoked_without_deploying(platform):
    v1, v2, v3 = platform.register(), platform.register(), platform.register()
    for n, arn in enumerate((v1, v2, v3), start=1):
        release(platform, arn, n)
    _, outcome = reject(platform, v2, event_id="evt-reject-2")
    assert outcome["decision"] == "rejected"
    assert "marked revoked" in outcome["stages"]["staging"]
    assert len(platform.executions()) == 3

    # Rolling back from v3 now skips the revoked v2.
    _, outcome = reject(platform, v3, event_id="evt-reject-3")
    assert platform.executions()[-1]["MODEL_PACKAGE_ARN"] == v1
    assert released_versions(platform) == [
        ("0000000001", "released"),
        ("0000000002", "revoked"),
        ("0000000003", "revoked"),
    ]


def test_duplicate_rejection_rolls_back_deploys_and_notifies_once(platform):
    v1, v2 = platform.register(), platform.register()
    release(platform, v1, 1)
    release(platform, v2, 2)
    platform.notifications()
    event, first = reject(platform, v2)
    second = rejected.handle(event, platform.settings(), platform.clients())

    assert (first["decision"], second["decision"]) == ("rolled_back", "duplicate")
    assert len(platform.items("rollback#")) == 1
    assert len(platform.executions()) == 3
    assert len(platform.notifications()) == 1
    [marker] = platform.items("event#")
    assert marker["pk"] == "event#churn#evt-reject" and marker["sk"] == "rejected"


def test_stale_rejection_does_nothing(platform):
    v1 = platform.register()
    release(platform, v1, 1)
    event = state_change_event(v1, "Rejected", time="2026-05-09T12:00:00Z")  # still Approved
    outcome = rejected.handle(event, platform.settings(), platform.clients())
    assert outcome["decision"] == "stale" and outcome["current_status"] == "Approved"
    assert released_versions(platform) == [("0000000001", "released")]


def test_prod_release_is_rolled_back_too(platform):
    """Prod records come from the promotion step (not built yet): written directly here."""
    v1, v2 = platform.register(), platform.register()
    table = releases.ReleaseTable(platform.dynamodb, TABLE)
    for n, arn in ((1, v1), (2, v2)):
        table.put_release(
            releases.Release("churn", "prod", n, arn, "released", f"2026-05-0{n}T10:00:00Z", event_id=f"p{n}")
        )
    _, outcome = reject(platform, v2)
    assert "rolled back to version 1" in outcome["stages"]["prod"]
    [deploy] = platform.executions()
    assert deploy["STAGE"] == "prod" and deploy["MODEL_PACKAGE_ARN"] == v1


def test_version_approved_again_after_a_rejection_is_released_anew(platform):
    v1 = platform.register()
    release(platform, v1, 1)
    reject(platform, v1)
    platform.set_status(v1, "Approved", ALICE, "fixed upstream data, approving again")
    event = approval_event(v1, ALICE, event_id="evt-approve-again", time="2026-05-10T09:00:00Z")
    outcome = guard.handle(event, platform.settings(), platform.clients())

    assert outcome["decision"] == "released"
    assert released_versions(platform) == [("0000000001", "released")]
    # release, removal of the endpoint after the rejection, release again
    assert [e["MODEL_PACKAGE_ARN"] for e in platform.executions()] == [v1, "none", v1]
