"""The cool-down record of a project in the retraining table (hash key ``pk``, string).

One item per project::

    pk="retrain#<project>"  project, event_id (the alarm event that claimed it), claim_id (one invocation),
    alarm_name, stage, version, reason, last_started_at (ISO UTC, "YYYY-MM-DDTHH:MM:SSZ", compared as a string),
    status ("starting" | "started"), execution_arn (once the pipeline started)

:meth:`CooldownTable.claim` is the only writer that starts anything: one
conditional put that succeeds only when there is no item or its
``last_started_at`` is older than the cool-down, *and* the item was not claimed
by this very event (a duplicate delivery). Takes a ready boto3 DynamoDB
*client*; ``ConditionalCheckFailedException`` is an answer, every other error
is raised.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

STARTING, STARTED = "starting", "started"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_CONDITIONAL = "ConditionalCheckFailedException"


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def parse_iso(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class Record:
    project: str
    event_id: str
    claim_id: str
    alarm_name: str
    stage: str
    version: str
    reason: str
    last_started_at: str
    status: str = STARTING
    execution_arn: str | None = None

    @property
    def key(self) -> dict[str, Any]:
        return {"pk": {"S": f"retrain#{self.project}"}}

    def item(self) -> dict[str, Any]:
        item = {
            **self.key,
            **{
                name: {"S": value}
                for name, value in (
                    ("project", self.project),
                    ("event_id", self.event_id),
                    ("claim_id", self.claim_id),
                    ("alarm_name", self.alarm_name),
                    ("stage", self.stage),
                    ("version", self.version),
                    ("reason", self.reason),
                    ("last_started_at", self.last_started_at),
                    ("status", self.status),
                )
            },
        }
        if self.execution_arn:
            item["execution_arn"] = {"S": self.execution_arn}
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Record:
        def text(name: str) -> str:
            value = item.get(name) or {}
            return str(value.get("S", value.get("N", "")))

        return cls(
            project=text("project"),
            event_id=text("event_id"),
            claim_id=text("claim_id"),
            alarm_name=text("alarm_name"),
            stage=text("stage"),
            version=text("version"),
            reason=text("reason"),
            last_started_at=text("last_started_at"),
            status=text("status") or STARTING,
            execution_arn=text("execution_arn") or None,
        )


@dataclass(frozen=True)
class Claim:
    """The outcome of :meth:`CooldownTable.claim`.

    ``won``: this invocation holds the record (``record``); ``previous`` is the
    raw item it replaced (None: there was none), kept to give the claim back.
    Otherwise ``current`` is the record that refused it.
    """

    won: bool
    record: Record
    previous: dict[str, Any] | None = None
    current: Record | None = None


class CooldownTable:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def claim(
        self,
        *,
        project: str,
        event_id: str,
        alarm_name: str,
        stage: str,
        version: str,
        reason: str,
        now: datetime,
        cooldown: timedelta,
    ) -> Claim:
        record = Record(
            project=project,
            event_id=event_id,
            claim_id=uuid.uuid4().hex,
            alarm_name=alarm_name,
            stage=stage,
            version=version,
            reason=reason,
            last_started_at=iso(now),
        )
        try:
            response = self.client.put_item(
                TableName=self.table,
                Item=record.item(),
                ConditionExpression=(
                    "(attribute_not_exists(pk) OR last_started_at < :cutoff) "
                    "AND (attribute_not_exists(event_id) OR event_id <> :this)"
                ),
                ExpressionAttributeValues={":cutoff": {"S": iso(now - cooldown)}, ":this": {"S": event_id}},
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != _CONDITIONAL:
                raise
            item = err.response.get("Item") or self.get_item(project)
            return Claim(False, record, current=Record.from_item(item) if item else None)
        return Claim(True, record, previous=response.get("Attributes") or None)

    def get_item(self, project: str) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.table, Key={"pk": {"S": f"retrain#{project}"}}, ConsistentRead=True
        )
        return response.get("Item") or None

    def give_back(self, claim: Claim) -> bool:
        """Restore the item the claim replaced (or delete it), if this invocation still holds it."""
        condition = {
            "ConditionExpression": "claim_id = :claim",
            "ExpressionAttributeValues": {":claim": {"S": claim.record.claim_id}},
        }
        try:
            if claim.previous is None:
                self.client.delete_item(TableName=self.table, Key=claim.record.key, **condition)
            else:
                self.client.put_item(TableName=self.table, Item=claim.previous, **condition)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != _CONDITIONAL:
                raise
            return False
        return True

    def record_execution(self, record: Record, execution_arn: str) -> bool:
        """Store the started execution on the item while it is still this event's (False: claimed since)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=record.key,
                UpdateExpression="SET execution_arn = :arn, #status = :started",
                ConditionExpression="event_id = :this",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":arn": {"S": execution_arn},
                    ":started": {"S": STARTED},
                    ":this": {"S": record.event_id},
                },
            )
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != _CONDITIONAL:
                raise
            return False
        return True
