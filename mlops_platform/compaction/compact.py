"""Compact one feature group's Iceberg offline-store table: ``OPTIMIZE`` (bin-pack), then ``VACUUM``.

1. ``DescribeFeatureGroup``: the table is ``OfflineStoreConfig.DataCatalogConfig``
   (catalog, database, table); a group without an Iceberg offline store raises.
   The names are validated (lowercase letters, digits, ``_``; the table also ``-``)
   and the table is quoted in backticks, as Athena's VACUUM wants it.
2. ``OPTIMIZE <db>.`<table>` REWRITE DATA USING BIN_PACK`` in the project's
   workgroup (which enforces its KMS-encrypted result location), waiting for it.
3. ``VACUUM <db>.`<table>``` the same way: expires snapshots older than the
   table's ``vacuum_max_snapshot_age_seconds`` (Athena default 5 days) and removes
   orphan files, so the files OPTIMIZE replaced are deleted.

Each statement's ``ClientRequestToken`` derives from the scheduled event's id, so
a retry of the same event (a failed or timed-out invocation) finds the queries it
started instead of starting a second, conflicting OPTIMIZE: a run that outlasts
one invocation resumes in the retry. Waiting stops ``DEADLINE_MARGIN_MS`` before
the Lambda timeout with :class:`StillRunning` (the query keeps running in Athena).
A failed or cancelled query raises :class:`QueryFailed`. Every outcome writes one
JSON ``decision`` line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

HANDLER = "compaction"
POLL_SECONDS = 5.0
DEADLINE_MARGIN_MS = 30_000
LAMBDA_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
DONE = ("SUCCEEDED", "FAILED", "CANCELLED")
_DATABASE = re.compile(r"^[a-z0-9_]{1,255}$")
_TABLE = re.compile(r"^[a-z0-9_-]{1,255}$")
_CATALOG = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


class CompactionError(RuntimeError):
    """The compaction could not finish; raised so the invocation fails (retries, then the DLQ)."""

    decision = "failed"


class NotIceberg(CompactionError):
    decision = "not_iceberg"


class QueryFailed(CompactionError):
    decision = "query_failed"


class StillRunning(CompactionError):
    decision = "still_running"


@dataclass(frozen=True)
class Settings:
    project: str
    feature_group: str
    workgroup: str


def settings_from_env(env: dict[str, str] | None = None) -> Settings:
    source = os.environ if env is None else env
    return Settings(
        project=source["PROJECT"], feature_group=source["FEATURE_GROUP_NAME"], workgroup=source["WORKGROUP"]
    )


@dataclass(frozen=True)
class Table:
    catalog: str
    database: str
    name: str

    @property
    def qualified(self) -> str:
        """``<db>.`<table>```: the database bare (VACUUM refuses it quoted), the table in backticks."""
        return f"{self.database}.`{self.name}`"


class Clients:
    """SageMaker and Athena clients, created on first use; tests pass stubs."""

    def __init__(self, *, sagemaker: Any = None, athena: Any = None) -> None:
        self._sagemaker = sagemaker
        self._athena = athena

    @property
    def sagemaker(self) -> Any:
        if self._sagemaker is None:
            self._sagemaker = boto3.client("sagemaker", config=LAMBDA_CONFIG)
        return self._sagemaker

    @property
    def athena(self) -> Any:
        if self._athena is None:
            self._athena = boto3.client("athena", config=LAMBDA_CONFIG)
        return self._athena


_default: Clients | None = None


def get_clients() -> Clients:
    global _default
    if _default is None:
        _default = Clients()
    return _default


def log(message: str, *, level: str = "INFO", **fields: Any) -> dict[str, Any]:
    record = {"level": level, "message": message, **fields}
    print(json.dumps(record, default=str, sort_keys=True), file=sys.stdout, flush=True)
    return record


def _identifier(kind: str, value: Any, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise CompactionError(f"refusing {kind} name {value!r}: not of the form {pattern.pattern}")
    return value


def offline_table(sagemaker: Any, feature_group: str) -> Table:
    """The group's Iceberg table from ``DescribeFeatureGroup``, its names validated for SQL."""
    description = sagemaker.describe_feature_group(FeatureGroupName=feature_group)
    offline = description.get("OfflineStoreConfig") or {}
    if offline.get("TableFormat") != "Iceberg":
        raise NotIceberg(
            f"feature group {feature_group} has no Iceberg offline store (table format {offline.get('TableFormat')!r})"
        )
    catalog = offline.get("DataCatalogConfig") or {}
    return Table(
        catalog=_identifier("catalog", catalog.get("Catalog", "AwsDataCatalog"), _CATALOG),
        database=_identifier("database", catalog.get("Database"), _DATABASE),
        name=_identifier("table", catalog.get("TableName"), _TABLE),
    )


def statements(table: Table) -> list[tuple[str, str]]:
    """(step, SQL) in the order they run."""
    return [
        ("optimize", f"OPTIMIZE {table.qualified} REWRITE DATA USING BIN_PACK"),
        ("vacuum", f"VACUUM {table.qualified}"),
    ]


def request_token(step: str, table: Table, event_id: str) -> str:
    """ClientRequestToken (32-128 chars): the same for every retry of one scheduled event."""
    return hashlib.sha256(f"{step}|{table.catalog}.{table.database}.{table.name}|{event_id}".encode()).hexdigest()


def run_query(
    athena: Any,
    settings: Settings,
    table: Table,
    step: str,
    sql: str,
    token: str,
    *,
    remaining_ms: Callable[[], int],
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """Start (or, for a retried event, find) the statement and wait for it; its execution on success."""
    started = athena.start_query_execution(
        QueryString=sql,
        WorkGroup=settings.workgroup,
        QueryExecutionContext={"Catalog": table.catalog, "Database": table.database},
        ClientRequestToken=token,
    )
    query_id = started["QueryExecutionId"]
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        status = execution.get("Status", {})
        state = status.get("State")
        if state == "SUCCEEDED":
            return execution
        if state in DONE:
            reason = status.get("StateChangeReason") or status.get("AthenaError", {}).get("ErrorMessage", "")
            raise QueryFailed(f"{step} {query_id} {state}: {reason}")
        if remaining_ms() < DEADLINE_MARGIN_MS:
            raise StillRunning(f"{step} {query_id} still {state}; a retry of this event resumes waiting on it")
        sleep(POLL_SECONDS)


def handle(
    event: Any,
    settings: Settings,
    clients: Clients,
    *,
    remaining_ms: Callable[[], int] = lambda: 15 * 60 * 1000,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    event_id = str(event.get("id") or "") if isinstance(event, dict) else ""
    event_id = event_id or f"manual-{uuid.uuid4()}"
    about: dict[str, Any] = {
        "handler": HANDLER,
        "project": settings.project,
        "feature_group": settings.feature_group,
        "workgroup": settings.workgroup,
        "event_id": event_id,
    }
    queries: dict[str, Any] = {}
    try:
        table = offline_table(clients.sagemaker, settings.feature_group)
        about["table"] = f"{table.catalog}.{table.database}.{table.name}"
        for step, sql in statements(table):
            execution = run_query(
                clients.athena,
                settings,
                table,
                step,
                sql,
                request_token(step, table, event_id),
                remaining_ms=remaining_ms,
                sleep=sleep,
            )
            stats = execution.get("Statistics", {})
            queries[step] = {
                "query_id": execution.get("QueryExecutionId"),
                "data_scanned_bytes": stats.get("DataScannedInBytes"),
                "engine_ms": stats.get("EngineExecutionTimeInMillis"),
            }
    except CompactionError as err:
        log(
            f"compaction: {err.decision}",
            level="ERROR",
            decision=err.decision,
            error=str(err),
            queries=queries,
            **about,
        )
        raise
    except Exception as err:
        log("compaction: failed", level="ERROR", decision="failed", error=repr(err), queries=queries, **about)
        raise
    return log("compaction: compacted", decision="compacted", queries=queries, **about)
