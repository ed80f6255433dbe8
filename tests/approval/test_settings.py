"""Lambda entry points: environment parsed once, boto3 clients created lazily, config faults raised."""

from __future__ import annotations

import importlib
import json

import boto3
import pytest

from tests.approval.lambdas import aws as lambda_aws
from tests.approval.lambdas import guard, notify, rejected
from tests.approval.lambdas import settings as settings_mod
from tests.approval.support import ALICE, BOB, POLICY, POLICY_DOCUMENT, approval_event


@pytest.fixture
def fresh_lambda_state():
    """Forget the cached settings and clients, as a new Lambda execution environment would."""
    settings_mod.get_settings.cache_clear()
    lambda_aws._default = None
    yield
    settings_mod.get_settings.cache_clear()
    lambda_aws._default = None


def test_importing_the_handlers_creates_no_clients(monkeypatch, fresh_lambda_state):
    def refuse(*args, **kwargs):
        raise AssertionError("boto3 client created at import time")

    monkeypatch.setattr(boto3, "client", refuse)
    for module in (lambda_aws, notify, guard, rejected):
        importlib.reload(module)
    clients = lambda_aws.Clients()
    assert clients._clients == {}


def test_handler_reads_the_environment_once_and_creates_only_the_clients_it_uses(
    platform, monkeypatch, fresh_lambda_state
):
    for name, value in platform.env().items():
        monkeypatch.setenv(name, value)
    arn = platform.register()
    platform.set_status(arn, "Approved", BOB, "ok")

    # bob is no approver: the guard reverts without reading the report (identity first), so the
    # handler creates clients for the releases table, SageMaker and SNS only -- not S3.
    outcome = guard.handler(approval_event(arn, BOB), None)

    assert outcome["decision"] == "reverted" and outcome["revert_to"] == "PendingManualApproval"
    assert settings_mod.get_settings().policy == POLICY
    assert sorted(lambda_aws.get_clients()._clients) == ["dynamodb", "sagemaker", "sns"]
    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:changed")
    assert settings_mod.get_settings().topic_arn == platform.topic_arn  # parsed once


def test_handler_releases_a_valid_approval_with_the_clients_it_creates(platform, monkeypatch, fresh_lambda_state):
    for name, value in platform.env().items():
        monkeypatch.setenv(name, value)
    arn = platform.register()
    platform.set_status(arn, "Approved", ALICE, "ok")

    outcome = guard.handler(approval_event(arn, ALICE), None)

    assert outcome["decision"] == "released"
    assert sorted(lambda_aws.get_clients()._clients) == ["codepipeline", "dynamodb", "s3", "sagemaker", "sns"]
    assert [e["MODEL_PACKAGE_ARN"] for e in platform.executions()] == [arn]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"TOPIC_ARN": ""}, "missing environment variables: TOPIC_ARN"),
        ({"APPROVAL_POLICY": "{not json"}, "APPROVAL_POLICY is not valid JSON"),
        ({"APPROVAL_POLICY": json.dumps({**POLICY_DOCUMENT, "approvers": []})}, "APPROVAL_POLICY: approvers"),
        ({"TOPIC_ARN": "approvers"}, "TOPIC_ARN must be an SNS topic ARN"),
    ],
)
def test_bad_environment_is_raised_so_the_event_reaches_the_dead_letter_queue(change, message):
    env = {
        "TOPIC_ARN": "arn:aws:sns:eu-west-1:123456789012:t",
        "RELEASES_TABLE": "mlops-releases",
        "DEPLOY_PIPELINE_NAME": "mlops-deploy",
        "APPROVAL_POLICY": json.dumps(POLICY_DOCUMENT),
        **change,
    }
    with pytest.raises(settings_mod.SettingsError, match=message):
        settings_mod.Settings.from_env(env)
