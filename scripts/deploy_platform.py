"""Deploy one account role's platform stacks from the synthesized assembly: never its serving stacks.

``make deploy ROLE=<governance|dev|staging|prod> [PROFILE=<profile>]`` (the CI
deploy runs the same). Serving stacks take what they serve from the release
table, exported into a manifest by the governance deploy pipeline right before
it deploys them; a platform deploy has no such manifest, so it would
synthesize them as "no release yet" and delete every live endpoint. It
therefore leaves them out: only the release pipeline deploys serving stacks.
It leaves out the GitHub OIDC stack too (CI's own deploy roles), which an
admin deploys once with ``make deploy-oidc ROLE=<role> PROFILE=<admin>``
(``--oidc``: that stack only).

The stacks go to ``cdk deploy --app cdk.out`` (the assembly ``make synth`` just
wrote, not a second synth) with ``--require-approval never`` and
``--concurrency``, so independent stacks deploy in parallel. ROLE and PROFILE
are read as data and checked before anything runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROLES = ("governance", "dev", "staging", "prod")
PROFILE = re.compile(r"[A-Za-z0-9_.@+-]{1,128}")
CONCURRENCY = 4


class Refused(Exception):
    """The input or the assembly does not allow a deploy; the message says why."""


def platform_stacks(assembly: Path, role: str, excluded: set[str], *, only: set[str] | None = None) -> list[str]:
    """Hierarchical ids (``Dev/Baseline``) of the role's stacks in ``assembly``.

    Stacks named in ``excluded`` are left out; with ``only``, nothing but the stacks it names is selected.
    """
    stage = role.capitalize()
    manifest = assembly / f"assembly-{stage}" / "manifest.json"
    if not manifest.is_file():
        raise Refused(f"{manifest} not found: run make synth first")
    artifacts = json.loads(manifest.read_text())["artifacts"]
    selected = []
    for artifact in artifacts.values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        name = artifact["properties"]["stackName"]
        if name in excluded or (only is not None and name not in only):
            continue
        selected.append(artifact["displayName"])
    if not selected:
        raise Refused(f"the assembly has no {role} stacks")
    return sorted(selected)


def serving_stacks(config_dir: Path) -> set[str]:
    from mlops_platform.config import SERVING_STAGES, load_config
    from mlops_platform.naming import Naming

    config = load_config(config_dir)
    naming = Naming(config.platform)
    return {naming.stack_name(stage, "serving", project) for project in config.projects for stage in SERVING_STAGES}


def oidc_stacks(config_dir: Path) -> set[str]:
    """Names the GitHub OIDC stack can have (one per account, in the first role of it)."""
    from mlops_platform.config import load_config
    from mlops_platform.naming import Naming

    naming = Naming(load_config(config_dir).platform)
    return {naming.stack_name(role, "github-oidc") for role in ROLES}


def deploy_command(stacks: Sequence[str], *, assembly: Path, profile: str | None) -> list[str]:
    return [
        str(ROOT / "node_modules" / ".bin" / "cdk"),
        "deploy",
        "--app",
        str(assembly),
        *stacks,
        "--require-approval",
        "never",
        "--concurrency",
        str(CONCURRENCY),
        "--progress",
        "events",
        *(["--profile", profile] if profile else []),
    ]


def check(role: str, profile: str | None) -> None:
    if role not in ROLES:
        raise Refused(f"ROLE {role!r} is not one of {', '.join(ROLES)}")
    if profile and not PROFILE.fullmatch(profile):
        raise Refused(f"PROFILE {profile!r} is not an AWS profile name (letters, digits, _ . @ + -)")


def main(
    argv: list[str] | None = None,
    env: Mapping[str, str] | None = None,
    run: Callable[[list[str]], int] = lambda command: subprocess.run(command, check=False).returncode,
) -> int:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", default=None, help="account role (default: $ROLE)")
    parser.add_argument("--profile", default=None, help="AWS profile (default: $PROFILE, else the environment's)")
    parser.add_argument("--assembly", type=Path, default=ROOT / "cdk.out")
    parser.add_argument("--config-dir", type=Path, default=Path(env.get("MLOPS_CONFIG_DIR", ROOT / "config")))
    parser.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    parser.add_argument("--oidc", action="store_true", help="deploy only the role's GitHub OIDC stack (admin, once)")
    args = parser.parse_args(argv)
    role = args.role if args.role is not None else env.get("ROLE", "")
    profile = args.profile if args.profile is not None else (env.get("PROFILE") or None)
    try:
        check(role, profile)
        oidc = oidc_stacks(args.config_dir)
        if args.oidc:
            stacks = platform_stacks(args.assembly, role, set(), only=oidc)
        else:
            stacks = platform_stacks(args.assembly, role, serving_stacks(args.config_dir) | oidc)
    except Refused as err:
        print(f"deploy: refused: {err}", file=sys.stderr)
        return 2
    command = deploy_command(stacks, assembly=args.assembly, profile=profile)
    what = "the GitHub OIDC stack" if args.oidc else "serving and GitHub OIDC stacks excluded"
    print(f"==> deploying {len(stacks)} {role} stack(s), {what}: {' '.join(stacks)}", flush=True)
    if args.dry_run:
        print(" ".join(command))
        return 0
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
