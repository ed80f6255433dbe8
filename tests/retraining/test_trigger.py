"""The retraining trigger over moto DynamoDB and moto SageMaker Pipelines (create/start/list are supported)."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from mlops_platform.retraining import trigger
from mlops_platform.retraining.settings import Settings, SettingsError
from mlops_platform.retraining.trigger import Clients, handle, request_token
from tests.retraining.conftest import REGION

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "churn"
TABLE = "mlops-retraining"
PIPELINE = "mlops-churn"
STAGING, PROD = "333333333333", "444444444444"
ENV = {
    "RETRAIN_TABLE": TABLE,
    "PIPELINE_NAME": PIPELINE,
    "PROJECT": PROJECT,
    "COOLDOWN_MINUTES": "60",
    "ALARM_PREFIXES": json.dumps(["mlops-churn-staging-monitoring-", "mlops-churn-prod-monitoring-"]),
    "ACCOUNTS": json.dumps({"staging": STAGING, "prod": PROD}),
}
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def alarm_event(
    event_id: str = "ev-1",
    *,
    state: str = "ALARM",
    previous: str = "OK",
    name: str = "mlops-churn-prod-monitoring-feature-drift",
    account: str = PROD,
    stage: str = "prod",
    version: str = "7",
    reason: str = "Threshold Crossed: 1 datapoint [3.0] was greater than the threshold (0.0).",
) -> dict:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": account,
        "time": "2024-05-01T12:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:cloudwatch:{REGION}:{account}:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {"value": state, "reason": reason, "timestamp": "2024-05-01T12:00:00.000+0000"},
            "previousState": {"value": previous, "reason": "", "timestamp": "2024-05-01T11:00:00.000+0000"},
            "configuration": {
                "description": f"Feature drift of the served model [project={PROJECT} stage={stage} version={version}]",
                "metrics": [],
            },
        },
    }


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FailingStarts:
    """The moto SageMaker client, whose next ``failures`` starts raise a throttling error."""

    def __init__(self, client, failures: int = 1) -> None:
        self.client = client
        self.failures = failures
        self.attempts = 0

    def start_pipeline_execution(self, **kwargs):
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "StartPipelineExecution"
            )
        return self.client.start_pipeline_execution(**kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture
def world(aws_env):
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        sagemaker.create_pipeline(
            PipelineName=PIPELINE,
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": []}),
            RoleArn="arn:aws:iam::222222222222:role/mlops-churn-dev-pipeline",
        )
        yield Clients(dynamodb=dynamodb, sagemaker=sagemaker)


@pytest.fixture
def settings() -> Settings:
    return Settings.from_env(ENV)


def executions(clients: Clients) -> list[dict]:
    return clients.sagemaker.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]


def item(clients: Clients) -> dict | None:
    return clients.dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": f"retrain#{PROJECT}"}}).get("Item")


def decisions(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


# --------------------------------------------------------------------------- starts


def test_an_alarm_starts_one_execution_with_the_reason(world, settings, capsys):
    outcome = handle(alarm_event(), settings, world, now=Clock())

    assert outcome["decision"] == "started"
    [execution] = executions(world)
    assert outcome["execution_arn"] == execution["PipelineExecutionArn"]
    params = world.sagemaker.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"]
    )["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in params} == {
        "RetrainReason": "mlops-churn-prod-monitoring-feature-drift: Threshold Crossed: 1 datapoint [3.0] was "
        "greater than the threshold (0.0).",
        "TriggeredByStage": "prod",
        "TriggeredByVersion": "7",
    }
    assert execution["PipelineExecutionDisplayName"] == "retrain-prod-v7-20240501120000"
    record = item(world)
    assert record["execution_arn"]["S"] == execution["PipelineExecutionArn"]
    assert record["last_started_at"]["S"] == "2024-05-01T12:00:00Z"
    assert record["status"]["S"] == "started"
    [line] = decisions(capsys)
    assert line["decision"] == "started" and line["handler"] == "retrain" and line["project"] == PROJECT


def test_the_request_token_is_stable_and_valid():
    token = request_token(PROJECT, "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92")
    assert token == request_token(PROJECT, "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92")
    assert token != request_token(PROJECT, "other")
    assert 32 <= len(token) <= 128 and token.replace("-", "").isalnum()


def test_the_same_event_twice_starts_once(world, settings):
    clock = Clock()
    assert handle(alarm_event("ev-1"), settings, world, now=clock)["decision"] == "started"
    clock.advance(minutes=1)
    second = handle(alarm_event("ev-1"), settings, world, now=clock)

    assert second["decision"] == "duplicate"
    assert len(executions(world)) == 1


def test_a_duplicate_after_the_cooldown_still_starts_nothing(world, settings):
    clock = Clock()
    handle(alarm_event("ev-1"), settings, world, now=clock)
    clock.advance(hours=2)

    assert handle(alarm_event("ev-1"), settings, world, now=clock)["decision"] == "duplicate"
    assert len(executions(world)) == 1


def test_a_flapping_alarm_starts_once_within_the_cooldown(world, settings):
    clock = Clock()
    first = handle(alarm_event("ev-1"), settings, world, now=clock)
    clock.advance(minutes=5)
    ok = handle(alarm_event("ev-2", state="OK", previous="ALARM"), settings, world, now=clock)
    clock.advance(minutes=5)
    again = handle(alarm_event("ev-3"), settings, world, now=clock)

    assert (first["decision"], ok["decision"], again["decision"]) == ("started", "ignored", "cooled_down")
    assert again["next_allowed_at"] == "2024-05-01T13:00:00Z"
    assert again["last_execution_arn"] == first["execution_arn"]
    assert len(executions(world)) == 1


def test_another_stage_alarm_is_cooled_down_too(world, settings):
    clock = Clock()
    handle(alarm_event("ev-1"), settings, world, now=clock)
    clock.advance(minutes=1)
    staging = alarm_event("ev-2", name="mlops-churn-staging-monitoring-feature-drift", account=STAGING, stage="staging")
    assert handle(staging, settings, world, now=clock)["decision"] == "cooled_down"


def test_after_the_cooldown_it_starts_again(world, settings):
    clock = Clock()
    handle(alarm_event("ev-1"), settings, world, now=clock)
    clock.advance(minutes=61)
    outcome = handle(alarm_event("ev-2", version="8"), settings, world, now=clock)

    assert outcome["decision"] == "started"
    assert len(executions(world)) == 2
    assert item(world)["event_id"]["S"] == "ev-2"
    assert item(world)["version"]["S"] == "8"


def test_an_alarm_without_a_version_tag_starts_with_unknown(world, settings):
    event = alarm_event()
    event["detail"]["configuration"]["description"] = "hand-made"
    outcome = handle(event, settings, world, now=Clock())

    assert outcome["decision"] == "started" and outcome["version"] == "unknown"


# --------------------------------------------------------------------------- drops


@pytest.mark.parametrize(
    ("event", "decision"),
    [
        (alarm_event(state="OK", previous="ALARM"), "ignored"),
        (alarm_event(state="INSUFFICIENT_DATA"), "ignored"),
        (alarm_event(name="mlops-churn-eu-prod-monitoring-feature-drift"), "foreign"),
        (alarm_event(name="mlops-fraud-prod-monitoring-feature-drift"), "foreign"),
        (alarm_event(name="mlops-churn-prod-latency"), "foreign"),
        (alarm_event(account=STAGING), "foreign"),  # a prod alarm from the staging account
        (alarm_event(account="999999999999"), "foreign"),
        (alarm_event(stage="staging"), "foreign"),  # the description names another stage
        ({**alarm_event(), "detail-type": "CloudWatch Alarm Configuration Change"}, "ignored"),
        ({**alarm_event(), "source": "aws.events"}, "ignored"),
        ({**alarm_event(), "detail": "not an object"}, "malformed"),
        ({**alarm_event(), "id": None}, "malformed"),
        ({k: v for k, v in alarm_event().items() if k != "account"}, "malformed"),
        ([], "malformed"),
        (None, "malformed"),
        ("text", "malformed"),
    ],
)
def test_other_events_are_logged_and_dropped(world, settings, capsys, event, decision):
    outcome = handle(event, settings, world, now=Clock())

    assert outcome["decision"] == decision
    assert outcome["reason"]
    assert executions(world) == []
    assert item(world) is None
    [line] = decisions(capsys)
    assert line["decision"] == decision


def test_the_alarm_arn_must_be_in_the_stage_account(world, settings):
    event = alarm_event()
    event["resources"] = [f"arn:aws:cloudwatch:{REGION}:{STAGING}:alarm:mlops-churn-prod-monitoring-feature-drift"]
    assert handle(event, settings, world, now=Clock())["decision"] == "foreign"


# --------------------------------------------------------------------------- failures


def test_a_failed_start_gives_the_claim_back_and_the_retry_starts_once(world, settings, capsys):
    flaky = FailingStarts(world.sagemaker)
    clients = Clients(dynamodb=world.dynamodb, sagemaker=flaky)
    clock = Clock()

    with pytest.raises(ClientError, match="Rate exceeded"):
        handle(alarm_event("ev-1"), settings, clients, now=clock)
    assert item(world) is None  # no record before: the claim is deleted again
    [failed] = decisions(capsys)
    assert failed["decision"] == "start_failed" and failed["level"] == "ERROR" and failed["claim_given_back"]

    clock.advance(seconds=30)
    retry = handle(alarm_event("ev-1"), settings, clients, now=clock)
    assert retry["decision"] == "started"
    assert flaky.attempts == 2
    assert len(executions(world)) == 1


def test_a_failed_start_restores_the_previous_record(world, settings):
    clock = Clock()
    first = handle(alarm_event("ev-1"), settings, world, now=clock)
    before = item(world)
    clock.advance(hours=2)
    clients = Clients(dynamodb=world.dynamodb, sagemaker=FailingStarts(world.sagemaker))

    with pytest.raises(ClientError):
        handle(alarm_event("ev-2"), settings, clients, now=clock)
    assert item(world) == before
    assert item(world)["execution_arn"]["S"] == first["execution_arn"]

    assert handle(alarm_event("ev-2"), settings, clients, now=clock)["decision"] == "started"
    assert len(executions(world)) == 2


def test_a_claim_without_a_recorded_start_is_resumed_by_the_redelivery(world, settings, monkeypatch):
    """The invocation died between claim and record: the same event starts with the same token."""
    clock = Clock()
    tokens = []
    original = trigger.start_pipeline

    def crash(sagemaker, settings_, alarm):
        raise SystemExit("Lambda timed out")  # not an Exception: no give-back, like a killed runtime

    monkeypatch.setattr(trigger, "start_pipeline", crash)
    with pytest.raises(SystemExit):
        handle(alarm_event("ev-1"), settings, world, now=clock)
    assert item(world)["status"]["S"] == "starting"

    def recording(sagemaker, settings_, alarm):
        tokens.append(request_token(settings_.project, alarm.event_id))
        return original(sagemaker, settings_, alarm)

    monkeypatch.setattr(trigger, "start_pipeline", recording)
    clock.advance(minutes=1)
    outcome = handle(alarm_event("ev-1"), settings, world, now=clock)
    assert outcome["decision"] == "resumed"
    assert tokens == [request_token(PROJECT, "ev-1")]
    assert item(world)["execution_arn"]["S"] == outcome["execution_arn"]
    assert handle(alarm_event("ev-1"), settings, world, now=clock)["decision"] == "duplicate"


def test_dynamodb_errors_are_raised(world, settings):
    clients = Clients(dynamodb=world.dynamodb, sagemaker=world.sagemaker)
    broken = Settings.from_env({**ENV, "RETRAIN_TABLE": "no-such-table"})
    with pytest.raises(ClientError, match="ResourceNotFound"):
        handle(alarm_event(), broken, clients, now=Clock())
    assert executions(world) == []


# --------------------------------------------------------------------------- settings


def test_settings_parse(settings):
    assert settings.cooldown_minutes == 60
    assert settings.accounts == {"staging": STAGING, "prod": PROD}
    assert settings.stage_of("mlops-churn-prod-monitoring-x") == "prod"
    assert settings.stage_of("mlops-churn-staging-monitoring-x") == "staging"
    assert settings.stage_of("mlops-churn-eu-prod-monitoring-x") is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"RETRAIN_TABLE": ""}, "missing environment variables: RETRAIN_TABLE"),
        ({"PROJECT": None, "ACCOUNTS": None}, "missing environment variables: PROJECT, ACCOUNTS"),
        ({"COOLDOWN_MINUTES": "an hour"}, "COOLDOWN_MINUTES must be a whole number of minutes, got 'an hour'"),
        ({"COOLDOWN_MINUTES": "-5"}, "COOLDOWN_MINUTES must be between 0 and"),
        ({"ALARM_PREFIXES": "[mlops"}, "ALARM_PREFIXES is not valid JSON"),
        ({"ALARM_PREFIXES": '"mlops-churn-prod-monitoring-"'}, "ALARM_PREFIXES must be a non-empty JSON list"),
        ({"ALARM_PREFIXES": "[]"}, "ALARM_PREFIXES must be a non-empty JSON list"),
        ({"ALARM_PREFIXES": '["mlops-fraud-prod-monitoring-"]'}, "does not name project churn"),
        ({"ALARM_PREFIXES": '["mlops-churn-dev-monitoring-"]'}, "for one stage of ACCOUNTS (prod, staging)"),
        ({"ACCOUNTS": '["444444444444"]'}, "ACCOUNTS must be a non-empty JSON object"),
        ({"ACCOUNTS": '{"prod": 444444444444}'}, "the account of stage prod must be a 12-digit string"),
        ({"ACCOUNTS": '{"prod": "4444"}'}, "the account of stage prod must be a 12-digit string"),
    ],
)
def test_settings_errors_are_clear(change, message):
    env = {k: v for k, v in {**ENV, **change}.items() if v is not None}
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert message in str(err.value)


def test_settings_accept_zero_cooldown():
    assert Settings.from_env({**ENV, "COOLDOWN_MINUTES": "0"}).cooldown_minutes == 0


# --------------------------------------------------------------------------- the Lambda


def test_the_thin_handler_reads_the_environment(world, monkeypatch):
    from mlops_platform.retraining import settings as settings_mod

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    settings_mod.get_settings.cache_clear()
    monkeypatch.setattr(trigger, "_default", world)
    spec = importlib.util.spec_from_file_location("retrain_trigger_handler", ROOT / "lambda/retrain/trigger.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        assert module.handler(alarm_event(), None)["decision"] == "started"
    finally:
        settings_mod.get_settings.cache_clear()


def test_the_bundled_asset_holds_only_the_package(tmp_path):
    from stacks.components.lambda_asset import bundled_asset

    asset = bundled_asset(ROOT / "lambda" / "retrain", "mlops_platform.retraining", staging=tmp_path)
    files = sorted(str(p.relative_to(asset)) for p in asset.rglob("*.py"))
    assert "trigger.py" in files
    assert "mlops_platform/__init__.py" in files
    assert (asset / "mlops_platform/__init__.py").read_text() == ""
    assert all(f == "trigger.py" or f.startswith("mlops_platform/") for f in files)
    # The core imports nothing of mlops_platform outside itself.
    for path in (asset / "mlops_platform" / "retraining").glob("*.py"):
        for line in path.read_text().splitlines():
            if line.startswith(("from mlops_platform", "import mlops_platform")):
                assert line.startswith("from mlops_platform.retraining"), f"{path.name}: {line}"


def test_the_bundled_handler_imports_from_the_asset_alone(tmp_path):
    import subprocess
    import sys

    from stacks.components.lambda_asset import bundled_asset

    asset = bundled_asset(ROOT / "lambda" / "retrain", "mlops_platform.retraining", staging=tmp_path)
    code = (
        "import sys, trigger, mlops_platform; "
        "assert mlops_platform.__file__.startswith(sys.argv[1]), mlops_platform.__file__; "
        "assert not [m for m in sys.modules if m.startswith('mlops_platform.') "
        "and not m.startswith('mlops_platform.retraining')], sorted(sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(asset)],
        cwd=asset,
        env={"PYTHONPATH": str(asset), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
