"""``mlops new-project``: a valid, fully written project file, or nothing at all.

Also the two checks it shares with every synth: the stacks a project adds per
account role (:mod:`mlops_platform.stack_plan`, held to the example synth) and
the names two projects must not share (:mod:`mlops_platform.collisions`, held to
every named resource of the example synth, and enforced by ``load_config``).
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from mlops_platform.cli.app import run
from mlops_platform.collisions import resource_names
from mlops_platform.config import ROLES, ConfigError, ProjectSettings, load_config
from mlops_platform.stack_plan import project_stacks
from tests.synth import EXAMPLE_CONFIG, example_platform, example_project, write_config

# --------------------------------------------------------------------------- helpers


def new_project(capsys, config: Path, *args: str) -> tuple[int, str, str]:
    code = run(["new-project", *args, "--config-dir", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X``, ``X | None`` or ``list[X]`` (None for plain values and dicts)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def unwritten(model: type[BaseModel], data: dict, path: str = "") -> list[str]:
    """Fields of ``model`` (recursively, through lists) that the YAML ``data`` does not spell out."""
    missing = []
    for name, field in model.model_fields.items():
        where = f"{path}.{name}" if path else name
        if name not in data:
            missing.append(where)
            continue
        inner, value = _model_in(field.annotation), data[name]
        if inner is None or value is None:
            continue
        for i, item in enumerate(value) if isinstance(value, list) else [(None, value)]:
            missing += unwritten(inner, item, where if i is None else f"{where}[{i}]")
    return missing


def printed_stacks(out: str) -> dict[str, list[str]]:
    """The ``  role (account): a, b`` lines of the command's output."""
    stacks = {}
    for line in out.splitlines():
        head, _, tail = line.strip().partition(": ")
        role = head.split(" ")[0]
        if role in ROLES and "(" in head:
            stacks[role] = tail.split(", ")
    return stacks


@pytest.fixture
def config(tmp_path) -> Path:
    return write_config(tmp_path)


# --------------------------------------------------------------------------- writing


def test_template_is_valid_and_spells_out_every_setting(capsys, config):
    code, out, err = new_project(capsys, config, "demo")
    assert (code, err) == (0, "")
    path = config / "projects" / "demo.yaml"
    loaded = load_config(config)
    assert set(loaded.projects) == {"churn", "demo"}
    data = yaml.safe_load(path.read_text())
    assert unwritten(ProjectSettings, data) == []
    demo = loaded.projects["demo"]
    assert demo.pipeline.enabled and demo.features.feature_groups
    assert [len(demo.serving.staging.variants), len(demo.serving.prod.variants)] == [1, 1]
    assert demo.monitoring.enabled is False
    assert all(getattr(demo.serving, stage).data_capture.enabled for stage in ("staging", "prod"))
    # Placeholders are marked and named in the output.
    text = path.read_text()
    for line in text.splitlines():
        if "edit-me" in line.split("#")[0]:
            assert "EDIT" in line, line
    assert "edit before deploying (marked EDIT): description, owners, members.user, approval.approvers" in out
    # Every section carries a comment above it.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith(("#", " ")) and line.endswith(":"):
            assert lines[i - 1].startswith("#"), f"section {line} has no comment"
    assert printed_stacks(out) == project_stacks(loaded.platform, demo)
    assert "next: edit the file, then `make synth`" in out


def test_template_under_sso_names_each_members_sso_user(capsys, tmp_path):
    platform = example_platform()
    platform["studio"] = {"accounts": ["dev", "staging"], "auth_mode": "SSO"}
    config = write_config(tmp_path, platform, {"churn": None})
    code, out, err = new_project(capsys, config, "demo")
    assert (code, err) == (0, "")
    demo = load_config(config).projects["demo"]
    assert all(m.sso_user for m in demo.members)
    # Studio in staging too: a workspace there.
    assert "mlops-staging-demo-workspace" in printed_stacks(out)["staging"]


def test_from_copies_settings_and_rewrites_what_names_the_source(capsys, config):
    churn = example_project()
    churn["approval"]["approvers"] += [
        "arn:aws:iam::111111111111:role/mlops-churn-governance-approver",
        "arn:aws:iam::111111111111:role/mlops-churnish-reviewers",
    ]
    write_config(config.parent, None, {"churn": churn})
    code, out, err = new_project(capsys, config, "churn-eu", "--from", "churn")
    assert (code, err) == (0, "")
    loaded = load_config(config)
    copy, source = loaded.projects["churn-eu"], loaded.projects["churn"]
    data = yaml.safe_load((config / "projects" / "churn-eu.yaml").read_text())
    assert unwritten(ProjectSettings, data) == []

    expected = source.model_dump()
    expected["name"] = "churn-eu"
    uri = expected["monitoring"]["model_quality"]["ground_truth_s3_uri"]
    expected["monitoring"]["model_quality"]["ground_truth_s3_uri"] = uri.replace(
        "/projects/churn/", "/projects/churn-eu/"
    )
    expected["approval"]["approvers"][1] = "arn:aws:iam::111111111111:role/mlops-churn-eu-governance-approver"
    assert copy.model_dump() == expected  # the look-alike role mlops-churnish-reviewers is left alone
    assert f"monitoring.model_quality.ground_truth_s3_uri: {uri} -> " in out
    assert "copied from project churn" in (config / "projects" / "churn-eu.yaml").read_text()


def test_from_round_trips_every_kind_of_setting(capsys, config):
    """Multi-line text, dicts, serverless variants, bias facets with both threshold forms, canvas, cost center."""
    churn = example_project()
    churn |= {"description": "Line one\nline two: 'quoted' #not a comment", "cost_center": "cc-42"}
    churn["canvas"] = {"enabled": True}
    churn["pipeline"] = {
        "hyperparameters": {"n_estimators": 200, "max_depth": "8"},
        "retrain_schedule": "rate(7 days)",
        "input_data_uri": "s3://bucket/projects/churn/input/",
    }
    group = churn["features"]["feature_groups"][0]
    group |= {"throughput": "Provisioned", "provisioned_read_units": 5, "provisioned_write_units": 5}
    churn["monitoring"] |= {"stages": ["staging"], "explainability": {"enabled": True}}
    churn["monitoring"]["bias"] = {
        "enabled": True,
        "facets": [
            {"name": "senior_citizen", "value_or_threshold": [1]},
            {"name": "tenure_months", "value_or_threshold": 12.5},
        ],
    }
    churn["serving"]["prod"] = {
        "variants": [{"name": "primary", "serverless": {"memory_mb": 3072, "max_concurrency": 10}}],
        "data_capture": {"enabled": False},
    }
    write_config(config.parent, None, {"churn": churn})
    code, out, err = new_project(capsys, config, "churn-x", "--from", "churn")
    assert (code, err) == (0, "")
    loaded = load_config(config)
    expected = loaded.projects["churn"].model_dump()
    expected["name"] = "churn-x"
    expected["pipeline"]["input_data_uri"] = "s3://bucket/projects/churn-x/input/"
    quality = expected["monitoring"]["model_quality"]
    quality["ground_truth_s3_uri"] = quality["ground_truth_s3_uri"].replace("/churn/", "/churn-x/")
    assert loaded.projects["churn-x"].model_dump() == expected
    assert "pipeline.input_data_uri: s3://bucket/projects/churn/input/ -> s3://bucket/projects/churn-x/input/" in out


def test_the_written_file_is_the_only_change(capsys, config):
    before = snapshot(config)
    assert new_project(capsys, config, "demo")[0] == 0
    after = snapshot(config)
    assert set(after) - set(before) == {"projects/demo.yaml"}
    assert {k: v for k, v in after.items() if k in before} == before


# --------------------------------------------------------------------------- refusals


def _taken(config: Path) -> None:
    other = example_project() | {"name": "fraud", "members": [{"user": "carol", "persona": "lead"}]}
    other["approval"] = {"approvers": ["carol"]}
    other["monitoring"]["model_quality"]["ground_truth_s3_uri"] = "s3://bucket/projects/fraud/"
    (config / "projects" / "other.yaml").write_text(yaml.safe_dump(other))


def _member_of_churn_named_like_a_profile(config: Path) -> None:
    churn = example_project()
    churn["members"].append({"user": "eu-edit-me-lead"})
    write_config(config.parent, None, {"churn": churn})


@pytest.mark.parametrize(
    ("args", "prepare", "expected"),
    [
        (["Churn_EU"], None, "NAME: 'Churn_EU' is not a valid project name; allowed: 2-20 characters"),
        (["x"], None, "(pattern ^[a-z][a-z0-9]*(-[a-z0-9]+)*$)"),
        (["churn-"], None, "not ending with a hyphen"),
        (["a" * 21], None, "is not a valid project name"),
        (["churn"], None, "projects/churn.yaml already exists"),
        (["fraud"], _taken, "projects/other.yaml: name: project 'fraud' is already defined there"),
        (["demo", "--from", "nope"], None, "--from: no project 'nope' in"),
        (
            ["churn-prod-drift"],
            None,
            "would create the SageMaker pipeline 'mlops-churn-prod-drift', which project 'churn' (",
        ),
        (
            ["churn-eu"],
            _member_of_churn_named_like_a_profile,
            "the Studio user profile 'churn-eu-edit-me-lead', which project 'churn' (",
        ),
    ],
    ids=["pattern", "short", "hyphen", "long", "file-exists", "name-taken", "no-source", "pipeline", "profile"],
)
def test_refusals_are_one_line_exit_2_and_write_nothing(capsys, config, args, prepare, expected):
    if prepare is not None:
        prepare(config)
    before = snapshot(config)
    code, out, err = new_project(capsys, config, *args)
    assert code == 2
    assert out == ""
    assert err.startswith("mlops: new-project: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert expected in err
    assert snapshot(config) == before


def test_a_config_that_is_already_broken_is_reported_first(capsys, config):
    (config / "projects" / "churn.yaml").write_text("name: churn\nowners: []\n")
    code, _, err = new_project(capsys, config, "demo")
    assert code == 2 and "config error (fix it first): " in err and "projects/churn.yaml" in err
    assert not (config / "projects" / "demo.yaml").exists()


def test_a_name_that_only_extends_another_is_allowed(capsys, config):
    """churn-eu's names all start with churn's, yet none is equal: allowed (the isolation tests' case)."""
    assert new_project(capsys, config, "churn-eu")[0] == 0
    assert new_project(capsys, config, "churn-eu-2", "--from", "churn")[0] == 0
    assert set(load_config(config).projects) == {"churn", "churn-eu", "churn-eu-2"}


def test_needs_no_aws_credentials(capsys, config, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config / "missing"))
    assert new_project(capsys, config, "demo")[0] == 0


# --------------------------------------------------------------------------- load_config


def test_load_config_refuses_hand_written_projects_that_share_a_name(tmp_path):
    churn = example_project()
    churn["features"]["feature_groups"][0]["name"] = "eu-customers"
    other = example_project() | {"name": "churn-eu"}
    config = write_config(tmp_path, None, {"churn": churn, "churn-eu": other})
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    message = str(raised.value)
    assert "\n" not in message
    assert message.endswith("rename a project or the entry named")
    assert "projects/churn.yaml: features.feature_groups[0].name: " in message
    assert "SageMaker feature group 'mlops-churn-eu-customers'" in message
    assert "projects/churn-eu.yaml" in message
    assert "churn: features.feature_groups[0].name 'eu-customers'; " in message
    assert "churn-eu: features.feature_groups[0].name 'customers'" in message


def test_load_config_refuses_projects_with_one_stack_id(tmp_path):
    """``churn-2`` and ``churn2`` are both ``Churn2`` in stacks/platform.py's construct ids."""
    config = write_config(tmp_path, None, {"churn2": example_project() | {"name": "churn2"}})
    write_config(tmp_path, None, {"churn-2": example_project() | {"name": "churn-2"}})
    with pytest.raises(ConfigError, match=r"churn2\.yaml: name: .*CDK stack id 'Churn2Registry'.*/churn-2\.yaml"):
        load_config(config)


# --------------------------------------------------------------------------- against a synth

# Every named resource of a project's stacks: (CloudFormation type, property) -> the collisions kind.
NAMED = {
    ("AWS::IAM::Role", "RoleName"): "IAM role",
    ("AWS::Lambda::Function", "FunctionName"): "Lambda function",
    ("AWS::SQS::Queue", "QueueName"): "SQS queue",
    ("AWS::SageMaker::FeatureGroup", "FeatureGroupName"): "SageMaker feature group",
    ("AWS::SageMaker::ModelPackageGroup", "ModelPackageGroupName"): "SageMaker model package group",
    ("AWS::SageMaker::Pipeline", "PipelineName"): "SageMaker pipeline",
    ("AWS::SageMaker::Endpoint", "EndpointName"): "SageMaker endpoint",
    ("AWS::SageMaker::MonitoringSchedule", "MonitoringScheduleName"): "SageMaker monitoring schedule",
    ("AWS::SageMaker::UserProfile", "UserProfileName"): "Studio user profile",
    ("AWS::Athena::WorkGroup", "Name"): "Athena workgroup",
    ("AWS::CloudWatch::Alarm", "AlarmName"): "CloudWatch alarm",
    ("AWS::CloudWatch::Dashboard", "DashboardName"): "CloudWatch dashboard",
}
# Named, but not in a namespace two projects share.
NOT_SHARED = {
    ("AWS::Logs::LogGroup", "LogGroupName"),  # /aws/lambda/<function>: unique with the function
    ("AWS::ApplicationAutoScaling::ScalingPolicy", "PolicyName"),  # unique per scalable target (one endpoint)
}
DESCRIPTIVE = ("DisplayName", "Description")


def test_stack_plan_is_what_the_synth_builds(example):
    config = load_config(EXAMPLE_CONFIG)
    churn = config.projects["churn"]
    built = {role: sorted(n for n in example.templates if n.startswith(f"mlops-{role}-churn-")) for role in ROLES}
    planned = project_stacks(config.platform, churn)
    assert {role: sorted(names) for role, names in planned.items()} == built
    for role, names in planned.items():
        assert all(example.stage_of[name].lower() == role for name in names)


def test_collision_names_cover_every_named_resource_of_the_synth(example):
    config = load_config(EXAMPLE_CONFIG)
    known: dict[str, set[str]] = {}
    for item in resource_names(config.platform, config.projects["churn"]):
        known.setdefault(item.kind, set()).add(item.name)
    checked, unknown = 0, []
    for stack, template in example.templates.items():
        if "-churn-" not in stack:
            continue
        assert f"{example.construct_path[stack].split('/')[-1]}" in known["CDK stack id"]
        for logical, resource in template.get("Resources", {}).items():
            for prop, value in resource.get("Properties", {}).items():
                if not (prop.endswith("Name") and isinstance(value, str) and "churn" in value):
                    continue
                key = (resource["Type"], prop)
                if prop in DESCRIPTIVE or key in NOT_SHARED:
                    continue
                kind = NAMED.get(key)
                if kind == "CloudWatch alarm":
                    covered = any(value.startswith(prefix) for prefix in known[kind])
                else:
                    covered = kind is not None and value in known.get(kind, set())
                checked += 1
                if not covered:
                    unknown.append(f"{stack} {logical} {resource['Type']}.{prop} = {value}")
    assert unknown == [], "names mlops_platform/collisions.py does not know: " + "; ".join(unknown)
    assert checked >= 25
