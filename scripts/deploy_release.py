#!/usr/bin/env python3
"""Deploy what the release table says one project's stage serves, then verify the live endpoint.

Run by the governance deploy pipeline (``make deploy-release``) with the
pipeline's variables; runs the same from a laptop with governance credentials:

    make deploy-release PROJECT=churn STAGE=staging

Steps, each printed as it starts:
1. ``mlops releases export``: the stage's release manifest from the table into ``releases/``;
2. ``cdk deploy --exclusively <Stage>/<Project>Serving``: the serving stack only, through the
   CDK bootstrap roles the stage account trusts governance with;
3. ``mlops verify``: through the stage's verify role, the endpoint serves the config the stack
   just deployed with the manifest's versions (fails when SageMaker rolled back).

Exit code: the first failing step's, 2 for bad arguments.
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

from mlops_platform.config import SERVING_STAGES, ConfigError, load_config  # noqa: E402
from mlops_platform.naming import Naming  # noqa: E402

# A prod blue/green update with canary baking may take up to SageMaker's four-hour cap.
VERIFY_WAIT_MINUTES = 240


def stack_selector(stage: str, project: str) -> str:
    """The CDK CLI's hierarchical id of a serving stack, e.g. ``Staging/ChurnServing``."""
    return f"{stage.capitalize()}/{''.join(part.capitalize() for part in project.split('-'))}Serving"


def commands(
    project: str, stage: str, *, config_dir: Path, releases_dir: Path, expect_arn: str | None
) -> list[list[str]]:
    naming = Naming(load_config(config_dir).platform)
    mlops = [str(ROOT / ".venv" / "bin" / "mlops"), "--config-dir", str(config_dir)]
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
        *mlops,
        "--role-arn",
        naming.verify_role_arn(project, stage),
        "verify",
        project,
        "--stage",
        stage,
        "--manifest",
        str(releases_dir / project / f"{stage}.json"),
        "--wait-minutes",
        str(VERIFY_WAIT_MINUTES),
    ]
    return [export, deploy, verify]


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
    for number, (name, command) in enumerate(zip(("export release", "deploy", "verify"), steps, strict=True), 1):
        print(f"[{number}/3] {name}: {' '.join(command)}", flush=True)
        if args.dry_run:
            continue
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, env=env, check=False)
        print(f"[{number}/3] {name}: exit {done.returncode} after {time.monotonic() - started:.0f} s", flush=True)
        if done.returncode != 0:
            return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
