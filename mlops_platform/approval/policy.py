"""The approval policy, as pure functions: no boto3, no I/O, no clock.

Shared by the three approval Lambdas (``notify``, ``guard``, ``rejected``) and
the admin CLI, which loads this file by path (``mlops_platform/cli``), so it
must stay dependency-free: standard library only, no sibling imports.

A :class:`Policy` is one project's ``approval`` section of
``config/projects/<project>.yaml`` plus the project and model package group
names (the ``APPROVAL_POLICY`` environment variable of the Lambdas).

:func:`evaluate` checks one approval of one model package version:

* every metric in ``metric_thresholds`` is at least its threshold, read from
  the evaluation report (SageMaker model-quality shape,
  ``{"binary_classification_metrics": {"auc": {"value": 0.87}}}``);
* the required evidence is attached (``evaluation_report``:
  ``ModelMetrics.ModelQuality.Statistics``; ``data_quality_baseline``:
  statistics and constraints under ``DriftCheckBaselines.ModelDataQuality`` or
  ``ModelMetrics.ModelDataQuality``);
* the approver -- the caller of the API call that set ``Approved``, from its
  CloudTrail record -- is listed in ``approvers`` and, unless
  ``allow_self_approval``, is not who registered the version.

Who an approver is (``approvers`` names a project lead, or an IAM role ARN):

* ``alice`` from the CLI: a session of the project's approver role
  (``approver_role_arn``) whose STS source identity is ``alice``. The role's
  trust policy only lets a caller set the source identity to its own
  ``mlops-person`` principal tag, and a source identity cannot be changed
  later in a session chain;
* ``alice`` from Studio: a session of the project's dev ``lead`` persona role
  (``studio_role_arn``) with source identity ``<project>-alice``, the user
  profile name that the Studio domain sets (``ExecutionRoleIdentityConfig``);
* an IAM role ARN: any session of that role.

Metric and evidence violations send the version to ``Rejected`` (no approver
can fix the model); identity violations only send it back to
``PendingManualApproval``, so a proper approver can still approve it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PENDING = "PendingManualApproval"
APPROVED = "Approved"
REJECTED = "Rejected"
APPROVAL_STATUSES = (PENDING, APPROVED, REJECTED)

EVALUATION_REPORT = "evaluation_report"
DATA_QUALITY_BASELINE = "data_quality_baseline"
EVIDENCE_KINDS = (EVALUATION_REPORT, DATA_QUALITY_BASELINE)
EVIDENCE_LABELS = {
    EVALUATION_REPORT: "evaluation report (ModelMetrics.ModelQuality.Statistics)",
    DATA_QUALITY_BASELINE: (
        "data-quality baseline (statistics + constraints in DriftCheckBaselines.ModelDataQuality "
        "or ModelMetrics.ModelDataQuality)"
    ),
}

# Prefix of the ApprovalDescription the guard writes when it reverts an approval.
REVERT_PREFIX = "Reverted by approval guard: "

_NAME = r"[\w+=,.@-]+"
_ROLE_ARN = re.compile(
    rf"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{{12}}):role/(?:{_NAME}/)*(?P<name>{_NAME})$"
)
_ASSUMED_ROLE_ARN = re.compile(
    rf"^arn:(?P<partition>aws[a-z-]*):sts::(?P<account>\d{{12}}):assumed-role/(?P<name>{_NAME})/(?P<session>.+)$"
)
_USER_ARN = re.compile(
    rf"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>\d{{12}}):user/(?:{_NAME}/)*(?P<name>{_NAME})$"
)


class PolicyError(ValueError):
    """The policy document (``APPROVAL_POLICY``) is not valid."""


class ReportError(ValueError):
    """The evaluation report is not in the SageMaker model-quality shape."""


# --------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class Policy:
    """One project's approval policy. Defaults mirror ``mlops_platform.config.Approval``."""

    project: str
    model_package_group: str
    approvers: tuple[str, ...]
    metric_thresholds: Mapping[str, float]
    primary_metric: str = "auc"
    required_evidence: tuple[str, ...] = EVIDENCE_KINDS
    allow_self_approval: bool = False
    # Sessions of these roles carry the approver's name as their STS source identity.
    approver_role_arn: str | None = None
    studio_role_arn: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Policy:
        """Validate a decoded ``APPROVAL_POLICY`` document; raises :class:`PolicyError`."""
        if not isinstance(data, Mapping):
            raise PolicyError(f"must be a JSON object, got {type(data).__name__}")
        allowed = {
            "project",
            "model_package_group",
            "approvers",
            "primary_metric",
            "metric_thresholds",
            "required_evidence",
            "allow_self_approval",
            "approver_role_arn",
            "studio_role_arn",
        }
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise PolicyError(f"unknown keys {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        for key in ("project", "model_package_group"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise PolicyError(f"{key} must be a non-empty string")
        approvers = data.get("approvers")
        if not isinstance(approvers, list) or not approvers or not all(isinstance(a, str) and a for a in approvers):
            raise PolicyError("approvers must be a non-empty list of user names or IAM role ARNs")
        for approver in approvers:
            if approver.startswith("arn:") and not _ROLE_ARN.match(approver):
                raise PolicyError(f"approvers: {approver!r} is not an IAM role ARN")
        thresholds = data.get("metric_thresholds", {})
        if not isinstance(thresholds, Mapping) or not all(
            isinstance(k, str) and _is_number(v) for k, v in thresholds.items()
        ):
            raise PolicyError("metric_thresholds must map metric names to numbers")
        primary = data.get("primary_metric", "auc")
        if not isinstance(primary, str) or (thresholds and primary not in thresholds):
            raise PolicyError(f"primary_metric {primary!r} needs a threshold in metric_thresholds")
        evidence = data.get("required_evidence", list(EVIDENCE_KINDS))
        if not isinstance(evidence, list) or any(e not in EVIDENCE_KINDS for e in evidence):
            raise PolicyError(f"required_evidence must be a list of: {', '.join(EVIDENCE_KINDS)}")
        self_ok = data.get("allow_self_approval", False)
        if not isinstance(self_ok, bool):
            raise PolicyError("allow_self_approval must be true or false")
        roles = {key: data.get(key) for key in ("approver_role_arn", "studio_role_arn")}
        for key, arn in roles.items():
            if arn is not None and not (isinstance(arn, str) and _ROLE_ARN.match(arn)):
                raise PolicyError(f"{key} must be an IAM role ARN")
        return cls(
            project=data["project"],
            model_package_group=data["model_package_group"],
            approvers=tuple(approvers),
            metric_thresholds={k: float(v) for k, v in thresholds.items()},
            primary_metric=primary,
            required_evidence=tuple(dict.fromkeys(evidence)),
            allow_self_approval=self_ok,
            approver_role_arn=roles["approver_role_arn"],
            studio_role_arn=roles["studio_role_arn"],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "model_package_group": self.model_package_group,
            "approvers": list(self.approvers),
            "primary_metric": self.primary_metric,
            "metric_thresholds": dict(self.metric_thresholds),
            "required_evidence": list(self.required_evidence),
            "allow_self_approval": self.allow_self_approval,
            "approver_role_arn": self.approver_role_arn,
            "studio_role_arn": self.studio_role_arn,
        }

    def ordered_metrics(self) -> list[str]:
        """Metric names with the primary metric first."""
        rest = sorted(m for m in self.metric_thresholds if m != self.primary_metric)
        return ([self.primary_metric] if self.primary_metric in self.metric_thresholds else []) + rest


def user_profile_name(project: str, user: str) -> str:
    """Studio user profile of a project member; mirrors ``mlops_platform.naming.Naming.user_profile_name``."""
    return f"{project}-{user}"


# --------------------------------------------------------------------------- identity


def normalize_principal(arn: str | None) -> str | None:
    """The IAM principal behind an ARN, comparable across sessions.

    ``arn:aws:sts::A:assumed-role/ROLE/SESSION`` and ``arn:aws:iam::A:role/path/ROLE``
    both become ``arn:aws:iam::A:role/ROLE`` (assumed-role ARNs carry no path);
    IAM users become ``arn:aws:iam::A:user/NAME``. Anything else is returned as is.
    """
    if not arn:
        return None
    for pattern, kind in ((_ASSUMED_ROLE_ARN, "role"), (_ROLE_ARN, "role"), (_USER_ARN, "user")):
        match = pattern.match(arn)
        if match:
            return f"arn:{match['partition']}:iam::{match['account']}:{kind}/{match['name']}"
    return arn


@dataclass(frozen=True)
class Identity:
    """Who did something to a model package: SageMaker's ``UserContext`` (CreatedBy / LastModifiedBy)."""

    user_profile_name: str | None = None
    domain_id: str | None = None
    iam_arn: str | None = None
    principal_id: str | None = None
    source_identity: str | None = None

    @classmethod
    def from_user_context(cls, context: Any) -> Identity | None:
        """Parse ``{UserProfileName, DomainId, IamIdentity: {Arn, PrincipalId, SourceIdentity}}``; None if empty."""
        if not isinstance(context, Mapping):
            return None
        iam = context.get("IamIdentity")
        iam = iam if isinstance(iam, Mapping) else {}
        identity = cls(
            user_profile_name=_str_or_none(context.get("UserProfileName")),
            domain_id=_str_or_none(context.get("DomainId")),
            iam_arn=_str_or_none(iam.get("Arn")),
            principal_id=_str_or_none(iam.get("PrincipalId")),
            source_identity=_str_or_none(iam.get("SourceIdentity")),
        )
        return identity if identity.known else None

    @property
    def known(self) -> bool:
        return bool(self.user_profile_name or self.iam_arn or self.source_identity)

    @property
    def principal(self) -> str | None:
        return normalize_principal(self.iam_arn)

    def describe(self) -> str:
        """Short human-readable form, e.g. ``churn-alice (arn:aws:sts::…:assumed-role/…)``."""
        parts = []
        if self.user_profile_name:
            parts.append(f"Studio user {self.user_profile_name}")
        if self.iam_arn:
            parts.append(self.iam_arn)
        if self.source_identity:
            parts.append(f"source identity {self.source_identity}")
        if not parts:
            return "unknown"
        return parts[0] + (f" ({', '.join(parts[1:])})" if len(parts) > 1 else "")


def person_of(policy: Policy, identity: Identity | None) -> str | None:
    """The person a session proves, by its STS source identity on one of the policy's approver roles.

    ``alice`` for the approver role with source identity ``alice``, and for the
    Studio lead role with source identity ``<project>-alice``; None otherwise.
    """
    if identity is None or not identity.source_identity or identity.principal is None:
        return None
    if policy.approver_role_arn and identity.principal == normalize_principal(policy.approver_role_arn):
        return identity.source_identity
    prefix = user_profile_name(policy.project, "")
    if (
        policy.studio_role_arn
        and identity.principal == normalize_principal(policy.studio_role_arn)
        and identity.source_identity.startswith(prefix)
    ):
        return identity.source_identity[len(prefix) :]
    return None


def same_principal(a: Identity | None, b: Identity | None, policy: Policy | None = None) -> bool | None:
    """Whether two identities are the same person or role; None when either is unknown.

    The most specific field both carry decides: the person both prove (with a
    ``policy``), the Studio user profile, the STS source identity, then the IAM
    principal (role or user).
    """
    if a is None or b is None:
        return None
    if policy is not None:
        person_a, person_b = person_of(policy, a), person_of(policy, b)
        if person_a and person_b:
            return person_a == person_b
    if a.user_profile_name and b.user_profile_name:
        if a.domain_id and b.domain_id and a.domain_id != b.domain_id:
            return False
        return a.user_profile_name == b.user_profile_name
    if a.source_identity and b.source_identity:
        return a.source_identity == b.source_identity
    if a.principal and b.principal:
        return a.principal == b.principal
    return False


def approver_entry_matches(policy: Policy, entry: str, identity: Identity) -> bool:
    """Whether ``identity`` is the approver ``entry`` (a lead's user name or an IAM role ARN)."""
    if entry.startswith("arn:"):
        return identity.principal is not None and identity.principal == normalize_principal(entry)
    return person_of(policy, identity) == entry


def is_approver(policy: Policy, identity: Identity | None) -> bool:
    return identity is not None and any(approver_entry_matches(policy, e, identity) for e in policy.approvers)


# --------------------------------------------------------------------------- evidence


@dataclass(frozen=True)
class PackageEvidence:
    """What the policy needs to know about one model package version."""

    arn: str
    group: str | None
    version: int | None
    status: str | None
    approval_description: str | None
    registrant: Identity | None
    last_modified_by: Identity | None
    evaluation_report_uri: str | None
    data_quality_statistics_uri: str | None
    data_quality_constraints_uri: str | None
    # Metrics read from the evaluation report; None when the report is absent or unreadable.
    metrics: Mapping[str, float] | None = None
    report_problem: str | None = None

    @property
    def has_evaluation_report(self) -> bool:
        return bool(self.evaluation_report_uri)

    @property
    def has_data_quality_baseline(self) -> bool:
        return bool(self.data_quality_statistics_uri and self.data_quality_constraints_uri)

    def has(self, kind: str) -> bool:
        return self.has_evaluation_report if kind == EVALUATION_REPORT else self.has_data_quality_baseline

    @property
    def reverted_by_guard(self) -> str | None:
        """The guard's reasons when the current ApprovalDescription says it reverted an approval."""
        text = self.approval_description or ""
        return text[len(REVERT_PREFIX) :] if text.startswith(REVERT_PREFIX) else None


def _uri(block: Any, *path: str) -> str | None:
    for key in path:
        if not isinstance(block, Mapping):
            return None
        block = block.get(key)
    return block if isinstance(block, str) and block else None


def evaluation_report_uri(description: Mapping[str, Any]) -> str | None:
    """``ModelMetrics.ModelQuality.Statistics.S3Uri`` of a DescribeModelPackage response."""
    return _uri(description, "ModelMetrics", "ModelQuality", "Statistics", "S3Uri")


def parse_package(
    description: Mapping[str, Any],
    report: Any = None,
    report_problem: str | None = None,
) -> PackageEvidence:
    """Evidence from a DescribeModelPackage response and its decoded evaluation report.

    ``report`` is the decoded JSON of the evaluation report (or None when it
    was not read); a report that is not in the model-quality shape becomes a
    ``report_problem`` instead of metrics.
    """
    drift = (
        _uri(description, "DriftCheckBaselines", "ModelDataQuality", "Statistics", "S3Uri"),
        _uri(description, "DriftCheckBaselines", "ModelDataQuality", "Constraints", "S3Uri"),
    )
    in_metrics = (
        _uri(description, "ModelMetrics", "ModelDataQuality", "Statistics", "S3Uri"),
        _uri(description, "ModelMetrics", "ModelDataQuality", "Constraints", "S3Uri"),
    )
    # A complete pair wins; a half pair is kept only to show what is there.
    if all(drift):
        statistics, constraints = drift
    elif all(in_metrics):
        statistics, constraints = in_metrics
    else:
        statistics, constraints = drift if any(drift) else in_metrics
    metrics: dict[str, float] | None = None
    if report is not None and report_problem is None:
        try:
            metrics = parse_metrics(report)
        except ReportError as err:
            report_problem = str(err)
    version = description.get("ModelPackageVersion")
    return PackageEvidence(
        arn=str(description.get("ModelPackageArn", "")),
        group=_str_or_none(description.get("ModelPackageGroupName")),
        version=version if isinstance(version, int) and not isinstance(version, bool) else None,
        status=_str_or_none(description.get("ModelApprovalStatus")),
        approval_description=_str_or_none(description.get("ApprovalDescription")),
        registrant=Identity.from_user_context(description.get("CreatedBy")),
        last_modified_by=Identity.from_user_context(description.get("LastModifiedBy")),
        evaluation_report_uri=evaluation_report_uri(description),
        data_quality_statistics_uri=statistics,
        data_quality_constraints_uri=constraints,
        metrics=metrics,
        report_problem=report_problem,
    )


def parse_metrics(report: Any) -> dict[str, float]:
    """Metric values of a model-quality report: every ``<kind>_metrics.<name>.value`` that is a number.

    Accepts ``binary_classification_metrics``, ``multiclass_classification_metrics``,
    ``regression_metrics`` (and any other ``*_metrics`` block). Raises
    :class:`ReportError` when the document has no such block.
    """
    if not isinstance(report, Mapping):
        raise ReportError(f"evaluation report must be a JSON object, got {type(report).__name__}")
    blocks = {
        k: v for k, v in report.items() if isinstance(k, str) and k.endswith("_metrics") and isinstance(v, Mapping)
    }
    if not blocks:
        raise ReportError(
            "evaluation report has no '<kind>_metrics' block (expected e.g. binary_classification_metrics or "
            "regression_metrics)"
        )
    metrics: dict[str, float] = {}
    for _, block in sorted(blocks.items()):
        for name, entry in block.items():
            value = entry.get("value") if isinstance(entry, Mapping) else None
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                metrics.setdefault(name, float(value))
    return metrics


# --------------------------------------------------------------------------- checks


@dataclass(frozen=True)
class MetricCheck:
    name: str
    threshold: float
    value: float | None
    passed: bool
    problem: str | None = None

    def describe(self) -> str:
        if self.value is None:
            return f"{self.name}: {self.problem}"
        verdict = "pass" if self.passed else "FAIL"
        return f"{self.name} = {self.value:.4g} (threshold >= {self.threshold:.4g}): {verdict}"


def check_metrics(policy: Policy, package: PackageEvidence) -> list[MetricCheck]:
    """One check per threshold, primary metric first."""
    checks = []
    for name in policy.ordered_metrics():
        threshold = policy.metric_thresholds[name]
        if package.metrics is None:
            if not package.has_evaluation_report:
                problem = "no evaluation report attached to read it from"
            else:
                problem = f"evaluation report unreadable: {package.report_problem or 'not read'}"
            checks.append(MetricCheck(name, threshold, None, False, problem))
        elif name not in package.metrics:
            checks.append(MetricCheck(name, threshold, None, False, "not in the evaluation report"))
        else:
            value = package.metrics[name]
            checks.append(MetricCheck(name, threshold, value, value >= threshold))
    return checks


def missing_evidence(policy: Policy, package: PackageEvidence) -> list[str]:
    return [kind for kind in policy.required_evidence if not package.has(kind)]


@dataclass(frozen=True)
class Decision:
    """Outcome of :func:`evaluate`. ``revert_to`` is None when the approval is allowed."""

    allowed: bool
    violations: tuple[str, ...] = ()
    revert_to: str | None = None
    metric_checks: tuple[MetricCheck, ...] = field(default=())

    @property
    def reason(self) -> str:
        return "; ".join(self.violations)


def model_violations(policy: Policy, package: PackageEvidence) -> tuple[list[str], list[MetricCheck]]:
    """Metric and evidence violations: properties of the version itself, whoever approves it."""
    violations = [f"evidence missing: {EVIDENCE_LABELS[kind]}" for kind in missing_evidence(policy, package)]
    checks = check_metrics(policy, package)
    for check in checks:
        if check.value is None:
            violations.append(f"metric {check.name}: {check.problem}")
        elif not check.passed:
            violations.append(f"metric {check.name} = {check.value:.4g} is below the threshold {check.threshold:.4g}")
    return violations, checks


def identity_violations(policy: Policy, package: PackageEvidence, approver: Identity | None) -> list[str]:
    """Approver and self-approval violations: a proper approver could still approve the version."""
    if approver is None:
        return ["approver unknown: the approval call records no caller identity"]
    violations = []
    if not is_approver(policy, approver):
        listed = ", ".join(policy.approvers)
        violations.append(f"{approver.describe()} is not an approver of project {policy.project} (approvers: {listed})")
    if not policy.allow_self_approval:
        same = same_principal(package.registrant, approver, policy)
        if same is None:
            violations.append("registrant unknown (no CreatedBy identity), so self-approval cannot be ruled out")
        elif same:
            violations.append(f"{approver.describe()} registered this version; self-approval is not allowed")
    return violations


def evaluate(policy: Policy, package: PackageEvidence, approver: Identity | None) -> Decision:
    """Check one approval of ``package`` by ``approver`` against ``policy``."""
    model, checks = model_violations(policy, package)
    identity = identity_violations(policy, package, approver)
    violations = tuple(model + identity)
    if not violations:
        return Decision(True, (), None, tuple(checks))
    return Decision(False, violations, REJECTED if model else PENDING, tuple(checks))


def evaluate_model(policy: Policy, package: PackageEvidence) -> Decision:
    """Metrics and evidence only (what the CLI checks before it approves)."""
    model, checks = model_violations(policy, package)
    if not model:
        return Decision(True, (), None, tuple(checks))
    return Decision(False, tuple(model), REJECTED, tuple(checks))


# --------------------------------------------------------------------------- helpers


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def join_limited(parts: Iterable[str], limit: int, sep: str = "; ") -> str:
    """Join ``parts`` and cut the result to ``limit`` characters (with an ellipsis)."""
    text = sep.join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"
