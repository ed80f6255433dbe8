"""Parsing and accepting "CloudWatch Alarm State Change" events (pure; no AWS calls).

The event (forwarded stage account -> governance -> dev; EventBridge keeps the
original ``account``)::

    {"id": "...", "detail-type": "CloudWatch Alarm State Change", "source": "aws.cloudwatch",
     "account": "<stage account>", "time": "...", "resources": ["arn:aws:cloudwatch:...:alarm:<name>"],
     "detail": {"alarmName": "...", "state": {"value": "ALARM", "reason": "...", "timestamp": "..."},
                "previousState": {"value": "OK", ...}, "configuration": {"description": "... [project=p stage=s
                version=n]"}}}

:func:`accept` returns an :class:`AlarmEvent` or a :class:`Refusal` (why the
event is dropped); it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops_platform.retraining.settings import Settings

DETAIL_TYPE = "CloudWatch Alarm State Change"
SOURCE = "aws.cloudwatch"
ALARM = "ALARM"
# The tag the monitoring stacks end every alarm description with.
_TAG = re.compile(r"\[project=(?P<project>\S+) stage=(?P<stage>\S+) version=(?P<version>[^\s\]]+)\]\s*$")


@dataclass(frozen=True)
class AlarmEvent:
    event_id: str
    alarm_name: str
    stage: str
    account: str
    state: str
    previous_state: str | None
    reason: str
    state_time: str | None
    event_time: str | None
    version: str | None  # from the description's tag; None when the alarm has none


@dataclass(frozen=True)
class Refusal:
    """Why an event is dropped: ``decision`` (``malformed``, ``ignored``, ``foreign``) and a reason."""

    decision: str
    reason: str
    fields: Mapping[str, Any]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def accept(event: Any, settings: Settings) -> AlarmEvent | Refusal:
    """The alarm event if it is a transition to ALARM of one of the project's alarms, from its stage's account."""
    if not isinstance(event, Mapping):
        return Refusal("malformed", f"the event is a {type(event).__name__}, not an object", {})
    event_id = _text(event.get("id"))
    detail_type = event.get("detail-type")
    seen: dict[str, Any] = {"event_id": event_id, "detail_type": detail_type}
    if detail_type != DETAIL_TYPE or event.get("source") != SOURCE:
        return Refusal("ignored", f"not a {DETAIL_TYPE} event of {SOURCE}", {**seen, "source": event.get("source")})
    detail = _mapping(event.get("detail"))
    state = _mapping(detail.get("state"))
    alarm_name = _text(detail.get("alarmName"))
    account = _text(event.get("account"))
    value = _text(state.get("value"))
    if event_id is None or alarm_name is None or account is None or value is None:
        absent = [
            name
            for name, present in (("id", event_id), ("account", account), ("detail.alarmName", alarm_name))
            if present is None
        ] + ([] if value is not None else ["detail.state.value"])
        return Refusal("malformed", f"missing {', '.join(absent)}", seen)
    seen.update(alarm=alarm_name, account=account, state=value)

    stage = settings.stage_of(alarm_name)
    if stage is None:
        return Refusal("foreign", f"the alarm is not one of project {settings.project}'s monitoring alarms", seen)
    seen["stage"] = stage
    expected = settings.accounts.get(stage)
    if account != expected:
        return Refusal("foreign", f"the event comes from account {account}, not {stage}'s account {expected}", seen)
    arn_account = _alarm_arn_account(event.get("resources"), alarm_name)
    if arn_account is not None and arn_account != expected:
        return Refusal("foreign", f"the alarm ARN is in account {arn_account}, not {stage}'s account {expected}", seen)

    description = _text(_mapping(detail.get("configuration")).get("description")) or ""
    tag = _TAG.search(description)
    if tag is not None and (tag["project"] != settings.project or tag["stage"] != stage):
        return Refusal(
            "foreign",
            f"the alarm's description names project={tag['project']} stage={tag['stage']}, "
            f"not {settings.project}/{stage}",
            seen,
        )
    if value != ALARM:
        return Refusal("ignored", f"a transition to {value}, not to {ALARM}", seen)
    return AlarmEvent(
        event_id=event_id,
        alarm_name=alarm_name,
        stage=stage,
        account=account,
        state=value,
        previous_state=_text(_mapping(detail.get("previousState")).get("value")),
        reason=_text(state.get("reason")) or "",
        state_time=_text(state.get("timestamp")),
        event_time=_text(event.get("time")),
        version=tag["version"] if tag is not None else None,
    )


def _alarm_arn_account(resources: Any, alarm_name: str) -> str | None:
    """The account of the event's ``arn:aws:cloudwatch:<region>:<account>:alarm:<name>`` resource, if listed."""
    if not isinstance(resources, list):
        return None
    for arn in resources:
        if isinstance(arn, str) and arn.startswith("arn:") and arn.endswith(f":alarm:{alarm_name}"):
            parts = arn.split(":")
            if len(parts) >= 7 and parts[2] == "cloudwatch":
                return parts[4]
    return None
