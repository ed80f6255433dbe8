"""Parse and filter EventBridge "SageMaker Model Package State Change" events.

The event (abridged)::

    {"version": "0", "id": "c800a495-…", "detail-type": "SageMaker Model Package State Change",
     "source": "aws.sagemaker", "account": "111111111111", "time": "2021-06-03T04:45:23Z",
     "region": "eu-west-1", "resources": ["arn:aws:sagemaker:…:model-package/mlops-churn/3"],
     "detail": {"ModelPackageGroupName": "mlops-churn", "ModelPackageVersion": 3,
                "ModelPackageArn": "arn:aws:sagemaker:…:model-package/mlops-churn/3",
                "ModelApprovalStatus": "PendingManualApproval", "ModelPackageStatus": "Completed",
                "CreationTime": 1622695255225, "CreatedBy": {…}, "ApprovalDescription": "…", …}}

:func:`parse` raises :class:`MalformedEvent` for anything else; handlers log and
drop those (a retry could never succeed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_platform.approval.policy import APPROVAL_STATUSES

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Package State Change"

_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/(?P<group>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})/"
    r"(?P<version>[1-9]\d{0,9})$"
)


class MalformedEvent(ValueError):
    """The event is not a model package state change this workflow can act on."""


@dataclass(frozen=True)
class StateChange:
    event_id: str
    time: datetime
    group: str
    arn: str
    version: int
    status: str
    approval_description: str | None

    @property
    def recorded_at(self) -> str:
        """The event time as ISO 8601 UTC: the same on every retry of this event."""
        return self.time.strftime("%Y-%m-%dT%H:%M:%SZ")

    def expires_at(self, days: int = 7) -> int:
        """Epoch seconds ``days`` after the event (TTL of idempotency markers)."""
        return int((self.time + timedelta(days=days)).timestamp())


def parse_arn(arn: str) -> tuple[str, int] | None:
    """``(group, version)`` of a versioned model package ARN, or None."""
    match = _PACKAGE_ARN.match(arn)
    return (match["group"], int(match["version"])) if match else None


def envelope(event: Any, detail_type: str) -> tuple[str, datetime, Mapping[str, Any]]:
    """``(id, time, detail)`` of a SageMaker EventBridge event of ``detail_type``; raises :class:`MalformedEvent`."""
    if not isinstance(event, Mapping):
        raise MalformedEvent(f"event is a {type(event).__name__}, not an object")
    if event.get("source") != SOURCE:
        raise MalformedEvent(f"source is {event.get('source')!r}, expected {SOURCE!r}")
    if event.get("detail-type") != detail_type:
        raise MalformedEvent(f"detail-type is {event.get('detail-type')!r}, expected {detail_type!r}")
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEvent("id is missing")
    time = parse_time(event.get("time"))
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEvent("detail is missing")
    return event_id, time, detail


def parse(event: Any) -> StateChange:
    """The state change in ``event``; raises :class:`MalformedEvent` naming the first problem."""
    event_id, time, detail = envelope(event, DETAIL_TYPE)
    group = detail.get("ModelPackageGroupName")
    if not isinstance(group, str) or not group:
        raise MalformedEvent("detail.ModelPackageGroupName is missing")
    arn = detail.get("ModelPackageArn")
    parsed = parse_arn(arn) if isinstance(arn, str) else None
    if not isinstance(arn, str) or parsed is None:
        raise MalformedEvent(f"detail.ModelPackageArn {arn!r} is not a versioned model package ARN")
    arn_group, arn_version = parsed
    if arn_group.lower() != group.lower():
        raise MalformedEvent(f"detail.ModelPackageArn names group {arn_group!r}, not {group!r}")
    version = detail.get("ModelPackageVersion", arn_version)
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool) or version != arn_version:
        raise MalformedEvent(f"detail.ModelPackageVersion {version!r} does not match the ARN (version {arn_version})")
    status = detail.get("ModelApprovalStatus")
    if status not in APPROVAL_STATUSES:
        raise MalformedEvent(f"detail.ModelApprovalStatus {status!r} is not one of {', '.join(APPROVAL_STATUSES)}")
    description = detail.get("ApprovalDescription")
    return StateChange(
        event_id=event_id,
        time=time,
        group=group,
        arn=arn,
        version=version,
        status=status,
        approval_description=description if isinstance(description, str) else None,
    )


def parse_time(value: Any) -> datetime:
    """An event's ISO 8601 ``time`` as aware UTC; raises :class:`MalformedEvent`."""
    if not isinstance(value, str) or not value:
        raise MalformedEvent("time is missing")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent(f"time {value!r} is not an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
