"""Argument parsing, output and error handling of ``mlops`` (logic: :mod:`mlops_platform.cli.core`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

from mlops_platform.cli import core, render, scaling
from mlops_platform.cli import export as export_mod
from mlops_platform.cli import invoke as invoke_mod
from mlops_platform.cli import loadtest as loadtest_mod
from mlops_platform.cli import monitoring as monitoring_mod
from mlops_platform.cli import new_project as new_project_mod
from mlops_platform.cli import promote as promote_mod
from mlops_platform.cli import remove_project as remove_mod
from mlops_platform.cli import shadow as shadow_mod
from mlops_platform.cli import verify as verify_mod
from mlops_platform.cli.dlq import list_dead_letters, redrive
from mlops_platform.cli.session import Clients, make_session
from mlops_platform.config import SERVING_STAGES, WORKLOAD_ROLES, ConfigError, load_config
from mlops_platform.release_manifest import ReleaseManifest

EXIT_OK, EXIT_AWS, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3
# Commands whose session works in the account of their --stage.
STAGE_ACCOUNT = "STAGE"
# Commands that work on local files only: no AWS session, no credentials.
LOCAL = "LOCAL"


def _bounded(name: str, low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be between {low} and {high}, got {value}")
        return value

    return parse


_hours = _bounded("--hours", 1, shadow_mod.MAX_HOURS)
# A prod blue/green update may take up to SageMaker's four-hour cap; a day bounds a typo.
_minutes = _bounded("--wait-minutes", 0, 24 * 60)
_workers = _bounded("--workers", 1, 16)
_tps = _bounded("--tps", 1, 10_000)
_step_seconds = _bounded("--step-seconds", 1, 3600)
_max_requests = _bounded("--max-requests", 1, 10_000_000)


def _positive(name: str, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not 0 < value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be above 0 and at most {high:g}, got {text}")
        return value

    return parse


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Global options, accepted before and after the command (later wins)."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument("--config-dir", default=default("config"), help="platform config directory (default: config)")
    group.add_argument("--profile", default=default(None), help="AWS profile (default: the default credential chain)")
    group.add_argument(
        "--region",
        default=default(None),
        help="AWS region (default: from config, the region of the account the command works in)",
    )
    group.add_argument(
        "--role-arn",
        default=default(None),
        help="assume this role first, in the account the command works in: governance, or for shadow report "
        "staging, for data ingest dev, and for verify, scaling, invoke, loadtest and monitoring status the --stage's "
        "account (default: use the "
        "profile as is)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlops",
        description="Review, approve and reject model versions; see what runs where; export, verify and promote "
        "releases.",
        epilog="Exit codes: 0 ok, 1 AWS error or failed verification, 2 usage/config/unknown/credentials, "
        "3 refused by the approval policy, the promotion rule or scaling detach.",
    )
    _global_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def leaf(
        subparsers: Any, name: str, help_text: str, func: Callable[..., int], account: str = "governance"
    ) -> argparse.ArgumentParser:
        """A command; ``account`` is the account role its session works in (``STAGE``: the --stage's)."""
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        _global_options(sub, suppress=True)
        sub.set_defaults(func=func, account=account)
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
        sub.add_argument(
            "--as",
            dest="person",
            metavar="NAME",
            help="act as this approver (a name in the project's approval.approvers): assumes the project's approver "
            "role with NAME as STS source identity, which its trust policy admits only for a caller whose "
            "mlops-person tag is NAME (required to approve unless an approver role ARN is your own role)",
        )

    releases = leaf(commands, "releases", "what runs where (current per stage) and the release history", cmd_releases)
    releases.add_argument("--project", help="only this project")
    # An optional sub-command: plain `mlops releases [--project P]` still lists.
    releases_commands = releases.add_subparsers(dest="releases_command", required=False, metavar="COMMAND")
    export = leaf(
        releases_commands,
        "export",
        "write releases/PROJECT/STAGE.json from the release table for the serving stack (deploy pipeline, governance)",
        cmd_export,
    )
    export.add_argument("--project", required=True, help="the project")
    export.add_argument("--stage", required=True, choices=SERVING_STAGES, help="the serving stage")
    export.add_argument("--out", type=Path, default=Path("releases"), help="releases directory (default: releases)")
    export.add_argument(
        "--expect-arn",
        help="model package ARN the pipeline execution was started for ('none': no model); a differing current "
        "release is reported on stderr and wins (default: no check)",
    )

    dead_letters = commands.add_parser(
        "dlq",
        help="failed approval events in a project's dead-letter queue",
        description="Approval events the project's handlers failed (Lambda failure records, EventBridge delivery "
        "failures): list them, and replay them to the handler that failed.",
    )
    dead_letter_commands = dead_letters.add_subparsers(dest="dlq_command", required=True, metavar="COMMAND")
    dead_list = leaf(
        dead_letter_commands,
        "list",
        "every message: handler, event, model version, when and why it failed (deletes nothing)",
        cmd_dlq_list,
    )
    dead_list.add_argument("project", metavar="PROJECT", help="the project")
    dead_redrive = leaf(
        dead_letter_commands,
        "redrive",
        "replay each message to the project's handler that failed it; delete it once the replay succeeds "
        "(exit 1 when a replay fails)",
        cmd_dlq_redrive,
    )
    dead_redrive.add_argument("project", metavar="PROJECT", help="the project")
    dead_redrive.add_argument("--dry-run", action="store_true", help="show what would be replayed; invoke nothing")
    dead_redrive.add_argument(
        "--message-id",
        action="append",
        dest="message_ids",
        metavar="ID",
        help="only this message (repeatable; default: every message)",
    )

    shadow = commands.add_parser("shadow", help="the staging shadow test", description="Shadow test.")
    shadow_commands = shadow.add_subparsers(dest="shadow_command", required=True, metavar="COMMAND")
    report = leaf(
        shadow_commands,
        "report",
        "champion vs challenger on the staging endpoint and the promotion verdict (staging credentials)",
        cmd_shadow_report,
        account="staging",
    )
    report.add_argument("project", metavar="PROJECT", help="the project")
    report.add_argument(
        "--hours", type=_hours, default=24, help=f"window in hours, 1-{shadow_mod.MAX_HOURS} (default: 24)"
    )

    promote = leaf(
        commands,
        "promote",
        "release staging's current version to prod when its shadow test passes, and start the deploy pipeline",
        cmd_promote,
    )
    promote.add_argument("project", metavar="PROJECT", help="the project")
    promote.add_argument("--to", required=True, choices=("prod",), help="target stage (prod)")
    promote.add_argument("--reason", required=True, help="why; recorded with the prod release")
    promote.add_argument(
        "--staging-profile", help="AWS profile for reading the staging shadow test (default: --profile)"
    )
    promote.add_argument(
        "--staging-role-arn", help="role in the staging account to assume for the shadow test (default: none)"
    )
    promote.add_argument(
        "--hours", type=_hours, default=24, help=f"shadow test window in hours, 1-{shadow_mod.MAX_HOURS} (default: 24)"
    )

    verify = leaf(
        commands,
        "verify",
        "check that the stage's endpoint serves the release manifest (credentials of the stage's account)",
        cmd_verify,
        account=STAGE_ACCOUNT,
    )
    verify.add_argument("project", metavar="PROJECT", help="the project")
    verify.add_argument("--stage", required=True, choices=SERVING_STAGES, help="the serving stage")
    verify.add_argument(
        "--manifest", type=Path, help="release manifest (default: releases/PROJECT/STAGE.json; no file: no release)"
    )
    verify.add_argument(
        "--wait-minutes",
        type=_minutes,
        default=0,
        help="wait up to this long for a Creating/Updating endpoint, polling every 30 s (default: 0)",
    )

    data = commands.add_parser(
        "data",
        help="feature store data of a project (dev account)",
        description="Load records into a project's feature groups in the dev account.",
    )
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    ingest = leaf(
        data_commands,
        "ingest",
        "validate a local CSV or Parquet file against the deployed feature group (DescribeFeatureGroup), then put "
        "every row as a record (dev credentials; nothing is written when a row does not fit)",
        cmd_data_ingest,
        account="dev",
    )
    ingest.add_argument("project", metavar="PROJECT", help="the project")
    ingest.add_argument(
        "--group", required=True, metavar="NAME", help="the feature group, as named in the project's config"
    )
    ingest.add_argument("file", metavar="FILE", type=Path, help="a .csv (with a header row) or .parquet file")
    ingest.add_argument("--dry-run", action="store_true", help="validate and count the records; write nothing")
    ingest.add_argument("--workers", type=_workers, default=4, help="concurrent PutRecord calls, 1-16 (default: 4)")

    invoke = leaf(
        commands,
        "invoke",
        "send one request to the stage's endpoint and print the response body (credentials of the stage's account)",
        cmd_invoke,
        account=STAGE_ACCOUNT,
    )
    invoke.add_argument("project", metavar="PROJECT", help="the project")
    invoke.add_argument("--stage", required=True, choices=SERVING_STAGES, help="the serving stage")
    body = invoke.add_mutually_exclusive_group(required=True)
    body.add_argument("--row", metavar="CSV", help="one CSV row of feature values in the model's order (text/csv)")
    body.add_argument("--json", dest="json_text", metavar="JSON", help="a JSON document (application/json)")
    body.add_argument(
        "--file", type=Path, metavar="F", help="send this file (.json: application/json, else text/csv rows)"
    )
    invoke.add_argument("--variant", metavar="NAME", help="send to this production variant (TargetVariant)")

    loadtest = leaf(
        commands,
        "loadtest",
        "drive the stage's endpoint with Locust in rising steps (25 to 125 percent of --tps); latency per step, "
        "CloudWatch metrics, the highest step within --latency-ms and the instances the target needs (stage "
        "credentials)",
        cmd_loadtest,
        account=STAGE_ACCOUNT,
    )
    loadtest.add_argument("project", metavar="PROJECT", help="the project")
    loadtest.add_argument("--stage", required=True, choices=SERVING_STAGES, help="the serving stage")
    loadtest.add_argument("--tps", type=_tps, required=True, help="target requests per second, 1-10000")
    loadtest.add_argument(
        "--latency-ms", type=_positive("--latency-ms", 600_000), required=True, help="p99 latency bound in ms"
    )
    loadtest.add_argument(
        "--step-seconds", type=_step_seconds, default=60, help="length of each step, 1-3600 (default: 60)"
    )
    loadtest.add_argument(
        "--max-requests", type=_max_requests, default=50_000, help="stop after this many requests (default: 50000)"
    )
    loadtest.add_argument(
        "--max-minutes",
        type=_positive("--max-minutes", 24 * 60),
        default=15.0,
        help="stop after this long (default: 15)",
    )
    loadtest.add_argument("--i-know", action="store_true", help="allow --stage prod")
    loadtest.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="runtime base URL (default: https://runtime.sagemaker.REGION.amazonaws.com)",
    )
    loadtest.add_argument(
        "--sample-file",
        type=Path,
        metavar="CSV",
        help="sample rows (with a header) when nothing is captured "
        "(default: pipeline_definitions/sample_data/PROJECT.csv)",
    )
    loadtest.add_argument("--no-record", action="store_true", help="do not write the result to the stage's bucket")

    monitoring = commands.add_parser(
        "monitoring",
        help="drift and quality monitoring of a serving stage",
        description="What monitors a project's serving stage (Model Monitor schedules or the drift pipeline), how "
        "its last runs went, and the state of its monitoring alarms (which start retraining in dev).",
    )
    monitoring_commands = monitoring.add_subparsers(dest="monitoring_command", required=True, metavar="COMMAND")
    monitoring_status = leaf(
        monitoring_commands,
        "status",
        "schedules or drift pipeline runs, the latest violations report and the monitoring alarms of the stage "
        "(credentials of the stage's account)",
        cmd_monitoring_status,
        account=STAGE_ACCOUNT,
    )
    monitoring_status.add_argument("project", metavar="PROJECT", help="the project")
    monitoring_status.add_argument(
        "--stage", default="prod", choices=SERVING_STAGES, help="the serving stage (default: prod)"
    )

    autoscale = commands.add_parser(
        "scaling",
        help="autoscaling around a serving stack deploy (the deploy pipeline runs both)",
        description="SageMaker refuses to change the instance type of an autoscaled variant: detach deregisters "
        "those variants before cdk deploy, reattach registers the scaling of the fleet the endpoint serves after it.",
    )
    autoscale_commands = autoscale.add_subparsers(dest="scaling_command", required=True, metavar="COMMAND")
    for name, func, help_text in (
        (
            "detach",
            cmd_scaling_detach,
            "before cdk deploy: save and deregister the autoscaled variants whose instance type the deploy changes "
            "or that it removes; refused (exit 3) when the deploy changes their scaling too (credentials of the "
            "stage's account)",
        ),
        (
            "reattach",
            cmd_scaling_reattach,
            "after cdk deploy, succeeded or failed: restore the saved scaling when the endpoint kept its old config, "
            "else register the stack's scaling for every autoscaled variant without it (credentials of the stage's "
            "account)",
        ),
    ):
        sub = leaf(autoscale_commands, name, help_text, func, account=STAGE_ACCOUNT)
        sub.add_argument("project", metavar="PROJECT", help="the project")
        sub.add_argument("--stage", required=True, choices=SERVING_STAGES, help="the serving stage")
        sub.add_argument(
            "--state",
            type=Path,
            help="where detach saves what it deregistered and reattach reads it "
            "(default: .cache/scaling/PROJECT-STAGE.json)",
        )
        sub.add_argument(
            "--wait-minutes",
            type=_minutes,
            default=0,
            help="wait up to this long for a Creating/Updating endpoint, polling every 30 s (default: 0)",
        )
        if name == "detach":
            sub.add_argument(
                "--manifest",
                type=Path,
                help="release manifest (default: releases/PROJECT/STAGE.json; no file: no release, nothing to do)",
            )

    remove = leaf(
        commands,
        "remove-project",
        "plan (default) or --execute the deletion of what a project removed from config left deployed, in every "
        "account, in the order AWS requires; prints what stays and why (governance credentials via --profile/"
        "--role-arn, the other accounts' via --ROLE-profile/--ROLE-role-arn)",
        cmd_remove_project,
    )
    remove.add_argument("project", metavar="NAME", help="the project")
    remove.add_argument(
        "--execute", action="store_true", help="delete what the plan lists; run again to resume (default: plan only)"
    )
    remove.add_argument(
        "--delete-models",
        action="store_true",
        help="also delete the model versions, their group and the release records (default: retained)",
    )
    remove.add_argument(
        "--wait-minutes",
        type=_minutes,
        default=remove_mod.DEFAULT_WAIT_MINUTES,
        help=f"longest wait per step for a deletion to finish (default: {remove_mod.DEFAULT_WAIT_MINUTES})",
    )
    for role in WORKLOAD_ROLES:
        remove.add_argument(f"--{role}-profile", help=f"AWS profile for the {role} account (default: --profile)")
        remove.add_argument(
            f"--{role}-role-arn",
            help=f"role in the {role} account to assume (default: none; same account as governance: its session)",
        )

    new_project = leaf(
        commands,
        "new-project",
        "write config/projects/NAME.yaml (every setting, commented), checked with the whole config first; "
        "prints the stacks it adds per account role (local files only, no AWS credentials)",
        cmd_new_project,
        account=LOCAL,
    )
    new_project.add_argument("name", metavar="NAME", help="the new project's name")
    new_project.add_argument(
        "--from",
        dest="source",
        metavar="PROJECT",
        help="copy this project's settings, with the values naming it rewritten (default: a new team's template)",
    )
    return parser


# --------------------------------------------------------------------------- commands


def cmd_new_project(args: argparse.Namespace) -> int:
    created = new_project_mod.create_project(Path(args.config_dir), args.name, args.source)
    print("\n".join(new_project_mod.report(created)))
    return EXIT_OK


def cmd_list(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    rows = core.list_pending(clients.sagemaker, ctx, args.project)
    render.pending(rows, ctx.projects(args.project))
    return EXIT_OK


def cmd_show(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    report = core.show_version(clients.sagemaker, clients.s3, clients.dynamodb, ctx, args.arn)
    render.version(report)
    return EXIT_OK


def _as_approver(args: argparse.Namespace, ctx: core.Context, clients: Clients, *, required: bool) -> Clients:
    """Clients of the approver role session of ``--as NAME``; the caller's own when not given and not required."""
    target = core.resolve(ctx, args.arn)
    if args.person is None:
        if required:
            core.check_own_approver_role(ctx, target.project, str(clients.sts.get_caller_identity()["Arn"]))
        return clients
    core.check_approver_name(ctx, target.project, args.person)
    role_arn = ctx.naming.approver_role_arn(target.project)
    region = args.region or ctx.config.platform.accounts.governance.region
    # Chained from the caller's session (the global --role-arn, if any): the source identity stays with it.
    base = clients.session if args.role_arn else None
    session = make_session(
        profile=args.profile, region=region, role_arn=role_arn, source_identity=args.person, base=base
    )
    return Clients(session)


def cmd_approve(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    clients = _as_approver(args, ctx, clients, required=True)
    result = core.approve(clients.sagemaker, clients.s3, ctx, args.arn, args.reason)
    render.updated(result)
    return EXIT_OK


def cmd_reject(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    clients = _as_approver(args, ctx, clients, required=False)
    result = core.reject(clients.sagemaker, ctx, args.arn, args.reason)
    render.updated(result)
    return EXIT_OK


def cmd_releases(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    render.releases(core.releases_overview(clients.dynamodb, ctx, args.project))
    return EXIT_OK


def cmd_export(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    result = export_mod.export_manifest(
        clients.dynamodb, clients.sagemaker, ctx, args.project, args.stage, args.out, args.expect_arn
    )
    render.exported(result)
    if result.superseded:
        print(f"mlops: warning: {result.superseded}", file=sys.stderr)
    return EXIT_OK


def cmd_dlq_list(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    render.dead_letters(list_dead_letters(clients.sqs, ctx, args.project))
    return EXIT_OK


# A replay runs the handler synchronously: up to its 60 s timeout. One attempt, so a slow replay is reported,
# not invoked again by botocore's retries.
REPLAY_CONFIG = Config(read_timeout=90, connect_timeout=5, retries={"total_max_attempts": 1})


def cmd_dlq_redrive(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    invoker = clients.session.client("lambda", config=REPLAY_CONFIG) if clients.session else clients.lambda_
    result = redrive(clients.sqs, invoker, ctx, args.project, message_ids=args.message_ids, dry_run=args.dry_run)
    render.redriven(result)
    return EXIT_AWS if result.failed else EXIT_OK


def cmd_shadow_report(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    report = shadow_mod.shadow_report(clients.sagemaker, clients.cloudwatch, clients.s3, ctx, args.project, args.hours)
    rule = ctx.config.projects[args.project].serving.promotion
    render.shadow(report, rule, shadow_mod.evaluate_promotion(report, rule))
    return EXIT_OK


def cmd_promote(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    def staging() -> Clients:
        # Made only once the governance-side checks pass: it may assume a role in staging.
        region = ctx.config.platform.accounts.staging.region
        profile = args.staging_profile or args.profile
        return Clients(make_session(profile=profile, region=region, role_arn=args.staging_role_arn))

    try:
        result = promote_mod.promote(
            dynamodb=clients.dynamodb,
            sagemaker=clients.sagemaker,
            sts=clients.sts,
            codepipeline=clients.codepipeline,
            staging=staging,
            ctx=ctx,
            project=args.project,
            reason=args.reason,
            hours=args.hours,
        )
    except promote_mod.PromotionRefused as err:
        if err.report is not None:
            render.shadow(err.report, ctx.config.projects[args.project].serving.promotion, err.violations)
        raise
    if result.report is not None:
        rule = ctx.config.projects[args.project].serving.promotion
        render.shadow(result.report, rule, [])
    render.promoted(result)
    return EXIT_OK


def _stage_manifest(args: argparse.Namespace, ctx: core.Context) -> ReleaseManifest | None:
    """The release manifest of ``--project``/``--stage``: ``--manifest`` or the stage's exported file."""
    ctx.projects(args.project)
    path = args.manifest or verify_mod.default_manifest_path(args.project, args.stage)
    return verify_mod.read_manifest(path, ctx, args.project, args.stage)


def cmd_verify(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    manifest = _stage_manifest(args, ctx)
    result = verify_mod.verify(
        clients.sagemaker,
        clients.cloudformation,
        ctx,
        args.project,
        args.stage,
        manifest,
        wait_minutes=args.wait_minutes,
    )
    if not result.ok:
        for problem in result.problems:
            print(f"mlops: verify {args.project}/{args.stage}: {problem}", file=sys.stderr)
        return EXIT_AWS
    render.verification(result)
    return EXIT_OK


def cmd_data_ingest(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    from mlops_platform.cli import data as data_mod  # pandas: only for this command

    name = data_mod.feature_group_name(ctx, args.project, args.group)
    with render.ingest_progress(name) as progress:
        summary = data_mod.ingest_file(
            clients.sagemaker,
            clients.featurestore_runtime,
            ctx,
            args.project,
            args.group,
            args.file,
            dry_run=args.dry_run,
            workers=args.workers,
            progress=progress,
        )
    render.ingested(summary)
    return EXIT_OK


def cmd_invoke(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    request = invoke_mod.request_from(row=args.row, json_text=args.json_text, file=args.file)
    response = invoke_mod.invoke(
        clients.sagemaker, clients.sagemaker_runtime, ctx, args.project, args.stage, request, variant=args.variant
    )
    render.invoked(response)
    return EXIT_OK


def cmd_loadtest(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    loadtest_mod.refuse_prod(args.stage, args.i_know)
    loadtest_mod.prepare()  # Locust patches the process with gevent: before any AWS connection
    session = clients.session
    result = loadtest_mod.load_test(
        sagemaker=clients.sagemaker,
        cloudwatch=clients.cloudwatch,
        s3=clients.s3,
        credentials=session.get_credentials() if session is not None else None,
        region=session.region_name if session is not None else (args.region or ""),
        ctx=ctx,
        project=args.project,
        stage=args.stage,
        target_tps=args.tps,
        latency_ms=args.latency_ms,
        step_seconds=float(args.step_seconds),
        max_requests=args.max_requests,
        max_seconds=args.max_minutes * 60.0,
        endpoint_url=args.endpoint_url,
        sample_file=args.sample_file,
        record=not args.no_record,
        i_know=args.i_know,
    )
    render.loadtest(result)
    return EXIT_OK


def cmd_monitoring_status(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    result = monitoring_mod.status(clients.sagemaker, clients.cloudwatch, clients.s3, ctx, args.project, args.stage)
    render.monitoring_status(result)
    return EXIT_OK


def _autoscaling(clients: Clients) -> Any:
    return clients.autoscaling


def _progress(args: argparse.Namespace) -> Callable[[str], None]:
    def show(line: str) -> None:
        print(f"{args.project}/{args.stage}: {line}", flush=True)

    return show


def cmd_scaling_detach(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    manifest = _stage_manifest(args, ctx)
    result = scaling.detach(
        clients.sagemaker,
        _autoscaling(clients),
        ctx,
        args.project,
        args.stage,
        manifest,
        args.state or scaling.default_state_path(args.project, args.stage),
        wait_minutes=args.wait_minutes,
        progress=_progress(args),
    )
    show = _progress(args)
    for note in result.notes:
        show(f"nothing to detach: {note}")
    if result.state is not None:
        show(f"detached {len(result.state.targets)} variant(s) of {result.endpoint}; run reattach after the deploy")
    return EXIT_OK


def cmd_scaling_reattach(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    result = scaling.reattach(
        clients.sagemaker,
        _autoscaling(clients),
        clients.cloudformation,
        ctx,
        args.project,
        args.stage,
        args.state or scaling.default_state_path(args.project, args.stage),
        wait_minutes=args.wait_minutes,
        progress=_progress(args),
    )
    show = _progress(args)
    for note in result.notes:
        show(note)
    if not result.ok:
        for problem in result.problems:
            print(f"mlops: scaling reattach {args.project}/{args.stage}: {problem}", file=sys.stderr)
        return EXIT_AWS
    if result.registered:
        show(f"reattached {len(result.registered)} variant(s) of {result.endpoint}")
    return EXIT_OK


def cmd_remove_project(args: argparse.Namespace, ctx: core.Context, clients: Clients) -> int:
    remove_mod.check_name(args.project)
    if args.execute:
        remove_mod.refuse_configured(ctx, args.project)
    governance = ctx.config.platform.accounts.governance
    sessions: dict[tuple[str | None, str, str | None], Any] = {}
    by_role = {"governance": remove_mod.account_clients(clients.session)}
    for role in WORKLOAD_ROLES:
        account = ctx.config.platform.accounts.of(role)
        profile, role_arn = getattr(args, f"{role}_profile"), getattr(args, f"{role}_role_arn")
        if profile is None and role_arn is None and (account.id, account.region) == (governance.id, governance.region):
            by_role[role] = by_role["governance"]
            continue
        key = (profile or args.profile, account.region, role_arn)
        if key not in sessions:
            sessions[key] = make_session(profile=key[0], region=key[1], role_arn=role_arn)
        by_role[role] = remove_mod.account_clients(sessions[key])

    def show(line: str) -> None:
        print(line, flush=True)

    waiter = remove_mod.Waiter(limit=args.wait_minutes * 60.0)
    plan = remove_mod.remove_project(
        by_role, ctx, args.project, execute_plan=args.execute, delete_models=args.delete_models
    )
    for line in remove_mod.render_plan(plan, ctx.naming, executing=args.execute):
        show(line)
    if args.execute:
        remove_mod.execute(plan, by_role, ctx.naming, waiter=waiter, progress=show)
        show(f"remove-project {args.project}: done, {len(plan.steps)} step(s)")
    return EXIT_OK


# --------------------------------------------------------------------------- entry point


def _fail(message: str, code: int) -> int:
    print(f"mlops: {message}", file=sys.stderr)
    return code


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.account == LOCAL:
        try:
            return args.func(args)
        except core.CliError as err:
            return _fail(str(err), err.exit_code)
    try:
        config = load_config(Path(args.config_dir))
    except ConfigError as err:
        return _fail(f"config error: {err}", EXIT_USAGE)
    ctx = core.Context(config)
    account = args.stage if args.account == STAGE_ACCOUNT else args.account
    region = args.region or config.platform.accounts.of(account).region
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
            f"for the {account} account",
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
