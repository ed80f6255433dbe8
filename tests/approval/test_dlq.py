"""``mlops dlq list`` / ``redrive`` against moto SQS, with the handlers replayed in process.

moto's Lambda Invoke runs the function in Docker, which the tests do not have:
:class:`HandlerLambda` stands in for the Lambda client and dispatches
``invoke`` to the real handler (``guard.handle`` etc.) with the platform's
settings and clients, answering as Lambda does (``FunctionError: Unhandled``
and the error payload when the handler raises).
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from mlops_platform.cli import app, dlq
from mlops_platform.cli.core import CliError, Context
from mlops_platform.config import load_config
from tests.approval.lambdas import guard, notify, rejected
from tests.approval.support import (
    ACCOUNT,
    ALICE,
    GROUP,
    REGION,
    Faulty,
    approval_event,
    state_change_event,
    write_config,
)

QUEUE = "mlops-churn-approval-dead-letters"
TIME = "2026-05-04T11:30:00Z"
HANDLERS = {"notify": notify, "guard": guard, "rejected": rejected}


def function_arn(kind: str, project: str = "churn", qualifier: str | None = "$LATEST") -> str:
    arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:mlops-{project}-approval-{kind}"
    return f"{arn}:{qualifier}" if qualifier else arn


def failure_record(event: dict[str, Any], kind: str = "guard", *, project: str = "churn", **error: Any) -> str:
    """The body Lambda's OnFailure destination sends after the retries of an asynchronous invocation."""
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-05-04T11:31:07.123Z",
            "requestContext": {
                "requestId": "c2a6f2ae-7dbb-4d22-8782-d0485c9877e2",
                "functionArn": function_arn(kind, project),
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": event,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {
                "errorMessage": error.get("message", "An error occurred (ThrottlingException) when calling X"),
                "errorType": error.get("type", "ClientError"),
                "stackTrace": ["  File guard.py, line 1"],
            },
        }
    )


def send_record(sqs, url: str, event: dict[str, Any], kind: str = "guard", **kwargs: Any) -> str:
    return sqs.send_message(QueueUrl=url, MessageBody=failure_record(event, kind, **kwargs))["MessageId"]


def send_delivery(sqs, url: str, event: dict[str, Any], kind: str = "guard", project: str = "churn") -> str:
    """What EventBridge sends to a rule target's DLQ when it cannot invoke the function."""
    attributes = {
        "RULE_ARN": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/mlops-{project}-{kind}",
        "TARGET_ARN": function_arn(kind, project, qualifier=None),
        "ERROR_CODE": "SDK_CLIENT_ERROR",
        "ERROR_MESSAGE": "Rate exceeded",
        "RETRY_ATTEMPTS": "4",
    }
    return sqs.send_message(
        QueueUrl=url,
        MessageBody=json.dumps(event),
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )["MessageId"]


class HandlerLambda:
    """A Lambda client whose ``invoke`` runs the named approval handler in this process."""

    def __init__(self, platform, **overrides: Any) -> None:
        self.platform = platform
        self.overrides = overrides
        self.calls: list[str] = []

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: str) -> dict[str, Any]:  # noqa: N803
        assert InvocationType == "RequestResponse"
        self.calls.append(FunctionName)
        kind = FunctionName.rsplit(":", 1)[-1].rsplit("-", 1)[-1]
        try:
            outcome = HANDLERS[kind].handle(
                json.loads(Payload), self.platform.settings(), self.platform.clients(**self.overrides)
            )
        except Exception as err:  # noqa: BLE001 - what Lambda reports as an unhandled error
            body = {"errorMessage": str(err), "errorType": type(err).__name__, "stackTrace": []}
            return {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": io.BytesIO(json.dumps(body).encode())}
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(outcome, default=str).encode())}


@pytest.fixture(autouse=True)
def no_long_polling(monkeypatch):
    monkeypatch.setattr(dlq, "RECEIVE_WAIT_SECONDS", 0)


@pytest.fixture
def config_dir(tmp_path):
    return write_config(tmp_path)


@pytest.fixture
def ctx(config_dir):
    return Context(load_config(config_dir))


@pytest.fixture
def queue(platform):
    return platform.sqs.create_queue(QueueName=QUEUE)["QueueUrl"]


def approved_event(platform, event_id: str = "evt-approve") -> tuple[str, dict[str, Any]]:
    """A version ALICE approved and the CloudTrail event of her approval that the guard failed on."""
    arn = platform.register()
    platform.set_status(arn, "Approved", ALICE, "looks good")
    return arn, approval_event(arn, ALICE, event_id=event_id, time=TIME, description="looks good")


def remaining(platform, ctx) -> list[dlq.DeadLetter]:
    return dlq.list_dead_letters(platform.sqs, ctx, "churn").messages


# --------------------------------------------------------------------------- list


def test_list_shows_both_shapes_and_unparseable_bodies(platform, ctx, queue):
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUP}/7"
    record_id = send_record(
        platform.sqs,
        queue,
        state_change_event(arn, "Approved", event_id="evt-record", time=TIME),
        message="An error occurred (AccessDeniedException) when calling the StartPipelineExecution operation",
    )
    delivery_id = send_delivery(
        platform.sqs, queue, state_change_event(arn, "Rejected", event_id="evt-delivery"), kind="rejected"
    )
    trail_id = send_record(
        platform.sqs,
        queue,
        approval_event(arn, ALICE, event_id="evt-trail"),
        kind="notify",
        type="KeyError",
        message="x",
    )
    broken_id = platform.sqs.send_message(QueueUrl=queue, MessageBody="{not json")["MessageId"]
    odd_id = platform.sqs.send_message(QueueUrl=queue, MessageBody='{"hello": "world"}')["MessageId"]

    listing = dlq.list_dead_letters(platform.sqs, ctx, "churn")
    assert listing.queue == QUEUE and not listing.truncated
    by_id = {m.message_id: m for m in listing.messages}
    assert set(by_id) == {record_id, delivery_id, trail_id, broken_id, odd_id}

    record = by_id[record_id]
    assert (record.shape, record.kind, record.event_id) == (dlq.INVOCATION, "guard", "evt-record")
    assert (record.model_package_arn, record.status, record.attempts) == (arn, "Approved", 3)
    assert record.reason == (
        "ClientError: An error occurred (AccessDeniedException) when calling the StartPipelineExecution operation"
    )
    assert record.failed_at is not None and record.failed_at.isoformat().startswith("2026-05-04T11:31:07")

    delivery = by_id[delivery_id]
    assert (delivery.shape, delivery.kind, delivery.event_id) == (dlq.DELIVERY, "rejected", "evt-delivery")
    assert (delivery.status, delivery.attempts, delivery.reason) == ("Rejected", 5, "SDK_CLIENT_ERROR: Rate exceeded")
    assert delivery.failed_at is not None  # SentTimestamp

    trail = by_id[trail_id]
    assert (trail.kind, trail.event_id, trail.model_package_arn) == ("notify", "evt-trail", arn)
    assert trail.status == "UpdateModelPackage (Approved)" and trail.reason == "KeyError: x"

    assert by_id[broken_id].shape == dlq.UNPARSEABLE and "not JSON" in by_id[broken_id].reason
    assert by_id[odd_id].shape == dlq.UNPARSEABLE and "neither" in by_id[odd_id].reason

    # Listing deleted nothing, and the messages are visible again for the next command.
    assert len(remaining(platform, ctx)) == 5


def test_list_of_an_empty_queue(platform, ctx, queue):
    assert dlq.list_dead_letters(platform.sqs, ctx, "churn").messages == []


def test_unknown_project_and_missing_queue_are_cli_errors(platform, ctx):
    with pytest.raises(CliError, match=r"unknown project 'nope' \(projects in config: churn\)") as unknown:
        dlq.list_dead_letters(platform.sqs, ctx, "nope")
    assert unknown.value.exit_code == 2
    with pytest.raises(CliError) as missing:
        dlq.redrive(platform.sqs, HandlerLambda(platform), ctx, "churn")
    assert missing.value.exit_code == 2
    assert QUEUE in str(missing.value) and "project churn" in str(missing.value)
    assert "\n" not in str(missing.value)


# --------------------------------------------------------------------------- redrive


def test_redrive_replays_a_failed_guard_event_once(platform, ctx, queue):
    arn, event = approved_event(platform)
    send_record(platform.sqs, queue, event)
    lambda_ = HandlerLambda(platform)

    result = dlq.redrive(platform.sqs, lambda_, ctx, "churn")

    [replay] = result.replayed
    assert replay.outcome == dlq.REPLAYED and "released" in replay.detail
    assert result.failed == [] and result.skipped == []
    assert lambda_.calls == [function_arn("guard", qualifier=None)]
    [release] = platform.items("release#")
    assert release["model_package_arn"] == arn and release["status"] == "released"
    assert len(platform.executions()) == 1
    assert remaining(platform, ctx) == []


def test_redriving_the_same_event_twice_releases_and_deploys_once(platform, ctx, queue):
    _, event = approved_event(platform)
    # The same event twice in the queue (two failure paths), then once more after the first redrive.
    send_record(platform.sqs, queue, event)
    send_delivery(platform.sqs, queue, event)
    lambda_ = HandlerLambda(platform)

    first = dlq.redrive(platform.sqs, lambda_, ctx, "churn")
    assert len(first.replayed) == 2 and first.failed == []
    assert sorted(r.detail.rsplit(": ", 1)[-1] for r in first.replayed) == ["duplicate", "released"]

    send_record(platform.sqs, queue, event)
    second = dlq.redrive(platform.sqs, lambda_, ctx, "churn")
    [again] = second.replayed
    assert again.detail.endswith("duplicate")

    assert len(lambda_.calls) == 3
    assert len(platform.items("release#")) == 1
    assert len(platform.executions()) == 1
    assert remaining(platform, ctx) == []


def test_a_failing_replay_keeps_the_message(platform, ctx, queue):
    _, event = approved_event(platform)
    message_id = send_record(platform.sqs, queue, event)
    throttled = Faulty(platform.codepipeline, {"start_pipeline_execution": ("ThrottlingException", 400)})

    result = dlq.redrive(platform.sqs, HandlerLambda(platform, codepipeline=throttled), ctx, "churn")

    [failure] = result.failed
    assert failure.message_id == message_id and result.replayed == []
    assert failure.detail.startswith("ClientError: ") and "ThrottlingException" in failure.detail
    assert platform.executions() == []
    # Kept and visible again right away; a later redrive resumes the release.
    assert [m.message_id for m in remaining(platform, ctx)] == [message_id]
    retry = dlq.redrive(platform.sqs, HandlerLambda(platform), ctx, "churn")
    assert [r.detail.rsplit(": ", 1)[-1] for r in retry.replayed] == ["resumed"]
    assert len(platform.items("release#")) == 1 and len(platform.executions()) == 1


def test_another_projects_function_is_refused_and_kept(platform, ctx, queue):
    _, event = approved_event(platform)
    foreign = send_record(platform.sqs, queue, event, project="fraud")
    lookalike = send_delivery(platform.sqs, queue, event, project="churn-eu")
    broken = platform.sqs.send_message(QueueUrl=queue, MessageBody="[1, 2]")["MessageId"]
    lambda_ = HandlerLambda(platform)

    result = dlq.redrive(platform.sqs, lambda_, ctx, "churn")

    assert lambda_.calls == [] and result.replayed == [] and result.failed == []
    by_id = {r.message_id: r for r in result.skipped}
    assert set(by_id) == {foreign, lookalike, broken}
    assert by_id[foreign].detail.startswith(f"refused: {function_arn('guard', 'fraud')} is not an approval handler")
    assert "refused:" in by_id[lookalike].detail and "unparseable" in by_id[broken].detail
    assert platform.items("release#") == []
    assert {m.message_id for m in remaining(platform, ctx)} == {foreign, lookalike, broken}


def test_dry_run_invokes_and_deletes_nothing(platform, ctx, queue):
    _, event = approved_event(platform)
    message_id = send_record(platform.sqs, queue, event)
    lambda_ = HandlerLambda(platform)

    result = dlq.redrive(platform.sqs, lambda_, ctx, "churn", dry_run=True)

    [planned] = result.replays
    assert (
        planned.outcome == dlq.WOULD_REPLAY
        and planned.detail == f"would invoke {function_arn('guard', qualifier=None)}"
    )
    assert lambda_.calls == [] and platform.items() == []
    assert [m.message_id for m in remaining(platform, ctx)] == [message_id]


def test_message_id_picks_the_messages_to_redrive(platform, ctx, queue):
    arn1, event1 = approved_event(platform, "evt-1")
    _, event2 = approved_event(platform, "evt-2")
    picked = send_record(platform.sqs, queue, event1)
    other = send_record(platform.sqs, queue, event2)
    lambda_ = HandlerLambda(platform)

    result = dlq.redrive(platform.sqs, lambda_, ctx, "churn", message_ids=[picked, "no-such-message"])

    assert [r.message_id for r in result.replayed] == [picked]
    [missing] = result.skipped
    assert missing.message_id == "no-such-message" and "not in the queue" in missing.detail
    assert [i["model_package_arn"] for i in platform.items("release#")] == [arn1]
    assert [m.message_id for m in remaining(platform, ctx)] == [other]


def test_a_message_deleted_meanwhile_is_already_redriven(platform, ctx, queue):
    _, event = approved_event(platform)
    send_record(platform.sqs, queue, event)
    gone = Faulty(platform.sqs, {"delete_message": ("ReceiptHandleIsInvalid", 400)})

    result = dlq.redrive(gone, HandlerLambda(platform), ctx, "churn")

    [replay] = result.replayed
    assert replay.outcome == dlq.ALREADY and "deleted already" in replay.detail
    assert result.failed == [] and len(platform.executions()) == 1


# --------------------------------------------------------------------------- CLI


def test_cli_dlq_list(platform, config_dir, queue, capsys):
    _, event = approved_event(platform)
    send_record(platform.sqs, queue, event)
    send_delivery(platform.sqs, queue, event)

    assert app.run(["--config-dir", str(config_dir), "dlq", "list", "churn"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "Failed approval events of churn" in out and out.count("evt-approve") == 2
    assert "Nothing was deleted" in out


def test_cli_dlq_redrive_dry_run_and_errors(platform, config_dir, queue, capsys):
    _, event = approved_event(platform)
    send_record(platform.sqs, queue, event)

    assert app.run(["--config-dir", str(config_dir), "dlq", "redrive", "churn", "--dry-run"]) == 0
    out, _ = capsys.readouterr()
    assert "would replay" in out and "1 would be replayed, 0 skipped; nothing was invoked or deleted" in out

    assert app.run(["--config-dir", str(config_dir), "dlq", "list", "nope"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.strip().splitlines() == ["mlops: unknown project 'nope' (projects in config: churn)"]

    platform.sqs.delete_queue(QueueUrl=queue)
    assert app.run(["--config-dir", str(config_dir), "dlq", "redrive", "churn"]) == 2
    _, err = capsys.readouterr()
    [line] = err.strip().splitlines()
    assert QUEUE in line and "churn" in line
