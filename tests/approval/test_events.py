"""Event handling shared by the three handlers: malformed, foreign and unhandled events are dropped, never raised.

notify and rejected take "SageMaker Model Package State Change" events; the
guard takes the CloudTrail record of the approval call ("AWS API Call via
CloudTrail", built by ``approval_event``).
"""

from __future__ import annotations

import copy
import json

import pytest

from tests.approval.lambdas import aws as lambda_aws
from tests.approval.lambdas import guard, notify, rejected, state_change
from tests.approval.lambdas import settings as lambda_settings
from tests.approval.support import (
    ACCOUNT,
    ALICE_CLI,
    OTHER_GROUP,
    PIPELINE,
    POLICY,
    TABLE,
    approval_event,
    state_change_event,
)

HANDLERS = {
    "notify": (notify, "PendingManualApproval"),
    "guard": (guard, "Approved"),
    "rejected": (rejected, "Rejected"),
}
# A status each handler does not act on (rejected handles Rejected and PendingManualApproval).
UNHANDLED = {"notify": "Approved", "guard": "Rejected", "rejected": "Approved"}


def event_for(handler_name, arn, status, **kwargs):
    """The kind of event the handler's rule delivers."""
    if handler_name == "guard":
        kwargs.pop("group", None)  # the call names the group in the version's ARN
        return approval_event(arn, ALICE_CLI, status=status, **kwargs)
    return state_change_event(arn, status, **kwargs)


ARN = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/mlops-churn/1"


def _without(path):
    def change(event):
        target = event
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return change


def _set(path, value):
    def change(event):
        target = event
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


MALFORMED = {
    "not an object": lambda e: ["not", "an", "event"],
    "wrong source": _set(["source"], "aws.events"),
    "wrong detail-type": _set(["detail-type"], "SageMaker Model State Change"),
    "no id": _without(["id"]),
    "no time": _without(["time"]),
    "bad time": _set(["time"], "yesterday"),
    "no detail": _without(["detail"]),
    "detail not an object": _set(["detail"], "Approved"),
    "no group": _without(["detail", "ModelPackageGroupName"]),
    "no arn": _without(["detail", "ModelPackageArn"]),
    "unversioned arn": _set(["detail", "ModelPackageArn"], f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/x"),
    "arn of another group": _set(["detail", "ModelPackageArn"], ARN.replace("mlops-churn", "mlops-fraud")),
    "version mismatch": _set(["detail", "ModelPackageVersion"], 2),
    "version not a number": _set(["detail", "ModelPackageVersion"], "two"),
    "unknown status": _set(["detail", "ModelApprovalStatus"], "Deleted"),
}


API_CALL_MALFORMED = {
    "not an object": lambda e: ["not", "an", "event"],
    "a state change event": lambda e: state_change_event(ARN, "Approved"),
    "wrong detail-type": _set(["detail-type"], "SageMaker Model Package State Change"),
    "no id": _without(["id"]),
    "no time": _without(["time"]),
    "bad time": _set(["time"], "yesterday"),
    "no detail": _without(["detail"]),
    "detail not an object": _set(["detail"], "Approved"),
    "wrong event source": _set(["detail", "eventSource"], "s3.amazonaws.com"),
    "another call": _set(["detail", "eventName"], "DescribeModelPackage"),
    "failed call": _set(["detail", "errorCode"], "AccessDeniedException"),
    "no request parameters": _without(["detail", "requestParameters"]),
    "no arn": _without(["detail", "requestParameters", "modelPackageArn"]),
    "unversioned arn": _set(
        ["detail", "requestParameters", "modelPackageArn"], f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/x"
    ),
    "no status": _without(["detail", "requestParameters", "modelApprovalStatus"]),
    "unknown status": _set(["detail", "requestParameters", "modelApprovalStatus"], "Deleted"),
}


class NoCalls:
    """A client that fails the test on any use: dropped events must not reach AWS."""

    def __init__(self, service):
        self.service = service

    def __getattr__(self, name):
        raise AssertionError(f"{self.service}.{name} called for an event that should be dropped")


def _drop(module, event, capsys, handler_name):
    settings = lambda_settings.Settings(f"arn:aws:sns:eu-west-1:{ACCOUNT}:t", TABLE, PIPELINE, POLICY)
    clients = lambda_aws.Clients(**{service: NoCalls(service) for service in lambda_aws.SERVICES})

    outcome = module.handle(event, settings, clients)

    assert outcome["decision"] == "dropped" and outcome["reason"].startswith("malformed event")
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["decision"] == "dropped" and line["handler"] == handler_name and line["project"] == "churn"


@pytest.mark.parametrize("handler_name", ["notify", "rejected"])
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_state_change_events_are_dropped_without_aws_calls(handler_name, case, capsys):
    module, status = HANDLERS[handler_name]
    event = copy.deepcopy(state_change_event(ARN, status))
    broken = MALFORMED[case](event)
    _drop(module, broken if broken is not None else event, capsys, handler_name)


@pytest.mark.parametrize("handler_name", ["notify", "rejected"])
def test_an_api_call_event_is_dropped_by_the_state_change_handlers(handler_name, capsys):
    module, _ = HANDLERS[handler_name]
    _drop(module, approval_event(ARN, ALICE_CLI), capsys, handler_name)


@pytest.mark.parametrize("case", sorted(API_CALL_MALFORMED))
def test_malformed_approval_calls_are_dropped_by_the_guard_without_aws_calls(case, capsys):
    event = copy.deepcopy(approval_event(ARN, ALICE_CLI))
    broken = API_CALL_MALFORMED[case](event)
    event = broken if broken is not None else event
    settings = lambda_settings.Settings(f"arn:aws:sns:eu-west-1:{ACCOUNT}:t", TABLE, PIPELINE, POLICY)
    clients = lambda_aws.Clients(**{service: NoCalls(service) for service in lambda_aws.SERVICES})

    outcome = guard.handle(event, settings, clients)

    assert outcome["decision"] == "dropped" and outcome["reason"].startswith("malformed event")
    [line] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert line["decision"] == "dropped" and line["handler"] == "guard" and line["project"] == "churn"


@pytest.mark.parametrize("handler_name", sorted(HANDLERS))
def test_another_projects_group_is_ignored(platform, handler_name):
    module, status = HANDLERS[handler_name]
    arn = platform.register(group=OTHER_GROUP, status=status)
    event = event_for(handler_name, arn, status, group=OTHER_GROUP)
    outcome = module.handle(event, platform.settings(), platform.clients())
    assert outcome["decision"] == "ignored" and "another project" in outcome["reason"]
    assert platform.items() == [] and platform.notifications() == [] and platform.executions() == []


@pytest.mark.parametrize("handler_name", sorted(HANDLERS))
def test_statuses_of_other_handlers_are_ignored(platform, handler_name):
    module, _ = HANDLERS[handler_name]
    other = UNHANDLED[handler_name]
    arn = platform.register(status=other)
    outcome = module.handle(event_for(handler_name, arn, other), platform.settings(), platform.clients())
    assert outcome["decision"] == "ignored" and "handles" in outcome["reason"]
    assert platform.items() == [] and platform.notifications() == []


@pytest.mark.parametrize("handler_name", sorted(HANDLERS))
def test_version_that_no_longer_exists_is_dropped(platform, handler_name):
    module, status = HANDLERS[handler_name]
    outcome = module.handle(
        event_for(handler_name, ARN.replace("/1", "/42"), status), platform.settings(), platform.clients()
    )
    assert outcome["decision"] == "dropped" and "no longer exists" in outcome["reason"]


def test_parse_accepts_the_documented_shape_and_string_versions():
    event = state_change_event(ARN, "Approved", time="2021-06-03T04:45:23Z")
    event["detail"]["ModelPackageVersion"] = "1"
    change = state_change.parse(event)
    assert (change.group, change.version, change.status) == ("mlops-churn", 1, "Approved")
    assert change.recorded_at == "2021-06-03T04:45:23Z"
    assert change.expires_at() == 1622695523 + 7 * 24 * 3600


def test_parse_takes_the_version_from_the_arn_when_missing():
    event = state_change_event(ARN, "Approved")
    del event["detail"]["ModelPackageVersion"]
    assert state_change.parse(event).version == 1
