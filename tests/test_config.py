"""Config loading: the example is valid, and each bad input gives one clear line and exit 2."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_platform.config import ConfigError, load_config
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
    assert project.monitoring.enabled is False
    assert project.pipeline.fsx_input is None  # the shared training cluster is opt-in per project
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
        ["network.vpc_cidrs", "/16 and /22"],
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
        ["pipeline.training_instance_type", "not a Trainium", "ml.trn1.32xlarge"],
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
