#!/usr/bin/env python3
"""Deploy what the release table says one project's stage serves, then verify the live endpoint.

Run by the governance deploy pipeline (``make deploy-release``) with the
pipeline's variables; runs the same from a laptop with governance credentials:

    make deploy-release PROJECT=churn STAGE=staging

Steps, each printed as it starts and ends:
1. ``mlops releases export``: the stage's release manifest from the table into ``releases/``;
2. ``mlops scaling detach``: through the stage's verify role, save and deregister the autoscaled
   variants whose instance type the deploy changes or that it removes (SageMaker refuses to
   update them otherwise); refused, exit 3, when the deploy also changes their scaling;
3. ``cdk deploy --exclusively <Stage>/<Project>Serving``: the serving stack only, through the
   CDK bootstrap roles the stage account trusts governance with;
4. ``mlops scaling reattach``: runs whenever step 2 ran, also after a failed deploy (or a failed
   detach): the old fleet gets its saved scaling back, a new fleet the stack's;
5. ``mlops verify``: through the stage's verify role, the endpoint serves the config the stack
   just deployed with the manifest's versions (fails when SageMaker rolled back).

Exit code: the first failing step's (a failed deploy's even when reattach then succeeds), 2 for
bad arguments, 3 for an execution that neither an approval handler nor ``mlops promote`` started.

Pipeline input is data, never code. In CodeBuild, PROJECT, STAGE and MODEL_PACKAGE_ARN arrive
as environment variables and are read with ``--from-env``: checked against strict patterns and
the project files (stdlib only, so ``--check-only`` runs before the venv exists and before make)
and passed to every step as list arguments, never through a shell line. Inside CodeBuild
(``CODEBUILD_BUILD_ID`` set) the build also refuses an execution whose trigger principal
(GetPipelineExecution's ``trigger.triggerDetail``) is neither this project's guard or rejected
handler role nor the principal that recorded the stage's current release with ``mlops promote``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops_platform.catalog import BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS  # noqa: E402  (stdlib only)

# Stdlib only down to main(): --check-only runs on the build image's python3, before the venv exists.
# The same values as mlops_platform.config (SERVING_STAGES, ProjectName); tests/serving_cli/test_deploy_input.py
# keeps them equal.
SERVING_STAGES = ("staging", "prod")
PROJECT_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PROJECT_MAX = 20
ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/[A-Za-z0-9-]{1,63}/[0-9]{1,10}")
NO_MODEL = "none"  # the rejected handler's MODEL_PACKAGE_ARN for a stage left without a model
INPUT_VARIABLES = ("PROJECT", "STAGE", "MODEL_PACKAGE_ARN")
# The pipeline passes #{codepipeline.PipelineExecutionId} as this variable (stacks/deploy.py).
EXECUTION_VARIABLE = "PIPELINE_EXECUTION_ID"
EXIT_USAGE, EXIT_REFUSED = 2, 3
# A prod blue/green update with canary baking may run up to SageMaker's execution timeout.
VERIFY_WAIT_MINUTES = BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS[1] // 60
# Executions queue, so the endpoint is normally InService; this covers a SageMaker system update.
SCALING_WAIT_MINUTES = 60
STEPS = ("export release", "detach autoscaling", "deploy", "reattach autoscaling", "verify")


def stack_selector(stage: str, project: str) -> str:
    """The CDK CLI's hierarchical id of a serving stack, e.g. ``Staging/ChurnServing``."""
    return f"{stage.capitalize()}/{''.join(part.capitalize() for part in project.split('-'))}Serving"


def commands(
    project: str,
    stage: str,
    *,
    config_dir: Path,
    releases_dir: Path,
    expect_arn: str | None,
    profile: str | None = None,
    stage_profile: str | None = None,
) -> list[list[str]]:
    """The five steps as argument lists.

    ``profile``: the governance credentials for export and deploy (default: the
    environment's, as in the deploy pipeline). The stage steps assume the
    stage's verify role from them, or, with ``stage_profile`` (a person with
    the stage account's credentials, deploying by hand), use that profile.
    """
    from mlops_platform.config import load_config
    from mlops_platform.naming import Naming

    naming = Naming(load_config(config_dir).platform)
    mlops = [str(ROOT / ".venv" / "bin" / "mlops"), "--config-dir", str(config_dir)]
    governance = [*mlops, *(["--profile", profile] if profile else [])]
    manifest = str(releases_dir / project / f"{stage}.json")
    # Local to this build: never under releases/, whose */*.json synth reads as manifests.
    state = str(ROOT / ".cache" / "scaling" / f"{project}-{stage}.json")
    if stage_profile:
        in_stage = [*mlops, "--profile", stage_profile]
    else:
        in_stage = [*governance, "--role-arn", naming.verify_role_arn(project, stage)]
    scaling = ["--stage", stage, "--state", state, "--wait-minutes", str(SCALING_WAIT_MINUTES)]
    detach = [*in_stage, "scaling", "detach", project, *scaling, "--manifest", manifest]
    reattach = [*in_stage, "scaling", "reattach", project, *scaling]
    export = [*governance, "releases", "export", "--project", project, "--stage", stage, "--out", str(releases_dir)]
    if expect_arn and expect_arn != "none":  # "none": the stage is left without a model
        export += ["--expect-arn", expect_arn]
    deploy = [
        str(ROOT / "node_modules" / ".bin" / "cdk"),
        "deploy",
        stack_selector(stage, project),
        "--exclusively",
        "--require-approval",
        "never",
        "--progress",
        "events",
        *(["--profile", profile] if profile else []),
    ]
    verify = [
        *in_stage,
        "verify",
        project,
        "--stage",
        stage,
        "--manifest",
        manifest,
        "--wait-minutes",
        str(VERIFY_WAIT_MINUTES),
    ]
    return [export, detach, deploy, reattach, verify]


def run_steps(steps: list[list[str]], *, env: dict[str, str], dry_run: bool) -> int:
    """Run the steps in order; reattach runs whenever detach ran, whatever detach or the deploy returned."""
    total = len(STEPS)

    def run(index: int) -> int:
        name, command = STEPS[index], steps[index]
        print(f"[{index + 1}/{total}] {name}: {' '.join(command)}", flush=True)
        if dry_run:
            return 0
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env=env, check=False)
        print(
            f"[{index + 1}/{total}] {name}: exit {done.returncode} after {time.monotonic() - started:.0f} s", flush=True
        )
        return done.returncode

    export, detach, deploy, reattach, verify = range(total)
    if code := run(export):
        return code
    detached = run(detach)
    deployed = run(deploy) if detached == 0 else None
    if detached != 0:
        print(f"[{deploy + 1}/{total}] {STEPS[deploy]}: skipped, detach failed", flush=True)
    reattached = run(reattach)
    if detached != 0:
        return detached
    if deployed:
        return deployed
    if reattached:
        return reattached
    return run(verify)


class InputError(ValueError):
    """A deploy input that is not what the pipeline may be started with."""


def _printable(value: str) -> str:
    return repr(value[:80] + ("..." if len(value) > 80 else ""))


def validate_input(project: str, stage: str, model_package_arn: str | None, *, config_dir: Path) -> None:
    """Refuse (InputError) any value that is not a known project, a serving stage, or a model package ARN.

    Pure string and directory checks: nothing is evaluated, expanded or joined into a path.
    """
    if not (PROJECT_PATTERN.fullmatch(project) and 2 <= len(project) <= PROJECT_MAX):
        raise InputError(f"PROJECT {_printable(project)} is not a project name (lowercase letters, digits, '-')")
    projects_dir = Path(config_dir) / "projects"
    known = sorted(p.stem for p in projects_dir.glob("*.yaml")) if projects_dir.is_dir() else []
    if project not in known:
        raise InputError(f"unknown project {_printable(project)} (projects: {', '.join(known) or 'none'})")
    if stage not in SERVING_STAGES:
        raise InputError(f"STAGE {_printable(stage)} is not one of {', '.join(SERVING_STAGES)}")
    if model_package_arn and model_package_arn != NO_MODEL and not ARN_PATTERN.fullmatch(model_package_arn):
        raise InputError(f"MODEL_PACKAGE_ARN {_printable(model_package_arn)} is not a model package version ARN")


def input_from_env(env: Mapping[str, str]) -> tuple[str, str, str | None]:
    """PROJECT, STAGE and MODEL_PACKAGE_ARN (empty: None) as the pipeline passed them."""
    return env.get("PROJECT", ""), env.get("STAGE", ""), env.get("MODEL_PACKAGE_ARN") or None


PROFILE_PATTERN = re.compile(r"[A-Za-z0-9_.@+-]{1,128}")


def validate_profile(name: str, value: str | None) -> str | None:
    """An AWS profile name or None; InputError for anything a shell or the CLI could misread."""
    if value in (None, ""):
        return None
    if not PROFILE_PATTERN.fullmatch(value):
        raise InputError(f"{name} {_printable(value)} is not an AWS profile name (letters, digits, _ . @ + -)")
    return value


# --------------------------------------------------------------------------- who started the execution


def _assumed_role(principal: str) -> tuple[str, str] | None:
    """(account, role name) of an STS assumed-role ARN, else None."""
    match = re.fullmatch(r"arn:aws[a-z-]*:sts::([0-9]{12}):assumed-role/([\w+=,.@-]{1,64})/[\w+=,.@-]{2,64}", principal)
    return (match.group(1), match.group(2)) if match else None


def trigger_refusal(
    trigger: Mapping[str, Any], *, account: str, handler_roles: set[str], promoter: str | None
) -> str | None:
    """Why an execution's trigger may not deploy; None when an approval handler or the promoter started it.

    ``trigger`` is GetPipelineExecution's ``pipelineExecution.trigger``; ``promoter`` the
    principal (``approved_by``) of the stage's current release when ``mlops promote`` recorded it.
    """
    kind, principal = str(trigger.get("triggerType", "")), str(trigger.get("triggerDetail", ""))
    if kind != "StartPipelineExecution":
        return f"the execution was started by {kind or 'an unknown trigger'}, not by StartPipelineExecution"
    role = _assumed_role(principal)
    if role is not None and role[0] == account and role[1] in handler_roles:
        return None
    if promoter and principal == promoter:
        return None
    return (
        f"the execution was started by {principal or 'an unknown principal'}: only the approval handlers "
        f"({', '.join(sorted(handler_roles))}) and the principal that promoted the current release may deploy"
    )


def check_trigger(
    codepipeline: Any, dynamodb: Any, *, project: str, stage: str, execution_id: str, config_dir: Path
) -> str | None:
    """Read the execution's trigger and the stage's current release; the refusal, or None."""
    from mlops_platform.approval import releases
    from mlops_platform.config import load_config
    from mlops_platform.naming import Naming

    naming = Naming(load_config(config_dir).platform)
    execution = codepipeline.get_pipeline_execution(
        pipelineName=naming.deploy_pipeline(), pipelineExecutionId=execution_id
    )["pipelineExecution"]
    current = releases.current_release(
        releases.ReleaseTable(dynamodb, naming.releases_table()).releases(project, stage)
    )
    promoter = current.approved_by if current is not None and current.event_id.startswith("promote:") else None
    handler_roles = {naming.role_name(project, "governance", kind) for kind in ("guard", "rejected")}
    return trigger_refusal(
        execution.get("trigger") or {}, account=naming.account("governance"), handler_roles=handler_roles,
        promoter=promoter,
    )  # fmt: skip


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", nargs="?")
    parser.add_argument("stage", nargs="?")
    parser.add_argument("--expect-arn", default=None)
    parser.add_argument(
        "--from-env", action="store_true", help="read PROJECT, STAGE, MODEL_PACKAGE_ARN from the environment"
    )
    parser.add_argument("--check-only", action="store_true", help="validate the input, run nothing")
    parser.add_argument("--config-dir", type=Path, default=Path(env.get("MLOPS_CONFIG_DIR", ROOT / "config")))
    parser.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    parser.add_argument("--profile", help="governance profile for export and deploy (default: the environment's)")
    parser.add_argument(
        "--stage-profile",
        help="profile of the stage account for detach, reattach and verify, instead of its verify role "
        "(which trusts only the deploy pipeline): for deploying by hand",
    )
    args = parser.parse_args(argv)
    if args.from_env:
        if args.project or args.stage or args.expect_arn:
            parser.error("--from-env takes no project, stage or --expect-arn")
        project, stage, expect_arn = input_from_env(env)
        args.profile = args.profile or env.get("PROFILE")
        args.stage_profile = args.stage_profile or env.get("STAGE_PROFILE")
    else:
        if not (args.project and args.stage):
            parser.error("PROJECT and STAGE are required (or --from-env)")
        project, stage = args.project, args.stage
        expect_arn = args.expect_arn or env.get("MODEL_PACKAGE_ARN") or None
    try:
        validate_input(project, stage, expect_arn, config_dir=args.config_dir)
        profile = validate_profile("PROFILE", args.profile)
        stage_profile = validate_profile("STAGE_PROFILE", args.stage_profile)
    except InputError as err:
        print(f"deploy-release: refused: {err}", file=sys.stderr)
        return EXIT_USAGE
    if args.check_only:
        return 0
    from mlops_platform.config import ConfigError, load_config

    releases_dir = Path(env.get("MLOPS_RELEASES_DIR", ROOT / "releases"))
    try:
        config = load_config(args.config_dir)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if project not in config.projects:
        print(f"unknown project '{project}' (projects: {', '.join(sorted(config.projects))})", file=sys.stderr)
        return EXIT_USAGE
    if env.get("CODEBUILD_BUILD_ID") and not args.dry_run:
        refusal = _check_trigger_in_build(env, project=project, stage=stage, config_dir=args.config_dir)
        if refusal:
            print(f"deploy-release: refused: {refusal}", file=sys.stderr)
            return EXIT_REFUSED
    steps = commands(
        project,
        stage,
        config_dir=args.config_dir,
        releases_dir=releases_dir,
        expect_arn=expect_arn,
        profile=profile,
        stage_profile=stage_profile,
    )
    child_env = {**env, "MLOPS_CONFIG_DIR": str(args.config_dir), "MLOPS_RELEASES_DIR": str(releases_dir)}
    return run_steps(steps, env=child_env, dry_run=args.dry_run)


def _check_trigger_in_build(env: Mapping[str, str], *, project: str, stage: str, config_dir: Path) -> str | None:
    execution_id = env.get(EXECUTION_VARIABLE, "")
    if not re.fullmatch(r"[0-9a-f-]{36}", execution_id):
        return f"{EXECUTION_VARIABLE} {_printable(execution_id)} is not a pipeline execution id"
    import boto3

    session = boto3.Session()
    return check_trigger(
        session.client("codepipeline"), session.client("dynamodb"),
        project=project, stage=stage, execution_id=execution_id, config_dir=config_dir,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
