"""verify survives credential expiry (issue item 7): refreshing assume-role credentials under a stubbed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from botocore.stub import Stubber

from mlops_platform.cli.core import Context
from mlops_platform.cli.credentials import assume_role_refresher, refreshing_credentials
from mlops_platform.cli.verify import verify
from mlops_platform.config import load_config
from tests.synth import EXAMPLE_CONFIG

ROLE = "arn:aws:iam::444444444444:role/mlops-churn-prod-verify"
T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def _sts(count: int):
    sts = boto3.client("sts", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(sts)
    for n in range(count):
        stubber.add_response(
            "assume_role",
            {"Credentials": {"AccessKeyId": f"ASIA{n:016d}", "SecretAccessKey": "s" * 20, "SessionToken": f"t{n}",
                             "Expiration": T0 + timedelta(hours=n + 1)}},
            {"RoleArn": ROLE, "RoleSessionName": "mlops-cli-test", "DurationSeconds": 3600},
        )  # fmt: skip
    stubber.activate()
    return sts, stubber


class ExpiringEndpoint:
    """SageMaker as the signer sees it: each request signs with the session's current credentials and is refused
    (ExpiredToken) when they expired by the stubbed clock. Updating for 5 h of polls, then InService."""

    def __init__(self, credentials, clock, expiry_of):
        self.credentials, self.clock, self.expiry_of, self.calls = credentials, clock, expiry_of, 0

    def describe_endpoint(self, EndpointName):  # noqa: N803 - boto3's parameter name
        key = self.credentials.get_frozen_credentials().access_key
        assert self.clock() < self.expiry_of[key], f"ExpiredToken: {key} expired"
        self.calls += 1
        status = "Updating" if self.clock() < T0 + timedelta(hours=5) else "Failed"
        return {"EndpointName": EndpointName, "EndpointStatus": status, "EndpointConfigName": "c"}


def test_verify_keeps_polling_across_five_hours_of_one_hour_credentials():
    now = [T0]
    sts, stubber = _sts(6)
    credentials = refreshing_credentials(
        assume_role_refresher(sts, ROLE, "mlops-cli-test"), time_fetcher=lambda: now[0]
    )
    expiry_of = {f"ASIA{n:016d}": T0 + timedelta(hours=n + 1) for n in range(6)}
    sagemaker = ExpiringEndpoint(credentials, lambda: now[0], expiry_of)
    ticks = [0.0]

    def sleep(seconds: float) -> None:
        ticks[0] += seconds
        now[0] = T0 + timedelta(seconds=ticks[0])

    manifest = object()  # verify stops at the endpoint status; the manifest is not read before InService
    result = verify(
        sagemaker, None, Context(load_config(EXAMPLE_CONFIG)), "churn", "prod", manifest,  # type: ignore[arg-type]
        wait_minutes=8 * 60, sleep=sleep, clock=lambda: ticks[0],
    )  # fmt: skip
    assert result.problems and "Failed" in result.problems[0]  # reached the end, no ExpiredToken on the way
    assert sagemaker.calls == 5 * 120 + 1
    # one AssumeRole per hour (refreshed in the 15 minutes before each expiry), none per poll
    assert 5 <= 6 - len(stubber._queue) <= 6


def test_without_refresh_the_same_wait_would_expire():
    now = [T0]
    sts, _ = _sts(1)
    fetch = assume_role_refresher(sts, ROLE, "mlops-cli-test")
    first = fetch()
    assert datetime.fromisoformat(first["expiry_time"]) == T0 + timedelta(hours=1)
    assert now[0] + timedelta(hours=5) > datetime.fromisoformat(first["expiry_time"])


# --------------------------------------------------------------------------- min_agreement_percent (item 10)


def test_promotion_refuses_below_min_agreement_percent():
    from mlops_platform.cli.shadow import Agreement, ShadowReport, VariantReport, evaluate_promotion, parse_captures
    from mlops_platform.config import Promotion

    def variant(name, role):
        return VariantReport(name, role, role == "challenger", ("arn",), 1000.0, 0.0, 0.0, 10.0)

    def report(agreement):
        return ShadowReport("churn", "e", "c", T0, T0, 24, [variant("a", "champion"), variant("b", "challenger")],
                            agreement)  # fmt: skip

    rule = Promotion(min_agreement_percent=95)
    low = Agreement(champion_captures=50, challenger_captures=50, paired_by_event=40, paired_by_input=0, agreed=30)
    assert any("75.0 % of 40 captured pairs" in v for v in evaluate_promotion(report(low), rule))
    high = Agreement(50, 50, 40, 0, 39)
    assert evaluate_promotion(report(high), rule) == []
    assert any("no captured request pairs" in v for v in evaluate_promotion(report(None), rule))
    assert evaluate_promotion(report(low), Promotion()) == []  # not configured: reported, not gated
    line = '{"captureData": {}, "eventMetadata": {"eventId": "e-1", "inferenceId": "req-7"}}'
    assert parse_captures(line)[0][0].event_id == "req-7"
