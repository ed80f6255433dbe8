"""Deploy pipeline input is data, never code (issue item 8): validated before any shell, passed as arguments."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from mlops_platform import config as config_module
from tests.synth import EXAMPLE_CONFIG, ROOT

ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-churn/3"
INJECTIONS = ['churn";touch {marker};"', "churn$(touch {marker})", "churn`touch {marker}`", "$(shell touch {marker})"]


def _script():
    spec = importlib.util.spec_from_file_location("deploy_release_input", ROOT / "scripts" / "deploy_release.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_stdlib_checks_match_the_config_model():
    script = _script()
    assert script.SERVING_STAGES == config_module.SERVING_STAGES
    assert script.INPUT_VARIABLES == ("PROJECT", "STAGE", "MODEL_PACKAGE_ARN")


@pytest.mark.parametrize("template", INJECTIONS)
def test_an_injected_project_is_refused_before_any_step_runs(template, tmp_path, monkeypatch, capsys):
    script = _script()
    marker = tmp_path / "pwned"

    def no_subprocess(*args, **kwargs):
        raise AssertionError("a step ran")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    env = {"PROJECT": template.format(marker=marker), "STAGE": "prod", "CODEBUILD_BUILD_ID": "b:1"}
    assert script.main(["--from-env", "--config-dir", str(EXAMPLE_CONFIG)], env=env) == 2
    assert "refused: PROJECT" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize(
    ("variables", "field"),
    [
        ({"PROJECT": "fraud", "STAGE": "prod"}, "unknown project"),
        ({"PROJECT": "churn", "STAGE": "prod;id"}, "STAGE"),
        ({"PROJECT": "churn", "STAGE": "prod", "MODEL_PACKAGE_ARN": f"{ARN};id"}, "MODEL_PACKAGE_ARN"),
    ],
)
def test_other_bad_inputs_are_refused(variables, field, capsys):
    assert _script().main(["--from-env", "--check-only", "--config-dir", str(EXAMPLE_CONFIG)], env=variables) == 2
    assert field in capsys.readouterr().err


def test_valid_input_passes_the_check():
    env = {"PROJECT": "churn", "STAGE": "prod", "MODEL_PACKAGE_ARN": ARN}
    assert _script().main(["--from-env", "--check-only", "--config-dir", str(EXAMPLE_CONFIG)], env=env) == 0
    env["MODEL_PACKAGE_ARN"] = "none"
    assert _script().main(["--from-env", "--check-only", "--config-dir", str(EXAMPLE_CONFIG)], env=env) == 0


@pytest.mark.parametrize("template", INJECTIONS)
def test_make_deploy_release_refuses_injected_values_before_running_anything(template, tmp_path):
    marker = tmp_path / "pwned"
    done = subprocess.run(
        ["make", "--no-print-directory", "deploy-release", f"PROJECT={template.format(marker=marker)}", "STAGE=prod"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "refused" in done.stderr
    assert not marker.exists()


HANDLERS = {"mlops-churn-governance-guard", "mlops-churn-governance-rejected"}
GOV = "123456789012"


@pytest.mark.parametrize(
    ("trigger", "promoter", "allowed"),
    [
        ({"triggerType": "StartPipelineExecution",
          "triggerDetail": f"arn:aws:sts::{GOV}:assumed-role/mlops-churn-governance-guard/mlops-churn-approval-guard"},
         None, True),
        ({"triggerType": "StartPipelineExecution",
          "triggerDetail": f"arn:aws:sts::{GOV}:assumed-role/mlops-churn-governance-rejected/fn"}, None, True),
        ({"triggerType": "StartPipelineExecution",
          "triggerDetail": f"arn:aws:sts::{GOV}:assumed-role/admin/alice"},
         f"arn:aws:sts::{GOV}:assumed-role/admin/alice", True),
        # another admin, another project's handler, another account, a non-API trigger
        ({"triggerType": "StartPipelineExecution", "triggerDetail": f"arn:aws:sts::{GOV}:assumed-role/admin/mallory"},
         f"arn:aws:sts::{GOV}:assumed-role/admin/alice", False),
        ({"triggerType": "StartPipelineExecution",
          "triggerDetail": f"arn:aws:sts::{GOV}:assumed-role/mlops-fraud-governance-guard/fn"}, None, False),
        ({"triggerType": "StartPipelineExecution",
          "triggerDetail": "arn:aws:sts::999999999999:assumed-role/mlops-churn-governance-guard/fn"}, None, False),
        ({"triggerType": "CreatePipeline", "triggerDetail": ""}, None, False),
    ],
)  # fmt: skip
def test_only_the_approval_handlers_and_the_promoter_may_deploy(trigger, promoter, allowed):
    refusal = _script().trigger_refusal(trigger, account=GOV, handler_roles=HANDLERS, promoter=promoter)
    assert (refusal is None) is allowed


def test_in_codebuild_a_missing_execution_id_refuses(monkeypatch, capsys):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("a step ran")))
    env = {"PROJECT": "churn", "STAGE": "prod", "CODEBUILD_BUILD_ID": "b:1", "PIPELINE_EXECUTION_ID": "$(id)"}
    assert _script().main(["--from-env", "--config-dir", str(EXAMPLE_CONFIG)], env=env) == 3
    assert "PIPELINE_EXECUTION_ID" in capsys.readouterr().err


def test_the_buildspec_names_no_variable_and_passes_the_execution_id(example):
    template = example.template("mlops-governance-deploy")
    build = next(r for r in template["Resources"].values() if r["Type"] == "AWS::CodeBuild::Project")
    spec = json.loads(build["Properties"]["Source"]["BuildSpec"])
    commands = spec["phases"]["build"]["commands"]
    assert commands == ["python3 scripts/deploy_release.py --from-env --check-only", "make deploy-release"]
    assert not any("$" in command for command in commands)
    pipeline = next(r for r in template["Resources"].values() if r["Type"] == "AWS::CodePipeline::Pipeline")
    action = pipeline["Properties"]["Stages"][1]["Actions"][0]
    variables = json.loads(action["Configuration"]["EnvironmentVariables"])
    assert {"name": "PIPELINE_EXECUTION_ID", "value": "#{codepipeline.PipelineExecutionId}", "type": "PLAINTEXT"} in (
        variables
    )


def test_a_release_deploy_by_hand_uses_the_given_profiles():
    """The README's manual path: governance profile for export and deploy, the stage's own for its steps."""
    script = _script()
    export, detach, deploy, reattach, verify = script.commands(
        "churn", "prod", config_dir=EXAMPLE_CONFIG, releases_dir=Path("releases"), expect_arn=None,
        profile="governance", stage_profile="prod-admin",
    )  # fmt: skip
    assert export[3:5] == ["--profile", "governance"] and deploy[-2:] == ["--profile", "governance"]
    for step in (detach, reattach, verify):
        assert step[3:5] == ["--profile", "prod-admin"] and "--role-arn" not in step
    # Without a stage profile (the pipeline), the stage steps assume the verify role.
    *_, verify = script.commands(
        "churn", "prod", config_dir=EXAMPLE_CONFIG, releases_dir=Path("releases"), expect_arn=None
    )
    assert "--role-arn" in verify and "--profile" not in verify


def test_an_injected_profile_is_refused_before_any_step_runs(capsys):
    env = {"PROJECT": "churn", "STAGE": "prod", "PROFILE": "gov$(touch /tmp/x)"}
    assert _script().main(["--from-env", "--check-only", "--config-dir", str(EXAMPLE_CONFIG)], env=env) == 2
    assert "PROFILE" in capsys.readouterr().err
