"""Start the project's SageMaker Pipeline for a monitoring alarm, at most once per cool-down.

1. :func:`~mlops_platform.retraining.alarm.accept`: malformed events, other
   detail-types, other projects' alarms, events from an account that is not the
   alarm's stage's and transitions to anything but ``ALARM`` are logged and
   dropped (returned, never raised).
2. Claim the project's cool-down record (:mod:`~mlops_platform.retraining.cooldown`):
   a conditional put that fails inside the cool-down (decision ``cooled_down``,
   with ``next_allowed_at``) and for a second delivery of the same event
   (``duplicate``).
3. ``StartPipelineExecution`` with ``RetrainReason``, ``TriggeredByStage`` and
   ``TriggeredByVersion`` and a ``ClientRequestToken`` derived from the event
   id, then store the execution ARN on the record (``started``). A start that
   fails gives the claim back (the previous record returns, if this invocation
   still holds the claim) and raises, so Lambda's retry can claim again.
   A redelivery of an event whose claim holds no execution ARN (the invocation
   died between claim and record) starts again with the same token, which
   SageMaker answers with the same execution (``resumed``).

One JSON ``decision`` line per event (:mod:`~mlops_platform.retraining.log`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.config import Config

from mlops_platform.retraining.alarm import AlarmEvent, Refusal, accept
from mlops_platform.retraining.cooldown import TIME_FORMAT, Claim, CooldownTable, parse_iso
from mlops_platform.retraining.log import log
from mlops_platform.retraining.settings import Settings

HANDLER = "retrain"
UNKNOWN_VERSION = "unknown"
# SageMaker limits: parameter values 1024, execution description 3072, display name 82 ([a-zA-Z0-9](-*[a-zA-Z0-9])*).
PARAMETER_LIMIT = 1024
DESCRIPTION_LIMIT = 3072
DISPLAY_NAME_LIMIT = 82
CLAIM_ATTEMPTS = 3
LAMBDA_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)


class Clients:
    """DynamoDB and SageMaker clients, created on first use; tests pass ready ones."""

    def __init__(self, *, dynamodb: Any = None, sagemaker: Any = None, session: Any = None) -> None:
        self._session = session
        self._dynamodb = dynamodb
        self._sagemaker = sagemaker

    def _client(self, service: str) -> Any:
        factory = self._session.client if self._session is not None else boto3.client
        return factory(service, config=LAMBDA_CONFIG)

    @property
    def dynamodb(self) -> Any:
        if self._dynamodb is None:
            self._dynamodb = self._client("dynamodb")
        return self._dynamodb

    @property
    def sagemaker(self) -> Any:
        if self._sagemaker is None:
            self._sagemaker = self._client("sagemaker")
        return self._sagemaker


_default: Clients | None = None


def get_clients() -> Clients:
    """Clients shared by the invocations of one Lambda environment."""
    global _default
    if _default is None:
        _default = Clients()
    return _default


def decide(settings: Settings, decision: str, *, level: str = "INFO", **fields: Any) -> dict[str, Any]:
    """The one decision line of an event (also the handler's return value)."""
    return log(
        f"retraining trigger: {decision}",
        level=level,
        handler=HANDLER,
        project=settings.project,
        pipeline=settings.pipeline_name,
        decision=decision,
        **fields,
    )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def request_token(project: str, event_id: str) -> str:
    """ClientRequestToken: the same for every delivery and retry of one alarm event (72 chars, [a-z0-9-])."""
    return "retrain-" + hashlib.sha256(f"{project}|{event_id}".encode()).hexdigest()


def display_name(alarm: AlarmEvent) -> str:
    """``retrain-<stage>-v<version>-<event time>``, fitted to SageMaker's display name pattern."""
    when = re.sub(r"\D", "", alarm.state_time or alarm.event_time or "")[:14]
    version = f"v{alarm.version}" if alarm.version else ""
    raw = "-".join(part for part in ("retrain", alarm.stage, version, when) if part)
    name = re.sub(r"-+", "-", re.sub(r"[^a-zA-Z0-9]", "-", raw)).strip("-")
    return name[:DISPLAY_NAME_LIMIT].rstrip("-")


def retrain_reason(alarm: AlarmEvent) -> str:
    return _clip(f"{alarm.alarm_name}: {alarm.reason}" if alarm.reason else alarm.alarm_name, PARAMETER_LIMIT)


def parameters(alarm: AlarmEvent) -> list[dict[str, str]]:
    return [
        {"Name": "RetrainReason", "Value": retrain_reason(alarm)},
        {"Name": "TriggeredByStage", "Value": alarm.stage},
        {"Name": "TriggeredByVersion", "Value": alarm.version or UNKNOWN_VERSION},
    ]


def start_pipeline(sagemaker: Any, settings: Settings, alarm: AlarmEvent) -> str:
    """StartPipelineExecution for the alarm; returns the execution ARN."""
    description = (
        f"Retraining started by monitoring alarm {alarm.alarm_name} of {settings.project}/{alarm.stage} "
        f"(version {alarm.version or UNKNOWN_VERSION}, account {alarm.account}, event {alarm.event_id}): "
        f"{alarm.reason or 'no reason given'}"
    )
    response = sagemaker.start_pipeline_execution(
        PipelineName=settings.pipeline_name,
        PipelineExecutionDisplayName=display_name(alarm),
        PipelineExecutionDescription=_clip(description, DESCRIPTION_LIMIT),
        PipelineParameters=parameters(alarm),
        ClientRequestToken=request_token(settings.project, alarm.event_id),
    )
    return str(response["PipelineExecutionArn"])


def _claim(
    table: CooldownTable, settings: Settings, alarm: AlarmEvent, clock: Callable[[], datetime], cooldown: timedelta
) -> Claim:
    """Claim the record; a refusal whose record is gone when read back (given back meanwhile) claims again."""
    for _ in range(CLAIM_ATTEMPTS):
        claim = table.claim(
            project=settings.project,
            event_id=alarm.event_id,
            alarm_name=alarm.alarm_name,
            stage=alarm.stage,
            version=alarm.version or UNKNOWN_VERSION,
            reason=retrain_reason(alarm),
            now=clock(),
            cooldown=cooldown,
        )
        if claim.won or claim.current is not None:
            return claim
    raise RuntimeError(f"could not claim the retraining record of {settings.project} in {CLAIM_ATTEMPTS} tries")


def handle(
    event: Any, settings: Settings, clients: Clients, *, now: Callable[[], datetime] | None = None
) -> dict[str, Any]:
    accepted = accept(event, settings)
    if isinstance(accepted, Refusal):
        return decide(settings, accepted.decision, reason=accepted.reason, **accepted.fields)
    alarm = accepted
    about: dict[str, Any] = {
        "event_id": alarm.event_id,
        "alarm": alarm.alarm_name,
        "stage": alarm.stage,
        "version": alarm.version or UNKNOWN_VERSION,
        "account": alarm.account,
        "state": alarm.state,
        "previous_state": alarm.previous_state,
    }
    table = CooldownTable(clients.dynamodb, settings.retrain_table)
    cooldown = timedelta(minutes=settings.cooldown_minutes)
    clock = now or (lambda: datetime.now(UTC))

    claim = _claim(table, settings, alarm, clock, cooldown)
    if claim.won:
        try:
            execution_arn = start_pipeline(clients.sagemaker, settings, alarm)
        except Exception as err:
            given_back = table.give_back(claim)
            decide(
                settings,
                "start_failed",
                level="ERROR",
                reason=f"{type(err).__name__}: {err}",
                claim_given_back=given_back,
                **about,
            )
            raise
        recorded = table.record_execution(claim.record, execution_arn)
        return decide(settings, "started", execution_arn=execution_arn, recorded=recorded, **about)

    current = claim.current
    if current is None:  # _claim returns a refusal only with the record that refused it
        raise RuntimeError("refused claim without a record")
    if current.event_id == alarm.event_id:
        if current.execution_arn:
            return decide(
                settings,
                "duplicate",
                reason="this alarm event started the pipeline already",
                execution_arn=current.execution_arn,
                **about,
            )
        # Claimed by this event before, and the start never recorded: the same token gets the same execution.
        execution_arn = start_pipeline(clients.sagemaker, settings, alarm)
        recorded = table.record_execution(current, execution_arn)
        return decide(
            settings,
            "resumed",
            reason="this alarm event claimed the record before; its start was not recorded",
            execution_arn=execution_arn,
            recorded=recorded,
            **about,
        )
    started = parse_iso(current.last_started_at)
    next_allowed = (started + cooldown).strftime(TIME_FORMAT) if started else None
    return decide(
        settings,
        "cooled_down",
        reason=f"a retraining started at {current.last_started_at or 'an unknown time'} "
        f"(alarm {current.alarm_name or '-'}); cool-down {settings.cooldown_minutes} min",
        next_allowed_at=next_allowed,
        last_started_at=current.last_started_at,
        last_alarm=current.alarm_name,
        last_execution_arn=current.execution_arn,
        **about,
    )
