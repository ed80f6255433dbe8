"""``mlops releases export``: the release table, as manifests the serving stacks synthesize from (moto DynamoDB)."""

from __future__ import annotations

import json

from mlops_platform.release_manifest import load_manifests
from tests.serving_cli.support import PROJECT


def manifest(tmp_path, stage):
    return json.loads((tmp_path / "releases" / PROJECT / f"{stage}.json").read_text())


def ref(arn):
    """A manifest entry: the version, its ARN and the instance types its package was registered for."""
    return {
        "version": int(arn.rsplit("/", 1)[1]),
        "model_package_arn": arn,
        "realtime_instance_types": ["ml.m5.large", "ml.m5.xlarge"],
    }


def test_first_release_has_no_champion(world, mlops, tmp_path):
    v1 = world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z")
    result = mlops("releases", "export", "--project", PROJECT, "--stage", "staging")
    assert result.code == 0, result.err
    assert result.err == ""
    assert result.out.strip() == f"churn/staging: wrote releases/churn/staging.json: version 1 ({v1})"
    assert manifest(tmp_path, "staging") == {"project": "churn", "stage": "staging", "challenger": ref(v1)}
    # What the synth reads back.
    loaded = load_manifests(tmp_path / "releases", world.config)
    assert loaded[(PROJECT, "staging")].challenger.model_package_arn == v1
    assert loaded[(PROJECT, "staging")].challenger.realtime_instance_types == ["ml.m5.large", "ml.m5.xlarge"]


def test_staging_challenger_is_shadowed_by_what_prod_serves(world, mlops, tmp_path):
    v1, v2 = world.register(), world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z")
    world.release("prod", v1, "2026-05-02T09:00:00Z")
    world.release("staging", v2, "2026-05-03T09:00:00Z")
    result = mlops("releases", "export", "--project", PROJECT, "--stage", "staging")
    assert result.code == 0, result.err
    assert "challenger version 2, champion version 1" in result.out
    assert manifest(tmp_path, "staging") == {
        "project": "churn",
        "stage": "staging",
        "challenger": ref(v2),
        "champion": ref(v1),
    }


def test_promotion_makes_the_previous_prod_release_the_champion(world, mlops, tmp_path):
    v1, v2 = world.register(), world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z")
    world.release("prod", v1, "2026-05-02T09:00:00Z")
    world.release("staging", v2, "2026-05-03T09:00:00Z")
    world.release("prod", v2, "2026-05-04T09:00:00Z")
    assert mlops("releases", "export", "--project", PROJECT, "--stage", "prod").code == 0
    assert manifest(tmp_path, "prod")["challenger"] == ref(v2)
    assert manifest(tmp_path, "prod")["champion"] == ref(v1)
    # Staging's champion is prod's v2 now, the same as its challenger: one model.
    assert mlops("releases", "export", "--project", PROJECT, "--stage", "staging").code == 0
    assert manifest(tmp_path, "staging") == {"project": "churn", "stage": "staging", "challenger": ref(v2)}


def test_revoked_release_rolls_the_manifest_back(world, mlops, tmp_path):
    v1, v2 = world.register(), world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z")
    second = world.release("staging", v2, "2026-05-02T09:00:00Z")
    world.revoke(second, "2026-05-03T09:00:00Z")
    result = mlops("releases", "export", "--project", PROJECT, "--stage", "staging", "--expect-arn", v1)
    assert result.code == 0 and result.err == ""
    assert manifest(tmp_path, "staging") == {"project": "churn", "stage": "staging", "challenger": ref(v1)}


def test_nothing_released_removes_the_manifest(world, mlops, tmp_path):
    stale = tmp_path / "out" / PROJECT / "prod.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    result = mlops("releases", "export", "--project", PROJECT, "--stage", "prod", "--out", str(tmp_path / "out"))
    assert result.code == 0, result.err
    assert not stale.exists()
    assert "removed" in result.out and "no release yet: infrastructure only, no endpoint" in result.out


def test_superseded_execution_warns_and_the_table_wins(world, mlops, tmp_path):
    v1, v2 = world.register(), world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z")
    world.release("staging", v2, "2026-05-02T09:00:00Z")
    result = mlops("releases", "export", "--project", PROJECT, "--stage", "staging", "--expect-arn", v1)
    assert result.code == 0
    assert manifest(tmp_path, "staging")["challenger"] == ref(v2)
    warning = result.err.strip()
    assert warning.startswith("mlops: warning: this execution was started for " + v1)
    assert f"current staging release of churn is {v2}" in warning
    assert "superseded" in warning and "table's current release" in warning


def test_expecting_no_model_matches_a_stage_left_without_one(world, mlops, tmp_path):
    # The rejected handler deploys MODEL_PACKAGE_ARN=none when it revokes a stage's only release.
    only = world.release("prod", world.register(), "2026-05-01T09:00:00Z")
    world.revoke(only, "2026-05-02T09:00:00Z")
    result = mlops("releases", "export", "--project", PROJECT, "--stage", "prod", "--expect-arn", "none")
    assert result.code == 0 and result.err == ""
    assert not (tmp_path / "releases" / PROJECT / "prod.json").exists()
    v2 = world.register()
    world.release("prod", v2, "2026-05-03T09:00:00Z")
    result = mlops("releases", "export", "--project", PROJECT, "--stage", "prod", "--expect-arn", "none")
    assert f"started for none, but the current prod release of churn is {v2}" in result.err


def test_export_of_an_unknown_project_is_a_usage_error(world, mlops):
    result = mlops("releases", "export", "--project", "nope", "--stage", "staging")
    assert result.code == 2
    assert "unknown project 'nope'" in result.err


def test_releases_listing_still_works_with_and_without_project(world, mlops):
    v1 = world.register()
    world.release("staging", v1, "2026-05-01T09:00:00Z")
    for args in (("releases",), ("releases", "--project", PROJECT)):
        result = mlops(*args)
        assert result.code == 0, result.err
        assert "What runs where" in result.out and v1 in result.out
