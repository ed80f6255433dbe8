"""What the three handlers share: accepting an event, loading a version's evidence, logging a decision."""

from __future__ import annotations

from typing import Any

from mlops_platform.approval.aws import Clients, describe_package, read_report
from mlops_platform.approval.log import log
from mlops_platform.approval.policy import PackageEvidence, evaluation_report_uri, parse_package
from mlops_platform.approval.releases import ReleaseTable
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


def accept(event: Any, settings: Settings, handler: str, status: str) -> StateChange | Outcome:
    """The event's state change when this handler should act on it, else the logged drop/ignore decision.

    Malformed events and events of another project's group are dropped, not
    raised: no retry could make them processable.
    """
    try:
        change = parse(event)
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
    if change.status != status:
        return decide(handler, settings, change, "ignored", reason=f"{handler} handles {status} only")
    return change


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


def give_back(table: ReleaseTable, event_id: str, handler: str) -> None:
    """Return an event claim after a failed publish; a failure here is logged, the original error wins."""
    try:
        table.release_event(event_id, handler)
    except Exception as err:  # noqa: BLE001 - the caller re-raises the original error
        log(
            "could not give back the event claim; a retry will skip this notification",
            level="ERROR",
            handler=handler,
            event_id=event_id,
            error=repr(err),
        )
