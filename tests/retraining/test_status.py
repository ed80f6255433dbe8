"""``mlops monitoring status``: moto CloudWatch, S3 and SageMaker Pipelines; a stub for Model Monitor.

moto 5.2.5 has no ``ListMonitoringSchedules`` / ``ListMonitoringExecutions``, so
the ``model_monitor`` engine runs against :class:`MonitorStub` (swapped in for
the CLI's SageMaker client); everything else is moto.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import yaml
from moto import mock_aws

from mlops_platform.cli import monitoring as monitoring_mod
from mlops_platform.cli.app import run
from mlops_platform.cli.core import CliError, Context
from mlops_platform.cli.session import Clients
from mlops_platform.config import load_config
from tests.retraining.conftest import REGION

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "mlops-churn-prod-monitoring-"
BUCKET = "mlops-prod-artifacts-444444444444-eu-west-1"
REPORTS = "projects/churn/monitoring/prod"
DRIFT = "mlops-churn-prod-drift"


def write_config(root: Path, monitoring: dict | None) -> Path:
    """The shipped example config with ``monitoring`` set on project churn."""
    config = root / "config"
    shutil.copytree(ROOT / "config", config)
    path = config / "projects" / "churn.yaml"
    project = yaml.safe_load(path.read_text())
    if monitoring is not None:
        project["monitoring"] = monitoring
    path.write_text(yaml.safe_dump(project))
    return config


@pytest.fixture
def moto(aws_env):
    with mock_aws():
        yield


@pytest.fixture
def mlops(moto, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def call(*args: str, monitoring: dict | None = None):
        config = tmp_path / "config"
        if config.exists():
            shutil.rmtree(config)
        write_config(tmp_path, monitoring)
        capsys.readouterr()
        code = run(["--config-dir", str(config), *args])
        out = capsys.readouterr()
        return SimpleNamespace(code=code, out=out.out, err=out.err)

    return call


def put_alarm(name: str, state: str, reason: str, version: str = "7") -> None:
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        AlarmDescription=f"Feature drift of the served model [project=churn stage=prod version={version}]",
        Namespace="MLOps/Monitoring",
        MetricName="feature_drift",
        Statistic="Maximum",
        Period=3600,
        EvaluationPeriods=1,
        Threshold=0.1,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason=reason)


def drift_pipeline(executions: int) -> list[str]:
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    sagemaker.create_pipeline(
        PipelineName=DRIFT,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn="arn:aws:iam::444444444444:role/mlops-churn-prod-monitoring",
    )
    return [
        sagemaker.start_pipeline_execution(PipelineName=DRIFT, PipelineExecutionDisplayName=f"drift-{i}")[
            "PipelineExecutionArn"
        ]
        for i in range(executions)
    ]


def reports(*objects: tuple[str, object]) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    for key, body in objects:
        s3.put_object(Bucket=BUCKET, Key=key, Body=body if isinstance(body, bytes) else json.dumps(body).encode())


PIPELINE_ENGINE = {"enabled": True, "engine": "pipeline", "stages": ["prod"]}
MONITOR_ENGINE = {"enabled": True, "engine": "model_monitor", "stages": ["staging", "prod"]}


# --------------------------------------------------------------------------- pipeline engine


def test_pipeline_engine_shows_runs_report_and_alarms(mlops):
    arns = drift_pipeline(2)
    reports(
        (
            f"{REPORTS}/2024-05-01T10/summary.json",
            {"violations": [{"feature_name": "x", "constraint_check_type": "a"}]},
        ),
        (
            f"{REPORTS}/2024-05-01T11/summary.json",
            {
                "violations": [
                    {
                        "feature_name": "tenure_months",
                        "constraint_check_type": "baseline_drift_check",
                        "description": "distance 0.31 > 0.1",
                    },
                    {"feature_name": "contract", "constraint_check_type": "data_type_check"},
                ]
            },
        ),
        (f"{REPORTS}/2024-05-01T11/statistics.json", {}),
    )
    put_alarm(PREFIX + "feature-drift", "ALARM", "Threshold Crossed: drift 0.31")
    put_alarm(PREFIX + "violations", "OK", "Threshold not crossed")
    put_alarm("mlops-churn-staging-monitoring-feature-drift", "ALARM", "other stage")

    result = mlops("monitoring", "status", "churn", monitoring=PIPELINE_ENGINE)

    assert result.code == 0, result.err
    out = result.out
    assert "Monitoring of churn/prod: drift pipeline (pipeline)" in out
    assert f"Pipeline       {DRIFT}" in out
    assert all(arn in out for arn in arns)
    assert "Succeeded" in out
    assert f"Latest report  s3://{BUCKET}/{REPORTS}/2024-05-01T11/summary.json" in out
    assert "2 violations" in out
    assert "tenure_months: baseline_drift_check: distance 0.31 > 0.1" in out
    assert "contract: data_type_check" in out
    assert PREFIX + "feature-drift" in out and "Threshold Crossed: drift 0.31" in out
    assert PREFIX + "violations" in out
    assert "mlops-churn-staging-monitoring-feature-drift" not in out
    assert f"1 alarm firing: {PREFIX}feature-drift (a transition to ALARM" in out
    # firing first
    assert out.index(PREFIX + "feature-drift") < out.index(PREFIX + "violations")


def test_pipeline_engine_without_pipeline_report_or_alarms(mlops):
    result = mlops("monitoring", "status", "churn", "--stage", "prod", monitoring=PIPELINE_ENGINE)

    assert result.code == 0, result.err
    assert f"Note: drift pipeline {DRIFT} does not exist in the prod account (not deployed yet?)" in result.out
    assert f"Latest report  cannot list s3://{BUCKET}/{REPORTS}/: NoSuchBucket" in result.out
    assert f"Note: no CloudWatch alarms named {PREFIX}* in the prod account" in result.out


def test_pipeline_engine_unreadable_report(mlops):
    drift_pipeline(0)
    reports((f"{REPORTS}/run-1/summary.json", b"not json"))

    result = mlops("monitoring", "status", "churn", monitoring=PIPELINE_ENGINE)

    assert result.code == 0, result.err
    assert f"Note: drift pipeline {DRIFT} has not run yet" in result.out
    assert f"s3://{BUCKET}/{REPORTS}/run-1/summary.json" in result.out
    assert "not JSON (JSONDecodeError)" in result.out


def test_a_report_without_violations_shows_its_values(moto):
    reports((f"{REPORTS}/r/summary.json", {"drift_max": 0.02, "features": 9}))
    report = monitoring_mod.latest_report(boto3.client("s3", region_name=REGION), BUCKET, REPORTS)
    assert report.problem is None and report.content == {"drift_max": 0.02, "features": 9}


def test_access_denied_on_the_report_is_a_problem_not_a_failure():
    from botocore.exceptions import ClientError

    class Denied:
        def get_paginator(self, name):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListObjectsV2")

    report = monitoring_mod.latest_report(Denied(), BUCKET, REPORTS)
    assert report.problem == f"cannot list s3://{BUCKET}/{REPORTS}/: AccessDenied: no"


# --------------------------------------------------------------------------- model monitor engine


T = datetime(2024, 5, 1, 11, 0, tzinfo=UTC)


class MonitorStub:
    """The Model Monitor calls moto lacks; records them."""

    def __init__(self, schedules: dict[str, dict]) -> None:
        self.schedules = schedules
        self.calls: list[tuple[str, dict]] = []

    def list_monitoring_schedules(self, **kwargs):
        self.calls.append(("list_monitoring_schedules", kwargs))
        return {
            "MonitoringScheduleSummaries": [
                {"MonitoringScheduleName": n, "MonitoringScheduleStatus": s["status"], "EndpointName": "x"}
                for n, s in self.schedules.items()
            ]
        }

    def describe_monitoring_schedule(self, MonitoringScheduleName):
        self.calls.append(("describe_monitoring_schedule", {"MonitoringScheduleName": MonitoringScheduleName}))
        schedule = self.schedules[MonitoringScheduleName]
        out = {
            "MonitoringScheduleName": MonitoringScheduleName,
            "MonitoringScheduleStatus": schedule["status"],
            "MonitoringType": schedule["type"],
        }
        if schedule["runs"]:
            out["LastMonitoringExecutionSummary"] = schedule["runs"][0]
        return out

    def list_monitoring_executions(self, **kwargs):
        self.calls.append(("list_monitoring_executions", kwargs))
        return {"MonitoringExecutionSummaries": self.schedules[kwargs["MonitoringScheduleName"]]["runs"]}


def monitor_run(status: str, hour: int, failure: str | None = None) -> dict:
    run = {
        "MonitoringScheduleName": "s",
        "ScheduledTime": T.replace(hour=hour),
        "CreationTime": T,
        "LastModifiedTime": T,
        "MonitoringExecutionStatus": status,
        "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:444444444444:processing-job/model-monitoring-{hour:02d}",
    }
    if failure:
        run["FailureReason"] = failure
    return run


@pytest.fixture
def stub(moto, monkeypatch):
    stub = MonitorStub(
        {
            "mlops-churn-prod-data-quality": {
                "status": "Scheduled",
                "type": "DataQuality",
                "runs": [
                    monitor_run("CompletedWithViolations", 11),
                    monitor_run("Failed", 10, "AlgorithmError: baseline constraints not found"),
                ],
            },
            "mlops-churn-prod-model-quality": {"status": "Pending", "type": "ModelQuality", "runs": []},
        }
    )
    original = Clients._get

    def get(self, service):
        return stub if service == "sagemaker" else original(self, service)

    monkeypatch.setattr(Clients, "_get", get)
    return stub


def test_model_monitor_engine_shows_schedules_and_executions(mlops, stub):
    put_alarm(PREFIX + "data-quality-violations", "ALARM", "Threshold Crossed: 3 violations")

    result = mlops("monitoring", "status", "churn", monitoring=MONITOR_ENGINE)

    assert result.code == 0, result.err
    out = result.out
    assert "Monitoring of churn/prod: SageMaker Model Monitor (model_monitor)" in out
    assert "Endpoint       mlops-churn-prod" in out
    assert "Schedule mlops-churn-prod-data-quality: Scheduled, DataQuality" in out
    assert "last execution: CompletedWithViolations (scheduled 2024-05-01T11:00:00Z)" in out
    assert "AlgorithmError: baseline constraints not found" in out
    assert "model-monitoring-10" in out and "model-monitoring-11" in out
    assert "Schedule mlops-churn-prod-model-quality: Pending, ModelQuality" in out
    assert "last execution: never ran" in out
    assert f"1 alarm firing: {PREFIX}data-quality-violations" in out
    assert ("list_monitoring_schedules", {"EndpointName": "mlops-churn-prod", "MaxResults": 100}) in stub.calls
    listed = [kwargs for name, kwargs in stub.calls if name == "list_monitoring_executions"]
    assert {k["MonitoringScheduleName"] for k in listed} == set(stub.schedules)
    assert all(k["SortOrder"] == "Descending" and k["MaxResults"] == 5 for k in listed)


def test_model_monitor_engine_staging_without_schedules(mlops, stub):
    stub.schedules.clear()
    result = mlops("monitoring", "status", "churn", "--stage", "staging", monitoring=MONITOR_ENGINE)

    assert result.code == 0, result.err
    assert "Note: no monitoring schedules on endpoint mlops-churn-staging (not deployed yet?)" in result.out
    assert "Note: no CloudWatch alarms named mlops-churn-staging-monitoring-* in the staging account" in result.out


# --------------------------------------------------------------------------- refusals


def test_unknown_project(mlops):
    result = mlops("monitoring", "status", "fraud", monitoring=PIPELINE_ENGINE)
    assert result.code == 2
    assert result.err.startswith("mlops: unknown project") and result.err.count("\n") == 1


def test_monitoring_off(mlops):
    result = mlops("monitoring", "status", "churn", monitoring={"enabled": False})
    assert result.code == 2
    assert (
        result.err
        == "mlops: monitoring is off for project churn: set monitoring.enabled in config/projects/churn.yaml\n"
    )


def test_stage_not_monitored(mlops):
    result = mlops("monitoring", "status", "churn", "--stage", "staging", monitoring=PIPELINE_ENGINE)
    assert result.code == 2
    assert result.err == "mlops: project churn does not monitor staging (monitoring.stages: prod)\n"


def test_unknown_stage_is_a_usage_error(mlops):
    with pytest.raises(SystemExit) as exit_:
        mlops("monitoring", "status", "churn", "--stage", "dev", monitoring=PIPELINE_ENGINE)
    assert exit_.value.code == 2


def test_unknown_stage_in_the_logic(tmp_path):
    ctx = Context(load_config(write_config(tmp_path, PIPELINE_ENGINE)))
    with pytest.raises(CliError, match="unknown stage 'dev'"):
        monitoring_mod.check_target(ctx, "churn", "dev")


def test_engine_and_stages_of_a_config_without_those_fields():
    """Configs from before ``monitoring.engine``/``stages``: Model Monitor, prod."""
    project = SimpleNamespace(monitoring=SimpleNamespace(enabled=True))
    ctx = SimpleNamespace(config=SimpleNamespace(projects={"churn": project}))
    assert monitoring_mod.engine_of(ctx, "churn") == "model_monitor"  # type: ignore[arg-type]
    assert monitoring_mod.monitored_stages(ctx, "churn") == ["prod"]  # type: ignore[arg-type]


def test_firing_alarms_say_whether_they_retrain(mlops):
    put_alarm(PREFIX + "feature-drift", "ALARM", "drift")
    off = mlops("monitoring", "status", "churn", monitoring={**PIPELINE_ENGINE, "retraining": {"enabled": False}})
    assert off.code == 0, off.err
    assert "retraining is off (monitoring.retraining.enabled)" in off.out
    on = mlops("monitoring", "status", "churn", monitoring=PIPELINE_ENGINE)
    assert "a transition to ALARM starts retraining in dev, at most once per cool-down" in on.out
