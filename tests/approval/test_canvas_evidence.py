"""A version registered from SageMaker Canvas: what the approval path says about its evidence.

Canvas in dev registers through the project's governance ``canvas-register`` role
(``stacks/components/canvas.py``), so the version lands in the project's group as
``PendingManualApproval`` and the same notify and guard handle it. The shape below is
Canvas-like, not copied from a real Canvas registration (none is available offline):
an Autopilot inference pipeline (data processing, algorithm, post-processing
containers) whose artifacts lie in the project's Canvas workspace, no ``ModelMetrics``,
no ``DriftCheckBaselines``, no project tags. ``CreatedBy`` is the register role's
session carrying the Studio user profile name as STS source identity (what the
register role's trust admits; that Canvas really carries it there is unproven).

The guard must name each missing evidence item and where it goes. SageMaker cannot
attach evidence to an existing version (UpdateModelPackage takes neither
ModelMetrics nor DriftCheckBaselines), so evidence comes with a new registration:
the version registered again with it passes.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session

from mlops_platform.approval.policy import DATA_QUALITY_BASELINE, EVALUATION_REPORT, EVIDENCE_LABELS
from tests.approval.lambdas import guard, notify
from tests.approval.support import (
    ACCOUNT,
    ALICE,
    BUCKET,
    GROUP,
    REGION,
    approval_event,
    report,
    role_session,
    state_change_event,
)

REGISTER_ROLE = "mlops-churn-governance-canvas-register"
CANVAS_BOB = role_session(REGISTER_ROLE, "SageMaker-Canvas", source_identity="churn-bob")
CANVAS_ALICE = role_session(REGISTER_ROLE, "SageMaker-Canvas", source_identity="churn-alice")
WORKSPACE = f"s3://{BUCKET}/projects/churn/canvas/Canvas/churn-bob/Training/output/churn-model-1"
# SageMaker's image registry account for the region (illustrative: any AWS-owned image works here).
AUTOML = f"141502667606.dkr.ecr.{REGION}.amazonaws.com"
MISSING = {kind: f"evidence missing: {EVIDENCE_LABELS[kind]}" for kind in (EVALUATION_REPORT, DATA_QUALITY_BASELINE)}


def canvas_inference() -> dict[str, Any]:
    """An Autopilot-style three-container inference pipeline, as a Canvas model registers it."""
    return {
        "Containers": [
            {
                "Image": f"{AUTOML}/sagemaker-sklearn-automl:2.5-1-cpu-py3",
                "ModelDataUrl": f"{WORKSPACE}/data-processor-models/model.tar.gz",
                "Environment": {"AUTOML_TRANSFORM_MODE": "feature-transform", "SAGEMAKER_PROGRAM": "sagemaker_serve"},
            },
            {
                "Image": f"{AUTOML}/sagemaker-xgboost:1.7-1",
                "ModelDataUrl": f"{WORKSPACE}/tuning/model.tar.gz",
                "Environment": {"MAX_CONTENT_LENGTH": "20971520", "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label"},
            },
            {
                "Image": f"{AUTOML}/sagemaker-sklearn-automl:2.5-1-cpu-py3",
                "ModelDataUrl": f"{WORKSPACE}/data-processor-models/model.tar.gz",
                "Environment": {"AUTOML_TRANSFORM_MODE": "inverse-label-transform"},
            },
        ],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["text/csv"],
        "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large", "ml.m5.xlarge"],
        "SupportedTransformInstanceTypes": ["ml.m5.large"],
    }


def register_from_canvas(platform, registrant: dict[str, Any] = CANVAS_BOB, *, evidence: bool = False) -> str:
    """CreateModelPackage as the register role makes it: pending, no status-changing fields."""
    kwargs: dict[str, Any] = {
        "ModelPackageGroupName": GROUP,
        "ModelPackageDescription": "churn-model version 1, built in SageMaker Canvas",
        "ModelApprovalStatus": "PendingManualApproval",
        "InferenceSpecification": canvas_inference(),
    }
    if evidence:
        # What a new registration of the same artifacts adds: the pipeline's evaluation report and baseline.
        prefix = "projects/churn/canvas/evidence/churn-model-1"
        platform.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/evaluation.json", Body=json.dumps(report()).encode())
        statistics = {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{prefix}/statistics.json"}
        constraints = {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{prefix}/constraints.json"}
        kwargs["ModelMetrics"] = {
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{prefix}/evaluation.json"}
            }
        }
        kwargs["DriftCheckBaselines"] = {"ModelDataQuality": {"Statistics": statistics, "Constraints": constraints}}
    return platform.sagemaker_as(registrant).create_model_package(**kwargs)["ModelPackageArn"]


def approve_as_alice(platform, arn: str) -> dict[str, Any]:
    platform.set_status(arn, "Approved", ALICE, "built in Canvas, looks good")
    return guard.handle(
        approval_event(arn, ALICE, description="built in Canvas"), platform.settings(), platform.clients()
    )


def test_a_canvas_version_lands_pending_without_evidence(platform):
    arn = register_from_canvas(platform)
    described = platform.describe(arn)
    assert described["ModelPackageGroupName"] == GROUP
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert "ModelMetrics" not in described and "DriftCheckBaselines" not in described
    assert arn.startswith(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/")


def test_notify_names_each_missing_item_and_who_registered_it(platform):
    arn = register_from_canvas(platform)

    notify.handle(state_change_event(arn, "PendingManualApproval"), platform.settings(), platform.clients())

    [note] = platform.notifications()
    message = note["message"]
    for kind in (EVALUATION_REPORT, DATA_QUALITY_BASELINE):
        # The label says where the item goes: ModelMetrics.ModelQuality.Statistics, DriftCheckBaselines...
        assert f"{EVIDENCE_LABELS[kind]}: MISSING (required)" in message
        assert MISSING[kind] in message
    assert "ModelMetrics.ModelQuality.Statistics" in message
    assert "DriftCheckBaselines.ModelDataQuality" in message
    assert "no evaluation report attached to read it from" in message  # for every metric threshold
    assert f"{REGISTER_ROLE}/SageMaker-Canvas" in message and "source identity churn-bob" in message
    # How to give it: evidence cannot be attached afterwards, so the message leads to a new registration.
    assert "UpdateModelPackage cannot add it): register a new" in message
    assert "train it through the pipeline on the same feature group" in message


def test_approving_it_is_reverted_to_rejected_naming_exactly_the_missing_evidence(platform):
    arn = register_from_canvas(platform)

    outcome = approve_as_alice(platform, arn)

    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "Rejected"
    described = platform.describe(arn)
    assert described["ModelApprovalStatus"] == "Rejected"
    violations = described["ApprovalDescription"]
    assert MISSING[EVALUATION_REPORT] in violations and MISSING[DATA_QUALITY_BASELINE] in violations
    assert "metric auc: no evaluation report attached to read it from" in violations
    assert "metric accuracy: no evaluation report attached to read it from" in violations
    # Nothing else is wrong: alice is an approver and did not register it.
    assert "not an approver" not in violations and "self-approval" not in violations
    [note] = platform.notifications()
    assert "reverted to Rejected" in note["subject"]
    assert all(line in note["message"] for line in MISSING.values())
    assert platform.items("release#") == [] and platform.executions() == []


def test_evidence_cannot_be_attached_to_the_registered_version():
    """Why the guard's message leads to a new registration: UpdateModelPackage has no evidence fields."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    update = set(model.operation_model("UpdateModelPackage").input_shape.members)
    create = set(model.operation_model("CreateModelPackage").input_shape.members)
    assert {"ModelMetrics", "DriftCheckBaselines"} <= create
    assert not {"ModelMetrics", "DriftCheckBaselines"} & update


def test_registered_again_with_evidence_it_is_released(platform):
    arn = register_from_canvas(platform, evidence=True)

    outcome = approve_as_alice(platform, arn)

    assert outcome["decision"] == "released", outcome
    assert platform.describe(arn)["ModelApprovalStatus"] == "Approved"
    assert len(platform.executions()) == 1  # the deploy pipeline starts, as for a pipeline-built version


def test_the_canvas_user_cannot_approve_their_own_version(platform):
    """The source identity the Studio session carries through the register role identifies the registrant."""
    arn = register_from_canvas(platform, CANVAS_ALICE, evidence=True)

    outcome = approve_as_alice(platform, arn)

    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "PendingManualApproval"
    assert "self-approval is not allowed" in platform.describe(arn)["ApprovalDescription"]
