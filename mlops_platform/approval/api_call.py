"""Parse the CloudTrail record of an approval: "AWS API Call via CloudTrail" events for SageMaker.

The guard takes the approver from the call that set ``Approved``, never from
``LastModifiedBy`` (whoever touched the package last). The event (abridged)::

    {"id": "…", "time": "2026-12-02T10:00:00Z", "source": "aws.sagemaker",
     "detail-type": "AWS API Call via CloudTrail",
     "detail": {"eventSource": "sagemaker.amazonaws.com", "eventName": "UpdateModelPackage",
                "eventID": "…", "eventTime": "…",
                "userIdentity": {"type": "AssumedRole",
                                 "arn": "arn:aws:sts::111111111111:assumed-role/mlops-churn-governance-approver/alice",
                                 "principalId": "AROA…:alice",
                                 "sessionContext": {"sourceIdentity": "alice", "sessionIssuer": {…}}},
                "requestParameters": {"modelPackageArn": "arn:aws:sagemaker:…:model-package/mlops-churn/3",
                                      "modelApprovalStatus": "Approved", "approvalDescription": "…"},
                "errorCode": "…"  (only when the call failed)}}

``CreateModelPackage`` with ``modelApprovalStatus = Approved`` (registered
already approved) names the group in ``requestParameters`` and the new
version's ARN in ``responseElements.modelPackageArn``.

EventBridge delivers these only while a CloudTrail trail records management
events in the account (the governance baseline's trail).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_platform.approval.policy import APPROVAL_STATUSES, Identity
from mlops_platform.approval.state_change import MalformedEvent, StateChange, envelope, parse_arn

DETAIL_TYPE = "AWS API Call via CloudTrail"
EVENT_SOURCE = "sagemaker.amazonaws.com"
APPROVAL_CALLS = ("UpdateModelPackage", "CreateModelPackage")


class FailedCall(MalformedEvent):
    """The recorded call failed (``errorCode``): it changed nothing."""


def is_api_call(event: Any) -> bool:
    return isinstance(event, Mapping) and event.get("detail-type") == DETAIL_TYPE


def identity_of(user_identity: Any) -> Identity | None:
    """The caller of a CloudTrail record: its ARN, principal id and STS source identity."""
    if not isinstance(user_identity, Mapping):
        return None
    session = user_identity.get("sessionContext")
    session = session if isinstance(session, Mapping) else {}
    source = session.get("sourceIdentity") or user_identity.get("sourceIdentity")
    identity = Identity(
        iam_arn=_text(user_identity.get("arn")),
        principal_id=_text(user_identity.get("principalId")),
        source_identity=_text(source),
    )
    return identity if identity.known else None


def parse_approval_call(event: Any) -> tuple[StateChange, Identity | None]:
    """The status change an API call made, and who made it; raises :class:`MalformedEvent`.

    :class:`FailedCall` (a subclass) when the call was refused by AWS.
    """
    event_id, time, detail = envelope(event, DETAIL_TYPE)
    if detail.get("eventSource") != EVENT_SOURCE:
        raise MalformedEvent(f"detail.eventSource is {detail.get('eventSource')!r}, expected {EVENT_SOURCE!r}")
    name = detail.get("eventName")
    if name not in APPROVAL_CALLS:
        raise MalformedEvent(f"detail.eventName {name!r} is not one of {', '.join(APPROVAL_CALLS)}")
    if detail.get("errorCode"):
        raise FailedCall(f"the {name} call failed with {detail.get('errorCode')}: it changed nothing")
    request = detail.get("requestParameters")
    request = request if isinstance(request, Mapping) else {}
    status = request.get("modelApprovalStatus")
    if status not in APPROVAL_STATUSES:
        raise MalformedEvent(f"requestParameters.modelApprovalStatus {status!r} is not an approval status")
    if name == "UpdateModelPackage":
        arn = request.get("modelPackageArn")
    else:
        response = detail.get("responseElements")
        arn = response.get("modelPackageArn") if isinstance(response, Mapping) else None
    parsed = parse_arn(arn) if isinstance(arn, str) else None
    if not isinstance(arn, str) or parsed is None:
        raise MalformedEvent(f"the {name} call names no versioned model package ARN ({arn!r})")
    group, version = parsed
    description = request.get("approvalDescription")
    change = StateChange(
        event_id=event_id,
        time=time,
        group=group,
        arn=arn,
        version=version,
        status=status,
        approval_description=description if isinstance(description, str) else None,
    )
    return change, identity_of(detail.get("userIdentity"))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
