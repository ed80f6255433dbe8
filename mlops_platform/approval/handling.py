"""What the handlers share: accepting an event, loading a version's evidence, logging a decision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mlops_platform.approval.aws import Clients, describe_package, read_report
from mlops_platform.approval.log import log
from mlops_platform.approval.policy import Identity, PackageEvidence, evaluation_report_uri, parse_package
from mlops_platform.approval.settings import Settings
from mlops_platform.approval.state_change import MalformedEvent, StateChange, parse


class Outcome(dict):
    """The decision record a handler logs and returns (returning never makes Lambda retry)."""


def decide(handler: str, settings: Settings, change: StateChange | None, decision: str, **fields: Any) -> Outcome:
    """Log the one decision line of an invocation and return it."""
    record: dict[str, Any] = {"handler": handler, "project": settings.project, "decision": decision}
    if change is not None:
        record.update(arn=change.arn, version=change.version, status=change.status, event_id=change.event_id)
    record.update(fields)
    return Outcome(log("decision", **record))


def _state_change(event: Any) -> tuple[StateChange, Identity | None]:
    return parse(event), None


def accept(
    event: Any,
    settings: Settings,
    handler: str,
    statuses: tuple[str, ...],
    parser: Callable[[Any], tuple[StateChange, Identity | None]] = _state_change,
) -> tuple[StateChange, Identity | None] | Outcome:
    """The event's change (and the caller, for API-call events) when this handler acts on it, else the decision.

    Malformed events, failed calls and events of another project's group are
    dropped, not raised: no retry could make them processable.
    """
    try:
        change, caller = parser(event)
    except MalformedEvent as err:
        event_id = event.get("id") if isinstance(event, dict) else None
        return decide(handler, settings, None, "dropped", reason=f"malformed event: {err}", event_id=event_id)
    if change.group.lower() != settings.policy.model_package_group.lower():
        return decide(
            handler,
            settings,
            change,
            "ignored",
            reason=f"group {change.group} belongs to another project (expected {settings.policy.model_package_group})",
        )
    if change.status not in statuses:
        return decide(handler, settings, change, "ignored", reason=f"{handler} handles {' and '.join(statuses)} only")
    return change, caller


def load_package(
    clients: Clients, arn: str, *, with_report: bool = True
) -> tuple[dict[str, Any], PackageEvidence] | None:
    """DescribeModelPackage plus its evaluation report; None when the package no longer exists."""
    description = describe_package(clients.sagemaker, arn)
    if description is None:
        return None
    report, problem = (None, None)
    if with_report:
        report, problem = read_report(clients.s3, evaluation_report_uri(description))
    return description, parse_package(description, report, problem)
