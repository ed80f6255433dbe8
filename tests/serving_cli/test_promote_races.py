"""``mlops promote`` while the version changes under it: rejected or revoked during the shadow report.

The shadow report reads CloudWatch and data capture and can take a while; a
rejection (the registry) or a staging rollback (the release table) landing in
that window must not leave the version released to prod or deployed. The
tests make the change inside the window by wrapping the report the command
runs (:func:`mlops_platform.cli.shadow.shadow_report` as
:mod:`mlops_platform.cli.promote` calls it); everything else is the moto world
of ``support.py``.
"""

from __future__ import annotations

import pytest

from mlops_platform.cli import promote as promote_mod
from tests.serving_cli.support import PROJECT
from tests.serving_cli.test_promote import PROMOTE, one_refusal, staged


@pytest.fixture
def during_report(monkeypatch):
    """``during_report(change)``: run ``change()`` right after the command's shadow report is built."""

    def install(change):
        original = promote_mod.shadow_report

        def report_then_change(*args, **kwargs):
            report = original(*args, **kwargs)
            change()
            return report

        monkeypatch.setattr(promote_mod, "shadow_report", report_then_change)

    return install


def test_a_version_rejected_during_the_shadow_report_is_not_released_nor_deployed(world, mlops, during_report):
    v1, v2 = staged(world)
    during_report(lambda: world.sagemaker.update_model_package(ModelPackageArn=v2, ModelApprovalStatus="Rejected"))

    result = mlops(*PROMOTE)

    one_refusal(result, "refused: mlops-churn version 2 changed to Rejected in the model registry during the promotion")
    record = world.table.get_release(PROJECT, "prod", 2)
    # The record written before the registry was read again is revoked, not left released.
    assert record.status == "revoked" and record.was_current is False
    assert "rejected during promotion" in record.revoked_reason
    assert record.revoked_event_id == record.event_id and record.deployment_execution_id is None
    assert [r.version for r in world.table.releases(PROJECT, "prod") if r.status == "released"] == [1]
    assert world.executions() == []


def test_a_staging_release_revoked_during_the_shadow_report_refuses_before_writing(world, mlops, during_report):
    staged(world)
    staging_v2 = world.table.get_release(PROJECT, "staging", 2)
    during_report(lambda: world.revoke(staging_v2, "2026-05-04T09:00:00Z"))

    result = mlops(*PROMOTE)

    one_refusal(
        result,
        "refused: staging's release of churn changed during the shadow report: it is version 1 now, not version 2",
    )
    assert world.table.get_release(PROJECT, "prod", 2) is None
    assert world.executions() == []


def test_a_recorded_prod_release_of_a_rejected_version_does_not_get_its_pipeline_started(world, mlops):
    _, v2 = staged(world)
    world.release("prod", v2, "2026-05-04T09:00:00Z")  # recorded, then the pipeline start failed
    world.sagemaker.update_model_package(ModelPackageArn=v2, ModelApprovalStatus="Rejected")

    result = mlops(*PROMOTE)

    one_refusal(result, "the version is Rejected in the model registry now: not deploying it")
    assert world.table.get_release(PROJECT, "prod", 2).deployment_execution_id is None
    assert world.executions() == []


def test_promote_still_promotes_when_nothing_changes_during_the_shadow_report(world, mlops, during_report):
    _, v2 = staged(world)
    during_report(lambda: None)

    result = mlops(*PROMOTE)

    assert result.code == 0, result.err
    release = world.table.get_release(PROJECT, "prod", 2)
    assert release.status == "released"
    (execution,) = world.executions()
    assert execution["MODEL_PACKAGE_ARN"] == v2 and execution["id"] == release.deployment_execution_id
