#!/usr/bin/env python3
"""The ``cdk bootstrap`` of every account in ``config/platform.yaml``, with this platform's execution policy.

``make bootstrap`` prints, per distinct account (governance first; one account in single-account mode):

1. ``aws iam create-policy``: the managed policy ``<prefix>-cfn-execution`` (``Naming.cfn_execution_policy``)
   from a document this script writes to ``--out`` (default ``.cache/bootstrap/<account>.json``);
2. ``npx cdk bootstrap aws://<account>/<region> --cloudformation-execution-policies <that policy>``, plus
   ``--trust <governance account>`` for every account but governance's (the governance deploy pipeline
   and CI deploy the others through the bootstrapped roles). No ``--trust-for-lookup``: synth is offline.

``make bootstrap EXECUTE=1`` (``--execute``) runs them: it checks that each account's profile really is
that account, creates the policy or, when it exists with another document, adds a default version
(deleting the oldest non-default one when IAM's five are taken), then runs ``npx cdk bootstrap``.

The execution policy grants what CloudFormation needs for the resource types the app's stacks
contain, on the platform's names (``<prefix>-*``; CloudFormation-generated names start with the
stack name, which starts with the prefix) or the account and region where a service names
resources by id; ``Describe*``-style reads that take no resource are on ``*``. It never grants
``*`` on ``*``, and denies changing this policy itself. It is no privilege boundary: it may create
``<prefix>-*`` roles with inline policies, as the platform does.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mlops_platform.config import ROLES, ConfigError, PlatformConfig, load_config  # noqa: E402
from mlops_platform.naming import Naming  # noqa: E402

# IAM's limit for a managed policy document, counted without whitespace.
POLICY_SIZE_LIMIT = 6144
# IAM keeps at most five versions of a managed policy.
MAX_POLICY_VERSIONS = 5
CDK_QUALIFIER = "hnb659fds"  # the default bootstrap qualifier (Naming.cdk_deploy_role_arn uses it too)
# AWS managed policies the app's roles attach (iam:AttachRolePolicy allows these and the platform's own).
AWS_MANAGED_POLICIES = (
    "service-role/AWSLambdaBasicExecutionRole",
    "AmazonSageMakerClusterInstanceRolePolicy",
)
# Services the app's roles trust, so the roles CloudFormation passes to them (iam:PassRole).
PASSED_TO_SERVICES = (
    "cloudtrail",
    "codebuild",
    "codepipeline",
    "events",
    "lambda",
    "sagemaker",
    "vpc-flow-logs",
)
EXIT_USAGE, EXIT_FAILED = 2, 1


# --------------------------------------------------------------------------- policy


def _uses_autoscaling(config: PlatformConfig) -> bool:
    """Whether a serving stage autoscales: its endpoints (deployed once released) register scalable targets."""
    for project in config.projects.values():
        for stage in ("staging", "prod"):
            serving = getattr(project.serving, stage)
            if serving.enabled and any(v.autoscaling for v in serving.resolved_variants(stage)):
                return True
    return False


def execution_policy(config: PlatformConfig, account: str) -> dict[str, Any]:
    """The policy document of ``Naming.cfn_execution_policy()`` in ``account``."""
    naming = Naming(config.platform)
    prefix, region = naming.prefix, config.platform.accounts.governance.region
    here = f"{region}:{account}"
    name = f"{prefix}-*"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Reads",
            "Action": [
                "ec2:Describe*",
                "kms:CreateKey",
                "kms:ListAliases",
                "sagemaker:List*",
                "logs:Describe*",
            ],
            "Resource": "*",
        },
        {
            "Sid": "Roles",
            "Action": [
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:GetRole",
                "iam:UpdateRole",
                "iam:UpdateRoleDescription",
                "iam:UpdateAssumeRolePolicy",
                "iam:TagRole",
                "iam:UntagRole",
                "iam:ListRoleTags",
                "iam:PutRolePolicy",
                "iam:GetRolePolicy",
                "iam:DeleteRolePolicy",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:ListInstanceProfilesForRole",
                "iam:DetachRolePolicy",
            ],
            "Resource": f"arn:aws:iam::{account}:role/{name}",
        },
        {
            "Sid": "AttachKnownPolicies",
            "Action": "iam:AttachRolePolicy",
            "Resource": f"arn:aws:iam::{account}:role/{name}",
            "Condition": {
                "ArnLike": {
                    "iam:PolicyARN": [f"arn:aws:iam::{account}:policy/{name}"]
                    + [f"arn:aws:iam::aws:policy/{p}" for p in AWS_MANAGED_POLICIES]
                }
            },
        },
        {
            "Sid": "PassRoles",
            "Action": "iam:PassRole",
            "Resource": f"arn:aws:iam::{account}:role/{name}",
            "Condition": {"StringEquals": {"iam:PassedToService": [f"{s}.amazonaws.com" for s in PASSED_TO_SERVICES]}},
        },
        {
            "Sid": "ManagedPolicies",
            "Action": [
                "iam:CreatePolicy",
                "iam:DeletePolicy",
                "iam:GetPolicy",
                "iam:CreatePolicyVersion",
                "iam:DeletePolicyVersion",
                "iam:GetPolicyVersion",
                "iam:ListPolicyVersions",
                "iam:ListEntitiesForPolicy",
                "iam:TagPolicy",
                "iam:UntagPolicy",
            ],
            "Resource": f"arn:aws:iam::{account}:policy/{name}",
        },
        {
            "Sid": "NotThisPolicy",
            "Effect": "Deny",
            "Action": ["iam:CreatePolicyVersion", "iam:DeletePolicy*", "iam:SetDefaultPolicyVersion"],
            "Resource": f"arn:aws:iam::{account}:policy/{naming.cfn_execution_policy()}",
        },
        {
            "Sid": "Keys",
            "Action": [
                "kms:*Alias",
                "kms:*Key",
                "kms:*KeyPolicy",
                "kms:*KeyRotation*",
                "kms:*KeyDeletion",
                "kms:*Grant",
                "kms:*Resource*",
                "kms:UpdateKeyDescription",
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
            ],
            "Resource": [f"arn:aws:kms:{here}:key/*", f"arn:aws:kms:{here}:alias/{prefix}/*"],
        },
        {
            "Sid": "Buckets",
            "Action": [
                "s3:*Bucket*",
                "s3:*EncryptionConfiguration",
                "s3:*LifecycleConfiguration",
                "s3:*ReplicationConfiguration",
                "s3:*InventoryConfiguration",
                "s3:*MetricsConfiguration",
                "s3:*AnalyticsConfiguration",
                "s3:*IntelligentTieringConfiguration",
            ],
            "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::sagemaker-{name}"],
        },
        {
            "Sid": "CdkAssets",
            "Action": "s3:GetObject*",
            "Resource": f"arn:aws:s3:::cdk-{CDK_QUALIFIER}-assets-{account}-{region}/*",
        },
        {
            "Sid": "CdkBootstrapVersion",
            "Action": ["ssm:GetParameter", "ssm:GetParameters"],
            "Resource": f"arn:aws:ssm:{here}:parameter/cdk-bootstrap/{CDK_QUALIFIER}/*",
        },
        {
            "Sid": "SageMaker",
            "Action": "sagemaker:*",
            # Serving models read the governance registry's model packages.
            "Resource": sorted(
                {f"arn:aws:sagemaker:{here}:*", f"arn:aws:sagemaker:{region}:{naming.account('governance')}:*"}
            ),
        },
        {"Sid": "Network", "Action": "ec2:*", "Resource": f"arn:aws:ec2:{here}:*"},
        {
            "Sid": "Named",
            "Action": [
                "dynamodb:*",
                "sns:*",
                "sqs:*",
                "lambda:*",
                "logs:*",
                "cloudwatch:*",
                "codepipeline:*",
                "cloudtrail:*",
                "athena:*",
            ],
            "Resource": [
                f"arn:aws:dynamodb:{here}:table/{name}",
                f"arn:aws:sns:{here}:{name}",
                f"arn:aws:sqs:{here}:{name}",
                f"arn:aws:lambda:{here}:function:{name}",
                f"arn:aws:lambda:{here}:layer:*",
                f"arn:aws:logs:{here}:log-group:{name}",
                f"arn:aws:logs:{here}:log-group:/aws/lambda/{name}",
                f"arn:aws:logs:{here}:log-group:/aws/cloudtrail/{name}",
                f"arn:aws:cloudwatch:{here}:alarm:{name}",
                f"arn:aws:cloudwatch::{account}:dashboard/{name}",
                f"arn:aws:codepipeline:{here}:{name}",
                f"arn:aws:cloudtrail:{here}:trail/{name}",
                f"arn:aws:athena:{here}:workgroup/{name}",
            ],
        },
        {
            # CodeBuild names an unnamed project after its logical id; rules get CloudFormation's names.
            "Sid": "ById",
            "Action": ["codebuild:*", "events:*"],
            "Resource": [
                f"arn:aws:codebuild:{here}:project/*",
                f"arn:aws:events:{here}:rule/*",
                f"arn:aws:events:{here}:event-bus/default",
            ],
        },
    ]
    linked = []
    cluster = config.platform.training_cluster
    if cluster.in_app:
        linked += ["fsx", "s3.data-source.lustre.fsx"]
        statements += [
            {"Sid": "Lustre", "Action": "fsx:*", "Resource": f"arn:aws:fsx:{here}:*"},
            {
                # FSx checks that whoever links a file system to S3 may use the bucket.
                "Sid": "LustreRepository",
                "Action": ["s3:Get*", "s3:List*", "s3:PutObject"],
                "Resource": f"arn:aws:s3:::{naming.artifacts_bucket('dev')}/*",
            },
            {
                "Sid": "LustreLinkedRole",
                "Action": ["iam:AttachRolePolicy", "iam:PutRolePolicy"],
                "Resource": f"arn:aws:iam::{account}:role/aws-service-role/s3.data-source.lustre.fsx.amazonaws.com/*",
            },
        ]
    if _uses_autoscaling(config):
        linked.append("sagemaker.application-autoscaling")
        statements.append(
            {
                "Sid": "Autoscaling",
                "Action": [
                    "application-autoscaling:*ScalableTarget*",
                    "application-autoscaling:*ScalingPolicies",
                    "application-autoscaling:*ScalingPolicy",
                    "application-autoscaling:*ScalingActivities",
                    "application-autoscaling:*Resource",
                ],
                "Resource": "*",
            }
        )
    if linked:
        statements.append(
            {
                "Sid": "LinkedRoles",
                "Action": "iam:CreateServiceLinkedRole",
                "Resource": f"arn:aws:iam::{account}:role/aws-service-role/*",
                "Condition": {"StringEquals": {"iam:AWSServiceName": [f"{s}.amazonaws.com" for s in linked]}},
            }
        )
    return {"Version": "2012-10-17", "Statement": [{"Sid": s["Sid"], "Effect": "Allow", **s} for s in statements]}


def policy_size(document: dict[str, Any]) -> int:
    """The size IAM counts: the JSON document without whitespace."""
    return len(json.dumps(document, separators=(",", ":")))


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Target:
    """One distinct account to bootstrap, named by its first role (governance first)."""

    role: str
    account: str
    region: str
    trust: str | None  # the governance account, for every other account
    profile: str | None
    roles: tuple[str, ...] = field(default=())

    @property
    def environment(self) -> str:
        return f"aws://{self.account}/{self.region}"


def targets(config: PlatformConfig, profiles: dict[str, str | None]) -> list[Target]:
    """Every distinct account in role order (governance, dev, staging, prod)."""
    accounts = config.platform.accounts
    governance = accounts.governance.id
    seen: dict[str, list[str]] = {}
    for role in ROLES:
        seen.setdefault(accounts.of(role).id, []).append(role)
    return [
        Target(
            role=roles[0],
            account=account,
            region=accounts.of(roles[0]).region,
            trust=None if account == governance else governance,
            profile=profiles.get(roles[0]),
            roles=tuple(roles),
        )
        for account, roles in seen.items()
    ]


def policy_arn(config: PlatformConfig, account: str) -> str:
    return f"arn:aws:iam::{account}:policy/{Naming(config.platform).cfn_execution_policy()}"


def _profile_args(target: Target) -> list[str]:
    return ["--profile", target.profile] if target.profile else []


def create_policy_command(config: PlatformConfig, target: Target, document: Path) -> list[str]:
    return [
        "aws",
        "iam",
        "create-policy",
        "--policy-name",
        Naming(config.platform).cfn_execution_policy(),
        "--policy-document",
        f"file://{document}",
        *_profile_args(target),
    ]


def update_policy_command(config: PlatformConfig, target: Target, document: Path) -> list[str]:
    return [
        "aws",
        "iam",
        "create-policy-version",
        "--policy-arn",
        policy_arn(config, target.account),
        "--policy-document",
        f"file://{document}",
        "--set-as-default",
        *_profile_args(target),
    ]


def bootstrap_command(config: PlatformConfig, target: Target) -> list[str]:
    command = [
        "npx",
        "cdk",
        "bootstrap",
        target.environment,
        "--cloudformation-execution-policies",
        policy_arn(config, target.account),
    ]
    if target.trust:
        command += ["--trust", target.trust]
    return command + _profile_args(target)


def write_documents(config: PlatformConfig, out: Path, plan: Sequence[Target]) -> dict[str, Path]:
    """Each account's policy document in ``out/<account>.json``; refuses one over IAM's size limit."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for target in plan:
        document = execution_policy(config, target.account)
        size = policy_size(document)
        if size > POLICY_SIZE_LIMIT:
            raise PolicyTooLarge(
                f"the execution policy for {target.account} is {size} characters without whitespace; "
                f"IAM allows {POLICY_SIZE_LIMIT} for a managed policy"
            )
        path = out / f"{target.account}.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        paths[target.account] = path
    return paths


class PolicyTooLarge(Exception):
    pass


# --------------------------------------------------------------------------- execute


def ensure_policy(iam: Any, *, name: str, arn: str, document: dict[str, Any]) -> str:
    """Create the managed policy, or make ``document`` its default version; returns what it did."""
    body = json.dumps(document, separators=(",", ":"))
    try:
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
    except iam.exceptions.NoSuchEntityException:
        iam.create_policy(
            PolicyName=name,
            PolicyDocument=body,
            Description="CloudFormation execution policy of the CDK bootstrap (scripts/bootstrap.py)",
        )
        return "created"
    current = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
    if _document(current["Document"]) == document:
        return "unchanged"
    versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
    if len(versions) >= MAX_POLICY_VERSIONS:
        oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
        iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=body, SetAsDefault=True)
    return "updated"


def _document(value: Any) -> Any:
    """boto3 returns the version's document decoded; other clients may hand back the URL-encoded string."""
    if isinstance(value, str):
        from urllib.parse import unquote

        return json.loads(unquote(value))
    return value


Runner = Callable[..., "subprocess.CompletedProcess[Any]"]


def execute(
    config: PlatformConfig,
    plan: Sequence[Target],
    documents: dict[str, Path],
    *,
    session_factory: Callable[..., Any],
    runner: Runner,
) -> int:
    name = Naming(config.platform).cfn_execution_policy()
    for target in plan:
        session = session_factory(profile_name=target.profile, region_name=target.region)
        actual = session.client("sts").get_caller_identity()["Account"]
        if actual != target.account:
            print(
                f"bootstrap: refused: the credentials for {target.role} ({target.profile or 'default profile'}) "
                f"are for account {actual}, not {target.account}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        document = json.loads(documents[target.account].read_text())
        arn = policy_arn(config, target.account)
        done = ensure_policy(session.client("iam"), name=name, arn=arn, document=document)
        print(f"==> {target.account}: policy {arn} {done}")
        command = bootstrap_command(config, target)
        print(f"==> {shlex.join(command)}")
        result = runner(command, cwd=ROOT, check=False)
        if result.returncode != 0:
            print(f"bootstrap: cdk bootstrap of {target.environment} failed ({result.returncode})", file=sys.stderr)
            return result.returncode
    return 0


# --------------------------------------------------------------------------- cli


def _shown(path: Path) -> Path:
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path.resolve()


def render(config: PlatformConfig, plan: Sequence[Target], documents: dict[str, Path]) -> str:
    """The commands, one block per account, as a shell would run them."""
    lines = []
    for target in plan:
        document = _shown(documents[target.account])
        roles = ", ".join(target.roles)
        lines.append(f"# {roles}: account {target.account} ({target.region})")
        lines.append(shlex.join(create_policy_command(config, target, document)))
        lines.append(f"#   exists already: {shlex.join(update_policy_command(config, target, document))}")
        lines.append(shlex.join(bootstrap_command(config, target)))
        lines.append("")
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="scripts/bootstrap.py", description=__doc__.split("\n")[0])
    parser.add_argument("--config-dir", type=Path, default=ROOT / "config")
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "bootstrap", help="policy documents go here")
    parser.add_argument("--execute", action="store_true", help="run the commands instead of printing them")
    for role in ROLES:
        parser.add_argument(
            f"--profile-{role}",
            dest=f"profile_{role}",
            metavar="NAME",
            default=role,
            help=f"AWS CLI profile of the {role} account (default: {role}; '' for the default credentials)",
        )
    return parser.parse_args(argv)


def main(
    argv: Sequence[str] | None = None,
    *,
    runner: Runner = subprocess.run,
    session_factory: Callable[..., Any] | None = None,
) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load_config(args.config_dir)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return EXIT_USAGE
    if config.platform.prefix == "cdk":
        print(
            "bootstrap: refused: prefix 'cdk' would let the execution policy's cdk-* names reach the "
            "CDK bootstrap resources; choose another prefix",
            file=sys.stderr,
        )
        return EXIT_USAGE
    profiles = {role: getattr(args, f"profile_{role}") or None for role in ROLES}
    plan = targets(config, profiles)
    try:
        documents = write_documents(config, args.out, plan)
    except PolicyTooLarge as err:
        print(f"bootstrap: {err}", file=sys.stderr)
        return EXIT_FAILED
    if not args.execute:
        print(render(config, plan, documents), end="")
        return 0
    if session_factory is None:
        import boto3

        session_factory = boto3.Session
    return execute(config, plan, documents, session_factory=session_factory, runner=runner)


if __name__ == "__main__":
    raise SystemExit(main())
