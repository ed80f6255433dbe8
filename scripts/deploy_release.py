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
bad arguments.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops_platform.catalog import BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS  # noqa: E402
from mlops_platform.config import SERVING_STAGES, ConfigError, load_config  # noqa: E402
from mlops_platform.naming import Naming  # noqa: E402

# A prod blue/green update with canary baking may run up to SageMaker's execution timeout.
VERIFY_WAIT_MINUTES = BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS[1] // 60
# Executions queue, so the endpoint is normally InService; this covers a SageMaker system update.
SCALING_WAIT_MINUTES = 60
STEPS = ("export release", "detach autoscaling", "deploy", "reattach autoscaling", "verify")


def stack_selector(stage: str, project: str) -> str:
    """The CDK CLI's hierarchical id of a serving stack, e.g. ``Staging/ChurnServing``."""
    return f"{stage.capitalize()}/{''.join(part.capitalize() for part in project.split('-'))}Serving"


def commands(
    project: str, stage: str, *, config_dir: Path, releases_dir: Path, expect_arn: str | None
) -> list[list[str]]:
    naming = Naming(load_config(config_dir).platform)
    mlops = [str(ROOT / ".venv" / "bin" / "mlops"), "--config-dir", str(config_dir)]
    manifest = str(releases_dir / project / f"{stage}.json")
    # Local to this build: never under releases/, whose */*.json synth reads as manifests.
    state = str(ROOT / ".cache" / "scaling" / f"{project}-{stage}.json")
    in_stage = [*mlops, "--role-arn", naming.verify_role_arn(project, stage)]
    scaling = ["--stage", stage, "--state", state, "--wait-minutes", str(SCALING_WAIT_MINUTES)]
    detach = [*in_stage, "scaling", "detach", project, *scaling, "--manifest", manifest]
    reattach = [*in_stage, "scaling", "reattach", project, *scaling]
    export = [*mlops, "releases", "export", "--project", project, "--stage", stage, "--out", str(releases_dir)]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project")
    parser.add_argument("stage", choices=SERVING_STAGES)
    parser.add_argument("--expect-arn", default=os.environ.get("MODEL_PACKAGE_ARN") or None)
    parser.add_argument("--config-dir", type=Path, default=Path(os.environ.get("MLOPS_CONFIG_DIR", ROOT / "config")))
    parser.add_argument("--dry-run", action="store_true", help="print the steps, run nothing")
    args = parser.parse_args(argv)
    releases_dir = Path(os.environ.get("MLOPS_RELEASES_DIR", ROOT / "releases"))
    try:
        config = load_config(args.config_dir)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    if args.project not in config.projects:
        print(f"unknown project '{args.project}' (projects: {', '.join(sorted(config.projects))})", file=sys.stderr)
        return 2
    steps = commands(
        args.project, args.stage, config_dir=args.config_dir, releases_dir=releases_dir, expect_arn=args.expect_arn
    )
    env = {**os.environ, "MLOPS_CONFIG_DIR": str(args.config_dir), "MLOPS_RELEASES_DIR": str(releases_dir)}
    return run_steps(steps, env=env, dry_run=args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
