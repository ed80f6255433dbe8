"""Typed platform configuration, read once from ``config/``.

``config/platform.yaml`` describes the accounts, network, Studio and checks;
``config/projects/<name>.yaml`` describes one team's project each. Every model
forbids unknown keys, so a typo is an error instead of a silently ignored
setting. :func:`load_config` turns any problem into one :class:`ConfigError`
line that names the file, the field and what is allowed.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from mlops_platform import catalog
from pipeline_definitions.inputs import METRIC_NAMES

ROLES = ("governance", "dev", "staging", "prod")
WORKLOAD_ROLES = ("dev", "staging", "prod")
SERVING_STAGES = ("staging", "prod")

Role = Literal["governance", "dev", "staging", "prod"]
WorkloadRole = Literal["dev", "staging", "prod"]
Persona = Literal["data_scientist", "lead"]
NagPack = Literal["AwsSolutions", "NIST.800-53.R5", "HIPAA.Security", "PCI.DSS.321", "Serverless"]

AccountId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")]
# Short enough that "<prefix>-<project>-<stage>-<suffix>" stays inside the
# 63/64-character limits of SageMaker, S3 and IAM names.
PlatformPrefix = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]{1,9}$")]
ProjectName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$", min_length=2, max_length=20)]
UserName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", min_length=1, max_length=32)]
InstanceType = Annotated[str, StringConstraints(pattern=r"^ml\.[a-z0-9]+(-[a-z0-9]+)*\.[a-z0-9]+$")]
FeatureName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")]

# GitHub's own rules: an owner is 1-39 letters, digits and single inner hyphens; a repository
# name is 1-100 letters, digits, '.', '-' or '_'. Neither admits an IAM wildcard ('*', '?').
GitHubRepository = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*/[A-Za-z0-9._-]+$", max_length=140)
]
GitBranch = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", max_length=255)]
GitHubEnvironment = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]+$", max_length=255)]

_SCHEDULE_PATTERN = r"^(rate|cron)\(.+\)$"
_S3_URI_PATTERN = r"^s3://[a-z0-9.\-]{3,63}(/.*)?$"


def _pattern(alias: Any) -> str:
    return get_args(alias)[1].pattern


# Pattern errors read as a sentence naming what is allowed, not as a regex.
_HINT_BY_PATTERN = {
    _pattern(AccountId): "a 12-digit AWS account id such as '111111111111'",
    _pattern(Region): "an AWS region such as 'eu-west-1'",
    _pattern(PlatformPrefix): "2-10 characters: lowercase letters and digits, starting with a letter",
    _pattern(ProjectName): (
        "2-20 characters: lowercase letters, digits and single hyphens, starting with a "
        "letter and not ending with a hyphen (it becomes part of AWS resource names)"
    ),
    _pattern(UserName): "1-32 characters: lowercase letters, digits and single hyphens",
    _pattern(InstanceType): "a SageMaker instance type such as 'ml.m5.xlarge'",
    _pattern(FeatureName): "letters, digits, '-' or '_', up to 64 characters, starting with a letter or digit",
    _SCHEDULE_PATTERN: "an EventBridge schedule such as 'rate(7 days)' or 'cron(0 3 ? * MON *)'",
    _S3_URI_PATTERN: "an S3 URI such as 's3://bucket/prefix/'",
    _pattern(GitHubRepository): "a GitHub repository as 'owner/name', such as 'example-org/mlops-platform'",
    _pattern(GitBranch): "a branch name of letters, digits, '.', '-', '_' and '/', such as 'main'",
    _pattern(GitHubEnvironment): "a GitHub environment name of letters, digits, '.', '-' or '_', such as 'production'",
}


# The tag cost allocation reports split by; platform.yaml's tags must set it.
COST_CENTER_TAG = "cost-center"


class ConfigError(Exception):
    """One human-readable configuration problem: file, field and what is allowed."""


class FieldError(ValueError):
    """A validator's problem with one field below the model it validates.

    ``field`` is dotted and relative to that model (``vpc_cidrs.dev``,
    ``workers[0].instance_type``); the error line names it after the model's own
    location, so a check that needs several fields still points at the one to change.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- instance types


def instance_type_problem(instance_type: str, purpose: catalog.Purpose) -> str | None:
    """Why the SageMaker API behind ``purpose`` would refuse ``instance_type`` (None if it accepts it).

    Names the allowed families, or the allowed sizes of the family, with a
    did-you-mean for a typo; the facts are in :mod:`mlops_platform.catalog`.
    """
    family = catalog.instance_family(instance_type)
    size = instance_type.rsplit(".", 1)[-1]
    offered = catalog.INSTANCE_SIZES[purpose]
    label = catalog.PURPOSE_LABELS[purpose]
    if family not in offered:
        elsewhere = [catalog.PURPOSE_LABELS[p] for p, table in catalog.INSTANCE_SIZES.items() if family in table]
        if elsewhere:
            what = f"SageMaker offers {family} only for {' and '.join(elsewhere)}, not for {label}"
        else:
            close = difflib.get_close_matches(family, list(offered), n=1)
            what = f"unknown instance family '{family}'" + (f" (did you mean '{close[0]}'?)" if close else "")
        return f"{instance_type!r}: {what}; families for {label}: {', '.join(offered)}"
    sizes = offered[family]
    if size not in sizes:
        close = difflib.get_close_matches(size, sizes, n=1)
        hint = f" (did you mean 'ml.{family}.{close[0]}'?)" if close else ""
        return f"{instance_type!r}: {family} has no size '{size}'{hint}; {family} sizes for {label}: {', '.join(sizes)}"
    return None


def _offered_for(purpose: catalog.Purpose) -> AfterValidator:
    def check(instance_type: str) -> str:
        if purpose == "hosting" and catalog.instance_family(instance_type) in catalog.GUARDRAILS_EXCLUDED_FAMILIES:
            family = catalog.instance_family(instance_type)
            raise ValueError(
                f"{instance_type!r}: {family} endpoints cannot use deployment guardrails (canary, auto-rollback); "
                f"use {catalog.GUARDRAILS_EXCLUDED_FAMILIES[family]}"
            )
        problem = instance_type_problem(instance_type, purpose)
        if problem:
            raise ValueError(problem)
        return instance_type

    return AfterValidator(check)


HostingInstanceType = Annotated[InstanceType, _offered_for("hosting")]
TrainingInstanceType = Annotated[InstanceType, _offered_for("training")]
ProcessingInstanceType = Annotated[InstanceType, _offered_for("processing")]
HyperPodInstanceType = Annotated[InstanceType, _offered_for("hyperpod")]


# --------------------------------------------------------------------------- platform


class Account(_Strict):
    """Where one account role lives."""

    id: AccountId
    region: Region


class Accounts(_Strict):
    """The four account roles. Give all four the same id for single-account mode."""

    governance: Account
    dev: Account
    staging: Account
    prod: Account

    def of(self, role: str) -> Account:
        return getattr(self, role)


# How stacks/components/network.py carves every VPC (CDK ec2.Vpc, subnet configurations in
# this order): one private /20 per AZ, then, with NAT gateways, one public /24 per AZ.
PRIVATE_SUBNET_PREFIX = 20
PUBLIC_SUBNET_PREFIX = 24


class VpcSubnet(NamedTuple):
    name: str  # the subnet configuration: "Private" or "Public"
    az: int  # 1-based, in the order CDK takes the region's zones
    cidr: ipaddress.IPv4Network


def vpc_subnets(vpc: ipaddress.IPv4Network, azs: int, nat_gateways: int) -> list[VpcSubnet] | None:
    """The subnets CDK's ``ec2.Vpc`` carves from ``vpc``, or None when they do not fit (CDK then fails the synth).

    CDK allocates each subnet configuration for every AZ in turn, sequentially
    from the start of the range, each block aligned to its own size (its
    ``NetworkBuilder``). ``azs`` is ``max_azs``: a region with fewer zones gets
    fewer subnets, all inside the span computed here.
    """
    layout = [("Private", PRIVATE_SUBNET_PREFIX)] + ([("Public", PUBLIC_SUBNET_PREFIX)] if nat_gateways else [])
    subnets = []
    next_address, last_address = int(vpc.network_address), int(vpc.broadcast_address)
    for name, prefix in layout:
        size = 2 ** (32 - prefix)
        for az in range(1, azs + 1):
            start = next_address + (-next_address % size)
            if start + size - 1 > last_address:
                return None
            subnets.append(VpcSubnet(name, az, ipaddress.IPv4Network((start, prefix))))
            next_address = start + size
    return subnets


def _too_small(vpc: ipaddress.IPv4Network, azs: int, nat_gateways: int) -> str:
    plural = "s" if azs > 1 else ""
    layout = f"{azs} private /{PRIVATE_SUBNET_PREFIX} subnet{plural}"
    needed = azs * 2 ** (32 - PRIVATE_SUBNET_PREFIX)
    if nat_gateways:
        layout += f" and {azs} public /{PUBLIC_SUBNET_PREFIX} subnet{plural} (public because nat_gateways > 0)"
        needed += azs * 2 ** (32 - PUBLIC_SUBNET_PREFIX)
    fits = [p for p in range(vpc.prefixlen - 1, 15, -1) if vpc_subnets(vpc.supernet(new_prefix=p), azs, nat_gateways)]
    advice = f"; use a /{fits[0]} or larger range, e.g. {vpc.supernet(new_prefix=fits[0])}" if fits else ""
    return (
        f"{vpc} is too small for the VPC's subnets: {layout}, one per AZ for max_azs {azs}, "
        f"need {needed} addresses from the start of the range{advice}"
    )


class Network(_Strict):
    """One VPC per workload account role. Defaults: 2 AZs, no NAT (VPC endpoints only).

    Each range must hold the VPC's subnets (see :func:`vpc_subnets`), e.g. a /19
    for 2 AZs without NAT, a /18 for 3 AZs or for 2 with NAT.
    """

    vpc_cidrs: dict[WorkloadRole, ipaddress.IPv4Network]
    max_azs: int = Field(default=2, ge=1, le=3)
    nat_gateways: int = Field(default=0, ge=0, le=3)
    flow_log_retention_days: Literal[90, 180, 365, 731, 1827, 3653] = 365

    @field_validator("vpc_cidrs")
    @classmethod
    def _cidrs(cls, cidrs: dict[str, ipaddress.IPv4Network]) -> dict[str, ipaddress.IPv4Network]:
        missing = [r for r in WORKLOAD_ROLES if r not in cidrs]
        if missing:
            raise ValueError(f"needs a CIDR for every workload role; missing: {', '.join(missing)}")
        for role, net in cidrs.items():
            if net.prefixlen < 16:
                raise FieldError(role, f"{net} is larger than AWS allows for a VPC (/16 to /28)")
        roles = list(cidrs)
        for i, a in enumerate(roles):
            for b in roles[i + 1 :]:
                if cidrs[a].overlaps(cidrs[b]):
                    raise ValueError(f"{a} {cidrs[a]} overlaps {b} {cidrs[b]}; give each role its own range")
        return cidrs

    @model_validator(mode="after")
    def _subnets_fit(self) -> Network:
        for role, net in self.vpc_cidrs.items():
            if vpc_subnets(net, self.max_azs, self.nat_gateways) is None:
                raise FieldError(f"vpc_cidrs.{role}", _too_small(net, self.max_azs, self.nat_gateways))
        return self


class Studio(_Strict):
    """SageMaker Studio domains. Default: one IAM-auth domain in dev only."""

    accounts: list[WorkloadRole] = Field(default=["dev"])
    auth_mode: Literal["IAM", "SSO"] = "IAM"
    idle_timeout_minutes: int = Field(default=120, ge=60, le=525600)

    @field_validator("accounts")
    @classmethod
    def _unique(cls, accounts: list[str]) -> list[str]:
        if len(set(accounts)) != len(accounts):
            raise ValueError("lists a role twice")
        return accounts


class Nag(_Strict):
    """cdk-nag rule packs that run on every synth and fail it. Default: AwsSolutions + NIST 800-53 rev 5."""

    packs: list[NagPack] = Field(default=["AwsSolutions", "NIST.800-53.R5"])


LUSTRE_PERSISTENT_2_THROUGHPUT = (125, 250, 500, 1000)
DRA_EVENTS = Literal["NEW", "CHANGED", "DELETED"]


class DataRepository(_Strict):
    """An S3 prefix of the dev artifacts bucket linked into the file system at ``fs_path``."""

    s3_prefix: str = Field(pattern=r"^[a-zA-Z0-9!_.*'()/-]+/$")
    fs_path: str = Field(pattern=r"^/[a-zA-Z0-9_./-]+$")
    auto_import: list[DRA_EVENTS] = Field(default=["NEW", "CHANGED", "DELETED"])
    auto_export: list[DRA_EVENTS] = Field(default=["NEW", "CHANGED", "DELETED"])


# Lustre deployment types that cannot hold data repository associations (FSx API reference,
# CreateDataRepositoryAssociation: "supported on all FSx for Lustre 2.12 and 2.15 file systems,
# excluding scratch_1"; also not on Intelligent-Tiering). Neither is offered here, so the check
# below only bites if one is added to ``deployment_type``.
DRA_UNSUPPORTED: tuple[str, ...] = ("SCRATCH_1",)


class Lustre(_Strict):
    """FSx for Lustre 2.15 with LZ4 compression. Default: PERSISTENT_2, 1200 GiB, 250 MB/s/TiB.

    ``data_repositories`` link S3 prefixes of the dev artifacts bucket; both offered
    deployment types support them on Lustre 2.15 (a type that does not is refused,
    never silently dropped). SCRATCH_2 is encrypted with a key FSx manages.
    """

    deployment_type: Literal["PERSISTENT_2", "SCRATCH_2"] = "PERSISTENT_2"
    storage_capacity_gib: int = Field(default=1200, ge=1200)
    throughput_per_unit: int | None = 250
    data_repositories: list[DataRepository] = Field(default=[], max_length=8)

    @model_validator(mode="after")
    def _sizes(self) -> Lustre:
        if self.storage_capacity_gib != 1200 and self.storage_capacity_gib % 2400:
            raise ValueError(
                f"storage_capacity_gib {self.storage_capacity_gib} must be 1200 or a multiple of 2400 "
                f"for {self.deployment_type}"
            )
        if self.deployment_type == "PERSISTENT_2":
            if self.throughput_per_unit not in LUSTRE_PERSISTENT_2_THROUGHPUT:
                raise ValueError(
                    f"throughput_per_unit {self.throughput_per_unit} is not allowed for PERSISTENT_2; "
                    f"allowed: {', '.join(map(str, LUSTRE_PERSISTENT_2_THROUGHPUT))}"
                )
        elif self.throughput_per_unit is not None:
            raise ValueError("throughput_per_unit applies to PERSISTENT_2 only; SCRATCH_2 has a fixed baseline")
        if self.data_repositories and self.deployment_type in DRA_UNSUPPORTED:
            raise FieldError(
                "data_repositories",
                f"{self.deployment_type} file systems cannot link S3 (no data repository associations); "
                "use PERSISTENT_2 or SCRATCH_2, or remove data_repositories",
            )
        paths = [r.fs_path for r in self.data_repositories]
        if len(set(paths)) != len(paths):
            raise ValueError("data_repositories: two associations use the same fs_path")
        return self


class InstanceGroup(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")
    instance_type: HyperPodInstanceType
    count: int = Field(default=1, ge=1, le=256)
    threads_per_core: Literal[1, 2] = 1
    ebs_volume_gb: int = Field(default=500, ge=1, le=16384)


class TrainingCluster(_Strict):
    """Shared FSx for Lustre + SageMaker HyperPod (Slurm) cluster in dev. Default off.

    The cluster, its subnet and the file system share one AZ, given by AZ *id*
    (``euw1-az1``) because AZ names map to different zones in each account.
    The subnet ``cidr`` (default ``10.10.128.0/20``) must lie inside the dev VPC
    range and clear of the VPC's own subnets, which take its start (see
    :func:`vpc_subnets`).

    **Internet.** ``internet: none`` (default): the cluster subnet reaches S3
    (gateway endpoint) and the VPC's interface endpoints only, so the nodes
    install nothing from the internet. ``internet: nat`` adds, in the cluster's
    AZ, a public ``/28`` (``nat_cidr``, default ``10.10.144.0/28``), an internet
    gateway (the VPC's own if it has one), one NAT gateway with an Elastic IP,
    and a default route to it on the cluster subnet's route table only; the
    VPC's other private subnets stay isolated. Cost (Amazon VPC on-demand
    prices, read 2026-12-02 from published summaries of the AWS VPC pricing
    page): us-east-1 $0.045 per NAT-gateway hour and $0.045 per GB processed;
    eu-west-1 about $0.048 and $0.048. That is about $33-35 a month before
    traffic, plus $0.005/hour for the public IPv4 address and the usual
    internet data-transfer charges; S3 traffic bypasses the NAT (gateway endpoint).

    **Switching off.** What the app holds follows from two flags, because no
    flag can know whether a cluster was ever deployed:

    - ``enabled: true``: the whole stack (file system, cluster, node role, NAT).
    - ``enabled: false`` + ``keep_file_system: true``: the training stack stays
      in the app with only the file system, its data repository associations,
      subnet, security groups, S3 endpoint and the lifecycle bucket. Deploying
      it makes CloudFormation delete the HyperPod cluster (all instances, the
      controller too), its node role, and the NAT gateway, Elastic IP, public
      subnet and internet gateway: the per-hour bill stops; the file system keeps
      billing for its capacity and keeps its data.
    - ``enabled: false`` + ``keep_file_system: false``: no training stack in
      the app. CDK never deletes a stack that leaves the app, so this is only
      for a cluster that was never deployed or whose stack was destroyed (the
      file system and lifecycle bucket are retained then and must be deleted by
      hand). A ``training_cluster`` section that switches the cluster off must
      say which of the two it means: ``keep_file_system`` is required there.
      Without any ``training_cluster`` section nothing is deployed.

    HyperPod instance groups cannot be scaled to zero through this config (an
    instance group takes ``count`` >= 1 here, and the controller would still
    bill), so switching off removes the cluster instead.
    """

    enabled: bool = False
    keep_file_system: bool = False
    internet: Literal["none", "nat"] = "none"
    nat_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.10.144.0/28")
    availability_zone_id: str = Field(default="euw1-az1", pattern=r"^[a-z]{2,5}[0-9]-az[0-9]+$")
    fsx_availability_zone_id: str | None = None
    subnet_type: Literal["private", "public"] = "private"
    cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.10.128.0/20")
    fsx: Lustre = Lustre()
    controller: InstanceGroup = InstanceGroup(name="controller", instance_type="ml.m5.xlarge")
    workers: list[InstanceGroup] = Field(
        default=[InstanceGroup(name="trn1", instance_type="ml.trn1.32xlarge", count=2)], min_length=1
    )
    deep_health_checks: list[Literal["InstanceStress", "InstanceConnectivity"]] = Field(
        default=["InstanceStress", "InstanceConnectivity"]
    )
    node_recovery: Literal["Automatic", "None"] = "Automatic"
    training_plan_arn: str | None = Field(
        default=None, pattern=r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:training-plan/.+$"
    )

    @property
    def in_app(self) -> bool:
        """Whether the training stack is in the app: on, or off with the file system kept."""
        return self.enabled or self.keep_file_system

    @model_validator(mode="after")
    def _guardrails(self) -> TrainingCluster:
        if self.model_fields_set and not self.enabled and "keep_file_system" not in self.model_fields_set:
            raise FieldError(
                "keep_file_system",
                "required while enabled is false: true keeps the training stack with only the file system "
                "(deploy it and CloudFormation deletes the cluster, which stops its bill); false takes the "
                "stack out of the app, which CDK never deletes (only for a stack never deployed or destroyed)",
            )
        if self.subnet_type != "private":
            raise ValueError("subnet_type must be private: HyperPod clusters fail to create in public subnets")
        if self.fsx_availability_zone_id and self.fsx_availability_zone_id != self.availability_zone_id:
            raise ValueError(
                f"fsx_availability_zone_id {self.fsx_availability_zone_id} differs from the cluster's "
                f"availability_zone_id {self.availability_zone_id}; EFA and Lustre traffic must stay in one AZ"
            )
        for i, group in enumerate(self.workers):
            trainium = catalog.instance_family(group.instance_type) in catalog.TRAINIUM_FAMILIES
            if trainium and group.instance_type not in catalog.HYPERPOD_TRAINIUM_TYPES:
                raise FieldError(
                    f"workers[{i}].instance_type",
                    f"{group.instance_type!r} is not a HyperPod Trainium worker type with EFA; "
                    f"allowed: {', '.join(catalog.HYPERPOD_TRAINIUM_TYPES)}",
                )
        names = [self.controller.name, *(g.name for g in self.workers)]
        if len(set(names)) != len(names):
            raise ValueError("instance group names must be unique across controller and workers")
        return self


class ApprovalWorkflow(_Strict):
    """The governance account's approval handlers (notify, guard, release Lambdas).

    ``reserved_concurrency``: default none, because new accounts often have a
    concurrency quota of 10 and Lambda refuses a reservation that leaves fewer
    than 10 unreserved; setting it reserves that many concurrent executions for
    each approval handler.
    """

    reserved_concurrency: int | None = Field(default=None, ge=1, le=1000)


class GitHub(_Strict):
    """The one GitHub repository whose Actions deploy the platform (``stacks/github_oidc.py``).

    Defaults: branch ``main`` deploys governance, dev and staging; prod only from
    jobs of the GitHub environment ``production`` (give it required reviewers).
    Spell ``repository`` as GitHub does: IAM compares the token's subject case-sensitively.
    """

    repository: GitHubRepository
    branch: GitBranch = "main"
    prod_environment: GitHubEnvironment = "production"

    @field_validator("repository")
    @classmethod
    def _lengths(cls, repository: str) -> str:
        owner, name = repository.split("/")
        if len(owner) > 39:
            raise ValueError(f"{repository!r}: a GitHub owner has at most 39 characters")
        if len(name) > 100 or name in (".", ".."):
            raise ValueError(f"{repository!r}: a GitHub repository name is 1-100 characters and not '.' or '..'")
        return repository

    @field_validator("branch")
    @classmethod
    def _branch(cls, branch: str) -> str:
        if ".." in branch or branch.endswith((".lock", ".")) or any(p.startswith(".") for p in branch.split("/")):
            raise ValueError(f"{branch!r} is not a valid git branch name")
        return branch


class PlatformSettings(_Strict):
    """Contents of ``config/platform.yaml``."""

    prefix: PlatformPrefix = "mlops"
    accounts: Accounts
    network: Network
    studio: Studio = Studio()
    nag: Nag = Nag()
    training_cluster: TrainingCluster = TrainingCluster()
    approval_workflow: ApprovalWorkflow = ApprovalWorkflow()
    github: GitHub | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _cost_center(cls, tags: dict[str, str]) -> dict[str, str]:
        """Every resource carries ``cost-center`` (a project may override it); ``mlops:`` keys are the platform's."""
        reserved = sorted(key for key in tags if key.startswith("mlops:"))
        if reserved:
            raise ValueError(f"{', '.join(reserved)}: tag keys starting with 'mlops:' are set by the platform")
        if not tags.get(COST_CENTER_TAG):
            raise ValueError(
                f"needs '{COST_CENTER_TAG}': every resource is tagged with it, so the bill can be split by team"
            )
        return tags

    @model_validator(mode="after")
    def _cluster_subnet(self) -> PlatformSettings:
        cluster = self.training_cluster
        if not cluster.in_app:
            return self
        self._check_subnet("training_cluster.cidr", "the cluster subnet", cluster.cidr)
        if cluster.enabled and cluster.internet == "nat":
            self._check_subnet("training_cluster.nat_cidr", "the NAT gateway's public subnet", cluster.nat_cidr)
            if cluster.nat_cidr.overlaps(cluster.cidr):
                raise FieldError(
                    "training_cluster.nat_cidr",
                    f"{cluster.nat_cidr} overlaps the cluster subnet {cluster.cidr}; give the NAT gateway's "
                    "public subnet its own range",
                )
        return self

    def _check_subnet(self, field: str, what: str, cidr: ipaddress.IPv4Network) -> None:
        dev = self.network.vpc_cidrs["dev"]
        if not 16 <= cidr.prefixlen <= 28:
            raise FieldError(field, f"{cidr}: AWS subnets are /16 to /28")
        subnets = vpc_subnets(dev, self.network.max_azs, self.network.nat_gateways)
        if not subnets:  # Network has refused a range its subnets do not fit
            raise FieldError("network.vpc_cidrs.dev", "the dev VPC's subnets do not fit its range")
        taken = f"{subnets[0].cidr.network_address}-{subnets[-1].cidr.broadcast_address}"
        end = int(subnets[-1].cidr.broadcast_address) + 1
        start = end + (-end % cidr.num_addresses)
        if start + cidr.num_addresses - 1 <= int(dev.broadcast_address):
            advice = f"choose a range after them, e.g. {ipaddress.IPv4Network((start, cidr.prefixlen))}"
        else:
            advice = f"no /{cidr.prefixlen} is left after them; use a longer prefix or a larger dev range"
        if not cidr.subnet_of(dev):
            raise FieldError(
                field,
                f"{cidr} is outside the dev VPC {dev}; {what} is carved from that VPC, whose own "
                f"subnets take {taken}: {advice}",
            )
        for subnet in subnets:
            if cidr.overlaps(subnet.cidr):
                raise FieldError(
                    field,
                    f"{cidr} overlaps the dev VPC's {subnet.name} subnet {subnet.cidr} (AZ {subnet.az}); "
                    f"the VPC's own subnets take {taken}: {advice}",
                )

    @model_validator(mode="after")
    def _same_region(self) -> PlatformSettings:
        gov = self.accounts.governance.region
        for role in WORKLOAD_ROLES:
            if self.accounts.of(role).region != gov:
                raise ValueError(
                    f"accounts.{role}.region is {self.accounts.of(role).region} but governance is "
                    f"{gov}: SageMaker creates models only from model packages in the same region, "
                    "so every role must use the governance region"
                )
        return self

    @property
    def single_account(self) -> bool:
        return len({self.accounts.of(r).id for r in ROLES}) == 1


# --------------------------------------------------------------------------- project


class Member(_Strict):
    """A person on the project; gets a Studio user profile in every Studio account."""

    user: UserName
    persona: Persona = "data_scientist"
    sso_user: str | None = Field(default=None, description="IAM Identity Center user name (SSO auth)")


RESERVED_FEATURE_NAMES = ("is_deleted", "write_time", "api_invocation_time")


class Feature(_Strict):
    name: FeatureName
    type: Literal["Integral", "Fractional", "String"]


class OnlineStore(_Strict):
    """Online store; default on, records expire after ``ttl_days`` (none if unset)."""

    enabled: bool = True
    ttl_days: int | None = Field(default=None, ge=1, le=3650)


_CRON_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_CRON_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# EventBridge cron fields: name, lowest, highest, names for 1.., extra single tokens allowed.
_CRON_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minutes", 0, 59, ()),
    ("hours", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _CRON_MONTHS),
    ("day-of-week", 1, 7, _CRON_DAYS),
    ("year", 1970, 2199, ()),
)


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if text.upper() in names:
        return True
    return text.isdigit() and low <= int(text) <= high


def _cron_item(item: str, index: int) -> bool:
    name, low, high, names = _CRON_FIELDS[index]
    if item == "*":
        return True
    if name == "day-of-month" and (item in ("L", "LW") or (item.endswith("W") and _cron_value(item[:-1], 1, 31, ()))):
        return True
    if name == "day-of-week":
        if item == "L" or (item.endswith("L") and _cron_value(item[:-1], low, high, names)):
            return True
        if "#" in item:
            day, _, nth = item.partition("#")
            return _cron_value(day, low, high, names) and nth in ("1", "2", "3", "4", "5")
    base, slash, step = item.partition("/")
    if slash and not (step.isdigit() and int(step) >= 1):
        return False
    if base == "*" and slash:
        return True
    start, dash, end = base.partition("-")
    if dash:
        return _cron_value(start, low, high, names) and _cron_value(end, low, high, names)
    return _cron_value(base, low, high, names)


def cron_problem(expression: str) -> str | None:
    """Why EventBridge would refuse the schedule ``expression`` as a cron (None if it is one).

    ``cron(minutes hours day-of-month month day-of-week year)``, UTC; exactly one of
    day-of-month and day-of-week is ``?``.
    """
    example = "such as 'cron(0 3 ? * SUN *)' (03:00 UTC every Sunday)"
    match = re.fullmatch(r"cron\((.*)\)", expression.strip())
    if not match:
        return f"'{expression}' is not an EventBridge cron expression; write cron(<6 fields>), {example}"
    fields = match.group(1).split()
    if len(fields) != 6:
        return (
            f"'{expression}' has {len(fields)} fields; EventBridge cron takes 6 "
            f"(minutes hours day-of-month month day-of-week year), {example}"
        )
    for index, value in enumerate(fields):
        name = _CRON_FIELDS[index][0]
        if value == "?":
            if name not in ("day-of-month", "day-of-week"):
                return f"'{expression}': '?' is allowed only in day-of-month and day-of-week, not in {name}"
            continue
        if not all(_cron_item(item, index) for item in value.split(",")):
            low, high = _CRON_FIELDS[index][1:3]
            return f"'{expression}': {name} '{value}' is not valid (values {low}-{high}, with , - * /), {example}"
    if (fields[2] == "?") == (fields[4] == "?"):
        return f"'{expression}': exactly one of day-of-month and day-of-week must be '?', {example}"
    return None


class Compaction(_Strict):
    """Weekly Iceberg maintenance of the offline store: Athena OPTIMIZE (bin-pack) then VACUUM.

    Default on, Sundays 03:00 UTC; ``schedule`` is an EventBridge cron (6 fields, UTC).
    """

    enabled: bool = True
    schedule: str = "cron(0 3 ? * SUN *)"

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: str) -> str:
        problem = cron_problem(schedule)
        if problem:
            raise ValueError(problem)
        return schedule.strip()


class OfflineStore(_Strict):
    """Offline store in the dev artifacts bucket, Iceberg table in the Glue catalog. Default on.

    ``compaction``: the scheduled OPTIMIZE/VACUUM of the table (default on, weekly).
    """

    enabled: bool = True
    compaction: Compaction = Compaction()


class FeatureGroup(_Strict):
    name: FeatureName
    description: str = ""
    record_identifier: FeatureName
    event_time: FeatureName
    features: list[Feature] = Field(min_length=2, max_length=2500)
    online_store: OnlineStore = OnlineStore()
    offline_store: OfflineStore = OfflineStore()
    throughput: Literal["OnDemand", "Provisioned"] = "OnDemand"
    provisioned_read_units: int | None = Field(default=None, ge=1, le=40000)
    provisioned_write_units: int | None = Field(default=None, ge=1, le=40000)

    @model_validator(mode="after")
    def _features(self) -> FeatureGroup:
        names = [f.name for f in self.features]
        for name in names:
            if name.lower() in RESERVED_FEATURE_NAMES:
                raise ValueError(
                    f"feature '{name}' uses a reserved name; not allowed: {', '.join(RESERVED_FEATURE_NAMES)}"
                )
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature names must be unique; repeated: {', '.join(dupes)}")
        for field, name in (("record_identifier", self.record_identifier), ("event_time", self.event_time)):
            if name not in names:
                raise ValueError(f"{field} '{name}' is not one of the features ({', '.join(names)})")
        event_type = next(f.type for f in self.features if f.name == self.event_time)
        if event_type not in ("Fractional", "String"):
            raise ValueError(f"event_time feature '{self.event_time}' must be Fractional or String, not {event_type}")
        if not (self.online_store.enabled or self.offline_store.enabled):
            raise ValueError("enable at least one of online_store and offline_store")
        units = (self.provisioned_read_units, self.provisioned_write_units)
        if self.throughput == "Provisioned" and None in units:
            raise ValueError("throughput Provisioned needs provisioned_read_units and provisioned_write_units")
        if self.throughput == "OnDemand" and units != (None, None):
            raise ValueError("provisioned_*_units apply only with throughput: Provisioned")
        return self


class Features(_Strict):
    feature_groups: list[FeatureGroup] = Field(default_factory=list)

    @field_validator("feature_groups")
    @classmethod
    def _unique(cls, groups: list[FeatureGroup]) -> list[FeatureGroup]:
        names = [g.name for g in groups]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature group names must be unique; repeated: {', '.join(dupes)}")
        return groups


class Spot(_Strict):
    """Managed spot training with checkpointing. Default off."""

    enabled: bool = False
    max_wait_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)


class Pipeline(_Strict):
    """The project's SageMaker Pipeline: ingest, query the offline store, preprocess, train, evaluate, register.

    Defaults: on; reads ``feature_group`` (default: the project's first feature
    group) through Athena, label ``target_column`` (default ``churn``, an
    Integral feature of that group, 0/1); ``input_data_uri`` is the default of
    the pipeline's ``IngestDataUrl`` parameter: CSV files its Ingest step loads
    into the feature group first (default none: the step ingests nothing); CPU
    instances (scikit-learn). ``warm_pool_minutes`` keeps the training
    instances for that long after a run so the next one starts in seconds
    (default 0: off; at most SageMaker's 360; billed while kept, not with spot).
    """

    enabled: bool = True
    template: Literal["tabular"] = "tabular"
    feature_group: str | None = None
    target_column: str = Field(default="churn", pattern=r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
    input_data_uri: str | None = Field(default=None, pattern=_S3_URI_PATTERN)
    processing_instance_type: ProcessingInstanceType = "ml.m5.xlarge"
    training_instance_type: TrainingInstanceType = "ml.m5.xlarge"
    training_instance_count: int = Field(default=1, ge=1, le=100)
    max_runtime_minutes: int = Field(default=60, ge=1, le=28 * 24 * 60)
    spot: Spot = Spot()
    warm_pool_minutes: int = Field(default=0, ge=0, le=catalog.WARM_POOL_MAX_SECONDS // 60)
    hyperparameters: dict[str, str | int | float] = Field(default_factory=dict)
    retrain_schedule: str | None = Field(default=None, pattern=_SCHEDULE_PATTERN)

    @model_validator(mode="before")
    @classmethod
    def _removed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "fsx_input" in data:
            raise ValueError(
                "fsx_input is no longer an option: processing jobs cannot read FSx for Lustre and the pipeline reads "
                "the Feature Store offline store, so train and judge on the same data only that way; use FSx from "
                "the shared training cluster (training_cluster in platform.yaml)"
            )
        return data

    @model_validator(mode="after")
    def _spot_wait(self) -> Pipeline:
        if self.spot.enabled and self.spot.max_wait_minutes < self.max_runtime_minutes:
            raise ValueError(
                f"spot.max_wait_minutes ({self.spot.max_wait_minutes}) must be at least "
                f"max_runtime_minutes ({self.max_runtime_minutes})"
            )
        if self.warm_pool_minutes and self.spot.enabled:
            raise ValueError(
                "warm_pool_minutes: SageMaker keeps no warm pool for managed spot training; turn one of them off"
            )
        if catalog.instance_family(self.training_instance_type) in catalog.TRAINIUM_FAMILIES:
            raise ValueError(
                f"training_instance_type {self.training_instance_type}: the pipeline trains a scikit-learn model, "
                "which has no Neuron build; train on Trainium on the shared training cluster (training_cluster)"
            )
        return self


Evidence = Literal["evaluation_report", "data_quality_baseline"]


class Approval(_Strict):
    """Who may approve a model version and what it must show.

    ``approvers`` are member user names with the ``lead`` persona, or IAM role ARNs.
    ``metric_thresholds`` map metrics the evaluate step reports (auc, accuracy,
    precision, recall, f1) to the fraction in [0, 1] each must reach; default auc 0.7.
    Defaults: the registrant may not approve their own version; both the
    evaluation report and the data-quality baseline must be attached.
    """

    approvers: list[str] = Field(min_length=1)
    primary_metric: str = "auc"
    metric_thresholds: dict[str, float] = Field(default_factory=lambda: {"auc": 0.7})
    required_evidence: list[Evidence] = Field(default=["evaluation_report", "data_quality_baseline"])
    allow_self_approval: bool = False

    @field_validator("metric_thresholds")
    @classmethod
    def _thresholds(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for name, value in thresholds.items():
            if name not in METRIC_NAMES:
                close = difflib.get_close_matches(name, METRIC_NAMES, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise FieldError(
                    name,
                    f"the evaluate step reports no metric '{name}'{hint}; allowed: {', '.join(METRIC_NAMES)}",
                )
            if not 0 <= value <= 1:
                raise FieldError(
                    name, f"{value:g} is outside [0, 1]: the evaluate step reports fractions (0.75, not 75)"
                )
        return thresholds

    @model_validator(mode="after")
    def _primary(self) -> Approval:
        if self.primary_metric not in self.metric_thresholds:
            raise ValueError(
                f"primary_metric '{self.primary_metric}' needs a threshold in metric_thresholds "
                f"(has: {', '.join(self.metric_thresholds) or 'none'})"
            )
        return self


VariantName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
_HINT_BY_PATTERN[_pattern(VariantName)] = "letters, digits and hyphens, up to 63 characters"


class Autoscaling(_Strict):
    """Target tracking on invocations per instance. Defaults: 1-2 instances, 100 invocations/instance/minute."""

    min_instances: int = Field(default=1, ge=1, le=100)
    max_instances: int = Field(default=2, ge=1, le=100)
    invocations_per_instance: int = Field(default=100, ge=1, description="target per instance and minute")
    scale_in_cooldown_seconds: int = Field(default=300, ge=0, le=3600)
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600)

    @model_validator(mode="after")
    def _range(self) -> Autoscaling:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) must not exceed max_instances ({self.max_instances})"
            )
        return self


class Serverless(_Strict):
    """Serverless inference: no instances, billed per request. Default 2048 MB, 5 concurrent invocations."""

    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 2048
    max_concurrency: int = Field(default=5, ge=1, le=200)
    provisioned_concurrency: int | None = Field(default=None, ge=1, le=200)

    @model_validator(mode="after")
    def _provisioned(self) -> Serverless:
        if self.provisioned_concurrency and self.provisioned_concurrency > self.max_concurrency:
            raise ValueError("provisioned_concurrency must not exceed max_concurrency")
        return self


class Variant(_Strict):
    """One variant of an endpoint.

    ``model`` picks the release it serves: ``challenger`` (default) is the
    version the stage's latest release names; ``champion`` is the version served
    before it (in staging: what prod serves). Until a champion exists, champion
    variants serve the challenger, so variant names never change and blue/green
    guardrails always apply. ``weight`` is a percentage of live traffic
    (production variants); a ``shadow`` variant instead receives a copy of
    ``sampling_percentage`` of the requests (default 100). Default: one
    ``ml.m5.large`` instance, no autoscaling.
    """

    name: VariantName
    model: Literal["champion", "challenger"] = "challenger"
    weight: int = Field(default=100, ge=0, le=100)
    shadow: bool = False
    sampling_percentage: int | None = Field(default=None, ge=1, le=100)
    instance_type: HostingInstanceType = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1, le=100)
    autoscaling: Autoscaling | None = None
    serverless: Serverless | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Variant:
        if self.sampling_percentage is not None and not self.shadow:
            raise ValueError("sampling_percentage applies to shadow variants only (set shadow: true)")
        if self.serverless is not None:
            set_fields = self.model_fields_set & {"instance_type", "instance_count", "autoscaling"}
            if set_fields:
                raise ValueError(f"a serverless variant has no {', '.join(sorted(set_fields))}")
        if self.autoscaling is not None:
            low, high = self.autoscaling.min_instances, self.autoscaling.max_instances
            if not low <= self.instance_count <= high:
                raise ValueError(f"instance_count ({self.instance_count}) must lie within autoscaling {low}-{high}")
        return self

    @property
    def shadow_sampling(self) -> int:
        return self.sampling_percentage if self.sampling_percentage is not None else 100


class DataCapture(_Strict):
    """Request and response capture to the account's artifacts bucket (KMS). Default on, every request."""

    enabled: bool = True
    sampling_percentage: int = Field(default=100, ge=1, le=100)


class Deployment(_Strict):
    """Blue/green update of the prod endpoint with auto-rollback on alarms.

    Defaults: canary of 10 % of the new fleet, 10 minutes baking per step, old fleet
    kept 5 minutes after the shift; roll back on any 5xx error or average model
    latency above 500 ms in a minute. ``linear`` shifts ``step_percentage`` (10-50)
    per step. SageMaker's limits apply (see ``mlops_platform.catalog``): canary at
    most 50 %, waits up to 60 minutes, and the whole shift (every step's wait plus
    the termination wait) within its 8-hour maximum execution timeout.
    ``wait_minutes`` is at least 1 although SageMaker allows 0: the alarms need a
    minute of data before they can roll anything back.
    """

    traffic: Literal["canary", "linear", "all_at_once"] = "canary"
    step_percentage: int = Field(
        default=10, ge=1, le=catalog.BLUE_GREEN_MAX_CANARY_PERCENT, description="canary size or linear step"
    )
    wait_minutes: int = Field(default=10, ge=1, le=catalog.BLUE_GREEN_MAX_WAIT_INTERVAL_SECONDS // 60)
    termination_wait_minutes: int = Field(default=5, ge=0, le=catalog.BLUE_GREEN_MAX_TERMINATION_WAIT_SECONDS // 60)
    max_model_latency_ms: int = Field(default=500, ge=1)
    max_5xx_errors_per_minute: int = Field(default=1, ge=1)

    @property
    def steps(self) -> int:
        """Traffic shifts, each followed by a wait (as the endpoint's deployment config counts them)."""
        if self.traffic == "canary":
            return 2
        if self.traffic == "linear":
            return math.ceil(100 / self.step_percentage)
        return 1

    @model_validator(mode="after")
    def _guardrail_limits(self) -> Deployment:
        if self.traffic == "linear":
            low, high = catalog.BLUE_GREEN_LINEAR_STEP_PERCENT
            if not low <= self.step_percentage <= high:
                raise FieldError(
                    "step_percentage",
                    f"{self.step_percentage} is not allowed for linear traffic: SageMaker shifts linear steps "
                    f"of {low}-{high} % of the fleet",
                )
        if self.traffic != "all_at_once":
            total = self.steps * self.wait_minutes + self.termination_wait_minutes
            limit = catalog.BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS[1] // 60
            if total * 60 >= catalog.BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS[1]:
                raise FieldError(
                    "wait_minutes",
                    f"{self.traffic} traffic in {self.steps} steps of {self.wait_minutes} minutes plus "
                    f"termination_wait_minutes {self.termination_wait_minutes} waits {total} minutes, but SageMaker "
                    f"stops a blue/green update after {limit} minutes; use fewer steps (a larger step_percentage) "
                    "or shorter waits",
                )
        return self


class Promotion(_Strict):
    """What the staging shadow test must show before ``mlops promote --to prod``.

    Defaults: at least 100 shadowed requests, at most 1 % errors, average latency
    at most 20 % above the champion's; ``min_agreement_percent`` unset (agreement
    is reported, not gated). Set, the paired champion/challenger captures must
    agree at least that often, and a window without pairs refuses.
    """

    min_shadow_invocations: int = Field(default=100, ge=0)
    max_error_rate_percent: float = Field(default=1.0, ge=0, le=100)
    max_latency_increase_percent: float = Field(default=20.0, ge=0)
    min_agreement_percent: float | None = Field(default=None, ge=0, le=100)
    # On: ``mlops promote`` also needs a passing staging load test (``mlops loadtest``) of the version,
    # recorded at most load_test_max_age_hours ago.
    require_load_test: bool = False
    load_test_max_age_hours: int = Field(default=168, ge=1)


def _default_variants(stage: str) -> list[Variant]:
    if stage == "staging":
        return [
            Variant(name="champion", model="champion"),
            Variant(name="challenger", model="challenger", shadow=True),
        ]
    return [Variant(name="primary", model="challenger")]


class StageServing(_Strict):
    """Serving in one stage (default on): variants, data capture, blue/green deployment.

    Staging default: the champion serves, the challenger shadows all traffic.
    Prod default: one variant serving the latest release.
    """

    enabled: bool = True
    variants: list[Variant] = Field(default_factory=list)
    data_capture: DataCapture = DataCapture()
    deployment: Deployment = Deployment()

    @field_validator("variants")
    @classmethod
    def _variants(cls, variants: list[Variant]) -> list[Variant]:
        names = [v.name for v in variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variant names must be unique: {', '.join(dupes)}")
        shadows = [v.name for v in variants if v.shadow]
        production = [v for v in variants if not v.shadow]
        if variants and not production:
            raise ValueError("needs at least one production (non-shadow) variant")
        if len(shadows) > 1:
            raise ValueError(f"at most one shadow variant (SageMaker allows one), got {', '.join(shadows)}")
        if shadows and len(production) > 1:
            raise ValueError("with a shadow variant exactly one production variant is allowed (a SageMaker rule)")
        total = sum(v.weight for v in production)
        if production and total != 100:
            weights = ", ".join(f"{v.name}={v.weight}" for v in production)
            raise ValueError(f"production variant weights are percentages and must sum to 100, got {total} ({weights})")
        if any(v.weight == 0 for v in production) and len(production) == 1:
            raise ValueError("the only production variant needs weight 100")
        serverless = [v.name for v in variants if v.serverless is not None]
        if serverless and len(variants) > 1:
            raise ValueError(
                f"serverless variant {serverless[0]} must be the only variant "
                "(serverless endpoints support neither several variants nor shadows)"
            )
        return variants

    def resolved_variants(self, stage: str) -> list[Variant]:
        """The configured variants, or the stage's default."""
        return list(self.variants) or _default_variants(stage)

    @property
    def serverless(self) -> bool:
        return any(v.serverless is not None for v in self.variants)


class Serving(_Strict):
    """Endpoints in staging (shadow test) and prod (blue/green, A/B weights)."""

    staging: StageServing = StageServing()
    prod: StageServing = StageServing()
    promotion: Promotion = Promotion()

    @model_validator(mode="after")
    def _stages(self) -> Serving:
        if any(v.shadow for v in self.prod.variants):
            raise ValueError("prod.variants: shadow variants belong to staging; prod uses weights")
        for stage in ("staging", "prod"):
            settings: StageServing = getattr(self, stage)
            if settings.serverless and settings.data_capture.enabled:
                raise ValueError(
                    f"{stage}.data_capture.enabled: serverless endpoints cannot capture data; set it to false"
                )
        return self


# Model Monitor runs hourly at most: cron(0 * ? * * *), daily cron(0 H ? * * *), every N hours cron(0 H/N ? * * *).
_MONITORING_CRON = re.compile(r"^cron\(0 (\*|\d{1,2}|\d{1,2}/\d{1,2}) \? \* \* \*\)$")


class ModelQuality(_Strict):
    """Live model quality against ground truth. Default off.

    ``ground_truth_s3_uri``: where labels arrive (Model Monitor's ground-truth
    JSON Lines, keyed by the request's inference id); required when enabled.
    """

    enabled: bool = False
    ground_truth_s3_uri: str | None = Field(default=None, pattern=_S3_URI_PATTERN)
    problem_type: Literal["BinaryClassification"] = "BinaryClassification"
    probability_threshold: float = Field(default=0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _ground_truth(self) -> ModelQuality:
        if self.enabled and not self.ground_truth_s3_uri:
            raise ValueError("model quality needs ground_truth_s3_uri (where the labels of served requests arrive)")
        return self


class BiasFacet(_Strict):
    """One sensitive feature (a model input) and its sensitive group.

    ``value_or_threshold``: a list of the group's values (``[1]``: the rows whose
    feature is 1), or a number: the group is the rows above it (Clarify's
    exclusive lower bound). Required.
    """

    name: FeatureName
    value_or_threshold: Annotated[list[int | float | str], Field(min_length=1)] | float


class Bias(_Strict):
    """Bias drift of the served model (Model Monitor's ModelBias, SageMaker Clarify). Default off.

    ``facets``: the sensitive features, at least one when enabled.
    ``label_values_or_threshold``: the label value that is the positive outcome
    (default ``[1]``: the label is binary). ``probability_threshold``: the
    score at or above which a prediction is positive (default: model quality's,
    0.5). ``max_dppl``: alarm when a facet's live DPPL (the positive-prediction
    rate of the other rows minus the facet group's) leaves ``[-max_dppl,
    max_dppl]`` (default 0.2). The build pipeline registers the baseline
    (Clarify's pre- and post-training metrics on the validation split); the
    schedule needs labels, so ``model_quality.ground_truth_s3_uri`` must be set.
    """

    enabled: bool = False
    facets: list[BiasFacet] = Field(default_factory=list)
    label_values_or_threshold: list[Literal[0, 1]] = Field(default=[1], min_length=1, max_length=1)
    probability_threshold: float | None = Field(default=None, ge=0, le=1)
    max_dppl: float = Field(default=0.2, gt=0, le=1)

    @model_validator(mode="after")
    def _facets(self) -> Bias:
        if self.enabled and not self.facets:
            raise FieldError(
                "facets",
                "bias needs at least one facet: a model input and its sensitive group, "
                "e.g. {name: senior_citizen, value_or_threshold: [1]}",
            )
        names = [f.name for f in self.facets]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise FieldError("facets", f"a feature is listed twice: {', '.join(twice)}")
        return self


class Explainability(_Strict):
    """Feature-attribution drift of the served model (Model Monitor's ModelExplainability, Clarify SHAP). Default off.

    ``num_samples``: Kernel SHAP samples per explained record in the monitoring
    job (default 100, 1-10000; the baseline uses exact Shapley values up to 10
    features, else this many sampled permutations). ``agg_method``: how
    per-record SHAP values become global ones, one of Clarify's ``mean_abs``
    (default), ``median``, ``mean_sq``.
    """

    enabled: bool = False
    num_samples: int = Field(default=100, ge=1, le=10000)
    agg_method: Literal["mean_abs", "median", "mean_sq"] = "mean_abs"


class Retraining(_Strict):
    """A monitoring alarm starts the build pipeline in dev. Default on, at most once per ``cooldown_hours`` (24)."""

    enabled: bool = True
    cooldown_hours: int = Field(default=24, ge=1, le=24 * 30)


class Monitoring(_Strict):
    """Drift and quality monitoring of what a serving stage serves. Default off.

    ``engine``: ``model_monitor`` (SageMaker Model Monitor schedules; closed to
    new accounts) or ``pipeline`` (default: the platform's scheduled drift
    check, any account); both read the served version's baselines, publish the
    same CloudWatch metrics and raise the same alarms. ``stages``: default
    ``[prod]``; ``schedule``: hourly at most (default ``cron(0 * ? * * *)``).
    ``drift_threshold``: alarm when a feature's distance from its baseline
    passes it (default 0.1, Model Monitor's default); ``max_violations``:
    alarm when more constraints are violated in a run (default 0).
    ``bias`` and ``explainability`` (default off) need ``engine: model_monitor``.
    """

    enabled: bool = False
    engine: Literal["model_monitor", "pipeline"] = "pipeline"
    stages: list[Literal["staging", "prod"]] = Field(default=["prod"], min_length=1)
    schedule: str = "cron(0 * ? * * *)"
    drift_threshold: float = Field(default=0.1, gt=0, le=1)
    max_violations: int = Field(default=0, ge=0)
    model_quality: ModelQuality = ModelQuality()
    bias: Bias = Bias()
    explainability: Explainability = Explainability()
    retraining: Retraining = Retraining()

    @model_validator(mode="after")
    def _clarify(self) -> Monitoring:
        if not self.enabled:
            return self
        for name in ("bias", "explainability"):
            if getattr(self, name).enabled and self.engine != "model_monitor":
                raise FieldError(
                    f"{name}.enabled",
                    f"{name} monitoring needs engine: model_monitor (the pipeline engine's drift check does "
                    "data and model quality only); set engine: model_monitor or turn it off",
                )
        if self.bias.enabled and not self.model_quality.ground_truth_s3_uri:
            raise FieldError(
                "bias.enabled",
                "bias monitoring needs the labels of served requests: set model_quality.ground_truth_s3_uri",
            )
        return self

    @property
    def bias_probability_threshold(self) -> float:
        """The score at or above which bias metrics count a prediction as positive (bias's, else model quality's)."""
        threshold = self.bias.probability_threshold
        return self.model_quality.probability_threshold if threshold is None else threshold

    @field_validator("schedule")
    @classmethod
    def _hourly_at_most(cls, schedule: str) -> str:
        match = _MONITORING_CRON.match(schedule)
        if match is None:
            raise ValueError(
                f"'{schedule}' is not a monitoring schedule; allowed: hourly cron(0 * ? * * *), daily "
                "cron(0 H ? * * *), every N hours cron(0 H/N ? * * *): more often than hourly is not possible"
            )
        hours = match.group(1)
        if "/" in hours and int(hours.split("/")[1]) < 1:
            raise ValueError(f"'{schedule}': every 0 hours is more often than hourly")
        return schedule

    @field_validator("stages")
    @classmethod
    def _unique_stages(cls, stages: list[str]) -> list[str]:
        return sorted(set(stages), key=stages.index)


class Canvas(_Strict):
    """SageMaker Canvas for the project's members in the dev Studio domain. Default off.

    On: every dev user profile of the project gets Canvas settings that register
    models into the project's model package group in governance (through the
    project's ``canvas-register`` role, as ``PendingManualApproval`` only), keep
    Canvas artifacts under the project's ``canvas`` prefix of the dev artifacts
    bucket encrypted with the dev key, and switch direct deployment from Canvas
    off, so a Canvas model reaches an endpoint only through the approval path.
    Needs a Studio domain in dev (``platform.yaml`` ``studio.accounts``); works
    with IAM and SSO auth alike.
    """

    enabled: bool = False


class ProjectSettings(_Strict):
    """Contents of one ``config/projects/<name>.yaml``."""

    name: ProjectName
    description: str = ""
    owners: list[str] = Field(min_length=1)
    # The project's resources' cost-center tag; default: platform.yaml's tags.cost-center.
    cost_center: str | None = Field(default=None, min_length=1, max_length=256)
    members: list[Member] = Field(default_factory=list)
    approval: Approval
    features: Features = Features()
    pipeline: Pipeline = Pipeline()
    serving: Serving = Serving()
    monitoring: Monitoring = Monitoring()
    canvas: Canvas = Canvas()

    @field_validator("owners")
    @classmethod
    def _emails(cls, owners: list[str]) -> list[str]:
        for owner in owners:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", owner):
                raise ValueError(f"'{owner}' is not an email address")
        return owners

    @model_validator(mode="after")
    def _monitoring_needs_capture(self) -> ProjectSettings:
        if not self.monitoring.enabled:
            return self
        for stage in self.monitoring.stages:
            if not getattr(self.serving, stage).data_capture.enabled:
                raise ValueError(
                    f"monitoring: stage {stage} has serving.{stage}.data_capture.enabled: false; monitoring reads "
                    "the captured requests, so turn capture on or remove the stage from monitoring.stages"
                )
        if not self.pipeline.enabled:
            raise ValueError("monitoring: needs the build pipeline, which produces the baselines it compares with")
        try:
            features = self.pipeline_features()
        except ValueError:
            return self  # _pipeline_source names the missing feature group
        for i, facet in enumerate(self.monitoring.bias.facets if self.monitoring.bias.enabled else []):
            if facet.name not in features:
                raise FieldError(
                    f"monitoring.bias.facets[{i}].name",
                    f"'{facet.name}' is not a model input; allowed: {', '.join(features)}",
                )
        return self

    def pipeline_source(self) -> FeatureGroup:
        """The feature group the pipeline reads (``pipeline.feature_group``, default the first)."""
        groups = {g.name: g for g in self.features.feature_groups}
        name = self.pipeline.feature_group or next(iter(groups), "")
        if name not in groups:
            raise ValueError(f"project {self.name} has no feature group for its pipeline")
        return groups[name]

    def pipeline_features(self) -> tuple[str, ...]:
        """The model's input columns, in the group's order: every feature but identifier, event time, label."""
        group = self.pipeline_source()
        skip = {group.record_identifier, group.event_time, self.pipeline.target_column}
        return tuple(f.name for f in group.features if f.name not in skip)

    @model_validator(mode="after")
    def _pipeline_source(self) -> ProjectSettings:
        if not self.pipeline.enabled:
            return self
        groups = {g.name: g for g in self.features.feature_groups}
        if not groups:
            raise ValueError(
                "pipeline: reads its data from a feature group's offline store; add one under "
                "features.feature_groups, or set pipeline.enabled: false"
            )
        name = self.pipeline.feature_group or next(iter(groups))
        if name not in groups:
            raise ValueError(f"pipeline.feature_group: '{name}' is not a feature group (groups: {', '.join(groups)})")
        group = groups[name]
        if not group.offline_store.enabled:
            raise ValueError(f"pipeline.feature_group: '{name}' has no offline store, which the pipeline queries")
        types = {f.name: f.type for f in group.features}
        target = self.pipeline.target_column
        if types.get(target) != "Integral" or target in (group.record_identifier, group.event_time):
            raise ValueError(
                f"pipeline.target_column: '{target}' must be an Integral feature (0/1) of feature group '{name}' "
                f"other than its identifier and event time (features: {', '.join(types)})"
            )
        if len(types) < 4:
            raise ValueError(f"pipeline.feature_group: '{name}' has no feature besides identifier, event time, label")
        return self

    @model_validator(mode="after")
    def _people(self) -> ProjectSettings:
        users = [m.user for m in self.members]
        dupes = sorted({u for u in users if users.count(u) > 1})
        if dupes:
            raise ValueError(f"members lists a user twice: {', '.join(dupes)}")
        leads = {m.user for m in self.members if m.persona == "lead"}
        for approver in self.approval.approvers:
            if approver.startswith("arn:"):
                if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", approver):
                    raise ValueError(f"approval.approvers: '{approver}' is not an IAM role ARN")
            elif len(approver) < 2:
                # The CLI passes the name as STS SourceIdentity, which AssumeRole takes at 2 to 64 characters.
                raise ValueError(
                    f"approval.approvers: '{approver}' is too short to approve from the CLI: the approver's name is "
                    "its STS source identity, 2 to 64 characters; give the lead a longer user name"
                )
            elif approver not in leads:
                raise ValueError(
                    f"approval.approvers: '{approver}' must be a member with persona 'lead' "
                    f"(leads: {', '.join(sorted(leads)) or 'none'}) or an IAM role ARN"
                )
        return self


# --------------------------------------------------------------------------- loading


class PlatformConfig(BaseModel):
    """The whole configuration: platform settings plus every project, by name."""

    model_config = ConfigDict(frozen=True)

    platform: PlatformSettings
    projects: dict[str, ProjectSettings]
    sources: dict[str, str] = Field(default_factory=dict, description="project name -> file")


def load_config(config_dir: Path) -> PlatformConfig:
    """Read and validate ``platform.yaml`` and ``projects/*.yaml`` under ``config_dir``.

    Raises :class:`ConfigError` with one line describing the first problem.
    """
    config_dir = Path(config_dir)
    platform_file = config_dir / "platform.yaml"
    platform = _parse(platform_file, PlatformSettings)
    projects: dict[str, ProjectSettings] = {}
    sources: dict[str, str] = {}
    for path in sorted((config_dir / "projects").glob("*.y*ml")):
        project = _parse(path, ProjectSettings)
        if project.name in projects:
            raise ConfigError(
                f"{_show(path)}: name: project '{project.name}' is already defined in "
                f"{sources[project.name]}; project names must be unique"
            )
        if platform.studio.auth_mode == "SSO":
            for i, member in enumerate(project.members):
                if not member.sso_user:
                    raise ConfigError(
                        f"{_show(path)}: members[{i}].sso_user: required because platform.yaml studio.auth_mode is SSO"
                    )
        if project.canvas.enabled and "dev" not in platform.studio.accounts:
            raise ConfigError(
                f"{_show(path)}: canvas.enabled: Canvas runs in the dev Studio domain, which platform.yaml "
                "studio.accounts does not list; add dev there or set canvas.enabled: false"
            )
        projects[project.name] = project
        sources[project.name] = _show(path)
    _refuse_shared_names(platform, projects, sources)
    return PlatformConfig(platform=platform, projects=projects, sources=sources)


def _refuse_shared_names(
    platform: PlatformSettings, projects: dict[str, ProjectSettings], sources: dict[str, str]
) -> None:
    """Two projects must not create one AWS name (``churn`` group ``eu-x`` vs ``churn-eu`` group ``x``).

    The later file is named, with the field that makes the name and the other file.
    """
    from mlops_platform.collisions import describe, first_collision  # it imports naming, which imports this module

    earlier: list[ProjectSettings] = []
    for name, project in projects.items():
        clash = first_collision(platform, project, earlier)
        if clash is not None:
            other, found = clash
            field = found.source.split(" ")[0]
            raise ConfigError(f"{sources[name]}: {field}: {describe(found, name, other.name, sources[other.name])}")
        earlier.append(project)


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _parse(path: Path, model: type[BaseModel]) -> Any:
    if not path.is_file():
        raise ConfigError(f"{_show(path)}: file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{_show(path)}: not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{_show(path)}: must be a mapping of settings, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(path, model, err)) from None


def _describe(path: Path, model: type[BaseModel], err: ValidationError) -> str:
    errors = err.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    field = _dotted(loc) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        message = f"unknown field; allowed: {', '.join(allowed)}{hint}"
    elif kind == "missing":
        message = "required field is missing"
    elif kind == "string_pattern_mismatch":
        pattern = first.get("ctx", {}).get("pattern", "")
        message = f"{first['input']!r} is not {_HINT_BY_PATTERN.get(pattern, 'valid (pattern ' + pattern + ')')}"
    elif kind == "value_error":
        error = first["ctx"]["error"]
        message = str(error)
        if isinstance(error, FieldError):
            loc = (*loc, error.field)
            field = _dotted(loc)
    elif kind in ("too_long", "too_short"):
        message = first["msg"].replace(" after validation", "")
    else:
        message = f"{first['msg']}, got {first.get('input')!r}"
    more = (
        f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} in this file)" if len(errors) > 1 else ""
    )
    if not loc:  # whole-file checks already name their fields
        return f"{_show(path)}: {message}{more}"
    return f"{_show(path)}: {field}: {message}{more}"


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith("["):  # a FieldError's "[0].name"
            out += str(part)
        elif part in ("function-after",) or str(part).startswith(("function-", "literal[")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found by walking ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current = _inner_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, dict, tuple) or get_origin(annotation) is not None:
        for arg in get_args(annotation):
            found = _inner_model(arg)
            if found is not None:
                return found
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m mlops_platform.config [CONFIG_DIR]``: validate and print a one-line summary."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    config_dir = Path(args[0]) if args else Path("config")
    try:
        config = load_config(config_dir)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    mode = "single-account" if config.platform.single_account else "multi-account"
    print(f"config ok: {mode}, projects: {', '.join(config.projects) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
