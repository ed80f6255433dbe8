"""Who may release what, and races with concurrent rejections: the guard, rejected and notify against moto.

The guard is fed the CloudTrail record of the approval call (``approval_event``):
the approver is its caller, never ``LastModifiedBy``. Races are provoked by
wrapping the handlers' SageMaker client so that a concurrent change lands
between two of the handler's own calls.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlops_platform.approval import api_call
from mlops_platform.approval.policy import is_approver
from mlops_platform.approval_policy import load_policy
from mlops_platform.config import load_config
from tests.approval.conftest import REPO
from tests.approval.lambdas import guard, notify, rejected
from tests.approval.support import (
    ALICE_CLI,
    BOB,
    BUCKET,
    GROUP,
    GUARD_ROLE,
    MALLORY_CLI,
    PIPELINE_ROLE,
    Faulty,
    approval_event,
    state_change_event,
)

TIME = "2026-05-04T11:30:00Z"


def approve(platform, arn, by, *, event_id="evt-approve", time=TIME, reason="looks good", clients=None):
    """``by`` approves ``arn``; the guard gets the CloudTrail record of that call."""
    platform.set_status(arn, "Approved", by, reason)
    event = approval_event(arn, by, event_id=event_id, time=time, description=reason)
    return event, guard.handle(event, platform.settings(), clients or platform.clients())


def releases_of(platform, arn):
    """Every release record of the version, in any stage."""
    return [i for i in platform.items("release#") if i["model_package_arn"] == arn]


def deployed(platform):
    return [e["MODEL_PACKAGE_ARN"] for e in platform.executions()]


class Interfering:
    """A SageMaker client that runs ``interfere()`` once, just before its ``nth`` DescribeModelPackage call."""

    def __init__(self, real: Any, nth: int, interfere) -> None:
        self._real = real
        self._nth = nth
        self._interfere = interfere
        self.describes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def describe_model_package(self, **kwargs: Any) -> dict[str, Any]:
        self.describes += 1
        if self.describes == self._nth:
            self._interfere()
        return self._real.describe_model_package(**kwargs)


class FailingOnce:
    """Wraps a client; the first call of ``operation`` raises ``ClientError(code)``, later calls go through."""

    def __init__(self, real: Any, operation: str, code: str, status: int = 400) -> None:
        self._real = real
        self._faulty = Faulty(real, {operation: (code, status)})
        self._operation = operation
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        if name == self._operation and not self.failed:
            self.failed = True
            return getattr(self._faulty, name)
        return getattr(self._real, name)


# --------------------------------------------------------------------------- who releases


def test_a_metadata_edit_of_a_released_version_changes_nothing(platform):
    arn = platform.register(registrant=PIPELINE_ROLE)
    _, outcome = approve(platform, arn, ALICE_CLI)
    assert outcome["decision"] == "released"
    platform.notifications()
    items_before = platform.items()

    # bob edits the released version's metadata: he is now LastModifiedBy, the status stays Approved.
    platform.sagemaker_as(BOB).update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"note": "mine"})
    described = platform.describe(arn)
    assert described["ModelApprovalStatus"] == "Approved" and described["LastModifiedBy"] == BOB

    # The state change event SageMaker may emit for it does not reach the guard (not an API call record).
    state = state_change_event(arn, "Approved", event_id="evt-edit", time="2026-05-05T09:00:00Z")
    assert guard.handle(state, platform.settings(), platform.clients())["decision"] == "dropped"
    # An approval call by bob for the version already released: never re-evaluated, never reverted.
    call = approval_event(arn, BOB, event_id="evt-bob", time="2026-05-05T09:00:00Z")
    outcome = guard.handle(call, platform.settings(), platform.clients())
    assert outcome["decision"] == "duplicate"
    assert outcome["steps"] == []
    # Nor does the revocation handler act on it.
    assert rejected.handle(state, platform.settings(), platform.clients())["decision"] == "ignored"

    assert platform.describe(arn)["ModelApprovalStatus"] == "Approved"
    [release] = releases_of(platform, arn)
    assert release["status"] == "released" and "source identity alice" in release["approved_by"]
    assert platform.items() == items_before
    assert deployed(platform) == [arn]
    assert platform.notifications() == []


def test_an_approvers_later_edit_cannot_validate_someone_elses_approval(platform):
    arn = platform.register(registrant=PIPELINE_ROLE)
    platform.set_status(arn, "Approved", BOB, "ship it")
    # alice edits the version before the guard runs: LastModifiedBy is alice, the approval is still bob's.
    platform.sagemaker_as(ALICE_CLI).update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"a": "b"})
    assert platform.describe(arn)["LastModifiedBy"] == ALICE_CLI
    call = approval_event(arn, BOB, event_id="evt-bob", time=TIME, description="ship it")
    outcome = guard.handle(call, platform.settings(), platform.clients())
    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "PendingManualApproval"
    assert "source identity churn-bob" in outcome["approver"]
    assert platform.describe(arn)["ModelApprovalStatus"] == "PendingManualApproval"

    # An unrelated UpdateModelPackage call by alice (metadata only) is no approval: nothing is released.
    platform.sagemaker_as(ALICE_CLI).update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"c": "d"})
    edit = copy.deepcopy(approval_event(arn, ALICE_CLI, event_id="evt-alice-edit", time="2026-05-04T12:00:00Z"))
    del edit["detail"]["requestParameters"]["modelApprovalStatus"]
    edit["detail"]["requestParameters"]["customerMetadataProperties"] = {"c": "d"}
    assert guard.handle(edit, platform.settings(), platform.clients())["decision"] == "dropped"
    # A retry of bob's approval record finds the version pending: stale.
    again = guard.handle(call, platform.settings(), platform.clients())
    assert again["decision"] == "stale" and again["current_status"] == "PendingManualApproval"

    assert platform.describe(arn)["ModelApprovalStatus"] == "PendingManualApproval"
    assert platform.items("release#") == [] and platform.executions() == []


def test_the_approver_role_with_another_source_identity_is_reverted(platform):
    arn = platform.register(registrant=PIPELINE_ROLE)
    _, outcome = approve(platform, arn, MALLORY_CLI)

    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "PendingManualApproval"
    described = platform.describe(arn)
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert "source identity mallory" in described["ApprovalDescription"]
    assert "is not an approver of project churn" in described["ApprovalDescription"]
    assert platform.items("release#") == [] and platform.executions() == []
    [note] = platform.notifications()
    assert "reverted to PendingManualApproval" in note["subject"]


# --------------------------------------------------------------------------- races


def test_a_rejection_between_the_guards_describe_and_its_release_write_deploys_nothing(platform):
    v1 = platform.register()
    assert approve(platform, v1, ALICE_CLI, event_id="evt-1", time="2026-05-01T09:00:00Z")[1]["decision"] == "released"
    v2 = platform.register()
    platform.notifications()

    # The guard's second DescribeModelPackage (after the release write) finds v2 rejected meanwhile.
    racing = Interfering(
        platform.sagemaker_as(GUARD_ROLE), 2, lambda: platform.set_status(v2, "Rejected", ALICE_CLI, "bad")
    )
    _, outcome = approve(platform, v2, ALICE_CLI, event_id="evt-2", clients=platform.clients(sagemaker=racing))
    assert outcome["decision"] == "withdrawn" and outcome["current_status"] == "Rejected"
    assert racing.describes == 2

    [record] = releases_of(platform, v2)
    assert record["status"] == "revoked" and record["revoked_event_id"] == "evt-2"
    assert record["revoked_reason"] == "Rejected while the approval guard released it"

    event = state_change_event(v2, "Rejected", event_id="evt-reject", time="2026-05-04T11:31:00Z", description="bad")
    after = rejected.handle(event, platform.settings(), platform.clients())
    # The guard records the withdrawn release as current when it revoked it (a crashed earlier delivery may
    # have started its deployment), so the rejection may redeploy v1 -- never v2.
    assert after["decision"] in ("rejected", "rolled_back")

    assert all(r["status"] != "released" for r in releases_of(platform, v2))
    assert v2 not in deployed(platform)
    assert deployed(platform)[0] == v1 and set(deployed(platform)) == {v1}  # at most a redeploy of v1
    assert platform.describe(v2)["ModelApprovalStatus"] == "Rejected"
    assert not any("released to staging" in n["subject"] for n in platform.notifications())


def test_the_guards_revert_to_pending_never_overwrites_a_concurrent_rejection(platform):
    arn = platform.register(registrant=PIPELINE_ROLE)
    platform.set_status(arn, "Approved", BOB, "ship it")
    # The rejection lands after the guard's first describe, before its revert re-describes.
    racing = Interfering(
        platform.sagemaker_as(GUARD_ROLE), 2, lambda: platform.set_status(arn, "Rejected", ALICE_CLI, "bad")
    )
    outcome = guard.handle(approval_event(arn, BOB, time=TIME), platform.settings(), platform.clients(sagemaker=racing))

    assert outcome["decision"] == "stale" and outcome["current_status"] == "Rejected"
    assert "is not an approver of project churn" in outcome["violations"][0]
    described = platform.describe(arn)
    assert described["ModelApprovalStatus"] == "Rejected" and described["ApprovalDescription"] == "bad"
    assert platform.notifications() == [] and platform.items("release#") == []


def test_a_rejection_overwritten_by_the_guards_revert_is_restored(platform):
    arn = platform.register(registrant=PIPELINE_ROLE)
    platform.set_status(arn, "Approved", BOB, "ship it")
    platform.set_status(arn, "Rejected", ALICE_CLI, "bad")
    # The guard's revert lands after the rejection (it described the version before the rejection).
    revert = "Reverted by approval guard: churn-bob is not an approver of project churn"
    platform.set_status(arn, "PendingManualApproval", GUARD_ROLE, revert)

    rejection = state_change_event(arn, "Rejected", event_id="evt-reject", time=TIME, description="bad")
    outcome = rejected.handle(rejection, platform.settings(), platform.clients())
    assert outcome["restored_rejection"] is True and outcome["decision"] == "rejected"
    described = platform.describe(arn)
    assert described["ModelApprovalStatus"] == "Rejected" and described["ApprovalDescription"] == "bad"
    [note] = platform.notifications()
    assert "rejected" in note["subject"]

    # The revert's own Pending event then finds nothing to do, in either handler.
    pending = state_change_event(arn, "PendingManualApproval", event_id="evt-revert", time=TIME, description=revert)
    assert rejected.handle(pending, platform.settings(), platform.clients())["decision"] == "ignored"
    assert notify.handle(pending, platform.settings(), platform.clients())["decision"] == "stale"
    assert platform.describe(arn)["ModelApprovalStatus"] == "Rejected"
    assert platform.notifications() == [] and platform.items("release#") == []


def test_a_rejection_found_pending_without_the_guards_description_is_not_restored(platform):
    """Pending set by someone else (not a guard revert) after the rejection is a newer decision."""
    arn = platform.register(registrant=PIPELINE_ROLE)
    platform.set_status(arn, "Rejected", ALICE_CLI, "bad")
    platform.set_status(arn, "PendingManualApproval", ALICE_CLI, "reconsidering")
    rejection = state_change_event(arn, "Rejected", event_id="evt-reject", time=TIME, description="bad")
    outcome = rejected.handle(rejection, platform.settings(), platform.clients())
    assert outcome["restored_rejection"] is False
    assert platform.describe(arn)["ModelApprovalStatus"] == "PendingManualApproval"


# --------------------------------------------------------------------------- withdrawal


def test_approved_to_pending_revokes_the_release_and_rolls_back(platform):
    v1, v2 = platform.register(), platform.register()
    for n, arn in ((1, v1), (2, v2)):
        _, outcome = approve(platform, arn, ALICE_CLI, event_id=f"evt-{n}", time=f"2026-05-0{n}T09:00:00Z")
        assert outcome["decision"] == "released"
    platform.notifications()

    platform.set_status(v2, "PendingManualApproval", ALICE_CLI, "withdrawn: wrong data window")
    event = state_change_event(v2, "PendingManualApproval", event_id="evt-withdraw", time="2026-05-09T12:00:00Z")
    outcome = rejected.handle(event, platform.settings(), platform.clients())

    assert outcome["decision"] == "rolled_back" and outcome["restored_rejection"] is False
    statuses = {i["version"]: i["status"] for i in platform.items("release#churn#staging")}
    assert statuses == {"1": "released", "2": "revoked"}
    [rollback] = platform.items("rollback#")
    assert rollback["target_version"] == "1" and rollback["target_model_package_arn"] == v1
    assert deployed(platform) == [v1, v2, v1]
    assert platform.executions()[-1]["STAGE"] == "staging"
    [note] = platform.notifications()
    assert note["subject"] == f"[churn] {GROUP} version 2 revoked (approval withdrawn), staging rolled back"
    assert "rolled back to version 1" in note["message"]
    # The version stays pending: it can be approved again.
    assert platform.describe(v2)["ModelApprovalStatus"] == "PendingManualApproval"
    # A duplicate delivery does nothing more.
    assert rejected.handle(event, platform.settings(), platform.clients())["decision"] == "duplicate"
    assert len(platform.executions()) == 3 and platform.notifications() == []


def test_a_pending_event_for_a_version_never_released_is_ignored(platform):
    v1 = platform.register()
    assert approve(platform, v1, ALICE_CLI)[1]["decision"] == "released"
    platform.notifications()
    items_before = platform.items()

    fresh = platform.register()
    event = state_change_event(fresh, "PendingManualApproval", event_id="evt-new", time=TIME)
    outcome = rejected.handle(event, platform.settings(), platform.clients())

    assert outcome["decision"] == "ignored" and "never released" in outcome["reason"]
    assert platform.notifications() == []
    assert platform.items() == items_before
    assert deployed(platform) == [v1]


# --------------------------------------------------------------------------- evidence


def test_a_missing_evaluation_report_is_a_reason_to_reject(platform):
    arn = platform.register(registrant=PIPELINE_ROLE)
    key = "projects/churn/run-1/evaluation.json"
    platform.s3.delete_object(Bucket=BUCKET, Key=key)
    _, outcome = approve(platform, arn, ALICE_CLI)

    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "Rejected"
    uri = f"s3://{BUCKET}/{key}"
    assert any(uri in v and "does not exist" in v for v in outcome["violations"])
    described = platform.describe(arn)
    assert described["ModelApprovalStatus"] == "Rejected"
    assert f"{uri} does not exist" in described["ApprovalDescription"]
    assert platform.items("release#") == [] and platform.executions() == []
    [note] = platform.notifications()
    assert "reverted to Rejected" in note["subject"] and uri in note["message"]


# --------------------------------------------------------------------------- notifications


def test_notify_delivers_at_least_once_when_the_marker_write_fails(platform):
    arn = platform.register()
    event = state_change_event(arn, "PendingManualApproval", event_id="evt-pending", time=TIME)
    throttled = FailingOnce(platform.dynamodb, "put_item", "ProvisionedThroughputExceededException")

    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        notify.handle(event, platform.settings(), platform.clients(dynamodb=throttled))
    assert throttled.failed and platform.items("event#") == []
    assert len(platform.notifications()) == 1  # published before the marker write failed

    assert notify.handle(event, platform.settings(), platform.clients())["decision"] == "notified"
    assert len(platform.notifications()) == 1  # the retry publishes again: 2 emails in all, none lost
    [marker] = platform.items("event#")
    assert marker["pk"] == "event#churn#evt-pending" and marker["sk"] == "notify"

    assert notify.handle(event, platform.settings(), platform.clients())["decision"] == "duplicate"
    assert platform.notifications() == []


def test_rejected_delivers_at_least_once_when_the_marker_write_fails(platform):
    arn = platform.register()
    platform.set_status(arn, "Rejected", ALICE_CLI, "bad")
    event = state_change_event(arn, "Rejected", event_id="evt-reject", time=TIME, description="bad")
    throttled = FailingOnce(platform.dynamodb, "put_item", "ProvisionedThroughputExceededException")

    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        rejected.handle(event, platform.settings(), platform.clients(dynamodb=throttled))
    assert len(platform.notifications()) == 1
    assert rejected.handle(event, platform.settings(), platform.clients())["decision"] == "rejected"
    assert len(platform.notifications()) == 1
    [marker] = platform.items("event#")
    assert marker["pk"] == "event#churn#evt-reject" and marker["sk"] == "rejected"
    assert rejected.handle(event, platform.settings(), platform.clients())["decision"] == "duplicate"
    assert platform.notifications() == []


def test_the_released_email_is_sent_once_when_publishing_fails_once(platform):
    arn = platform.register()
    platform.set_status(arn, "Approved", ALICE_CLI, "ok")
    event = approval_event(arn, ALICE_CLI, event_id="evt-approve", time=TIME)
    failing = FailingOnce(platform.sns, "publish", "InternalErrorException", 500)

    with pytest.raises(ClientError, match="InternalError"):
        guard.handle(event, platform.settings(), platform.clients(sns=failing))
    assert failing.failed and platform.notifications() == []
    [release] = platform.items("release#")
    assert release["status"] == "released" and release["notified"] is False  # claim given back
    assert deployed(platform) == [arn]

    outcome = guard.handle(event, platform.settings(), platform.clients())
    assert outcome["decision"] == "resumed" and outcome["steps"] == ["notification"]
    [note] = platform.notifications()
    assert note["subject"] == f"[churn] {GROUP} version 1 released to staging"
    assert platform.items("release#")[0]["notified"] is True

    again = guard.handle(event, platform.settings(), platform.clients())
    assert again["decision"] == "duplicate" and again["steps"] == []
    assert platform.notifications() == [] and deployed(platform) == [arn]


# --------------------------------------------------------------------------- the shipped example config


def _session(role_arn: str, session: str, source_identity: str | None) -> dict[str, Any]:
    account, role = role_arn.split(":")[4], role_arn.rsplit("/", 1)[1]
    context: dict[str, Any] = {"sessionIssuer": {"type": "Role", "arn": role_arn, "userName": role}}
    if source_identity is not None:
        context["sourceIdentity"] = source_identity
    return {
        "type": "AssumedRole",
        "arn": f"arn:aws:sts::{account}:assumed-role/{role}/{session}",
        "principalId": f"AROAEXAMPLE:{session}",
        "accountId": account,
        "sessionContext": context,
    }


def test_the_readme_approve_path_with_the_example_config():
    """`mlops approve --as alice` assumes the governance approver role with source identity alice."""
    config = load_config(REPO / "config")
    policy = load_policy(config, "churn")
    governance, dev = config.platform.accounts.governance.id, config.platform.accounts.dev.id
    assert policy.approver_role_arn == f"arn:aws:iam::{governance}:role/mlops-churn-governance-approver"
    assert policy.studio_role_arn == f"arn:aws:iam::{dev}:role/mlops-churn-dev-lead"
    assert "alice" in policy.approvers

    def approver(role_arn, source_identity, session="alice"):
        identity = api_call.identity_of(_session(role_arn, session, source_identity))
        return is_approver(policy, identity)

    assert approver(policy.approver_role_arn, "alice")
    assert not approver(policy.approver_role_arn, "bob")
    assert not approver(policy.approver_role_arn, None)
    assert approver(policy.studio_role_arn, "churn-alice", session="SageMaker")
    assert not approver(policy.studio_role_arn, "churn-bob", session="SageMaker")
    assert not approver(policy.studio_role_arn, "alice", session="SageMaker")
    # The same role name in another account is another role.
    assert not approver(policy.approver_role_arn.replace(governance, dev), "alice")


def test_identity_of_reads_the_cloudtrail_caller():
    record = approval_event("arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-churn/1", ALICE_CLI)
    identity = api_call.identity_of(record["detail"]["userIdentity"])
    assert identity.source_identity == "alice"
    assert identity.iam_arn.endswith(":assumed-role/mlops-churn-governance-approver/alice")
    assert identity.user_profile_name is None
    assert api_call.identity_of(None) is None and api_call.identity_of({"type": "AWSService"}) is None
