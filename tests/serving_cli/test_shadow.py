"""``mlops shadow report``: CloudWatch numbers and captured requests of champion vs challenger, and the verdict.

CloudWatch and S3 are moto (moto honours the EndpointName/VariantName
dimensions of GetMetricStatistics, checked below). moto drops shadow variants,
so the CLI tests use the thin :class:`KeepsShadowVariants` wrapper (support.py)
and one test drives :func:`mlops_platform.cli.shadow.shadow_report` with a botocore ``Stubber``
for the SageMaker calls, which also pins their exact parameters.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber

from mlops_platform.cli import core
from mlops_platform.cli import shadow as shadow_mod
from mlops_platform.config import Promotion
from tests.serving_cli.support import GOVERNANCE, REGION, STAGING_ROLE_ARN, Capture

RULE = Promotion(min_shadow_invocations=100, max_error_rate_percent=1, max_latency_increase_percent=20)
NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def arn(version):
    return f"arn:aws:sagemaker:{REGION}:{GOVERNANCE}:model-package/mlops-churn/{version}"


def variant(role, *, invocations=200.0, errors=0.0, latency=10.0, shadow=False, name=None, version=1):
    return shadow_mod.VariantReport(
        name=name or role,
        role=role,
        shadow=shadow,
        package_arns=(arn(version),),
        invocations=invocations,
        errors_5xx=errors,
        errors_4xx=0.0,
        latency_ms=latency,
    )


def report(*variants):
    return shadow_mod.ShadowReport(
        project="churn",
        endpoint="mlops-churn-staging",
        endpoint_config="cfg",
        start=NOW - timedelta(hours=24),
        end=NOW,
        hours=24,
        variants=list(variants),
    )


# --------------------------------------------------------------------------- evaluate_promotion


def test_a_healthy_challenger_passes():
    assert shadow_mod.evaluate_promotion(report(variant("champion"), variant("challenger", latency=11.9)), RULE) == []


def test_too_few_shadow_invocations_fail():
    (violation,) = shadow_mod.evaluate_promotion(
        report(variant("champion"), variant("challenger", invocations=99)), RULE
    )
    assert "challenger variant challenger had 99 invocations" in violation
    assert "needs at least 100" in violation


def test_error_rate_above_the_limit_fails():
    violations = shadow_mod.evaluate_promotion(report(variant("champion"), variant("challenger", errors=3)), RULE)
    assert violations == [
        "challenger variant challenger 5xx error rate is 1.50 % (3 of 200); the promotion rule allows 1 %"
    ]
    # Exactly at the limit passes.
    assert shadow_mod.evaluate_promotion(report(variant("champion"), variant("challenger", errors=2)), RULE) == []


def test_latency_increase_above_the_limit_fails():
    violations = shadow_mod.evaluate_promotion(report(variant("champion"), variant("challenger", latency=12.5)), RULE)
    assert len(violations) == 1
    assert "12.5 ms is 25.0 % above the champion's 10.0 ms" in violations[0]


def test_missing_latency_data_cannot_pass():
    violations = shadow_mod.evaluate_promotion(report(variant("champion", latency=None), variant("challenger")), RULE)
    assert violations == ["no ModelLatency data for champion variant champion: cannot compare latency"]


def test_single_variant_is_judged_on_its_own_numbers():
    # One variant serves the challenger; it is slow but there is nothing to compare with.
    assert shadow_mod.evaluate_promotion(report(variant("challenger", latency=500)), RULE) == []
    (violation,) = shadow_mod.evaluate_promotion(report(variant("challenger", invocations=10)), RULE)
    assert "had 10 invocations" in violation


def test_no_challenger_fails():
    assert shadow_mod.evaluate_promotion(report(variant("champion")), RULE) == [
        "endpoint mlops-churn-staging has no challenger variant (variants: champion)"
    ]


# --------------------------------------------------------------------------- captures


def test_parse_captures_decodes_base64_and_counts_bad_lines():
    line = {
        "captureData": {
            "endpointInput": {"data": base64.b64encode(b"1,2,3").decode(), "encoding": "BASE64"},
            "endpointOutput": {"data": "0.7", "encoding": "CSV"},
        },
        "eventMetadata": {"eventId": "e1", "inferenceTime": "2026-05-04T10:00:00Z"},
    }
    captures, bad = shadow_mod.parse_captures(json.dumps(line) + "\nnot json\n\n" + json.dumps({"x": 1}))
    assert captures == [shadow_mod.Capture("e1", "1,2,3", "0.7")]
    assert bad == 2


@pytest.mark.parametrize(
    ("champion", "challenger", "agree"),
    [
        ("yes", "yes ", True),
        ("yes", "no", False),
        ("0.91", "0.62", True),  # probabilities: the same decision
        ("0.49", "0.51", False),
        ("0.2,0.8", "0.4,0.6", True),
        ("0.2,0.8", "0.6,0.4", False),
        ("12.0000001", "12.0000004", True),  # not probabilities: equal to 1e-6
        ("12.00001", "12.00002", False),
        ("0.5", "0.5,0.5", False),
        (None, "0.5", False),
    ],
)
def test_outputs_agree(champion, challenger, agree):
    assert shadow_mod.outputs_agree(champion, challenger) is agree


def test_pairing_by_event_id_then_by_identical_input():
    champion = [
        shadow_mod.Capture("e1", "a", "0.9"),
        shadow_mod.Capture("e2", "b", "0.1"),
        shadow_mod.Capture(None, "c", "0.8"),
        shadow_mod.Capture(None, "c", "0.7"),
        shadow_mod.Capture("e9", "z", "0.4"),  # the challenger never saw it (sampling)
    ]
    challenger = [
        shadow_mod.Capture("e2", "b", "0.9"),  # disagrees
        shadow_mod.Capture("e1", "a", "0.6"),
        shadow_mod.Capture(None, "c", "0.55"),  # pairs once only
        shadow_mod.Capture("e7", "y", "0.1"),
    ]
    agreement = shadow_mod.pair_captures(champion, challenger)
    assert (agreement.paired_by_event, agreement.paired_by_input, agreement.agreed) == (2, 1, 2)
    assert agreement.rate_percent == pytest.approx(200 / 3)
    assert (agreement.champion_captures, agreement.challenger_captures) == (5, 4)


def test_read_captures_reads_the_newest_objects_of_the_window(world):
    staging = world.stage("staging")
    since = datetime.now(UTC) - timedelta(minutes=5)
    old = staging.capture("champion", [Capture("old", "x", "1")], name="old", when=since - timedelta(hours=2))
    for name in ("a", "b", "c"):
        staging.capture("champion", [Capture(name, name, "0.5")], name=name)
    prefix = f"projects/churn/data-capture/{staging.endpoint}/champion/"
    assert old.startswith(prefix)
    captures, objects, bad = shadow_mod.read_captures(staging.s3, staging.bucket, prefix, since, limit=2)
    assert objects == 2 and bad == 0
    assert {c.event_id for c in captures} == {"b", "c"}  # the older-hour object is not even listed
    assert shadow_mod.read_captures(staging.s3, "no-such-bucket-here", prefix, since) == ([], 0, 0)


# --------------------------------------------------------------------------- the command (moto + thin fake)


def seed_shadow_test(world, *, challenger_invocations=150, challenger_latency=11.0):
    v1, v2 = world.register(), world.register()
    staging = world.stage("staging")
    staging.deploy({"champion": v1, "challenger": v2}, shadow=("challenger",))
    staging.metrics("champion", invocations=300, errors_4xx=2, latency_ms=10.0)
    staging.metrics("challenger", invocations=challenger_invocations, errors_5xx=1, latency_ms=challenger_latency)
    # Another endpoint's numbers on the same variant name must not count.
    staging.metrics("challenger", invocations=10_000, errors_5xx=10_000, endpoint="mlops-fraud-staging")
    staging.capture("champion", [Capture("e1", "1,2", "0.9"), Capture("e2", "3,4", "0.2"), Capture("e3", "5,6", "0.7")])
    staging.capture("challenger", [Capture("e1", "1,2", "0.8"), Capture("e2", "3,4", "0.6")])
    return v1, v2


def test_shadow_report_compares_champion_and_challenger(world, mlops):
    seed_shadow_test(world)
    result = mlops("--role-arn", STAGING_ROLE_ARN, "shadow", "report", "churn", "--hours", "6")
    assert result.code == 0, result.err
    out = result.out
    assert "Shadow test of churn: endpoint mlops-churn-staging" in out
    header = next(line for line in out.splitlines() if "champion (champion)" in line)
    assert header.index("champion (champion)") < header.index("challenger (challenger)")
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 3}
    assert [cell.strip() for cell in rows["Serves"].split("│")[2:4]] == ["v1", "v2"]
    assert [cell.strip() for cell in rows["Invocations"].split("│")[2:4]] == ["300", "150"]
    assert "10000" not in out
    assert "0.67 %" in rows["5xx error rate"]
    assert "10.0 ms" in rows["Avg model latency"] and "11.0 ms" in rows["Avg model latency"]
    assert "live" in rows["Traffic"] and "shadow copy" in rows["Traffic"]
    assert "Captured pairs: 2 of 2 challenger captures matched a champion capture (2 by eventId, 0 by identical " in out
    assert "outputs agree in 1 (50.00 %)" in out
    assert "Promotion: passes the rule" in out


def test_shadow_report_shows_why_a_promotion_would_be_refused(world, mlops):
    seed_shadow_test(world, challenger_invocations=40, challenger_latency=30.0)
    result = mlops("--role-arn", STAGING_ROLE_ARN, "shadow", "report", "churn")
    assert result.code == 0, result.err
    assert "Promotion: would be refused" in result.out
    assert "had 40 invocations" in result.out
    assert "2.50 %" in result.out and "200.0 % above the champion's 10.0 ms" in result.out


def test_shadow_report_ignores_numbers_from_before_the_last_endpoint_update(world, mlops):
    v1 = world.register()
    staging = world.stage("staging")
    staging.metrics("champion", invocations=500, latency_ms=5.0, when=datetime.now(UTC) - timedelta(hours=3))
    staging.deploy({"champion": v1})
    staging.metrics("champion", invocations=120, latency_ms=7.0)
    result = mlops("--role-arn", STAGING_ROLE_ARN, "shadow", "report", "churn")
    assert result.code == 0, result.err
    # One variant and no champion yet: it serves the challenger and is judged alone.
    assert "challenger (champion)" in result.out
    assert "120" in result.out and "500" not in result.out and "7.0 ms" in result.out
    assert "window starts at the endpoint's last update" in result.out
    assert "Promotion: passes the rule" in result.out
    assert "Captured pairs" not in result.out


def test_shadow_report_without_a_staging_endpoint_fails(world, mlops):
    result = mlops("--role-arn", STAGING_ROLE_ARN, "shadow", "report", "churn")
    assert result.code == 1
    assert "staging endpoint mlops-churn-staging does not exist" in result.err


def test_shadow_report_rejects_a_window_out_of_range(world, mlops, capsys):
    with pytest.raises(SystemExit) as exit_info:
        mlops("shadow", "report", "churn", "--hours", "0")
    assert exit_info.value.code == 2
    assert "--hours must be between 1 and 336" in capsys.readouterr().err


# --------------------------------------------------------------------------- Stubber for SageMaker


def test_shadow_report_with_stubbed_sagemaker_calls(world):
    """SageMaker via Stubber (moto drops shadow variants); CloudWatch and S3 are the staging account's moto."""
    staging = world.stage("staging")
    staging.metrics("champion", invocations=200, latency_ms=20.0)
    staging.metrics("challenger", invocations=180, latency_ms=21.0)
    staging.metrics("champion", invocations=999, endpoint="mlops-churn-prod")
    staging.capture("champion", [Capture(None, "1,2", "0.9"), Capture(None, "3,4", "0.1")])
    staging.capture("challenger", [Capture(None, "3,4", "0.2"), Capture(None, "1,2", "0.4")])

    sagemaker = boto3.client("sagemaker", region_name=REGION)
    stub = Stubber(sagemaker)
    created = datetime.now(UTC) - timedelta(days=2)
    stub.add_response(
        "describe_endpoint",
        {
            "EndpointName": "mlops-churn-staging",
            "EndpointArn": f"arn:aws:sagemaker:{REGION}:333333333333:endpoint/mlops-churn-staging",
            "EndpointConfigName": "cfg-7",
            "EndpointStatus": "InService",
            "CreationTime": created,
            "LastModifiedTime": created,
            "ProductionVariants": [{"VariantName": "champion"}],
            "ShadowProductionVariants": [{"VariantName": "challenger"}],
        },
        {"EndpointName": "mlops-churn-staging"},
    )
    variant_spec = {"InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}
    stub.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": "cfg-7",
            "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:333333333333:endpoint-config/cfg-7",
            "CreationTime": created,
            "ProductionVariants": [{"VariantName": "champion", "ModelName": "m-champion", **variant_spec}],
            "ShadowProductionVariants": [{"VariantName": "challenger", "ModelName": "m-challenger", **variant_spec}],
        },
        {"EndpointConfigName": "cfg-7"},
    )
    for model, version, key in (("m-champion", 1, "PrimaryContainer"), ("m-challenger", 2, "Containers")):
        container = {"ModelPackageName": arn(version)}
        stub.add_response(
            "describe_model",
            {
                "ModelName": model,
                "ModelArn": f"arn:aws:sagemaker:{REGION}:333333333333:model/{model}",
                "CreationTime": created,
                key: container if key == "PrimaryContainer" else [container],
            },
            {"ModelName": model},
        )
    with stub:
        result = shadow_mod.shadow_report(
            sagemaker, staging.cloudwatch, staging.s3, core.Context(world.config), "churn"
        )
    stub.assert_no_pending_responses()

    assert [(v.name, v.role, v.shadow, v.version) for v in result.variants] == [
        ("champion", "champion", False, 1),
        ("challenger", "challenger", True, 2),
    ]
    assert (result.champion.invocations, result.challenger.invocations) == (200, 180)
    assert result.challenger.latency_ms == pytest.approx(21.0)
    assert result.agreement is not None
    assert (result.agreement.paired_by_input, result.agreement.agreed) == (2, 1)
    assert result.notes == []
    assert shadow_mod.evaluate_promotion(result, RULE) == []
