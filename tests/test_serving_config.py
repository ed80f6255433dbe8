"""Serving config and release manifests: every bad value gives one clear line naming file and field."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mlops_platform.config import ConfigError, load_config
from mlops_platform.release_manifest import load_manifests, manifest_path
from tests.synth import ROOT, example_project, write_config

P = {"name": "primary"}


def _serving(**stages) -> dict:
    project = example_project()
    project["serving"] = stages
    return project


def _variants(*variants, **extra) -> dict:
    return {"variants": list(variants), **extra}


# (id, serving section, expected fragments of the one line)
BAD_SERVING = [
    (
        "weights-not-100",
        _serving(prod=_variants({"name": "a", "weight": 70}, {"name": "b", "weight": 20})),
        ["serving.prod.variants", "must sum to 100", "got 90", "a=70, b=20"],
    ),
    (
        "weight-over-100",
        _serving(prod=_variants({"name": "a", "weight": 150})),
        ["serving.prod.variants[0].weight", "less than or equal to 100"],
    ),
    (
        "shadow-sampling-zero",
        _serving(staging=_variants(P, {"name": "s", "shadow": True, "sampling_percentage": 0})),
        ["serving.staging.variants[1].sampling_percentage", "greater than or equal to 1"],
    ),
    (
        "shadow-sampling-over-100",
        _serving(staging=_variants(P, {"name": "s", "shadow": True, "sampling_percentage": 101})),
        ["serving.staging.variants[1].sampling_percentage", "less than or equal to 100"],
    ),
    (
        "sampling-without-shadow",
        _serving(staging=_variants({"name": "a", "sampling_percentage": 20})),
        ["serving.staging.variants[0]", "shadow variants only"],
    ),
    (
        "two-shadow-variants",
        _serving(
            staging=_variants(P, {"name": "s1", "shadow": True}, {"name": "s2", "shadow": True}),
        ),
        ["serving.staging.variants", "at most one shadow variant", "s1, s2"],
    ),
    (
        "shadow-beside-two-production-variants",
        _serving(
            staging=_variants({"name": "a", "weight": 50}, {"name": "b", "weight": 50}, {"name": "s", "shadow": True})
        ),
        ["serving.staging.variants", "exactly one production variant"],
    ),
    (
        "only-shadow-variants",
        _serving(staging=_variants({"name": "s", "shadow": True})),
        ["serving.staging.variants", "at least one production"],
    ),
    (
        "shadow-in-prod",
        _serving(prod=_variants(P, {"name": "s", "shadow": True})),
        ["serving", "shadow variants belong to staging"],
    ),
    (
        "duplicate-variant-names",
        _serving(prod=_variants({"name": "a", "weight": 50}, {"name": "a", "weight": 50})),
        ["serving.prod.variants", "unique: a"],
    ),
    (
        "autoscaling-min-above-max",
        _serving(prod=_variants({"name": "a", "autoscaling": {"min_instances": 4, "max_instances": 2}})),
        ["serving.prod.variants[0].autoscaling", "min_instances (4) must not exceed max_instances (2)"],
    ),
    (
        "instance-count-outside-autoscaling",
        _serving(prod=_variants({"name": "a", "instance_count": 5, "autoscaling": {"max_instances": 3}})),
        ["serving.prod.variants[0]", "instance_count (5) must lie within autoscaling 1-3"],
    ),
    (
        "serverless-memory-too-small",
        _serving(prod=_variants({"name": "a", "serverless": {"memory_mb": 512}}), data_capture={"enabled": False}),
        ["serving.prod.variants[0].serverless.memory_mb", "1024", "6144"],
    ),
    (
        "serverless-memory-too-large",
        _serving(prod=_variants({"name": "a", "serverless": {"memory_mb": 8192}})),
        ["serving.prod.variants[0].serverless.memory_mb", "6144"],
    ),
    (
        "serverless-with-instances",
        _serving(prod=_variants({"name": "a", "instance_type": "ml.m5.large", "serverless": {}})),
        ["serving.prod.variants[0]", "serverless variant has no instance_type"],
    ),
    (
        "serverless-beside-another-variant",
        _serving(
            prod=_variants({"name": "a", "weight": 50, "serverless": {}}, {"name": "b", "weight": 50}),
        ),
        ["serving.prod.variants", "must be the only variant"],
    ),
    (
        "serverless-with-data-capture",
        _serving(prod=_variants({"name": "a", "serverless": {}})),
        ["serving", "prod.data_capture.enabled", "cannot capture data"],
    ),
    (
        "unknown-instance-family",
        _serving(prod=_variants({"name": "a", "instance_type": "ml.m55.large"})),
        ["serving.prod.variants[0].instance_type", "unknown instance family 'm55'", "did you mean 'm5'"],
    ),
    (
        "inf1-rules-out-guardrails",
        _serving(prod=_variants({"name": "a", "instance_type": "ml.inf1.xlarge"})),
        ["serving.prod.variants[0].instance_type", "inf1", "use inf2"],
    ),
    (
        "bad-variant-name",
        _serving(prod=_variants({"name": "my_variant"})),
        ["serving.prod.variants[0].name", "letters, digits and hyphens"],
    ),
    (
        "canary-over-half",
        _serving(prod={"deployment": {"step_percentage": 60}}),
        ["serving.prod.deployment.step_percentage", "less than or equal to 50"],
    ),
    (
        "unknown-traffic-mode",
        _serving(prod={"deployment": {"traffic": "rolling"}}),
        ["serving.prod.deployment.traffic", "canary", "linear", "all_at_once"],
    ),
    (
        "typo-in-variant",
        _serving(prod=_variants({"name": "a", "wieght": 100})),
        ["serving.prod.variants[0].wieght", "did you mean 'weight'"],
    ),
]


M5_HOSTING_SIZES = "large, xlarge, 2xlarge, 4xlarge, 12xlarge, 24xlarge"
LINEAR = {"traffic": "linear", "step_percentage": 10}

# (id, serving section, field, the whole message after "churn.yaml: <field>: "). The deployment limits are
# SageMaker's BlueGreenUpdatePolicy / TrafficRoutingConfig ones (mlops_platform.catalog); they used to be
# accepted here and refused by CloudFormation at deploy.
EXACT_SERVING = [
    (
        "hosting-size-does-not-exist",
        _serving(prod=_variants({"name": "a", "instance_type": "ml.m5.hyuge"})),
        "serving.prod.variants[0].instance_type",
        f"'ml.m5.hyuge': m5 has no size 'hyuge'; m5 sizes for real-time endpoints: {M5_HOSTING_SIZES}",
    ),
    (
        "hosting-size-typo",
        _serving(staging=_variants({"name": "a", "instance_type": "ml.g5.xlarg"})),
        "serving.staging.variants[0].instance_type",
        "'ml.g5.xlarg': g5 has no size 'xlarg' (did you mean 'ml.g5.xlarge'?); g5 sizes for real-time endpoints: "
        "xlarge, 2xlarge, 4xlarge, 8xlarge, 12xlarge, 16xlarge, 24xlarge, 48xlarge",
    ),
    (
        "hosting-family-offered-for-training-only",
        _serving(prod=_variants({"name": "a", "instance_type": "ml.c5n.xlarge"})),
        "serving.prod.variants[0].instance_type",
        "'ml.c5n.xlarge': SageMaker offers c5n only for training jobs and HyperPod clusters, not for real-time "
        "endpoints; families for real-time endpoints: c4, c5, c5d, c6g, c6gd, c6gn, c6i, c6in, c7g, c7i, c8g, dl1, "
        "g4dn, g5, g6, g6e, g7, g7e, inf1, inf2, m4, m5, m5d, m6g, m6gd, m6i, m7i, m8g, p2, p3, p4d, p4de, p5, p5e, "
        "p5en, p6-b200, p6-b300, p6e-gb200, r5, r5d, r6g, r6gd, r6i, r7gd, r7i, r8g, t2, trn1, trn1n, trn2",
    ),
    (
        "linear-step-below-10",
        _serving(prod={"deployment": {"traffic": "linear", "step_percentage": 5}}),
        "serving.prod.deployment.step_percentage",
        "5 is not allowed for linear traffic: SageMaker shifts linear steps of 10-50 % of the fleet",
    ),
    (
        "linear-longer-than-the-execution-timeout",
        _serving(prod={"deployment": {**LINEAR, "wait_minutes": 60}}),
        "serving.prod.deployment.wait_minutes",
        "linear traffic in 10 steps of 60 minutes plus termination_wait_minutes 5 waits 605 minutes, but SageMaker "
        "stops a blue/green update after 480 minutes; use fewer steps (a larger step_percentage) or shorter waits",
    ),
    (
        "linear-exactly-at-the-execution-timeout",  # the timeout must be larger than the waits
        _serving(prod={"deployment": {**LINEAR, "wait_minutes": 47, "termination_wait_minutes": 10}}),
        "serving.prod.deployment.wait_minutes",
        "linear traffic in 10 steps of 47 minutes plus termination_wait_minutes 10 waits 480 minutes, but SageMaker "
        "stops a blue/green update after 480 minutes; use fewer steps (a larger step_percentage) or shorter waits",
    ),
    (
        "termination-wait-over-an-hour",
        _serving(prod={"deployment": {"termination_wait_minutes": 61}}),
        "serving.prod.deployment.termination_wait_minutes",
        "Input should be less than or equal to 60, got 61",
    ),
    (
        "wait-over-an-hour",
        _serving(prod={"deployment": {"wait_minutes": 61}}),
        "serving.prod.deployment.wait_minutes",
        "Input should be less than or equal to 60, got 61",
    ),
]


@pytest.mark.parametrize("project,field,expected", [pytest.param(*case[1:], id=case[0]) for case in EXACT_SERVING])
def test_serving_rule_names_file_field_and_what_is_allowed(tmp_path, project, field, expected):
    config_dir = write_config(tmp_path, projects={"churn": project})
    with pytest.raises(ConfigError) as raised:
        load_config(config_dir)
    assert str(raised.value) == f"{config_dir / 'projects' / 'churn.yaml'}: {field}: {expected}"


@pytest.mark.parametrize(
    "deployment",
    [
        pytest.param({**LINEAR, "wait_minutes": 47, "termination_wait_minutes": 9}, id="linear-just-inside-8-hours"),
        pytest.param({"traffic": "linear", "step_percentage": 50, "wait_minutes": 60}, id="linear-two-steps"),
        pytest.param(
            {"traffic": "canary", "step_percentage": 50, "wait_minutes": 60, "termination_wait_minutes": 60},
            id="canary-at-every-limit",
        ),
        pytest.param({"traffic": "all_at_once", "step_percentage": 1}, id="all-at-once"),
    ],
)
def test_deployments_within_sagemaker_limits_load(tmp_path, deployment):
    project = _serving(prod={"deployment": deployment})
    loaded = load_config(write_config(tmp_path, projects={"churn": project})).projects["churn"]
    assert loaded.serving.prod.deployment.traffic == deployment["traffic"]


@pytest.mark.parametrize("project,fragments", [pytest.param(*case[1:], id=case[0]) for case in BAD_SERVING])
def test_bad_serving_config_gives_one_clear_error(tmp_path, project, fragments):
    config_dir = write_config(tmp_path, projects={"churn": project})
    with pytest.raises(ConfigError) as raised:
        load_config(config_dir)
    message = str(raised.value)
    assert "\n" not in message
    assert message.split(":")[0].endswith("churn.yaml"), message
    for fragment in fragments:
        assert fragment in message, message


def test_defaults_shadow_in_staging_and_one_variant_in_prod(tmp_path):
    project = example_project()
    project.pop("serving", None)
    serving = load_config(write_config(tmp_path, projects={"churn": project})).projects["churn"].serving
    staging = serving.staging.resolved_variants("staging")
    assert [(v.name, v.model, v.shadow, v.shadow_sampling) for v in staging] == [
        ("champion", "champion", False, 100),
        ("challenger", "challenger", True, 100),
    ]
    assert [(v.name, v.weight) for v in serving.prod.resolved_variants("prod")] == [("primary", 100)]
    assert serving.prod.data_capture.enabled and serving.prod.deployment.traffic == "canary"


# --------------------------------------------------------------------------- release manifests

ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-churn/{}"


def _manifest(**changes) -> dict:
    data = {"project": "churn", "stage": "staging", "challenger": {"version": 3, "model_package_arn": ARN.format(3)}}
    data.update(changes)
    return data


BAD_MANIFESTS = [
    ("unknown-project", "fraud", "staging", _manifest(project="fraud"), ["no project 'fraud'"]),
    ("unknown-stage", "churn", "dev", _manifest(stage="dev"), ["'dev' is not a serving stage"]),
    ("path-disagrees", "churn", "prod", _manifest(), ["project/stage", "path says churn/prod"]),
    (
        "foreign-group",
        "churn",
        "staging",
        _manifest(challenger={"version": 3, "model_package_arn": ARN.format(3).replace("mlops-churn", "other")}),
        ["challenger.model_package_arn", "is not a version of", "model-package-group/mlops-churn"],
    ),
    (
        "version-mismatch",
        "churn",
        "staging",
        _manifest(champion={"version": 2, "model_package_arn": ARN.format(1)}),
        ["champion.version", "2 does not match"],
    ),
    (
        "not-an-arn",
        "churn",
        "staging",
        _manifest(challenger={"version": 3, "model_package_arn": "mlops-churn/3"}),
        ["challenger.model_package_arn", "not a model package version ARN"],
    ),
    ("missing-challenger", "churn", "staging", {"project": "churn", "stage": "staging"}, ["challenger", "required"]),
]


@pytest.mark.parametrize(
    "project,stage,data,fragments", [pytest.param(*case[1:], id=case[0]) for case in BAD_MANIFESTS]
)
def test_bad_release_manifest_names_file_and_field(tmp_path, project, stage, data, fragments):
    config = load_config(write_config(tmp_path))
    path = manifest_path(tmp_path / "releases", project, stage)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as raised:
        load_manifests(tmp_path / "releases", config)
    message = str(raised.value)
    assert "\n" not in message and f"{project}/{stage}.json" in message.split(":")[0], message
    for fragment in fragments:
        assert fragment in message, message


def test_no_releases_directory_means_nothing_released(tmp_path):
    assert load_manifests(tmp_path / "absent", load_config(write_config(tmp_path))) == {}


def test_app_exits_2_on_a_bad_manifest_and_writes_nothing(tmp_path):
    path = manifest_path(tmp_path / "releases", "churn", "prod")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_manifest(stage="prod", challenger={"version": "three", "model_package_arn": "x"})))
    outdir = tmp_path / "cdk.out"
    env = {**os.environ, "MLOPS_RELEASES_DIR": str(tmp_path / "releases"), "CDK_OUTDIR": str(outdir)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "churn/prod.json: challenger.version" in lines[0], done.stderr
    assert not outdir.exists()
