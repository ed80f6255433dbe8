"""``mlops promote PROJECT --to prod``: governance work in moto's default account, the shadow test in staging.

Everything is moto (DynamoDB, SageMaker registry, CodePipeline V2 with
variables, STS, CloudWatch, S3) except the staging endpoint's shadow variant,
which moto drops: the thin :class:`KeepsShadowVariants` wrapper keeps it
(support.py). moto accepts and ignores ``clientRequestToken``, so counting
executions measures the command's own idempotency.
"""

from __future__ import annotations

import json

from tests.serving_cli.support import ADMIN_ROLE_ARN, GOVERNANCE, PROJECT, STAGING_ROLE_ARN

PROMOTE = (
    "--role-arn",
    ADMIN_ROLE_ARN,
    "promote",
    PROJECT,
    "--to",
    "prod",
    "--reason",
    "shadow test clean for a week",
    "--staging-role-arn",
    STAGING_ROLE_ARN,
)


def staged(world, *, invocations=150, latency=11.0, challenger_serves=None):
    """v1 runs in prod; v2 is staging's release, shadowing v1 on the staging endpoint."""
    v1, v2 = world.register(), world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z", deployment_execution_id="exec-1")
    world.release("prod", v1, "2026-05-02T09:00:00Z", deployment_execution_id="exec-2")
    world.release("staging", v2, "2026-05-03T09:00:00Z", deployment_execution_id="exec-3")
    staging = world.stage("staging")
    staging.deploy({"champion": v1, "challenger": challenger_serves or v2}, shadow=("challenger",))
    staging.metrics("champion", invocations=300, latency_ms=10.0)
    staging.metrics("challenger", invocations=invocations, latency_ms=latency)
    return v1, v2


def one_refusal(result, text):
    assert result.code == 3, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert text in lines[0], lines[0]
    return lines[0]


def test_promote_records_the_prod_release_and_starts_the_deploy_pipeline(world, mlops, tmp_path):
    v1, v2 = staged(world)
    result = mlops(*PROMOTE)
    assert result.code == 0, result.err
    assert result.err == ""

    release = world.table.get_release(PROJECT, "prod", 2)
    assert release.status == "released" and release.model_package_arn == v2
    assert release.approved_by.startswith(f"arn:aws:sts::{GOVERNANCE}:assumed-role/mlops-governance-admin/mlops-")
    assert release.reason == "shadow test clean for a week"
    assert release.event_id == f"promote:2:{release.recorded_at}"
    (execution,) = world.executions()
    variables = {"PROJECT": PROJECT, "STAGE": "prod", "MODEL_PACKAGE_ARN": v2}
    assert execution == {"id": release.deployment_execution_id, **variables}

    assert "Promotion: passes the rule" in result.out
    assert f"Recorded prod release of churn version 2 ({v2})" in result.out
    assert f"at {release.recorded_at} by {release.approved_by}: shadow test clean for a week" in result.out
    assert f"Started deploy pipeline mlops-deploy: execution {execution['id']}" in result.out

    # What the deploy pipeline then exports for prod: v2 challenging v1.
    assert mlops("releases", "export", "--project", PROJECT, "--stage", "prod").code == 0
    manifest = json.loads((tmp_path / "releases" / PROJECT / "prod.json").read_text())
    assert (manifest["challenger"]["version"], manifest["champion"]["version"]) == (2, 1)


def test_promote_twice_changes_nothing_the_second_time(world, mlops):
    staged(world)
    assert mlops(*PROMOTE).code == 0
    before = world.table.releases(PROJECT, "prod")
    # No staging credentials are needed to see that there is nothing to do.
    again = mlops(*PROMOTE[:-2], "--staging-profile", "nobody")
    assert again.code == 0, again.err
    assert "churn version 2 already runs in prod" in again.out and "nothing changed" in again.out
    assert world.table.releases(PROJECT, "prod") == before
    assert len(world.executions()) == 1


def test_promote_is_refused_without_enough_shadow_invocations(world, mlops):
    staged(world, invocations=20)
    result = mlops(*PROMOTE)
    line = one_refusal(result, "refused: churn version 2 does not meet the promotion rule: ")
    assert "challenger variant challenger had 20 invocations" in line and "needs at least 100" in line
    assert "Promotion: would be refused" in result.out  # the report explains it
    assert world.table.get_release(PROJECT, "prod", 2) is None
    assert world.executions() == []


def test_promote_is_refused_when_the_version_is_no_longer_approved(world, mlops):
    _, v2 = staged(world)
    world.sagemaker.update_model_package(ModelPackageArn=v2, ModelApprovalStatus="Rejected")
    # Refused before any staging session is made: an unknown staging profile does not matter.
    result = mlops(*PROMOTE[:-2], "--staging-profile", "nobody")
    one_refusal(result, "refused: mlops-churn version 2 is Rejected in the model registry, not Approved")
    assert result.out == ""
    assert world.table.get_release(PROJECT, "prod", 2) is None
    assert world.executions() == []


def test_promote_is_refused_when_staging_has_no_release(world, mlops):
    one_refusal(mlops(*PROMOTE), "refused: nothing is released to staging for churn")


def test_promote_is_refused_when_the_staging_endpoint_runs_another_version(world, mlops):
    # Staging released v2, but its deployment has not reached the endpoint: the numbers are v1's.
    v1, v2 = world.register(), world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z")
    world.release("staging", v2, "2026-05-03T09:00:00Z")
    staging = world.stage("staging")
    staging.deploy({"champion": v1, "challenger": v1}, shadow=("challenger",))
    staging.metrics("champion", invocations=300, latency_ms=10.0)
    staging.metrics("challenger", invocations=300, latency_ms=10.0)
    line = one_refusal(mlops(*PROMOTE), "refused: churn version 2 does not meet the promotion rule")
    assert f"the staging challenger variant challenger serves {v1}, not version 2" in line
    assert world.table.get_release(PROJECT, "prod", 2) is None
    assert world.executions() == []


def test_promote_is_refused_without_a_staging_endpoint(world, mlops):
    v1 = world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z")
    one_refusal(
        mlops(*PROMOTE), "refused: no shadow test to judge: staging endpoint mlops-churn-staging does not exist"
    )


def test_promote_starts_the_pipeline_of_a_prod_release_recorded_without_one(world, mlops):
    _, v2 = staged(world)
    world.release("prod", v2, "2026-05-04T09:00:00Z")  # recorded, then the pipeline start failed
    result = mlops(*PROMOTE)
    assert result.code == 0, result.err
    assert "its deployment had not started" in result.out
    (execution,) = world.executions()
    assert execution["MODEL_PACKAGE_ARN"] == v2 and execution["STAGE"] == "prod"
    assert world.table.get_release(PROJECT, "prod", 2).deployment_execution_id == execution["id"]
    assert "already runs in prod" in mlops(*PROMOTE).out
    assert len(world.executions()) == 1
