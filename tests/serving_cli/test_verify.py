"""``mlops verify PROJECT --stage S``: the stage's endpoint serves what the release manifest says.

The CLI runs with ``--role-arn`` into the stage's moto account, where the
endpoint (models created from model package ARNs, endpoint configs), the serving
stack (a template whose only output is ``EndpointConfigName``) live. moto drops
shadow variants and has no UpdateEndpoint: the CLI tests keep shadow variants
with the thin :class:`KeepsShadowVariants` wrapper and redeploy by recreating
the endpoint (support.py); the waiting and shadow-without-champion tests stub
SageMaker with botocore ``Stubber`` and call :func:`mlops_platform.cli.verify.verify` directly.
"""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from mlops_platform.cli import core
from mlops_platform.cli import verify as verify_mod
from mlops_platform.release_manifest import ModelVersion, ReleaseManifest
from tests.serving_cli.support import PROJECT, REGION, STAGE_ROLE_ARN


def verify(mlops, stage, *args):
    return mlops("--role-arn", STAGE_ROLE_ARN[stage], "verify", PROJECT, "--stage", stage, *args)


def export(mlops, stage):
    assert mlops("releases", "export", "--project", PROJECT, "--stage", stage).code == 0


def failed(result, *texts):
    assert result.code == 1, (result.out, result.err)
    assert result.out == ""
    lines = result.err.strip().splitlines()
    assert all(line.startswith(f"mlops: verify {PROJECT}/") for line in lines), lines
    for text in texts:
        assert any(text in line for line in lines), (text, lines)
    return lines


def test_staging_serving_champion_and_shadow_challenger_verifies(world, mlops):
    v1, v2 = world.register(), world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z")
    world.release("prod", v1, "2026-05-02T09:00:00Z")
    world.release("staging", v2, "2026-05-03T09:00:00Z")
    export(mlops, "staging")
    config = world.stage("staging").deploy({"champion": v1, "challenger": v2}, shadow=("challenger",))
    result = verify(mlops, "staging")
    assert result.code == 0, result.err
    assert result.err == ""
    assert f"endpoint mlops-churn-staging is InService with config {config}" in result.out
    assert "variant champion (production) serves version 1 (champion)" in result.out
    assert "variant challenger (shadow) serves version 2 (challenger)" in result.out


def test_prod_without_champion_serves_the_release_in_every_variant(world, mlops):
    v1 = world.register()
    world.release("prod", v1, "2026-05-02T09:00:00Z")
    export(mlops, "prod")
    world.stage("prod").deploy({"champion": v1, "challenger": v1})
    result = verify(mlops, "prod")
    assert result.code == 0, result.err
    assert "variant champion (production) serves version 1 (challenger)" in result.out
    assert "variant challenger (production) serves version 1 (challenger)" in result.out


def test_silent_rollback_fails(world, mlops):
    v1, v2 = world.register(), world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z")
    staging = world.stage("staging")
    old = staging.deploy({"champion": v1})
    world.release("staging", v2, "2026-05-02T09:00:00Z")
    export(mlops, "staging")
    # The stack deployed the new config; SageMaker rolled the endpoint back to the old one.
    new = staging.endpoint_config({"champion": v1, "challenger": v2}, shadow=("challenger",))
    staging.stack_output(new)
    lines = failed(
        verify(mlops, "staging"),
        f"SageMaker rolled back: endpoint mlops-churn-staging serves config {old}, the stack deployed {new}",
        "endpoint mlops-churn-staging lacks the configured variants challenger",
    )
    assert len(lines) == 2


def test_wrong_model_version_fails(world, mlops):
    v1, v2 = world.register(), world.register()
    world.release("staging", v2, "2026-05-01T09:00:00Z")
    export(mlops, "staging")
    world.stage("staging").deploy({"champion": v1})
    (line,) = failed(verify(mlops, "staging"))
    assert line == (
        f"mlops: verify churn/staging: variant champion serves {v1}, but the release names version 2 ({v2}) "
        "as its challenger"
    )


def test_no_manifest_and_no_endpoint_is_as_expected(world, mlops):
    world.stage("staging")
    # The deploy pipeline waits up to SageMaker's four-hour cap for a blue/green update.
    result = verify(mlops, "staging", "--wait-minutes", "240")
    assert result.code == 0, result.err
    assert "no release: no endpoint, as expected" in result.out


def test_no_manifest_but_an_endpoint_fails(world, mlops):
    v1 = world.register()
    world.stage("staging").deploy({"champion": v1})
    failed(verify(mlops, "staging"), "no release, but endpoint mlops-churn-staging exists (InService")


def test_a_release_without_endpoint_fails(world, mlops):
    v1 = world.register()
    world.release("prod", v1, "2026-05-01T09:00:00Z")
    export(mlops, "prod")
    world.stage("prod")
    failed(verify(mlops, "prod"), "endpoint mlops-churn-prod does not exist, but version 1 is released to prod")


def test_a_missing_serving_stack_fails(world, mlops):
    v1 = world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z")
    export(mlops, "staging")
    staging = world.stage("staging")
    staging.serve(staging.endpoint_config({"champion": v1}))
    failed(verify(mlops, "staging"), "stack mlops-staging-churn-serving does not exist")


def test_verify_reads_an_explicit_manifest_and_rejects_a_foreign_one(world, mlops, tmp_path):
    v1 = world.register()
    manifest = ReleaseManifest(project=PROJECT, stage="prod", challenger=ModelVersion(version=1, model_package_arn=v1))
    path = tmp_path / "elsewhere.json"
    path.write_text(manifest.to_json())
    world.stage("staging").deploy({"champion": v1})
    result = verify(mlops, "staging", "--manifest", str(path))
    assert result.code == 2
    assert "manifest error:" in result.err and "is for churn/prod, not churn/staging" in result.err
    path.write_text(manifest.model_copy(update={"stage": "staging"}).to_json())
    assert verify(mlops, "staging", "--manifest", str(path)).code == 0


# --------------------------------------------------------------------------- Stubber for SageMaker


ARN = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-churn/{}"
CREATED = datetime(2026, 5, 1, tzinfo=UTC)


def endpoint(status, config="cfg-2", reason=None, shadow=False):
    response = {
        "EndpointName": "mlops-churn-staging",
        "EndpointArn": f"arn:aws:sagemaker:{REGION}:333333333333:endpoint/mlops-churn-staging",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": CREATED,
        "LastModifiedTime": CREATED,
        "ProductionVariants": [{"VariantName": "champion"}],
    }
    if shadow:
        response["ShadowProductionVariants"] = [{"VariantName": "challenger"}]
    if reason:
        response["FailureReason"] = reason
    return response


def stub_config(stub, config, versions):
    """describe_endpoint_config + describe_model for {variant: (version, shadow)}."""
    production, shadows = [], []
    for name, (_, is_shadow) in versions.items():
        entry = {
            "VariantName": name,
            "ModelName": f"m-{name}",
            "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large",
        }
        (shadows if is_shadow else production).append(entry)
    response = {
        "EndpointConfigName": config,
        "EndpointConfigArn": f"arn:aws:sagemaker:{REGION}:333333333333:endpoint-config/{config}",
        "CreationTime": CREATED,
        "ProductionVariants": production,
    }
    if shadows:
        response["ShadowProductionVariants"] = shadows
    stub.add_response("describe_endpoint_config", response, {"EndpointConfigName": config})
    for name, (version, _) in versions.items():
        stub.add_response(
            "describe_model",
            {
                "ModelName": f"m-{name}",
                "ModelArn": f"arn:aws:sagemaker:{REGION}:333333333333:model/m-{name}",
                "CreationTime": CREATED,
                "PrimaryContainer": {"ModelPackageName": ARN.format(version)},
            },
            {"ModelName": f"m-{name}"},
        )


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


def only_v1():
    return ReleaseManifest(
        project=PROJECT, stage="staging", challenger=ModelVersion(version=1, model_package_arn=ARN.format(1))
    )


@pytest.fixture
def stubbed(world):
    """A Stubber-backed SageMaker client and the staging account's moto CloudFormation with the stack on cfg-2."""
    staging = world.stage("staging")
    staging.stack_output("cfg-2")
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    stub = Stubber(sagemaker)
    stub.activate()
    yield stub, sagemaker, staging.cloudformation, core.Context(world.config)
    stub.deactivate()


def test_verify_waits_for_an_updating_endpoint(stubbed):
    stub, sagemaker, cloudformation, ctx = stubbed
    for status in ("Updating", "Updating", "InService"):
        stub.add_response("describe_endpoint", endpoint(status), {"EndpointName": "mlops-churn-staging"})
    stub_config(stub, "cfg-2", {"champion": (1, False)})
    clock = Clock()
    result = verify_mod.verify(
        sagemaker, cloudformation, ctx, PROJECT, "staging", only_v1(), wait_minutes=5, sleep=clock.sleep, clock=clock
    )
    assert result.problems == []
    assert clock.sleeps == [30, 30]
    stub.assert_no_pending_responses()


def test_verify_gives_up_when_the_wait_ends(stubbed):
    stub, sagemaker, cloudformation, ctx = stubbed
    for _ in range(3):
        stub.add_response("describe_endpoint", endpoint("Updating"), {"EndpointName": "mlops-churn-staging"})
    clock = Clock()
    result = verify_mod.verify(
        sagemaker, cloudformation, ctx, PROJECT, "staging", only_v1(), wait_minutes=1, sleep=clock.sleep, clock=clock
    )
    assert result.problems == ["endpoint mlops-churn-staging is still Updating after waiting 1 min"]
    assert clock.sleeps == [30, 30]


def test_verify_does_not_wait_by_default(stubbed):
    stub, sagemaker, cloudformation, ctx = stubbed
    stub.add_response("describe_endpoint", endpoint("Creating"), {"EndpointName": "mlops-churn-staging"})
    result = verify_mod.verify(sagemaker, cloudformation, ctx, PROJECT, "staging", only_v1(), sleep=pytest.fail)
    assert result.problems == ["endpoint mlops-churn-staging is still Creating (pass --wait-minutes to wait)"]


def test_verify_reports_a_failed_endpoint_with_its_reason(stubbed):
    stub, sagemaker, cloudformation, ctx = stubbed
    stub.add_response(
        "describe_endpoint",
        endpoint("Failed", reason="The primary container did not pass the ping health check."),
        {"EndpointName": "mlops-churn-staging"},
    )
    result = verify_mod.verify(sagemaker, cloudformation, ctx, PROJECT, "staging", only_v1(), wait_minutes=5)
    assert result.problems == [
        "endpoint mlops-churn-staging is Failed: The primary container did not pass the ping health check."
    ]


def test_a_shadow_variant_without_champion_fails(stubbed):
    stub, sagemaker, cloudformation, ctx = stubbed
    stub.add_response("describe_endpoint", endpoint("InService", shadow=True), {"EndpointName": "mlops-churn-staging"})
    stub_config(stub, "cfg-2", {"champion": (1, False), "challenger": (1, True)})
    result = verify_mod.verify(sagemaker, cloudformation, ctx, PROJECT, "staging", only_v1())
    assert result.problems == ["shadow variant challenger exists, but the release has no champion (version 1 only)"]
    stub.assert_no_pending_responses()


def test_an_unconfigured_variant_fails(stubbed):
    stub, sagemaker, cloudformation, ctx = stubbed
    stub.add_response("describe_endpoint", endpoint("InService"), {"EndpointName": "mlops-churn-staging"})
    stub_config(stub, "cfg-2", {"champion": (1, False), "blue": (1, False)})
    result = verify_mod.verify(sagemaker, cloudformation, ctx, PROJECT, "staging", only_v1())
    assert result.problems == ["variant blue (production) is not in the staging config of churn"]
