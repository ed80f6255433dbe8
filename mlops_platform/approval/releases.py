"""Release records in the DynamoDB releases table (keys ``pk``/``sk``, TTL attribute ``expires_at``).

Shared by the approval Lambdas and the admin CLI (which loads this file by
path), so it imports nothing from its siblings and takes a ready boto3
DynamoDB *client*.

Items
-----
release (one per project, stage and version)::

    pk="release#<project>#<stage>"  sk="<version:010d>"  kind="release"
    project, stage, version (N), model_package_arn, status ("released" | "revoked"),
    recorded_at (ISO time of the approval event), approved_by, reason, event_id,
    deployment_execution_id (once the deploy pipeline started), notified (BOOL),
    revoked_at, revoked_reason, revoked_event_id, was_current (BOOL) once revoked

rollback (one per revoked current release)::

    pk="rollback#<project>#<stage>"  sk="<revoked version:010d>"  kind="rollback"
    project, stage, revoked_version (N), revoked_model_package_arn,
    target_version (N) + target_model_package_arn (absent: the stage has no model to serve),
    outcome ("rolled_back" | "no_model"), recorded_at, reason, event_id, deployment_execution_id

event marker (idempotency of notifications, expires after 7 days)::

    pk="event#<project>#<event id>"  sk="<handler>"  expires_at (N, epoch seconds), recorded_at

Every key starts with ``<kind>#<project>#``, so IAM can scope each project's
handlers to their own items (``dynamodb:LeadingKeys``).

The release of a stage that runs now is the ``released`` item recorded last
(:func:`current_release`); revoking it makes the one recorded before it current
again, which is what a rollback deploys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from botocore.exceptions import ClientError

STAGES = ("staging", "prod")
RELEASED = "released"
REVOKED = "revoked"
ROLLED_BACK = "rolled_back"
NO_MODEL = "no_model"
# MODEL_PACKAGE_ARN of a deployment that leaves a stage without a model (its endpoint is removed).
NO_MODEL_ARN = "none"


def release_pk(project: str, stage: str) -> str:
    return f"release#{project}#{stage}"


def rollback_pk(project: str, stage: str) -> str:
    return f"rollback#{project}#{stage}"


def version_sk(version: int) -> str:
    return f"{version:010d}"


def event_pk(project: str, event_id: str) -> str:
    """Event markers are per project, so each handler's table access can be scoped to its project's keys."""
    return f"event#{project}#{event_id}"


def leading_key_patterns(project: str) -> list[str]:
    """``dynamodb:LeadingKeys`` patterns that cover every item of ``project`` and nothing of another."""
    return [f"release#{project}#*", f"rollback#{project}#*", f"event#{project}#*"]


def is_conditional_failure(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Release:
    project: str
    stage: str
    version: int
    model_package_arn: str
    status: str
    recorded_at: str
    approved_by: str = ""
    reason: str = ""
    event_id: str = ""
    deployment_execution_id: str | None = None
    notified: bool = False
    revoked_at: str | None = None
    revoked_reason: str | None = None
    revoked_event_id: str | None = None
    was_current: bool | None = None

    @property
    def key(self) -> dict[str, Any]:
        return {"pk": {"S": release_pk(self.project, self.stage)}, "sk": {"S": version_sk(self.version)}}

    def to_item(self) -> dict[str, Any]:
        return {**self.key, "kind": {"S": "release"}, **_encode(self)}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Release:
        return cls(**_decode(cls, item))


@dataclass(frozen=True)
class Rollback:
    project: str
    stage: str
    revoked_version: int
    revoked_model_package_arn: str
    outcome: str
    recorded_at: str
    reason: str = ""
    event_id: str = ""
    target_version: int | None = None
    target_model_package_arn: str | None = None
    deployment_execution_id: str | None = None

    @property
    def key(self) -> dict[str, Any]:
        return {"pk": {"S": rollback_pk(self.project, self.stage)}, "sk": {"S": version_sk(self.revoked_version)}}

    def to_item(self) -> dict[str, Any]:
        return {**self.key, "kind": {"S": "rollback"}, **_encode(self)}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Rollback:
        return cls(**_decode(cls, item))


def _encode(record: Any) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if value is None:
            continue
        if isinstance(value, bool):
            item[f.name] = {"BOOL": value}
        elif isinstance(value, int):
            item[f.name] = {"N": str(value)}
        else:
            item[f.name] = {"S": str(value)}
    return item


def _decode(cls: type, item: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for f in fields(cls):
        raw = item.get(f.name)
        if not isinstance(raw, Mapping):
            continue
        if "N" in raw:
            values[f.name] = int(raw["N"])
        elif "BOOL" in raw:
            values[f.name] = bool(raw["BOOL"])
        elif "S" in raw:
            values[f.name] = raw["S"]
    return values


def current_release(releases: Iterable[Release]) -> Release | None:
    """The release a stage serves: the ``released`` record recorded last (ties: the higher version)."""
    live = [r for r in releases if r.status == RELEASED]
    return max(live, key=lambda r: (r.recorded_at, r.version)) if live else None


def previous_release(releases: Iterable[Release], version: int) -> Release | None:
    """What the stage falls back to when ``version`` is revoked."""
    return current_release(r for r in releases if r.version != version)


# --------------------------------------------------------------------------- table


class ReleaseTable:
    """Reads and conditional writes on the releases table through a DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.name = table_name

    # ------------------------------------------------------------------ queries
    def _query(self, pk: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**kwargs)
            items.extend(page.get("Items", []))
            if not page.get("LastEvaluatedKey"):
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def releases(self, project: str, stage: str) -> list[Release]:
        """Every release record of a stage, oldest version first."""
        return [Release.from_item(i) for i in self._query(release_pk(project, stage))]

    def rollbacks(self, project: str, stage: str) -> list[Rollback]:
        return [Rollback.from_item(i) for i in self._query(rollback_pk(project, stage))]

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        return self.client.get_item(TableName=self.name, Key=key, ConsistentRead=True).get("Item")

    def get_release(self, project: str, stage: str, version: int) -> Release | None:
        item = self._get({"pk": {"S": release_pk(project, stage)}, "sk": {"S": version_sk(version)}})
        return Release.from_item(item) if item else None

    def get_rollback(self, project: str, stage: str, revoked_version: int) -> Rollback | None:
        item = self._get({"pk": {"S": rollback_pk(project, stage)}, "sk": {"S": version_sk(revoked_version)}})
        return Rollback.from_item(item) if item else None

    # ------------------------------------------------------------------ writes
    def _conditional(self, call: Any, **kwargs: Any) -> bool:
        """Run a conditional write; False when the condition failed (the work is already done)."""
        try:
            call(TableName=self.name, **kwargs)
        except ClientError as err:
            if is_conditional_failure(err):
                return False
            raise
        return True

    def put_release(self, release: Release) -> bool:
        """Record a release once; a revoked version approved again (by another event) is released anew."""
        return self._conditional(
            self.client.put_item,
            Item=release.to_item(),
            ConditionExpression="attribute_not_exists(pk) OR (#status = :revoked AND event_id <> :event)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":revoked": {"S": REVOKED}, ":event": {"S": release.event_id}},
        )

    def set_release_deployment(self, release: Release, execution_id: str) -> bool:
        return self._conditional(
            self.client.update_item,
            Key=release.key,
            UpdateExpression="SET deployment_execution_id = :id",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(deployment_execution_id)",
            ExpressionAttributeValues={":id": {"S": execution_id}},
        )

    def claim_release_notification(self, release: Release) -> bool:
        """Mark the release announced before announcing it (once-only); False when that was done before."""
        return self._conditional(
            self.client.update_item,
            Key=release.key,
            UpdateExpression="SET notified = :yes",
            ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(notified) OR notified = :no)",
            ExpressionAttributeValues={":yes": {"BOOL": True}, ":no": {"BOOL": False}},
        )

    def give_back_release_notification(self, release: Release) -> None:
        """Undo :meth:`claim_release_notification` after the announcement failed, so a retry sends it."""
        self.client.update_item(
            TableName=self.name, Key=release.key, UpdateExpression="SET notified = :no",
            ExpressionAttributeValues={":no": {"BOOL": False}},
        )  # fmt: skip

    def revoke(self, release: Release, *, revoked_at: str, reason: str, event_id: str, was_current: bool) -> bool:
        """Mark a released version revoked; False when it is not (or no longer) released."""
        return self._conditional(
            self.client.update_item,
            Key=release.key,
            UpdateExpression=(
                "SET #status = :revoked, revoked_at = :at, revoked_reason = :reason, "
                "revoked_event_id = :event, was_current = :current"
            ),
            ConditionExpression="#status = :released",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":revoked": {"S": REVOKED},
                ":released": {"S": RELEASED},
                ":at": {"S": revoked_at},
                ":reason": {"S": reason},
                ":event": {"S": event_id},
                ":current": {"BOOL": was_current},
            },
        )

    def put_rollback(self, rollback: Rollback) -> bool:
        """Record a rollback once per revoking event (a later revoke of the same version replaces it)."""
        return self._conditional(
            self.client.put_item,
            Item=rollback.to_item(),
            ConditionExpression="attribute_not_exists(pk) OR event_id <> :event",
            ExpressionAttributeValues={":event": {"S": rollback.event_id}},
        )

    def set_rollback_deployment(self, rollback: Rollback, execution_id: str) -> bool:
        return self._conditional(
            self.client.update_item,
            Key=rollback.key,
            UpdateExpression="SET deployment_execution_id = :id",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(deployment_execution_id)",
            ExpressionAttributeValues={":id": {"S": execution_id}},
        )

    # ------------------------------------------------------------------ event markers
    def _event_key(self, project: str, event_id: str, handler: str) -> dict[str, Any]:
        return {"pk": {"S": event_pk(project, event_id)}, "sk": {"S": handler}}

    def event_done(self, project: str, event_id: str, handler: str) -> bool:
        """Whether ``handler`` finished this event before (its marker exists)."""
        return self._get(self._event_key(project, event_id, handler)) is not None

    def mark_event(self, project: str, event_id: str, handler: str, *, expires_at: int, recorded_at: str) -> bool:
        """Record that ``handler`` finished one event; False when it was recorded before (a duplicate)."""
        return self._conditional(
            self.client.put_item,
            Item={
                **self._event_key(project, event_id, handler),
                "kind": {"S": "event"},
                "expires_at": {"N": str(expires_at)},
                "recorded_at": {"S": recorded_at},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
