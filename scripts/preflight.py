#!/usr/bin/env python3
"""Read-only checks, per account, of what a deploy needs before ``cdk deploy`` finds out the hard way.

    make preflight ARGS="--profile governance=gov-admin --profile dev=dev-admin \\
                         --profile staging=staging-admin --profile prod=prod-admin"

``--profile ROLE=PROFILE`` names the AWS CLI profile of one account role; a bare
``--profile PROFILE`` is the default for every role without one (none: the
default credential chain). The region is each role's from ``config/``. An
account that serves several roles (single-account mode) is checked once, and
its row names every role it serves.

Every call is a read: ``sts:GetCallerIdentity``, ``cloudformation:DescribeStacks``,
``lambda:GetAccountSettings``, ``servicequotas:ListServiceQuotas`` and
``ListAWSDefaultServiceQuotas``, ``ec2:DescribeInstanceTypeOfferings``,
``sagemaker:ListMonitoringSchedules``, ``sso:ListInstances``,
``iam:ListOpenIDConnectProviders``. Checks, each only where config needs it:

- the profile reaches the configured account;
- the CDK bootstrap stack ``CDKToolkit``: exists, its version is at least what the
  synthesized app needs (``cdk.out``: the templates' ``CheckBootstrapVersion`` rule
  and the manifests' ``requiresBootstrapStackVersion``; 21 without a ``cdk.out``),
  a warning below the pinned CLI's own template version, and, in a workload account,
  its ``TrustedAccounts`` names the governance account that deploys;
- governance: Lambda's concurrency quota holds the approval handlers' reservations
  (``approval_workflow.reserved_concurrency`` x 3 handlers per project, + 10 unreserved), else 10;
- SageMaker quotas (Service Quotas, matched by quota *name*): endpoint instances per
  serving stage (staging, prod; the largest fleet of each variant, and twice that as a
  warning for blue/green updates, which run both fleets), monitoring jobs there, and
  pipeline processing / (spot) training jobs and HyperPod cluster instances in dev;
- HyperPod (``training_cluster.enabled``): the cluster's AZ id offers each worker type;
- Model Monitor (a project with ``monitoring.engine: model_monitor``): a one-item
  ``ListMonitoringSchedules`` in each monitored stage's account;
- IAM Identity Center (``studio.auth_mode: SSO``): an instance in the Studio accounts' region;
- GitHub OIDC (``platform.github`` set): the ``token.actions.githubusercontent.com`` provider.

Prints one table; exit 0 without blockers, 1 with any, 2 when credentials are missing
(one line, nothing checked) or the config does not load.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops_platform.config import (  # noqa: E402
    ROLES,
    SERVING_STAGES,
    ConfigError,
    PlatformConfig,
    load_config,
)

EXIT_OK, EXIT_BLOCKED, EXIT_USAGE = 0, 1, 2
OK, BLOCKER, WARNING = "ok", "BLOCKER", "warning"

BOOTSTRAP_STACK = "CDKToolkit"
# Without a cdk.out to read: the version CDK v2 apps have long required of their
# bootstrap stack at deploy time (an assumption; `make synth` gives the exact figure).
FALLBACK_BOOTSTRAP_VERSION = 21
CLI_BOOTSTRAP_TEMPLATE = ROOT / "node_modules" / "aws-cdk" / "lib" / "api" / "bootstrap" / "bootstrap-template.yaml"
ADMIN_POLICY = "arn:aws:iam::aws:policy/AdministratorAccess"

# stacks/governance.py ApprovalStack: Notify, Guard and Rejected, one of each per project.
APPROVAL_HANDLERS_PER_PROJECT = 3
# Lambda keeps at least this much concurrency unreserved (the README's MLOps-LambdaReservedConcurrency).
MINIMUM_UNRESERVED = 10

# stacks/components/monitoring.py MONITORING_INSTANCE: Model Monitor schedules and the drift check.
MONITORING_INSTANCE = "ml.m5.xlarge"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"


def endpoint_quota(instance_type: str) -> str:
    return f"{instance_type} for endpoint usage"


def processing_quota(instance_type: str) -> str:
    return f"{instance_type} for processing job usage"


def training_quota(instance_type: str, spot: bool = False) -> str:
    return f"{instance_type} for {'spot ' if spot else ''}training job usage"


def cluster_quota(instance_type: str) -> str:
    return f"{instance_type} for cluster usage"


# --------------------------------------------------------------------------- accounts


class CredentialsMissing(Exception):
    """No usable credentials for one account: the run stops before any check, exit 2."""


@dataclass(frozen=True)
class Target:
    """One distinct account, the roles it serves, and how to reach it."""

    account_id: str
    region: str
    roles: tuple[str, ...]
    profile: str | None = None

    @property
    def label(self) -> str:
        return f"{self.account_id} ({', '.join(self.roles)})"

    def serves(self, *roles: str) -> bool:
        return any(r in self.roles for r in roles)


ClientFactory = Callable[[Target, str], Any]


def targets(config: PlatformConfig, profiles: dict[str, str | None]) -> list[Target]:
    """Distinct accounts in role order, each with the profile of its first role that names one."""
    by_account: dict[str, list[str]] = {}
    for role in ROLES:
        by_account.setdefault(config.platform.accounts.of(role).id, []).append(role)
    out = []
    for account_id, roles in by_account.items():
        profile = next((profiles[r] for r in roles if profiles.get(r)), None) or profiles.get("*")
        out.append(Target(account_id, config.platform.accounts.of(roles[0]).region, tuple(roles), profile))
    return out


def boto3_factory() -> ClientFactory:
    """Clients from one boto3 session per profile; missing credentials raise :class:`CredentialsMissing`."""
    import boto3
    import botocore.exceptions

    sessions: dict[tuple[str | None, str], Any] = {}

    def make(target: Target, service: str) -> Any:
        key = (target.profile, target.region)
        if key not in sessions:
            try:
                session = boto3.Session(profile_name=target.profile, region_name=target.region)
            except botocore.exceptions.ProfileNotFound as err:
                raise CredentialsMissing(f"{target.label}: {err}") from None
            if session.get_credentials() is None:
                via = f"profile {target.profile}" if target.profile else "the default credential chain"
                raise CredentialsMissing(f"{target.label}: no credentials from {via}")
            sessions[key] = session
        return sessions[key].client(service)

    return make


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    check: str
    account: str
    result: str
    fix: str = ""  # how to fix, for a blocker or a warning
    detail: str = ""  # what was found, for an ok row


@dataclass
class Requirement:
    """Instances one account needs under one quota, and for what."""

    needed: int = 0
    peak: int = 0  # needed during a blue/green update (both fleets); 0: no peak beyond ``needed``
    uses: list[str] = field(default_factory=list)

    def add(self, count: int, use: str, peak: int = 0) -> None:
        self.needed += count
        self.peak += peak or count
        self.uses.append(use)


def _error(err: Exception) -> tuple[str, str]:
    response = getattr(err, "response", None) or {}
    error = response.get("Error", {})
    return str(error.get("Code", type(err).__name__)), str(error.get("Message", err))


def _unreadable(check: str, target: Target, err: Exception, action: str) -> Row:
    code, message = _error(err)
    return Row(check, target.label, WARNING, f"could not read ({code}: {message[:80]}); allow {action} to the profile")


# --------------------------------------------------------------------------- bootstrap


def required_bootstrap_version(cdk_out: Path) -> tuple[int, str]:
    """The bootstrap version the synthesized app needs, and where that figure comes from."""
    versions: list[int] = []
    for template in sorted(cdk_out.glob("**/*.template.json")):
        try:
            rules = json.loads(template.read_text(encoding="utf-8")).get("Rules", {})
        except (OSError, ValueError):
            continue
        for assertion in rules.get("CheckBootstrapVersion", {}).get("Assertions", []):
            refused = _contains_list(assertion.get("Assert", {}))
            if refused:
                versions.append(max(int(v) for v in refused) + 1)
    for manifest in sorted(cdk_out.glob("**/manifest.json")):
        try:
            text = manifest.read_text(encoding="utf-8")
        except OSError:
            continue
        versions += [int(v) for v in re.findall(r'"requiresBootstrapStackVersion":\s*(\d+)', text)]
    if versions:
        return max(versions), f"the synthesized app in {cdk_out.name}/"
    return FALLBACK_BOOTSTRAP_VERSION, f"no {cdk_out.name}/ to read (run make synth for the exact figure)"


def _contains_list(node: Any) -> list[str]:
    """The refused versions of ``Fn::Not [Fn::Contains [[...], Ref BootstrapVersion]]``."""
    if isinstance(node, dict):
        if "Fn::Contains" in node:
            values = node["Fn::Contains"]
            if isinstance(values, list) and values and isinstance(values[0], list):
                return [str(v) for v in values[0] if str(v).isdigit()]
        for value in node.values():
            found = _contains_list(value)
            if found:
                return found
    if isinstance(node, list):
        for value in node:
            found = _contains_list(value)
            if found:
                return found
    return []


def cli_bootstrap_version(template: Path) -> int | None:
    """The version the pinned CDK CLI's ``cdk bootstrap`` would install (None without node_modules)."""
    try:
        text = template.read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r"CdkBootstrapVersion:.*?Value:\s*'?(\d+)'?", text, re.S)
    return int(match.group(1)) if match else None


def _bootstrap_command(config: PlatformConfig, target: Target) -> str:
    command = f"npx cdk bootstrap aws://{target.account_id}/{target.region}"
    if target.profile:
        command += f" --profile {target.profile}"
    governance = config.platform.accounts.governance.id
    if target.account_id != governance:
        command += f" --trust {governance} --cloudformation-execution-policies {ADMIN_POLICY}"
    return command


def check_bootstrap(
    config: PlatformConfig, target: Target, client: Any, required: tuple[int, str], cli_version: int | None
) -> list[Row]:
    command = _bootstrap_command(config, target)
    try:
        stacks = client.describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"]
    except Exception as err:  # botocore ClientError: "Stack with id CDKToolkit does not exist"
        code, message = _error(err)
        if "does not exist" in message:
            return [
                Row("CDK bootstrap stack", target.label, BLOCKER, f"not bootstrapped in {target.region}: {command}")
            ]
        return [_unreadable("CDK bootstrap stack", target, err, "cloudformation:DescribeStacks")]
    stack = stacks[0]
    status = stack.get("StackStatus", "")
    if status.endswith("_FAILED") or status in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
        return [Row("CDK bootstrap stack", target.label, BLOCKER, f"{BOOTSTRAP_STACK} is {status}: {command}")]
    rows = [Row("CDK bootstrap stack", target.label, OK, detail=f"{BOOTSTRAP_STACK} {status}")]
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    minimum, source = required
    raw = outputs.get("BootstrapVersion", "")
    version = int(raw) if raw.isdigit() else None
    if version is None:
        rows.append(Row("CDK bootstrap version", target.label, BLOCKER, f"no BootstrapVersion output: {command}"))
    elif version < minimum:
        rows.append(
            Row(
                "CDK bootstrap version",
                target.label,
                BLOCKER,
                f"version {version}, the app needs >= {minimum} ({source}): {command}",
            )
        )
    elif cli_version and version < cli_version:
        rows.append(
            Row(
                "CDK bootstrap version",
                target.label,
                WARNING,
                f"version {version} works (needs >= {minimum}); the pinned CLI installs {cli_version}: {command}",
            )
        )
    else:
        rows.append(Row("CDK bootstrap version", target.label, OK, detail=f"{version} (needs >= {minimum})"))
    governance = config.platform.accounts.governance.id
    if target.account_id != governance:
        trusted = [a.strip() for a in parameters.get("TrustedAccounts", "").split(",") if a.strip()]
        if governance in trusted:
            rows.append(Row("CDK bootstrap trust", target.label, OK, detail=f"trusts governance {governance}"))
        else:
            shown = ", ".join(trusted) or "no account"
            rows.append(
                Row(
                    "CDK bootstrap trust",
                    target.label,
                    BLOCKER,
                    f"trusts {shown}, not governance {governance}; re-bootstrap: {command}",
                )
            )
    return rows


# --------------------------------------------------------------------------- Lambda


def approval_concurrency(config: PlatformConfig) -> tuple[int, str]:
    reserved = config.platform.approval_workflow.reserved_concurrency
    if not reserved:
        return MINIMUM_UNRESERVED, "no reservations (approval_workflow.reserved_concurrency unset)"
    functions = APPROVAL_HANDLERS_PER_PROJECT * len(config.projects)
    need = reserved * functions + MINIMUM_UNRESERVED
    return need, f"{reserved} reserved x {functions} approval handlers + {MINIMUM_UNRESERVED} unreserved"


def check_lambda(config: PlatformConfig, target: Target, client: Any) -> list[Row]:
    need, why = approval_concurrency(config)
    try:
        limit = int(client.get_account_settings()["AccountLimit"]["ConcurrentExecutions"])
    except Exception as err:
        return [_unreadable("Lambda concurrency quota", target, err, "lambda:GetAccountSettings")]
    if limit >= need:
        return [Row("Lambda concurrency quota", target.label, OK, detail=f"{limit} >= {need} ({why})")]
    return [
        Row(
            "Lambda concurrency quota",
            target.label,
            BLOCKER,
            f"{limit} < {need} ({why}): request 'Concurrent executions' (Service Quotas, lambda) >= {need}, "
            "or unset approval_workflow.reserved_concurrency",
        )
    ]


# --------------------------------------------------------------------------- SageMaker quotas


def sagemaker_needs(config: PlatformConfig, target: Target) -> dict[str, Requirement]:
    """Instances per SageMaker quota name that the roles ``target`` serves run at once."""
    needs: dict[str, Requirement] = defaultdict(Requirement)
    for stage in SERVING_STAGES:
        if not target.serves(stage):
            continue
        for project in config.projects.values():
            serving = getattr(project.serving, stage)
            if serving.enabled:
                for variant in serving.resolved_variants(stage):
                    if variant.serverless is not None:
                        continue
                    fleet = max(variant.instance_count, variant.autoscaling.max_instances if variant.autoscaling else 0)
                    needs[endpoint_quota(variant.instance_type)].add(
                        fleet, f"{project.name} {stage} {variant.name}", peak=2 * fleet
                    )
            monitoring = project.monitoring
            if monitoring.enabled and stage in monitoring.stages:
                jobs = 1 + (1 if monitoring.model_quality.enabled and monitoring.engine == "model_monitor" else 0)
                needs[processing_quota(MONITORING_INSTANCE)].add(jobs, f"{project.name} {stage} monitoring")
    if target.serves("dev"):
        for project in config.projects.values():
            pipeline = project.pipeline
            if not pipeline.enabled:
                continue
            needs[processing_quota(pipeline.processing_instance_type)].add(1, f"{project.name} pipeline")
            needs[training_quota(pipeline.training_instance_type, pipeline.spot.enabled)].add(
                pipeline.training_instance_count, f"{project.name} pipeline"
            )
        cluster = config.platform.training_cluster
        if cluster.enabled:
            for group in (cluster.controller, *cluster.workers):
                needs[cluster_quota(group.instance_type)].add(group.count, f"training cluster {group.name}")
    return dict(needs)


def read_quotas(client: Any) -> tuple[dict[str, float], dict[str, float]]:
    """SageMaker's applied quota values by name, and AWS's defaults by name (for quotas never changed)."""

    def collect(operation: str) -> dict[str, float]:
        values: dict[str, float] = {}
        for page in client.get_paginator(operation).paginate(ServiceCode="sagemaker"):
            for quota in page.get("Quotas", []):
                values[quota["QuotaName"]] = float(quota.get("Value", 0))
        return values

    applied = collect("list_service_quotas")
    return applied, collect("list_aws_default_service_quotas")


def check_sagemaker_quotas(target: Target, needs: dict[str, Requirement], client: Any) -> list[Row]:
    if not needs:
        return []
    try:
        applied, defaults = read_quotas(client)
    except Exception as err:
        return [
            _unreadable(
                "SageMaker quotas",
                target,
                err,
                "servicequotas:ListServiceQuotas and servicequotas:ListAWSDefaultServiceQuotas",
            )
        ]
    rows = []
    for name, requirement in sorted(needs.items()):
        check = f"quota '{name}'"
        uses = ", ".join(requirement.uses)
        value = applied.get(name, defaults.get(name))
        request = f"request '{name}' (Service Quotas, sagemaker, {target.region})"
        if value is None:
            rows.append(
                Row(check, target.label, WARNING, f"no quota of that name in {target.region}; check it exists there")
            )
        elif value < requirement.needed:
            rows.append(
                Row(
                    check,
                    target.label,
                    BLOCKER,
                    f"{value:g} < {requirement.needed} ({uses}): {request} >= {requirement.peak}",
                )
            )
        elif value < requirement.peak:
            rows.append(
                Row(
                    check,
                    target.label,
                    WARNING,
                    f"{value:g} serves {requirement.needed} but a blue/green update runs {requirement.peak} "
                    f"({uses}): {request} >= {requirement.peak}",
                )
            )
        else:
            rows.append(Row(check, target.label, OK, detail=f"{value:g} >= {requirement.peak} ({uses})"))
    return rows


# --------------------------------------------------------------------------- HyperPod AZ


def check_cluster_zone(config: PlatformConfig, target: Target, client: Any) -> list[Row]:
    cluster = config.platform.training_cluster
    zone = cluster.availability_zone_id
    rows = []
    for instance_type in sorted({g.instance_type for g in cluster.workers}):
        ec2_type = instance_type.removeprefix("ml.")
        check = f"HyperPod AZ offers {ec2_type}"
        try:
            pages = client.get_paginator("describe_instance_type_offerings").paginate(
                LocationType="availability-zone-id", Filters=[{"Name": "instance-type", "Values": [ec2_type]}]
            )
            zones = sorted({o["Location"] for page in pages for o in page.get("InstanceTypeOfferings", [])})
        except Exception as err:
            rows.append(_unreadable(check, target, err, "ec2:DescribeInstanceTypeOfferings"))
            continue
        if zone in zones:
            rows.append(Row(check, target.label, OK, detail=f"{zone}"))
        else:
            offered = ", ".join(zones) or f"no AZ of {target.region}"
            rows.append(
                Row(
                    check,
                    target.label,
                    BLOCKER,
                    f"{zone} does not offer {ec2_type} (offered in: {offered}); set "
                    "training_cluster.availability_zone_id in platform.yaml to one of them",
                )
            )
    return rows


# --------------------------------------------------------------------------- Model Monitor, SSO, OIDC


def model_monitor_projects(config: PlatformConfig, target: Target) -> list[str]:
    return [
        name
        for name, project in config.projects.items()
        if project.monitoring.enabled
        and project.monitoring.engine == "model_monitor"
        and target.serves(*project.monitoring.stages)
    ]


def check_model_monitor(config: PlatformConfig, target: Target, client: Any) -> list[Row]:
    projects = model_monitor_projects(config, target)
    files = projects[0] if len(projects) == 1 else "{" + ",".join(projects) + "}"
    fix = (
        f"set monitoring.engine: pipeline in config/projects/{files}.yaml "
        "(the platform's drift check, any account; it has no bias or explainability checks, so turn those off), "
        "or have AWS enable Model Monitor for this account"
    )
    try:
        client.list_monitoring_schedules(MaxResults=1)
    except Exception as err:
        code, message = _error(err)
        if "not authorized to perform" in message:
            return [_unreadable("Model Monitor available", target, err, "sagemaker:ListMonitoringSchedules")]
        if code in ("AccessDeniedException", "ValidationException", "UnknownOperationException") or any(
            word in message.lower() for word in ("not available", "not supported", "not enabled", "not allowed")
        ):
            return [Row("Model Monitor available", target.label, BLOCKER, f"{code}: {message[:100]}; {fix}")]
        return [_unreadable("Model Monitor available", target, err, "sagemaker:ListMonitoringSchedules")]
    return [Row("Model Monitor available", target.label, OK, detail=f"for {', '.join(projects)}")]


def check_identity_center(target: Target, client: Any) -> list[Row]:
    try:
        instances = client.list_instances().get("Instances", [])
    except Exception as err:
        return [_unreadable("IAM Identity Center", target, err, "sso:ListInstances")]
    if instances:
        return [Row("IAM Identity Center", target.label, OK, detail=instances[0].get("InstanceArn", ""))]
    return [
        Row(
            "IAM Identity Center",
            target.label,
            BLOCKER,
            f"no Identity Center instance in {target.region}: enable it there (organization instance), "
            "or set studio.auth_mode: IAM in platform.yaml",
        )
    ]


def check_github_oidc(target: Target, client: Any) -> list[Row]:
    try:
        providers = client.list_open_id_connect_providers().get("OpenIDConnectProviderList", [])
    except Exception as err:
        return [_unreadable("GitHub OIDC provider", target, err, "iam:ListOpenIDConnectProviders")]
    if any(p.get("Arn", "").endswith(f"oidc-provider/{GITHUB_OIDC_HOST}") for p in providers):
        return [Row("GitHub OIDC provider", target.label, OK, detail=GITHUB_OIDC_HOST)]
    return [
        Row(
            "GitHub OIDC provider",
            target.label,
            BLOCKER,
            f"no {GITHUB_OIDC_HOST} provider: aws iam create-open-id-connect-provider --url "
            f"https://{GITHUB_OIDC_HOST} --client-id-list sts.amazonaws.com",
        )
    ]


# --------------------------------------------------------------------------- run


def check_identity(target: Target, client: Any) -> Row:
    """The profile's account; raises :class:`CredentialsMissing` when there are no valid credentials."""
    try:
        account = client.get_caller_identity()["Account"]
    except Exception as err:
        code, message = _error(err)
        if type(err).__name__ in ("NoCredentialsError", "PartialCredentialsError") or code in (
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "SignatureDoesNotMatch",
        ):
            raise CredentialsMissing(f"{target.label}: {message}") from None
        raise
    if account != target.account_id:
        via = f"profile {target.profile}" if target.profile else "the default credentials"
        return Row(
            "credentials",
            target.label,
            BLOCKER,
            f"{via} reaches account {account}, not {target.account_id}; pass --profile "
            f"{target.roles[0]}=<a profile of {target.account_id}>",
        )
    return Row("credentials", target.label, OK, detail=f"account {account}")


def run_checks(
    config: PlatformConfig,
    account_targets: Sequence[Target],
    client_for: ClientFactory,
    *,
    required: tuple[int, str],
    cli_version: int | None,
) -> list[Row]:
    """Every check for every account; credentials first for all, so a missing one stops the run early."""
    identities = [check_identity(t, client_for(t, "sts")) for t in account_targets]
    rows: list[Row] = []
    platform = config.platform
    for target, identity in zip(account_targets, identities, strict=True):
        rows.append(identity)
        if identity.result != OK:
            continue  # every other answer would describe the wrong account
        rows += check_bootstrap(config, target, client_for(target, "cloudformation"), required, cli_version)
        if target.serves("governance"):
            rows += check_lambda(config, target, client_for(target, "lambda"))
        needs = sagemaker_needs(config, target)
        if needs:
            rows += check_sagemaker_quotas(target, needs, client_for(target, "service-quotas"))
        if target.serves("dev") and platform.training_cluster.enabled:
            rows += check_cluster_zone(config, target, client_for(target, "ec2"))
        if model_monitor_projects(config, target):
            rows += check_model_monitor(config, target, client_for(target, "sagemaker"))
        if platform.studio.auth_mode == "SSO" and target.serves(*platform.studio.accounts):
            rows += check_identity_center(target, client_for(target, "sso-admin"))
        if getattr(platform, "github", None):
            rows += check_github_oidc(target, client_for(target, "iam"))
    return rows


def render(rows: Iterable[Row], file: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    style = {OK: "green", BLOCKER: "bold red", WARNING: "yellow"}
    table = Table(title="Pre-flight checks", show_lines=False)
    for column in ("Check", "Account (roles)", "Result", "How to fix"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            row.check,
            row.account,
            f"[{style[row.result]}]{row.result}[/]",
            row.fix or f"[dim]{row.detail}[/]",
        )
    out = file or sys.stdout
    console = Console(file=out)
    if not console.is_terminal:  # piped or under make: wide enough for one line per row
        console = Console(file=out, width=200)
    console.print(table)


def parse_profiles(values: Sequence[str]) -> dict[str, str | None]:
    """``ROLE=PROFILE`` per role, a bare ``PROFILE`` as the default (key ``*``)."""
    profiles: dict[str, str | None] = {}
    for value in values:
        role, sep, profile = value.partition("=")
        if not sep:
            role, profile = "*", value
        elif role not in ROLES:
            raise ValueError(f"--profile {value}: unknown role '{role}'; roles: {', '.join(ROLES)}")
        if not profile:
            raise ValueError(f"--profile {value}: no profile name")
        profiles[role] = profile
    return profiles


def main(argv: Sequence[str] | None = None, client_factory: ClientFactory | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--config-dir", type=Path, default=ROOT / "config")
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="[ROLE=]PROFILE",
        help="AWS profile for one account role (governance, dev, staging, prod), or for all without '='",
    )
    parser.add_argument("--cdk-out", type=Path, default=ROOT / "cdk.out", help="synthesized app (bootstrap minimum)")
    args = parser.parse_args(argv)
    try:
        profiles = parse_profiles(args.profile)
        config = load_config(args.config_dir)
    except (ValueError, ConfigError) as err:
        print(f"preflight: {err}", file=sys.stderr)
        return EXIT_USAGE
    account_targets = targets(config, profiles)
    try:
        rows = run_checks(
            config,
            account_targets,
            client_factory or boto3_factory(),
            required=required_bootstrap_version(args.cdk_out),
            cli_version=cli_bootstrap_version(CLI_BOOTSTRAP_TEMPLATE),
        )
    except CredentialsMissing as err:
        print(
            f"preflight: no usable AWS credentials for {err}; pass --profile ROLE=PROFILE (or log in) "
            "and run again; nothing was checked",
            file=sys.stderr,
        )
        return EXIT_USAGE
    render(rows)
    blockers = sum(r.result == BLOCKER for r in rows)
    warnings = sum(r.result == WARNING for r in rows)
    print(f"preflight: {blockers} blocker(s), {warnings} warning(s) in {len(account_targets)} account(s)")
    return EXIT_BLOCKED if blockers else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
