"""``mlops monitoring status``: what watches a project's stage, how its last runs went, which alarms fire.

Works in the stage's account, over injected clients. The project's
``monitoring.engine`` decides what runs:

``model_monitor``
    SageMaker Model Monitor schedules on the stage's endpoint
    (``ListMonitoringSchedules``), each with its status, its last execution and
    its last few executions (status, failure reason, processing job).
``pipeline``
    the stage's drift-check pipeline (``Naming.drift_pipeline_name``): its last
    executions, and the newest ``summary.json`` (by key) under
    ``s3://<stage artifacts bucket>/<Naming.monitoring_prefix>/`` when it can be read.

Both: the CloudWatch alarms named ``Naming.monitoring_alarm_prefix`` (the ones
the retraining trigger answers), with state and reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from mlops_platform.cli.core import CliError, Context
from mlops_platform.config import SERVING_STAGES

MODEL_MONITOR, PIPELINE = "model_monitor", "pipeline"
ENGINES = (MODEL_MONITOR, PIPELINE)
EXECUTIONS = 5
SUMMARY = "summary.json"
REPORT_MAX_BYTES = 1024 * 1024
_TAG = re.compile(r"\[project=\S+ stage=\S+ version=(?P<version>[^\s\]]+)\]\s*$")
_UNREADABLE = {"NoSuchBucket", "NoSuchKey", "AccessDenied", "AllAccessDisabled", "404", "403", "NotFound"}


@dataclass(frozen=True)
class Alarm:
    name: str
    state: str
    reason: str
    updated: datetime | None
    version: str | None  # from the description's [project=.. stage=.. version=..] tag


@dataclass(frozen=True)
class MonitorRun:
    """One Model Monitor execution (a schedule's last, or one of ``ListMonitoringExecutions``)."""

    status: str
    scheduled: datetime | None
    failure_reason: str | None
    processing_job: str | None  # the processing job's name (the last part of its ARN)


@dataclass(frozen=True)
class Schedule:
    name: str
    status: str
    monitoring_type: str | None
    last: MonitorRun | None
    runs: list[MonitorRun]
    failure_reason: str | None = None  # of the schedule itself


@dataclass(frozen=True)
class DriftRun:
    """One execution of the drift-check pipeline."""

    arn: str
    name: str | None
    status: str
    started: datetime | None
    failure_reason: str | None


@dataclass(frozen=True)
class ViolationsReport:
    """The newest ``summary.json``: its content, or why it could not be read."""

    uri: str | None
    modified: datetime | None = None
    content: Any = None
    problem: str | None = None


@dataclass(frozen=True)
class MonitoringStatus:
    project: str
    stage: str
    engine: str
    endpoint: str
    drift_pipeline: str
    alarm_prefix: str
    schedules: list[Schedule] = field(default_factory=list)
    runs: list[DriftRun] = field(default_factory=list)
    report: ViolationsReport | None = None
    alarms: list[Alarm] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    retraining: bool | None = None  # monitoring.retraining.enabled (None: a config without it)

    @property
    def firing(self) -> list[Alarm]:
        return [a for a in self.alarms if a.state == "ALARM"]


def engine_of(ctx: Context, project: str) -> str:
    """The project's monitoring engine (configs from before the field: Model Monitor)."""
    return str(getattr(ctx.config.projects[project].monitoring, "engine", MODEL_MONITOR))


def monitored_stages(ctx: Context, project: str) -> list[str]:
    """The serving stages the project monitors ([] when monitoring is off)."""
    monitoring = ctx.config.projects[project].monitoring
    if not monitoring.enabled:
        return []
    return list(getattr(monitoring, "stages", None) or ["prod"])


def check_target(ctx: Context, project: str, stage: str) -> str:
    """The engine of a monitored project stage; CliError (exit 2) for an unknown one or monitoring off."""
    ctx.projects(project)
    if stage not in SERVING_STAGES:
        raise CliError(f"unknown stage '{stage}': monitoring runs in {' or '.join(SERVING_STAGES)}")
    stages = monitored_stages(ctx, project)
    if not stages:
        raise CliError(
            f"monitoring is off for project {project}: set monitoring.enabled in config/projects/{project}.yaml"
        )
    if stage not in stages:
        raise CliError(f"project {project} does not monitor {stage} (monitoring.stages: {', '.join(stages)})")
    engine = engine_of(ctx, project)
    if engine not in ENGINES:
        raise CliError(f"project {project}: unknown monitoring engine '{engine}' ({', '.join(ENGINES)})")
    return engine


def status(
    sagemaker: Any, cloudwatch: Any, s3: Any, ctx: Context, project: str, stage: str, *, limit: int = EXECUTIONS
) -> MonitoringStatus:
    engine = check_target(ctx, project, stage)
    naming = ctx.naming
    endpoint = naming.endpoint_name(project, stage)
    drift_pipeline = naming.drift_pipeline_name(project, stage)
    alarm_prefix = naming.monitoring_alarm_prefix(project, stage)
    notes: list[str] = []
    found_schedules: list[Schedule] = []
    runs: list[DriftRun] = []
    report = None
    if engine == MODEL_MONITOR:
        found_schedules = schedules(sagemaker, endpoint, limit)
        if not found_schedules:
            notes.append(f"no monitoring schedules on endpoint {endpoint} (not deployed yet?)")
    else:
        listed = drift_runs(sagemaker, drift_pipeline, limit)
        if listed is None:
            notes.append(f"drift pipeline {drift_pipeline} does not exist in the {stage} account (not deployed yet?)")
        elif not listed:
            notes.append(f"drift pipeline {drift_pipeline} has not run yet")
        runs = listed or []
        report = latest_report(s3, naming.artifacts_bucket(stage), naming.monitoring_prefix(project, stage))
    found_alarms = alarms(cloudwatch, alarm_prefix)
    if not found_alarms:
        notes.append(f"no CloudWatch alarms named {alarm_prefix}* in the {stage} account")
    return MonitoringStatus(
        project=project,
        stage=stage,
        engine=engine,
        endpoint=endpoint,
        drift_pipeline=drift_pipeline,
        alarm_prefix=alarm_prefix,
        schedules=found_schedules,
        runs=runs,
        report=report,
        alarms=found_alarms,
        notes=notes,
        retraining=retraining_enabled(ctx, project),
    )


def retraining_enabled(ctx: Context, project: str) -> bool | None:
    """Whether the project's alarms start retraining in dev (None: the config does not say)."""
    retraining = getattr(ctx.config.projects[project].monitoring, "retraining", None)
    enabled = getattr(retraining, "enabled", None)
    return None if enabled is None else bool(enabled)


# --------------------------------------------------------------------------- model monitor


def _job_name(arn: Any) -> str | None:
    return arn.rsplit("/", 1)[-1] if isinstance(arn, str) and arn else None


def _monitor_run(summary: dict[str, Any]) -> MonitorRun:
    return MonitorRun(
        status=str(summary.get("MonitoringExecutionStatus") or "-"),
        scheduled=summary.get("ScheduledTime"),
        failure_reason=summary.get("FailureReason") or None,
        processing_job=_job_name(summary.get("ProcessingJobArn")),
    )


def _pages(call: Any, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    while True:
        page = call(**kwargs)
        yield from page.get(key) or []
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


def schedules(sagemaker: Any, endpoint: str, limit: int = EXECUTIONS) -> list[Schedule]:
    """The endpoint's monitoring schedules by name, each with its last ``limit`` executions (newest first)."""
    out = []
    summaries = _pages(
        sagemaker.list_monitoring_schedules, "MonitoringScheduleSummaries", EndpointName=endpoint, MaxResults=100
    )
    for summary in sorted(summaries, key=lambda s: str(s.get("MonitoringScheduleName"))):
        name = str(summary["MonitoringScheduleName"])
        described = sagemaker.describe_monitoring_schedule(MonitoringScheduleName=name)
        last = described.get("LastMonitoringExecutionSummary")
        executions = sagemaker.list_monitoring_executions(
            MonitoringScheduleName=name, SortBy="ScheduledTime", SortOrder="Descending", MaxResults=limit
        ).get("MonitoringExecutionSummaries", [])
        out.append(
            Schedule(
                name=name,
                status=str(described.get("MonitoringScheduleStatus") or summary.get("MonitoringScheduleStatus")),
                monitoring_type=described.get("MonitoringType") or summary.get("MonitoringType"),
                last=_monitor_run(last) if last else None,
                runs=[_monitor_run(e) for e in executions[:limit]],
                failure_reason=described.get("FailureReason") or None,
            )
        )
    return out


# --------------------------------------------------------------------------- drift pipeline


def drift_runs(sagemaker: Any, pipeline: str, limit: int = EXECUTIONS) -> list[DriftRun] | None:
    """The pipeline's last ``limit`` executions, newest first; None when the pipeline does not exist."""
    try:
        page = sagemaker.list_pipeline_executions(
            PipelineName=pipeline, SortBy="CreationTime", SortOrder="Descending", MaxResults=limit
        )
    except ClientError as err:
        error = err.response.get("Error", {})
        message = str(error.get("Message", "")).lower()
        if error.get("Code") in ("ResourceNotFound", "ValidationException") and (
            "does not exist" in message or "could not find" in message or "not found" in message
        ):
            return None
        raise
    return [
        DriftRun(
            arn=str(s.get("PipelineExecutionArn")),
            name=s.get("PipelineExecutionDisplayName") or None,
            status=str(s.get("PipelineExecutionStatus") or "-"),
            started=s.get("StartTime"),
            failure_reason=s.get("PipelineExecutionFailureReason") or None,
        )
        for s in (page.get("PipelineExecutionSummaries") or [])[:limit]
    ]


def latest_report(s3: Any, bucket: str, prefix: str) -> ViolationsReport:
    """The newest (greatest key) ``summary.json`` under ``s3://bucket/prefix/``; a problem when none is readable."""
    where = f"s3://{bucket}/{prefix}/"
    newest: dict[str, Any] | None = None
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/"):
            for obj in page.get("Contents") or []:
                key = str(obj["Key"])
                if key.rsplit("/", 1)[-1] == SUMMARY and (newest is None or key > newest["Key"]):
                    newest = obj
    except ClientError as err:
        return ViolationsReport(None, problem=f"cannot list {where}: {_s3_problem(err)}")
    if newest is None:
        return ViolationsReport(None, problem=f"no {SUMMARY} under {where} yet")
    uri = f"s3://{bucket}/{newest['Key']}"
    try:
        body = s3.get_object(Bucket=bucket, Key=newest["Key"])["Body"].read(REPORT_MAX_BYTES + 1)
    except ClientError as err:
        return ViolationsReport(uri, newest.get("LastModified"), problem=f"cannot read it: {_s3_problem(err)}")
    if len(body) > REPORT_MAX_BYTES:
        return ViolationsReport(uri, newest.get("LastModified"), problem="larger than 1 MiB; not read")
    try:
        content = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return ViolationsReport(uri, newest.get("LastModified"), problem=f"not JSON ({err.__class__.__name__})")
    return ViolationsReport(uri, newest.get("LastModified"), content=content)


def _s3_problem(err: ClientError) -> str:
    error = err.response.get("Error", {})
    code = str(error.get("Code", ""))
    if code not in _UNREADABLE and not code.startswith("KMS"):
        raise err
    return f"{code}: {error.get('Message') or 'no message'}"


def violations(content: Any) -> list[dict[str, Any]] | None:
    """The report's violation entries (Model Monitor's ``{"violations": [...]}`` shape), if it has that list."""
    if isinstance(content, dict) and isinstance(content.get("violations"), list):
        return [v for v in content["violations"] if isinstance(v, dict)]
    return None


# --------------------------------------------------------------------------- alarms


def alarms(cloudwatch: Any, prefix: str) -> list[Alarm]:
    """Metric and composite alarms named ``prefix*``, firing ones first, then by name."""
    out = []
    kwargs: dict[str, Any] = {"AlarmNamePrefix": prefix, "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
    while True:
        page = cloudwatch.describe_alarms(**kwargs)
        for alarm in [*(page.get("MetricAlarms") or []), *(page.get("CompositeAlarms") or [])]:
            tag = _TAG.search(str(alarm.get("AlarmDescription") or ""))
            out.append(
                Alarm(
                    name=str(alarm["AlarmName"]),
                    state=str(alarm.get("StateValue") or "-"),
                    reason=str(alarm.get("StateReason") or ""),
                    updated=alarm.get("StateUpdatedTimestamp"),
                    version=tag["version"] if tag else None,
                )
            )
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return sorted(out, key=lambda a: (a.state != "ALARM", a.name))
