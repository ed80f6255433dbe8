"""AWS faults are raised (Lambda retries, then the dead-letter queue), and retries finish the work.

Throttling of DescribeModelPackage is simulated with botocore's ``Stubber``; the
other faults with ``Faulty`` (tests/approval/support.py), a thin wrapper that
raises ``ClientError`` for one operation of an otherwise moto-backed client.
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.approval.lambdas import guard, notify, rejected
from tests.approval.support import ALICE, APPROVER_CLI, BOB, Faulty, approval_event, state_change_event

TIME = "2026-05-04T12:00:00Z"


@pytest.mark.parametrize(
    ("module", "status"), [(notify, "PendingManualApproval"), (guard, "Approved"), (rejected, "Rejected")]
)
def test_throttled_describe_is_raised(platform, module, status):
    arn = platform.register(status=status)
    sagemaker = platform.make_client("sagemaker")
    event = approval_event(arn, ALICE) if module is guard else state_change_event(arn, status)
    with Stubber(sagemaker) as stub:
        stub.add_client_error("describe_model_package", service_error_code="ThrottlingException", http_status_code=400)
        with pytest.raises(ClientError, match="ThrottlingException"):
            module.handle(event, platform.settings(), platform.clients(sagemaker=sagemaker))
        stub.assert_no_pending_responses()
    assert platform.items() == [] and platform.notifications() == []


def test_access_denied_on_revert_is_raised_and_the_retry_reverts(platform):
    arn = platform.register()
    platform.set_status(arn, "Approved", BOB, "me")
    event = approval_event(arn, BOB, time=TIME)
    denied = Faulty(platform.sagemaker_as(None), {"update_model_package": ("AccessDeniedException", 400)})

    with pytest.raises(ClientError, match="AccessDenied"):
        guard.handle(event, platform.settings(), platform.clients(sagemaker=denied))
    assert platform.describe(arn)["ModelApprovalStatus"] == "Approved" and platform.notifications() == []

    assert guard.handle(event, platform.settings(), platform.clients())["decision"] == "reverted"
    assert platform.describe(arn)["ModelApprovalStatus"] == "PendingManualApproval"


def test_access_denied_on_the_evaluation_report_is_raised(platform):
    arn = platform.register()
    platform.set_status(arn, "Approved", ALICE, "ok")
    denied = Faulty(platform.s3, {"get_object": ("AccessDenied", 403)})
    with pytest.raises(ClientError, match="AccessDenied"):
        guard.handle(approval_event(arn, ALICE), platform.settings(), platform.clients(s3=denied))
    # Not mistaken for missing evidence: nothing was reverted.
    assert platform.describe(arn)["ModelApprovalStatus"] == "Approved"


def test_throttled_release_write_is_raised(platform):
    arn = platform.register()
    platform.set_status(arn, "Approved", ALICE, "ok")
    throttled = Faulty(platform.dynamodb, {"put_item": ("ProvisionedThroughputExceededException", 400)})
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        guard.handle(approval_event(arn, ALICE), platform.settings(), platform.clients(dynamodb=throttled))
    assert platform.executions() == []


def test_sns_5xx_is_raised_and_the_event_is_not_marked(platform):
    arn = platform.register()
    event = state_change_event(arn, "PendingManualApproval", event_id="evt-5xx", time=TIME)
    failing = Faulty(platform.sns, {"publish": ("InternalErrorException", 500)})

    with pytest.raises(ClientError, match="InternalError"):
        notify.handle(event, platform.settings(), platform.clients(sns=failing))
    assert platform.items("event#") == []  # marked only after publishing: the retry publishes

    assert notify.handle(event, platform.settings(), platform.clients())["decision"] == "notified"
    assert len(platform.notifications()) == 1
    [marker] = platform.items("event#")
    assert marker["pk"] == "event#churn#evt-5xx" and marker["sk"] == "notify"


def test_access_denied_on_rollback_deployment_is_raised_and_the_retry_deploys_once(platform):
    v1, v2 = platform.register(), platform.register()
    for n, arn in ((1, v1), (2, v2)):
        platform.set_status(arn, "Approved", ALICE, "ok")
        outcome = guard.handle(
            approval_event(arn, ALICE, time=f"2026-05-0{n}T09:00:00Z"), platform.settings(), platform.clients()
        )
        assert outcome["decision"] == "released"
    platform.set_status(v2, "Rejected", APPROVER_CLI, "bad")
    event = state_change_event(v2, "Rejected", time=TIME)
    denied = Faulty(platform.codepipeline, {"start_pipeline_execution": ("AccessDeniedException", 400)})

    with pytest.raises(ClientError, match="AccessDenied"):
        rejected.handle(event, platform.settings(), platform.clients(codepipeline=denied))
    assert len(platform.executions()) == 2

    outcome = rejected.handle(event, platform.settings(), platform.clients())
    assert outcome["decision"] == "rolled_back"
    assert len(platform.executions()) == 3 and platform.executions()[-1]["MODEL_PACKAGE_ARN"] == v1
    assert rejected.handle(event, platform.settings(), platform.clients())["decision"] == "duplicate"
    assert len(platform.executions()) == 3
