"""``mlops dlq``: the failed approval events of a project's dead-letter queue, listed and replayed.

The queue (``Naming.approval_dead_letter_queue``) takes two kinds of message:

* Lambda asynchronous-invocation failure records (the handlers' OnFailure
  destination): the body is ``{"version": "1.0", "timestamp", "requestContext":
  {"requestId", "functionArn", "condition", "approximateInvokeCount"},
  "requestPayload": <the event>, "responseContext": {"statusCode",
  "executedVersion", "functionError"}, "responsePayload": {"errorType",
  "errorMessage", ...}}``;
* EventBridge target delivery failures (the rules' target DLQ): the body is the
  event itself, the string attributes ``RULE_ARN``, ``TARGET_ARN``,
  ``ERROR_CODE`` and ``ERROR_MESSAGE`` (and ``RETRY_ATTEMPTS``) say where and why.

A body that is neither (not JSON, or JSON of another shape) is listed as
unparseable and never replayed. A Lambda dead-letter message (the event with
``ErrorCode``/``ErrorMessage`` attributes, no function named) is listed, and
skipped by redrive: it does not say which handler failed.

Nothing here prints; AWS errors other than the ones named propagate as
botocore exceptions (see :mod:`mlops_platform.cli.core`).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops_platform.approval.aws import error_code
from mlops_platform.cli.core import CliError, Context

KINDS = ("notify", "guard", "rejected")
MAX_MESSAGES = 1000
# Listing hides each received message this long; it then becomes visible again by itself.
LIST_VISIBILITY_SECONDS = 30
# Redrive hides the messages for the run (a replay may take the handlers' 60 s timeout each); every message it
# keeps is made visible again at the end.
REDRIVE_VISIBILITY_SECONDS = 900
RECEIVE_WAIT_SECONDS = 1

INVOCATION, DELIVERY, LAMBDA_DLQ, UNPARSEABLE = "invocation", "delivery", "lambda-dlq", "unparseable"
REPLAYED, FAILED, SKIPPED, ALREADY, WOULD_REPLAY = "replayed", "failed", "skipped", "already redriven", "would replay"

_FUNCTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:(?P<name>[A-Za-z0-9_-]+)"
    r"(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$"
)
_KIND = re.compile(r"-approval-(?P<kind>[a-z]+)$")
_GONE = {"ReceiptHandleIsInvalid", "AWS.SimpleQueueService.ReceiptHandleIsInvalid"}
_MISSING_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}


@dataclass(frozen=True)
class DeadLetter:
    """One message of the queue, parsed as far as it goes."""

    message_id: str
    receipt_handle: str
    shape: str  # INVOCATION, DELIVERY, LAMBDA_DLQ or UNPARSEABLE
    reason: str  # why it failed, or why the body could not be read
    function_arn: str | None = None
    kind: str | None = None  # notify / guard / rejected, from the function name
    event: dict[str, Any] | None = None
    event_id: str | None = None
    model_package_arn: str | None = None
    status: str | None = None  # ModelApprovalStatus, or the CloudTrail eventName (and status)
    failed_at: datetime | None = None
    attempts: int | None = None

    @property
    def parsed(self) -> bool:
        return self.shape != UNPARSEABLE

    @property
    def handler(self) -> str:
        """The handler kind, else the name of the (other) function, else ``-``."""
        if self.kind:
            return self.kind
        match = _FUNCTION_ARN.match(self.function_arn or "")
        return match["name"] if match else (self.function_arn or "-")


@dataclass(frozen=True)
class Listing:
    project: str
    queue: str
    queue_url: str
    messages: list[DeadLetter]
    truncated: bool = False  # MAX_MESSAGES reached; more may wait in the queue


def queue_url(sqs: Any, ctx: Context, project: str) -> tuple[str, str]:
    """``(name, url)`` of the project's dead-letter queue; CliError for an unknown project or a missing queue."""
    ctx.projects(project)
    name = ctx.naming.approval_dead_letter_queue(project)
    try:
        return name, str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    except ClientError as err:
        if error_code(err) in _MISSING_QUEUE:
            raise CliError(
                f"dead-letter queue {name} of project {project} does not exist (is its governance stack deployed?)"
            ) from None
        raise


def list_dead_letters(sqs: Any, ctx: Context, project: str) -> Listing:
    """Every message of the project's dead-letter queue (up to MAX_MESSAGES), parsed.

    Nothing is deleted. Each message is received with a visibility timeout of
    LIST_VISIBILITY_SECONDS and made visible again once all are read; should
    that fail (or the CLI stop first), it becomes visible again by itself when
    the timeout ends, so a redrive run within that time does not see it yet.
    """
    name, url = queue_url(sqs, ctx, project)
    messages, truncated = _receive_all(sqs, url, LIST_VISIBILITY_SECONDS)
    own = handler_functions(ctx, project)
    letters = [parse_message(m, own) for m in messages]
    _release(sqs, url, letters)
    return Listing(project, name, url, letters, truncated)


def _receive_all(sqs: Any, url: str, visibility: int) -> tuple[list[dict[str, Any]], bool]:
    """Receive until an empty answer or MAX_MESSAGES; by MessageId, with the latest receipt handle."""
    received: dict[str, dict[str, Any]] = {}
    while len(received) < MAX_MESSAGES:
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=visibility,
            WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in received]
        for message in batch:
            # A standard queue may deliver a message twice; only the newest receipt handle deletes it.
            received[message["MessageId"]] = message
        if not fresh:
            return list(received.values()), False
    return list(received.values()), True


# --------------------------------------------------------------------------- parsing


def parse_message(message: Mapping[str, Any], functions: Mapping[str, str] | None = None) -> DeadLetter:
    """What failed, when and why; never raises (an unreadable body is an UNPARSEABLE DeadLetter).

    ``functions``: function name -> handler kind of the project's handlers; a
    function not in it gets no kind (None: any ``...-approval-<kind>`` name).
    """
    message_id = str(message.get("MessageId", ""))
    handle = str(message.get("ReceiptHandle", ""))
    attributes = message.get("Attributes") or {}
    sent = _epoch_ms(attributes.get("SentTimestamp"))
    strings = _string_attributes(message.get("MessageAttributes"))

    def unparseable(why: str) -> DeadLetter:
        return DeadLetter(message_id, handle, UNPARSEABLE, why, failed_at=sent)

    try:
        body = json.loads(message.get("Body") or "")
    except (TypeError, ValueError) as err:
        return unparseable(f"unparseable body: not JSON ({err.__class__.__name__})")
    if not isinstance(body, dict):
        return unparseable(f"unparseable body: JSON {type(body).__name__}, not an object")

    if "requestContext" in body and "requestPayload" in body:
        context = _mapping(body.get("requestContext"))
        event = body.get("requestPayload")
        if not isinstance(event, dict):
            return unparseable("unparseable body: the failure record's requestPayload is not an object")
        function_arn = _text(context.get("functionArn"))
        return DeadLetter(
            message_id,
            handle,
            INVOCATION,
            _record_reason(body),
            function_arn=function_arn,
            kind=kind_of(function_arn, functions),
            event=event,
            failed_at=_iso(body.get("timestamp")) or sent,
            attempts=_int(context.get("approximateInvokeCount")),
            **_summary(event),
        )

    if "detail-type" not in body or "detail" not in body:
        return unparseable("unparseable body: neither a Lambda failure record nor an EventBridge event")
    if "TARGET_ARN" in strings or "ERROR_CODE" in strings:
        function_arn = strings.get("TARGET_ARN")
        retries = _int(strings.get("RETRY_ATTEMPTS"))
        return DeadLetter(
            message_id,
            handle,
            DELIVERY,
            _reason(strings.get("ERROR_CODE"), strings.get("ERROR_MESSAGE"), "EventBridge could not deliver it"),
            function_arn=function_arn,
            kind=kind_of(function_arn, functions),
            event=body,
            failed_at=sent,
            attempts=None if retries is None else retries + 1,
            **_summary(body),
        )
    return DeadLetter(
        message_id,
        handle,
        LAMBDA_DLQ,
        _reason(strings.get("ErrorCode"), strings.get("ErrorMessage"), "no failure details in the message"),
        event=body,
        failed_at=sent,
        **_summary(body),
    )


def kind_of(function_arn: str | None, functions: Mapping[str, str] | None = None) -> str | None:
    """Handler kind (``...-approval-<kind>``) of a function ARN, or None (also when not in ``functions``)."""
    match = _FUNCTION_ARN.match(function_arn or "")
    if match and functions is not None:
        return functions.get(match["name"])
    kind = _KIND.search(match["name"]) if match else None
    return kind["kind"] if kind and kind["kind"] in KINDS else None


def _summary(event: Mapping[str, Any]) -> dict[str, Any]:
    """event_id, model_package_arn and status of a state change or CloudTrail event."""
    detail = _mapping(event.get("detail"))
    arn, status = _text(detail.get("ModelPackageArn")), _text(detail.get("ModelApprovalStatus"))
    if "eventName" in detail:
        request = _mapping(detail.get("requestParameters"))
        arn = arn or _text(request.get("modelPackageArn")) or _text(request.get("modelPackageName"))
        requested = _text(request.get("modelApprovalStatus"))
        name = _text(detail.get("eventName")) or "?"
        status = f"{name} ({requested})" if requested else name
    return {"event_id": _text(event.get("id")), "model_package_arn": arn, "status": status}


def _record_reason(record: Mapping[str, Any]) -> str:
    payload = _mapping(record.get("responsePayload"))
    if payload.get("errorType") or payload.get("errorMessage"):
        return _reason(_text(payload.get("errorType")), _text(payload.get("errorMessage")), "")
    response = _mapping(record.get("responseContext"))
    condition = _text(_mapping(record.get("requestContext")).get("condition"))
    error = _text(response.get("functionError"))
    parts = [p for p in (condition, f"function error {error}" if error else None) if p]
    return ", ".join(parts) or "no failure details in the record"


def _reason(code: str | None, message: str | None, default: str) -> str:
    message = " ".join((message or "").split())
    if code and message:
        return f"{code}: {message}"
    return code or message or default


def _string_attributes(attributes: Any) -> dict[str, str]:
    out = {}
    for name, value in _mapping(attributes).items():
        text = _mapping(value).get("StringValue")
        if isinstance(text, str):
            out[name] = text
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _epoch_ms(value: Any) -> datetime | None:
    millis = _int(value)
    return datetime.fromtimestamp(millis / 1000, tz=UTC) if millis is not None else None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- redrive


@dataclass(frozen=True)
class Replay:
    """What redrive did with one message."""

    message_id: str
    outcome: str  # REPLAYED, FAILED, SKIPPED, ALREADY or WOULD_REPLAY
    detail: str
    letter: DeadLetter | None = None  # None: a --message-id not found in the queue


@dataclass(frozen=True)
class RedriveResult:
    project: str
    queue: str
    dry_run: bool
    replays: list[Replay] = field(default_factory=list)
    truncated: bool = False

    def _of(self, *outcomes: str) -> list[Replay]:
        return [r for r in self.replays if r.outcome in outcomes]

    @property
    def replayed(self) -> list[Replay]:
        """Replayed and deleted (or deleted by someone else meanwhile)."""
        return self._of(REPLAYED, ALREADY)

    @property
    def failed(self) -> list[Replay]:
        return self._of(FAILED)

    @property
    def skipped(self) -> list[Replay]:
        return self._of(SKIPPED)

    @property
    def planned(self) -> list[Replay]:
        """Dry run: the messages a redrive would replay."""
        return self._of(WOULD_REPLAY)


def handler_functions(ctx: Context, project: str) -> dict[str, str]:
    """Function name -> kind of the project's approval handlers (``{prefix}-{project}-approval-{kind}``)."""
    return {f"{ctx.naming.prefix}-{project}-approval-{kind}": kind for kind in KINDS}


def redrive(
    sqs: Any,
    lambda_: Any,
    ctx: Context,
    project: str,
    *,
    message_ids: Iterable[str] | None = None,
    dry_run: bool = False,
) -> RedriveResult:
    """Replay dead letters to the handler that failed them; delete each one only after its replay succeeded.

    Each chosen message (all, or those of ``message_ids``) is invoked
    synchronously (``RequestResponse``) on the function it names, which must
    be one of this project's approval handlers in the governance account;
    any other function is refused and the message kept. A replay without a
    ``FunctionError`` deletes the message; a failed one keeps it and reports
    the handler's error. The handlers are idempotent per event, so replaying
    a message twice (or two messages of one event) records and deploys once.
    A message deleted meanwhile (invalid receipt handle) is reported as
    already redriven. ``dry_run`` invokes and deletes nothing.

    Every message this run received and kept is made visible again at the end.
    """
    name, url = queue_url(sqs, ctx, project)
    wanted = None if message_ids is None else list(dict.fromkeys(message_ids))
    visibility = LIST_VISIBILITY_SECONDS if dry_run else REDRIVE_VISIBILITY_SECONDS
    messages, truncated = _receive_all(sqs, url, visibility)
    letters = [parse_message(m, handler_functions(ctx, project)) for m in messages]
    by_id = {letter.message_id: letter for letter in letters}
    chosen = letters if wanted is None else [by_id[i] for i in wanted if i in by_id]

    replays: list[Replay] = []
    deleted: set[str] = set()
    try:
        for letter in chosen:
            replay = _replay(sqs, lambda_, ctx, project, url, letter, dry_run)
            replays.append(replay)
            if replay.outcome in (REPLAYED, ALREADY):
                deleted.add(letter.message_id)
    finally:
        _release(sqs, url, [letter for letter in letters if letter.message_id not in deleted])
    for missing in [i for i in (wanted or []) if i not in by_id]:
        replays.append(Replay(missing, SKIPPED, "not in the queue (redriven already, or not visible now)"))
    return RedriveResult(project, name, dry_run, replays, truncated)


def _replay(sqs: Any, lambda_: Any, ctx: Context, project: str, url: str, letter: DeadLetter, dry_run: bool) -> Replay:
    def outcome(kind: str, detail: str) -> Replay:
        return Replay(letter.message_id, kind, detail, letter)

    if not letter.parsed or letter.event is None:
        return outcome(SKIPPED, letter.reason)
    if not letter.function_arn:
        return outcome(SKIPPED, "the message does not name the function that failed; replay it by hand")
    function = _own_function(ctx, project, letter.function_arn)
    if function is None:
        return outcome(
            SKIPPED,
            f"refused: {letter.function_arn} is not an approval handler of project {project}; message kept",
        )
    if dry_run:
        return outcome(WOULD_REPLAY, f"would invoke {function}")

    try:
        response = lambda_.invoke(
            FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(letter.event)
        )
    except ClientError as err:
        message = " ".join(str(err.response.get("Error", {}).get("Message", err)).split())
        return outcome(FAILED, f"Invoke {function}: {error_code(err) or 'Error'}: {message}")
    except BotoCoreError as err:
        return outcome(FAILED, f"Invoke {function}: {' '.join(str(err).split())}")
    payload = _payload(response)
    if response.get("FunctionError") or int(response.get("StatusCode", 200)) >= 300:
        error = _mapping(payload)
        why = _reason(_text(error.get("errorType")), _text(error.get("errorMessage")), "")
        return outcome(FAILED, why or f"function error {response.get('FunctionError') or response.get('StatusCode')}")

    decision = _text(_mapping(payload).get("decision"))
    done = f"{function}: {decision}" if decision else f"{function}: ok"
    try:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=letter.receipt_handle)
    except ClientError as err:
        if error_code(err) in _GONE:
            return outcome(ALREADY, f"{done}; the message was deleted already")
        raise
    return outcome(REPLAYED, done)


def _own_function(ctx: Context, project: str, function_arn: str) -> str | None:
    """The unqualified ARN to invoke when ``function_arn`` is one of the project's handlers in governance."""
    match = _FUNCTION_ARN.match(function_arn)
    if match is None or match["name"] not in handler_functions(ctx, project):
        return None
    if match["account"] != ctx.naming.account("governance") or match["region"] != ctx.naming.region("governance"):
        return None
    return function_arn.split(":function:", 1)[0] + ":function:" + match["name"]


def _payload(response: Mapping[str, Any]) -> Any:
    body: Any = response.get("Payload")
    raw = body.read() if hasattr(body, "read") else body
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


def _release(sqs: Any, url: str, letters: list[DeadLetter]) -> None:
    """Make kept messages visible again now rather than after the visibility timeout (best effort)."""
    for letter in letters:
        # Gone, or visible again already: either way nothing is lost.
        with contextlib.suppress(ClientError):
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=letter.receipt_handle, VisibilityTimeout=0)
