"""Argument parsing, output and error handling of ``mlops`` (logic: :mod:`mlops_platform.cli.core`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from mlops_platform.cli import core, render
from mlops_platform.cli.session import Clients, make_session
from mlops_platform.config import ConfigError, load_config

EXIT_OK, EXIT_AWS, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Global options, accepted before and after the command (later wins)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument("--config-dir", default=default("config"), help="platform config directory (default: config)")
    group.add_argument("--profile", default=default(None), help="AWS profile (default: the default credential chain)")
    group.add_argument(
        "--region", default=default(None), help="AWS region (default: the governance region from config)"
    )
    group.add_argument(
        "--role-arn",
        default=default(None),
        help="assume this role in the governance account first (default: use the profile as is)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description="Review, approve and reject model versions; see what runs where.",
        epilog="Exit codes: 0 ok, 1 AWS error, 2 usage/config/unknown/credentials, 3 refused by the approval policy.",
    )
    _global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def leaf(subparsers: Any, name: str, help_text: str, func: Callable[..., int]) -> argparse.ArgumentParser:
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        _global_options(sub, suppress=True)
        sub.set_defaults(func=func)
        return sub

    approvals = commands.add_parser("approvals", help="versions waiting for approval", description="Approvals.")
    approvals_commands = approvals.add_subparsers(dest="approvals_command", required=True, metavar="COMMAND")
    listing = leaf(approvals_commands, "list", "pending versions per project, newest first", cmd_list)
    listing.add_argument("--project", help="only this project")
    show = leaf(approvals_commands, "show", "metrics vs thresholds vs what runs now; evidence", cmd_show)
    show.add_argument("arn", metavar="ARN", help="model package version ARN")

    for name, func, help_text in (
        ("approve", cmd_approve, "approve a version (refused when its metrics or evidence violate the policy)"),
        ("reject", cmd_reject, "reject a version (a released version is revoked and its stage rolled back)"),
    ):
        sub = leaf(commands, name, help_text, func)
        sub.add_argument("arn", metavar="ARN", help="model package version ARN")
        sub.add_argument("--reason", required=True, help="why; recorded as the ApprovalDescription")

    releases = leaf(commands, "releases", "what runs where (current per stage) and the release history", cmd_releases)
    releases.add_argument("--project", help="only this project")
    return parser


# --------------------------------------------------------------------------- commands


def cmd_list(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    rows = core.list_pending(clients.sagemaker, ctx, args.project)
    render.pending(rows, ctx.projects(args.project))
    return EXIT_OK


def cmd_show(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    report = core.show_version(clients.sagemaker, clients.s3, clients.dynamodb, ctx, args.arn)
    render.version(report)
    return EXIT_OK


def cmd_approve(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    result = core.approve(clients.sagemaker, clients.s3, ctx, args.arn, args.reason)
    render.updated(result)
    return EXIT_OK


def cmd_reject(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    result = core.reject(clients.sagemaker, ctx, args.arn, args.reason)
    render.updated(result)
    return EXIT_OK


def cmd_releases(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    render.releases(core.releases_overview(clients.dynamodb, ctx, args.project))
    return EXIT_OK


# --------------------------------------------------------------------------- entry point


def _fail(message: str, code: int) -> int:
    print(f"mlops: {message}", file=sys.stderr)
    return code


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(Path(args.config_dir))
    except ConfigError as err:
        return _fail(f"config error: {err}", EXIT_USAGE)
    ctx = core.Context(config)
    region = args.region or config.platform.accounts.governance.region
    try:
        session = make_session(profile=args.profile, region=region, role_arn=args.role_arn)
        return args.func(args, ctx, Clients(session))
    except core.CliError as err:
        return _fail(str(err), err.exit_code)
    except ProfileNotFound as err:
        return _fail(f"{err} (check --profile and ~/.aws/config)", EXIT_USAGE)
    except (NoCredentialsError, PartialCredentialsError):
        return _fail(
            "no AWS credentials found: pass --profile, set AWS_PROFILE, or export credentials "
            "for the governance account",
            EXIT_USAGE,
        )
    except NoRegionError:
        return _fail("no AWS region: pass --region", EXIT_USAGE)
    except ClientError as err:
        error = err.response.get("Error", {})
        operation = getattr(err, "operation_name", "request")
        message = " ".join(str(error.get("Message", err)).split())
        return _fail(f"AWS error in {operation}: {error.get('Code', 'Error')}: {message}", EXIT_AWS)
    except BotoCoreError as err:
        return _fail(f"AWS error: {' '.join(str(err).split())}", EXIT_AWS)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
