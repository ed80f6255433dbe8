"""A version registered outside the pipeline (from Studio or a tool such as Canvas) takes the same journey.

It arrives by ``CreateModelPackage`` without ``ModelMetrics`` or
``DriftCheckBaselines`` in our format. It lands in the same group, so the same
rules fire; notify and the guard name exactly the missing evidence, and nothing
is released.
"""

from __future__ import annotations

from mlops_platform.approval.policy import DATA_QUALITY_BASELINE, EVALUATION_REPORT, EVIDENCE_LABELS
from tests.approval.lambdas import guard, notify
from tests.approval.support import ALICE, approval_event, state_change_event, studio_user

# bob's Studio session registers the version by hand.
BOB_IN_CANVAS = studio_user("churn-bob", "mlops-churn-dev-data-scientist")
MISSING = [f"evidence missing: {EVIDENCE_LABELS[kind]}" for kind in (EVALUATION_REPORT, DATA_QUALITY_BASELINE)]


def register_from_canvas(platform) -> str:
    return platform.register(registrant=BOB_IN_CANVAS, evaluation=False, baseline=None)


def test_a_canvas_version_is_announced_with_what_is_missing(platform):
    arn = register_from_canvas(platform)
    assert "ModelMetrics" not in platform.describe(arn) and "DriftCheckBaselines" not in platform.describe(arn)

    notify.handle(state_change_event(arn, "PendingManualApproval"), platform.settings(), platform.clients())

    [note] = platform.notifications()
    assert "no evaluation report attached to read it from" in note["message"]
    assert "MISSING (required)" in note["message"]
    assert "churn-bob" in note["message"]


def test_approving_a_canvas_version_is_reverted_naming_the_missing_evidence(platform):
    arn = register_from_canvas(platform)
    platform.set_status(arn, "Approved", ALICE, "built in Canvas")
    event = approval_event(arn, ALICE, description="built in Canvas")

    outcome = guard.handle(event, platform.settings(), platform.clients())

    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "Rejected"
    described = platform.describe(arn)
    assert described["ModelApprovalStatus"] == "Rejected"
    for violation in MISSING:
        assert violation in described["ApprovalDescription"]
    assert "no evaluation report attached to read it from" in described["ApprovalDescription"]
    [note] = platform.notifications()
    assert "reverted to Rejected" in note["subject"]
    assert all(violation in note["message"] for violation in MISSING)
    assert platform.items("release#") == [] and platform.executions() == []
