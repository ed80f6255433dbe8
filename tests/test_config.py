"""Config loading: the example is valid, and each bad input gives one clear line and exit 2."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from mlops_platform.config import ConfigError, load_config, vpc_subnets
from tests.synth import EXAMPLE_CONFIG, ROOT, example_platform, example_project, write_config


def test_example_config_loads():
    config = load_config(EXAMPLE_CONFIG)
    assert list(config.projects) == ["churn"]
    assert config.platform.accounts.dev.id == "222222222222"
    assert not config.platform.single_account
    assert config.platform.studio.accounts == ["dev"]
    assert config.platform.nag.packs == ["AwsSolutions", "NIST.800-53.R5"]


def test_defaults_fill_later_sections():
    project = load_config(EXAMPLE_CONFIG).projects["churn"]
    assert project.pipeline.enabled and not project.pipeline.spot.enabled
    # The example watches prod with Model Monitor; the section's defaults fill the rest.
    assert project.monitoring.enabled and project.monitoring.engine == "model_monitor"
    assert project.monitoring.stages == ["prod"] and project.monitoring.drift_threshold == 0.1
    assert project.monitoring.retraining.enabled and project.monitoring.retraining.cooldown_hours == 24
    assert project.pipeline_source().name == "customers" and project.pipeline.target_column == "churn"
    assert project.pipeline_features()[0] == "tenure_months" and "churn" not in project.pipeline_features()
    assert project.approval.allow_self_approval is False


def _platform(**changes):
    data = example_platform()
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        if value is _DELETE:
            del node[last]
        else:
            node[last] = value
    return data


def _project(**changes):
    data = example_project()
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[last] = value
    return data


_DELETE = object()
GROUP = {
    "name": "customers",
    "record_identifier": "customer_id",
    "event_time": "event_time",
    "features": [{"name": "customer_id", "type": "String"}, {"name": "event_time", "type": "Fractional"}],
}

# (id, platform override, project overrides, expected file, expected fragments of the one line)
BAD_CONFIGS = [
    (
        "account-id-not-12-digits",
        _platform(**{"accounts.dev.id": "12345"}),
        None,
        "platform.yaml",
        ["accounts.dev.id", "12-digit AWS account id"],
    ),
    (
        "account-id-letters",
        _platform(**{"accounts.prod.id": "44444444444x"}),
        None,
        "platform.yaml",
        ["accounts.prod.id", "12-digit"],
    ),
    (
        "unknown-role",
        _platform(**{"accounts.qa": {"id": "555555555555", "region": "eu-west-1"}}),
        None,
        "platform.yaml",
        ["accounts.qa", "allowed: governance, dev, staging, prod"],
    ),
    (
        "missing-role",
        _platform(**{"accounts.staging": _DELETE}),
        None,
        "platform.yaml",
        ["accounts.staging", "required"],
    ),
    (
        "bad-region",
        _platform(**{"accounts.dev.region": "europe-1"}),
        None,
        "platform.yaml",
        ["accounts.dev.region", "AWS region"],
    ),
    (
        "cross-region",
        _platform(**{"accounts.prod.region": "us-east-1"}),
        None,
        "platform.yaml",
        ["accounts.prod.region", "same region"],
    ),
    (
        "typo-top-level",
        _platform(**{"netwrok": {}}),
        None,
        "platform.yaml",
        ["netwrok", "unknown field", "did you mean 'network'"],
    ),
    (
        "typo-nested",
        _platform(**{"network.max_az": 2}),
        None,
        "platform.yaml",
        ["network.max_az", "did you mean 'max_azs'"],
    ),
    (
        "overlapping-cidrs",
        _platform(
            **{"network.vpc_cidrs": {"dev": "10.10.0.0/16", "staging": "10.10.128.0/17", "prod": "10.30.0.0/16"}}
        ),
        None,
        "platform.yaml",
        ["network.vpc_cidrs", "overlaps"],
    ),
    (
        "cidr-too-small",
        _platform(**{"network.vpc_cidrs.dev": "10.10.0.0/26"}),
        None,
        "platform.yaml",
        ["network.vpc_cidrs.dev", "too small for the VPC's subnets", "use a /19"],
    ),
    (
        "cidr-too-large",
        _platform(**{"network.vpc_cidrs.dev": "10.0.0.0/8"}),
        None,
        "platform.yaml",
        ["network.vpc_cidrs.dev", "/16 to /28"],
    ),
    (
        "too-many-azs",
        _platform(**{"network.max_azs": 5}),
        None,
        "platform.yaml",
        ["network.max_azs", "less than or equal to 3"],
    ),
    (
        "bad-auth-mode",
        _platform(**{"studio.auth_mode": "LDAP"}),
        None,
        "platform.yaml",
        ["studio.auth_mode", "'IAM' or 'SSO'"],
    ),
    (
        "studio-in-governance",
        _platform(**{"studio.accounts": ["governance"]}),
        None,
        "platform.yaml",
        ["studio.accounts[0]", "'dev', 'staging' or 'prod'"],
    ),
    (
        "unknown-nag-pack",
        _platform(**{"nag.packs": ["AwsSolutions", "CIS"]}),
        None,
        "platform.yaml",
        ["nag.packs[1]", "'AwsSolutions'"],
    ),
    ("bad-prefix", _platform(prefix="ML_Ops"), None, "platform.yaml", ["prefix", "lowercase"]),
    (
        "github-repository-without-owner",
        _platform(github={"repository": "mlops-platform"}),
        None,
        "platform.yaml",
        ["github.repository", "'mlops-platform'", "'owner/name'"],
    ),
    (
        "github-repository-wildcard",
        _platform(github={"repository": "example-org/*"}),
        None,
        "platform.yaml",
        ["github.repository", "'example-org/*'", "'owner/name'"],
    ),
    (
        "github-repository-url",
        _platform(github={"repository": "https://github.com/example-org/mlops-platform"}),
        None,
        "platform.yaml",
        ["github.repository", "'owner/name'"],
    ),
    (
        "github-owner-too-long",
        _platform(github={"repository": f"{'o' * 40}/mlops-platform"}),
        None,
        "platform.yaml",
        ["github.repository", "at most 39 characters"],
    ),
    (
        "github-branch-wildcard",
        _platform(github={"repository": "example-org/mlops-platform", "branch": "release/*"}),
        None,
        "platform.yaml",
        ["github.branch", "'release/*'", "branch name"],
    ),
    (
        "github-unknown-key",
        _platform(github={"repository": "example-org/mlops-platform", "environment": "production"}),
        None,
        "platform.yaml",
        ["github.environment", "unknown field", "did you mean 'prod_environment'"],
    ),
    (
        "project-name-uppercase",
        None,
        {"churn": _project(name="Churn")},
        "churn.yaml",
        ["name", "lowercase letters, digits and single hyphens"],
    ),
    (
        "project-name-too-long",
        None,
        {"churn": _project(name="a-very-long-project-name")},
        "churn.yaml",
        ["name", "at most 20 characters"],
    ),
    ("project-name-trailing-hyphen", None, {"churn": _project(name="churn-")}, "churn.yaml", ["name", "hyphen"]),
    (
        "duplicate-project-name",
        None,
        {"churn2": example_project()},
        "churn2.yaml",
        ["name", "already defined in", "churn.yaml"],
    ),
    (
        "unknown-project-key",
        None,
        {"churn": _project(approvals={})},
        "churn.yaml",
        ["approvals", "unknown field", "did you mean 'approval'"],
    ),
    (
        "approver-not-a-lead",
        None,
        {"churn": _project(**{"approval.approvers": ["bob"]})},
        "churn.yaml",
        ["approval.approvers", "persona 'lead'"],
    ),
    (
        "monitoring-model-quality-without-ground-truth",
        None,
        {"churn": _project(**{"monitoring.model_quality": {"enabled": True}})},
        "churn.yaml",
        ["monitoring.model_quality", "ground_truth_s3_uri"],
    ),
    (
        "monitoring-more-often-than-hourly",
        None,
        {"churn": _project(**{"monitoring.schedule": "cron(0/15 * ? * * *)"})},
        "churn.yaml",
        ["monitoring.schedule", "more often than hourly is not possible"],
    ),
    (
        "monitoring-without-capture",
        None,
        {"churn": _project(**{"serving.prod.data_capture": {"enabled": False}})},
        "churn.yaml",
        ["monitoring", "serving.prod.data_capture.enabled: false"],
    ),
    (
        "monitoring-unknown-engine",
        None,
        {"churn": _project(**{"monitoring.engine": "clarify"})},
        "churn.yaml",
        ["monitoring.engine", "'model_monitor' or 'pipeline'"],
    ),
    (
        "warm-pool-beyond-the-api-limit",
        None,
        {"churn": _project(pipeline={"warm_pool_minutes": 361})},
        "churn.yaml",
        ["pipeline.warm_pool_minutes", "360"],
    ),
    (
        "warm-pool-with-spot",
        None,
        {"churn": _project(pipeline={"warm_pool_minutes": 30, "spot": {"enabled": True}})},
        "churn.yaml",
        ["warm_pool_minutes", "no warm pool for managed spot training"],
    ),
    (
        "pipeline-without-feature-group",
        None,
        {"churn": _project(features={"feature_groups": []})},
        "churn.yaml",
        ["pipeline", "add one under features.feature_groups", "pipeline.enabled: false"],
    ),
    (
        "pipeline-unknown-feature-group",
        None,
        {"churn": _project(pipeline={"feature_group": "orders"})},
        "churn.yaml",
        ["pipeline.feature_group", "'orders'", "groups: customers"],
    ),
    (
        "pipeline-label-not-an-integral-feature",
        None,
        {"churn": _project(pipeline={"target_column": "contract"})},
        "churn.yaml",
        ["pipeline.target_column", "'contract'", "Integral feature"],
    ),
    (
        "approver-name-too-short-for-source-identity",
        None,
        {"churn": _project(**{"members.0.user": "a", "approval.approvers": ["a"]})},
        "churn.yaml",
        ["approval.approvers", "'a'", "source identity, 2 to 64"],
    ),
    (
        "primary-metric-without-threshold",
        None,
        {"churn": _project(**{"approval.primary_metric": "f1"})},
        "churn.yaml",
        ["approval", "primary_metric 'f1'"],
    ),
    (
        "bad-persona",
        None,
        {"churn": _project(**{"members.0.persona": "admin"})},
        "churn.yaml",
        ["members[0].persona", "'data_scientist' or 'lead'"],
    ),
    ("owner-not-email", None, {"churn": _project(owners=["team"])}, "churn.yaml", ["owners", "not an email"]),
    ("sso-without-user", _platform(**{"studio.auth_mode": "SSO"}), None, "churn.yaml", ["members[0].sso_user", "SSO"]),
    (
        "reserved-feature-name",
        None,
        {
            "churn": _project(
                features={
                    "feature_groups": [
                        {**GROUP, "features": [*GROUP["features"], {"name": "write_time", "type": "String"}]}
                    ]
                }
            )
        },
        "churn.yaml",
        ["features.feature_groups[0]", "reserved"],
    ),
    (
        "event-time-not-a-feature",
        None,
        {"churn": _project(features={"feature_groups": [{**GROUP, "event_time": "ts"}]})},
        "churn.yaml",
        ["event_time 'ts' is not one of the features"],
    ),
    (
        "spot-wait-below-runtime",
        None,
        {"churn": _project(pipeline={"spot": {"enabled": True, "max_wait_minutes": 10}, "max_runtime_minutes": 60})},
        "churn.yaml",
        ["pipeline", "max_wait_minutes"],
    ),
    (
        "unknown-feature-type",
        None,
        {
            "churn": _project(
                features={
                    "feature_groups": [{**GROUP, "features": [*GROUP["features"], {"name": "x", "type": "Boolean"}]}]
                }
            )
        },
        "churn.yaml",
        ["features.feature_groups[0].features[2].type", "'Integral', 'Fractional' or 'String'"],
    ),
    (
        "too-many-features",
        None,
        {
            "churn": _project(
                features={
                    "feature_groups": [
                        {
                            **GROUP,
                            "features": [
                                *GROUP["features"],
                                *({"name": f"f{i}", "type": "Integral"} for i in range(2500)),
                            ],
                        }
                    ]
                }
            )
        },
        "churn.yaml",
        ["features.feature_groups[0].features", "at most 2500"],
    ),
    (
        "provisioned-without-units",
        None,
        {"churn": _project(features={"feature_groups": [{**GROUP, "throughput": "Provisioned"}]})},
        "churn.yaml",
        ["provisioned_read_units"],
    ),
    (
        "missing-record-identifier",
        None,
        {
            "churn": _project(
                features={"feature_groups": [{k: v for k, v in GROUP.items() if k != "record_identifier"}]}
            )
        },
        "churn.yaml",
        ["features.feature_groups[0].record_identifier", "required"],
    ),
    (
        "unknown-trainium-size",
        None,
        {"churn": _project(pipeline={"training_instance_type": "ml.trn1.8xlarge"})},
        "churn.yaml",
        ["pipeline.training_instance_type", "trn1 has no size '8xlarge'", "2xlarge, 32xlarge"],
    ),
    (
        "bad-instance-type",
        None,
        {"churn": _project(pipeline={"processing_instance_type": "m5.xlarge"})},
        "churn.yaml",
        ["pipeline.processing_instance_type", "SageMaker instance type"],
    ),
    (
        "bad-retrain-schedule",
        None,
        {"churn": _project(pipeline={"retrain_schedule": "every week"})},
        "churn.yaml",
        ["pipeline.retrain_schedule", "every week"],
    ),
    ("not-a-mapping", None, {"churn": ["just", "a", "list"]}, "churn.yaml", ["must be a mapping"]),
]


@pytest.mark.parametrize(
    "platform,projects,bad_file,fragments",
    [pytest.param(*case[1:], id=case[0]) for case in BAD_CONFIGS],
)
def test_bad_config_gives_one_clear_error(tmp_path, platform, projects, bad_file, fragments):
    config_dir = write_config(tmp_path, copy.deepcopy(platform), copy.deepcopy(projects))
    with pytest.raises(ConfigError) as raised:
        load_config(config_dir)
    message = str(raised.value)
    assert "\n" not in message
    assert message.split(":")[0].endswith(bad_file), message
    for fragment in fragments:
        assert fragment in message, message


def test_invalid_yaml_names_the_line(tmp_path):
    config_dir = write_config(tmp_path)
    (config_dir / "platform.yaml").write_text("prefix: mlops\naccounts: [unclosed\n")
    with pytest.raises(ConfigError, match=r"platform.yaml: not valid YAML \(line 3"):
        load_config(config_dir)


def test_missing_platform_file(tmp_path):
    (tmp_path / "projects").mkdir()
    with pytest.raises(ConfigError, match="platform.yaml: file not found"):
        load_config(tmp_path)


def test_single_account_mode_is_valid(tmp_path):
    platform = example_platform()
    for role in platform["accounts"]:
        platform["accounts"][role]["id"] = "555555555555"
    assert load_config(write_config(tmp_path, platform)).platform.single_account


def test_app_exits_2_with_one_line_and_writes_nothing(tmp_path):
    config_dir = write_config(tmp_path, _platform(**{"accounts.dev.id": "12345"}))
    outdir = tmp_path / "cdk.out"
    env = {**os.environ, "MLOPS_CONFIG_DIR": str(config_dir), "CDK_OUTDIR": str(outdir)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], env=env, capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("config error: ") and "accounts.dev.id" in lines[0]
    assert "Traceback" not in done.stderr
    assert not outdir.exists()


def test_config_check_command(tmp_path):
    ok = subprocess.run(
        [sys.executable, "-m", "mlops_platform.config", str(EXAMPLE_CONFIG)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert ok.returncode == 0 and "config ok: multi-account, projects: churn" in ok.stdout
    bad = write_config(tmp_path, _platform(**{"studio.auth_mode": "LDAP"}))
    failed = subprocess.run(
        [sys.executable, "-m", "mlops_platform.config", str(bad)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert failed.returncode == 2 and failed.stderr.count("\n") == 1
    assert Path(bad / "platform.yaml").name in failed.stderr


# --------------------------------------------------------------------------- rules that used to end in a traceback


def _error_line(config_dir: Path) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(config_dir)
    message = str(raised.value)
    assert "\n" not in message
    return message


M5_PROCESSING_SIZES = "large, xlarge, 2xlarge, 4xlarge, 12xlarge, 24xlarge"
METRICS = "auc, accuracy, precision, recall, f1"

# (id, platform override, project overrides, file, field, the whole message after "<file>: <field>: ")
EXACT_ERRORS = [
    (
        "vpc-too-small-for-two-azs",  # CDK: "1 of /20 exceeds remaining space of 10.10.0.0/22"
        _platform(**{"network.vpc_cidrs.dev": "10.10.0.0/22"}),
        None,
        "platform.yaml",
        "network.vpc_cidrs.dev",
        "10.10.0.0/22 is too small for the VPC's subnets: 2 private /20 subnets, one per AZ for max_azs 2, "
        "need 8192 addresses from the start of the range; use a /19 or larger range, e.g. 10.10.0.0/19",
    ),
    (
        "vpc-too-small-with-nat",  # a /19 holds two private /20s, then the public /24s do not fit
        _platform(**{"network.vpc_cidrs.staging": "10.20.0.0/19", "network.nat_gateways": 1}),
        None,
        "platform.yaml",
        "network.vpc_cidrs.staging",
        "10.20.0.0/19 is too small for the VPC's subnets: 2 private /20 subnets and 2 public /24 subnets "
        "(public because nat_gateways > 0), one per AZ for max_azs 2, need 8704 addresses from the start "
        "of the range; use a /18 or larger range, e.g. 10.20.0.0/18",
    ),
    (
        "vpc-too-small-for-three-azs",
        _platform(**{"network.vpc_cidrs.prod": "10.30.0.0/19", "network.max_azs": 3}),
        None,
        "platform.yaml",
        "network.vpc_cidrs.prod",
        "10.30.0.0/19 is too small for the VPC's subnets: 3 private /20 subnets, one per AZ for max_azs 3, "
        "need 12288 addresses from the start of the range; use a /18 or larger range, e.g. 10.30.0.0/18",
    ),
    (
        "threshold-as-percentage",  # used to be a ValueError from PipelineInputs at synth
        None,
        {"churn": _project(**{"approval.metric_thresholds": {"auc": 75, "accuracy": 0.7}})},
        "churn.yaml",
        "approval.metric_thresholds.auc",
        "75 is outside [0, 1]: the evaluate step reports fractions (0.75, not 75)",
    ),
    (
        "threshold-negative",
        None,
        {"churn": _project(**{"approval.metric_thresholds": {"auc": 0.75, "accuracy": -0.1}})},
        "churn.yaml",
        "approval.metric_thresholds.accuracy",
        "-0.1 is outside [0, 1]: the evaluate step reports fractions (0.75, not 75)",
    ),
    (
        "threshold-for-unreported-metric",  # the guard Lambda would reject every version
        None,
        {"churn": _project(**{"approval.metric_thresholds": {"auc": 0.75, "rmse": 0.2}})},
        "churn.yaml",
        "approval.metric_thresholds.rmse",
        f"the evaluate step reports no metric 'rmse'; allowed: {METRICS}",
    ),
    (
        "threshold-metric-typo",
        None,
        {"churn": _project(**{"approval.metric_thresholds": {"auc": 0.75, "acuracy": 0.7}})},
        "churn.yaml",
        "approval.metric_thresholds.acuracy",
        f"the evaluate step reports no metric 'acuracy' (did you mean 'accuracy'?); allowed: {METRICS}",
    ),
    (
        "processing-size-does-not-exist",
        None,
        {"churn": _project(pipeline={"processing_instance_type": "ml.m5.hyuge"})},
        "churn.yaml",
        "pipeline.processing_instance_type",
        f"'ml.m5.hyuge': m5 has no size 'hyuge'; m5 sizes for processing jobs: {M5_PROCESSING_SIZES}",
    ),
    (
        "processing-size-typo",
        None,
        {"churn": _project(pipeline={"processing_instance_type": "ml.m5.xlarg"})},
        "churn.yaml",
        "pipeline.processing_instance_type",
        "'ml.m5.xlarg': m5 has no size 'xlarg' (did you mean 'ml.m5.xlarge'?); "
        f"m5 sizes for processing jobs: {M5_PROCESSING_SIZES}",
    ),
    (
        "processing-family-typo",
        None,
        {"churn": _project(pipeline={"processing_instance_type": "ml.mm5.xlarge"})},
        "churn.yaml",
        "pipeline.processing_instance_type",
        "'ml.mm5.xlarge': unknown instance family 'mm5' (did you mean 'm5'?); families for processing jobs: "
        "c4, c5, c6i, c7i, c7i-flex, c8i, c8i-flex, g4dn, g5, g6, g6e, g7, g7e, m4, m5, m6i, m7i, m7i-flex, "
        "m8i, m8i-flex, p2, p3, p5, r5, r5d, r6i, r7i, r8i, r8i-flex, t3",
    ),
    (
        "training-family-offered-elsewhere",
        None,
        {"churn": _project(pipeline={"training_instance_type": "ml.inf2.xlarge"})},
        "churn.yaml",
        "pipeline.training_instance_type",
        "'ml.inf2.xlarge': SageMaker offers inf2 only for real-time endpoints, not for training jobs; "
        "families for training jobs: c4, c5, c5n, c6i, c7i, c7i-flex, c8i, c8i-flex, g4dn, g5, g6, g6e, g7, g7e, "
        "m4, m5, m6i, m7i, m7i-flex, m8i, m8i-flex, p2, p3, p3dn, p4d, p4de, p5, p5e, p5en, p6-b200, p6-b300, "
        "p6e-gb200, r5, r5d, r6i, r7i, r8i, r8i-flex, t3, trn1, trn1n, trn2",
    ),
    (
        "approval-workflow-reservation-zero",
        _platform(approval_workflow={"reserved_concurrency": 0}),
        None,
        "platform.yaml",
        "approval_workflow.reserved_concurrency",
        "Input should be greater than or equal to 1, got 0",
    ),
    (
        "approval-workflow-reservation-too-large",
        _platform(approval_workflow={"reserved_concurrency": 5000}),
        None,
        "platform.yaml",
        "approval_workflow.reserved_concurrency",
        "Input should be less than or equal to 1000, got 5000",
    ),
    (
        "approval-workflow-typo",
        _platform(approval_workflow={"reserved_concurency": 5}),
        None,
        "platform.yaml",
        "approval_workflow.reserved_concurency",
        "unknown field; allowed: reserved_concurrency; did you mean 'reserved_concurrency'?",
    ),
]


@pytest.mark.parametrize(
    "platform,projects,bad_file,field,expected",
    [pytest.param(*case[1:], id=case[0]) for case in EXACT_ERRORS],
)
def test_rule_names_file_field_and_what_is_allowed(tmp_path, platform, projects, bad_file, field, expected):
    config_dir = write_config(tmp_path, copy.deepcopy(platform), copy.deepcopy(projects))
    path = config_dir / ("platform.yaml" if bad_file == "platform.yaml" else f"projects/{bad_file}")
    assert _error_line(config_dir) == f"{path}: {field}: {expected}"


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"network.vpc_cidrs.dev": "10.10.0.0/19"}, id="two-azs-in-a-19"),
        pytest.param({"network.vpc_cidrs.dev": "10.10.0.0/20", "network.max_azs": 1}, id="one-az-in-a-20"),
        pytest.param(
            {"network.vpc_cidrs.dev": "10.10.0.0/18", "network.max_azs": 3, "network.nat_gateways": 1},
            id="three-azs-with-nat-in-an-18",
        ),
    ],
)
def test_smallest_vpc_ranges_that_fit_load(tmp_path, changes):
    assert load_config(write_config(tmp_path, _platform(**changes)))


def test_approval_workflow_defaults_to_no_reservation(tmp_path):
    assert load_config(EXAMPLE_CONFIG).platform.approval_workflow.reserved_concurrency is None
    platform = _platform(approval_workflow={"reserved_concurrency": 5})
    assert load_config(write_config(tmp_path, platform)).platform.approval_workflow.reserved_concurrency == 5


def test_thresholds_at_the_bounds_and_every_reported_metric_load(tmp_path):
    thresholds = {"auc": 1, "accuracy": 0, "precision": 0.5, "recall": 0.5, "f1": 0.5}
    project = _project(**{"approval.metric_thresholds": thresholds})
    assert load_config(write_config(tmp_path, None, {"churn": project})).projects["churn"].approval.metric_thresholds


# One bad file per rule above, through both doors: `python -m mlops_platform.config` and `python app.py`.
CLI_CASES = [
    pytest.param(_platform(**{"network.vpc_cidrs.dev": "10.10.0.0/22"}), None, "network.vpc_cidrs.dev", id="vpc"),
    pytest.param(
        _platform(training_cluster={"enabled": True, "cidr": "10.10.0.0/20"}),
        None,
        "training_cluster.cidr",
        id="cluster-cidr",
    ),
    pytest.param(
        None,
        {"churn": _project(**{"approval.metric_thresholds": {"auc": 75, "accuracy": 0.7}})},
        "approval.metric_thresholds.auc",
        id="threshold",
    ),
    pytest.param(
        None,
        {"churn": _project(**{"serving.prod.deployment": {"traffic": "linear", "step_percentage": 5}})},
        "serving.prod.deployment.step_percentage",
        id="deployment",
    ),
    pytest.param(
        None,
        {"churn": _project(pipeline={"processing_instance_type": "ml.m5.hyuge"})},
        "pipeline.processing_instance_type",
        id="instance-size",
    ),
    pytest.param(
        _platform(approval_workflow={"reserved_concurrency": 0}),
        None,
        "approval_workflow.reserved_concurrency",
        id="approval-workflow",
    ),
]


@pytest.mark.parametrize("platform,projects,field", CLI_CASES)
def test_both_commands_exit_2_with_one_line_and_write_nothing(tmp_path, platform, projects, field):
    config_dir = write_config(tmp_path, copy.deepcopy(platform), copy.deepcopy(projects))
    outdir = tmp_path / "cdk.out"
    env = {**os.environ, "MLOPS_CONFIG_DIR": str(config_dir), "CDK_OUTDIR": str(outdir)}
    commands = {
        "config": ([sys.executable, "-m", "mlops_platform.config", str(config_dir)], ROOT),
        "app": ([sys.executable, str(ROOT / "app.py")], tmp_path),
    }
    for name, (command, cwd) in commands.items():
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=cwd, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2, (name, done.stderr)
        assert len(lines) == 1 and "Traceback" not in done.stderr, (name, done.stderr)
        assert lines[0].startswith("config error: ") and f": {field}: " in lines[0], (name, lines[0])
        assert not outdir.exists(), name


# --------------------------------------------------------------------------- the VPC layout the rules assume

# (range, max_azs, nat_gateways): fitting and non-fitting layouts on both sides of each boundary.
VPC_LAYOUTS = [
    ("10.10.0.0/16", 2, 0),
    ("10.10.0.0/19", 2, 0),
    ("10.10.0.0/22", 2, 0),
    ("10.10.0.0/20", 1, 0),
    ("10.10.0.0/20", 1, 1),
    ("10.10.0.0/19", 1, 1),
    ("10.10.0.0/19", 2, 1),
    ("10.10.0.0/18", 3, 1),
    ("10.10.0.0/19", 3, 0),
]


def test_vpc_subnets_match_what_cdk_builds():
    """``vpc_subnets`` predicts exactly the subnets PrivateNetwork gets from CDK, and when CDK refuses."""
    from aws_cdk import App, Environment, Stack
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_logs as logs

    from stacks.components.network import PrivateNetwork

    env = Environment(account="222222222222", region="eu-west-1")
    zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    app = App(context={f"availability-zones:account={env.account}:region={env.region}": zones})
    for i, (cidr, azs, nat) in enumerate(VPC_LAYOUTS):
        stack = Stack(app, f"Layout{i}", env=env)
        subnets = vpc_subnets(IPv4Network(cidr), azs, nat)

        def build(stack: Stack = stack, cidr: str = cidr, azs: int = azs, nat: int = nat) -> PrivateNetwork:
            return PrivateNetwork(
                stack,
                "Network",
                cidr=cidr,
                max_azs=azs,
                nat_gateways=nat,
                key=kms.Key(stack, "Key"),
                flow_log_retention=logs.RetentionDays.ONE_YEAR,
            )

        if subnets is None:
            with pytest.raises(Exception, match="exceeds remaining space"):
                build()
            continue
        vpc = build().vpc
        built = [s.ipv4_cidr_block for s in [*vpc.isolated_subnets, *vpc.private_subnets, *vpc.public_subnets]]
        assert sorted(built) == sorted(str(s.cidr) for s in subnets), (cidr, azs, nat)
