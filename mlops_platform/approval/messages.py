"""Plain-text notifications for the approvers' topic (email subscribers read them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mlops_platform.approval.policy import (
    EVIDENCE_KINDS,
    EVIDENCE_LABELS,
    PENDING,
    REJECTED,
    Decision,
    Identity,
    MetricCheck,
    PackageEvidence,
    Policy,
    check_metrics,
)


def _who(identity: Identity | None) -> str:
    return identity.describe() if identity else "unknown"


def _title(policy: Policy, package: PackageEvidence) -> str:
    return f"{policy.model_package_group} version {package.version}"


def metric_lines(checks: Sequence[MetricCheck], primary: str) -> list[str]:
    if not checks:
        return ["  (the policy sets no metric thresholds)"]
    width = max(len(c.name) for c in checks) + (10 if any(c.name == primary for c in checks) else 0)
    lines = []
    for check in checks:
        name = f"{check.name} (primary)" if check.name == primary else check.name
        if check.value is None:
            lines.append(f"  {name:<{width}}  threshold >= {check.threshold:<8.4g} FAIL  {check.problem}")
        else:
            verdict = "pass" if check.passed else "FAIL"
            lines.append(f"  {name:<{width}}  {check.value:<8.4g} threshold >= {check.threshold:<8.4g} {verdict}")
    return lines


def evidence_lines(policy: Policy, package: PackageEvidence) -> list[str]:
    lines = []
    for kind in EVIDENCE_KINDS:
        present = package.has(kind)
        required = "required" if kind in policy.required_evidence else "optional"
        verdict = "present" if present else ("MISSING" if kind in policy.required_evidence else "absent")
        lines.append(f"  {EVIDENCE_LABELS[kind]}: {verdict} ({required})")
    if package.evaluation_report_uri:
        lines.append(f"  evaluation report: {package.evaluation_report_uri}")
    return lines


def commands(arn: str) -> list[str]:
    return [
        "Review and decide with the admin CLI (in the governance account):",
        f"  mlops approvals show {arn}",
        f'  mlops approve {arn} --as YOUR-NAME --reason "..."',
        f'  mlops reject {arn} --as YOUR-NAME --reason "..."',
    ]


def pending(policy: Policy, package: PackageEvidence, model_check: Decision) -> tuple[str, str]:
    """A version waits for approval (newly registered, or sent back by the guard)."""
    reverted = package.reverted_by_guard
    if reverted is not None:
        subject = f"[{policy.project}] {_title(policy, package)} is pending approval again (approval reverted)"
    else:
        subject = f"[{policy.project}] {_title(policy, package)} awaits approval"
    lines = [f"Model package group {policy.model_package_group}, version {package.version}, awaits manual approval."]
    if reverted is not None:
        lines += ["", "Its approval was reverted by the approval guard:", f"  {reverted}"]
    lines += [
        "",
        f"Model package: {package.arn}",
        f"Registered by: {_who(package.registrant)}",
        "",
        "Metrics vs thresholds:",
        *metric_lines(model_check.metric_checks, policy.primary_metric),
        "",
        "Evidence:",
        *evidence_lines(policy, package),
        "",
    ]
    if model_check.allowed:
        lines.append("The metrics and evidence meet the policy.")
    else:
        lines += [
            "The metrics or evidence do NOT meet the policy: `mlops approve` refuses this version and an",
            "approval made elsewhere (Studio, API) is reverted to Rejected by the approval guard:",
            *(f"  - {v}" for v in model_check.violations),
        ]
        if any(v.startswith("evidence missing: ") for v in model_check.violations):
            lines += [
                "Evidence is part of a version's registration (UpdateModelPackage cannot add it): register a new",
                "version that carries it. The project's pipeline registers both; a model built in Canvas carries",
                "neither, so train it through the pipeline on the same feature group to get an approvable version.",
            ]
    lines.append("")
    lines += [
        f"Approvers: {', '.join(policy.approvers)}"
        + ("" if policy.allow_self_approval else " (the registrant may not approve)"),
        "",
        *commands(package.arn),
    ]
    return subject, "\n".join(lines) + "\n"


def reverted(
    policy: Policy, package: PackageEvidence, decision: Decision, approver: Identity | None
) -> tuple[str, str]:
    """The guard reverted an approval that violates the policy."""
    subject = f"[{policy.project}] approval of {_title(policy, package)} reverted to {decision.revert_to}"
    lines = [
        f"The approval of {policy.model_package_group} version {package.version} violates the approval policy "
        f"and was reverted to {decision.revert_to}.",
        "",
        f"Model package: {package.arn}",
        f"Approved by: {_who(approver)}",
        f"Registered by: {_who(package.registrant)}",
        "",
        "Violations:",
        *(f"  - {v}" for v in decision.violations),
        "",
        "Metrics vs thresholds:",
        *metric_lines(decision.metric_checks, policy.primary_metric),
        "",
    ]
    if decision.revert_to == PENDING:
        lines += [f"An approver ({', '.join(policy.approvers)}) can still approve this version.", ""]
        lines += commands(package.arn)
    else:
        lines.append("The version itself does not meet the policy: register a better version.")
    return subject, "\n".join(lines) + "\n"


def released(
    policy: Policy, package: PackageEvidence, stage: str, approved_by: str, execution_id: str | None
) -> tuple[str, str]:
    subject = f"[{policy.project}] {_title(policy, package)} released to {stage}"
    lines = [
        f"{policy.model_package_group} version {package.version} passed the approval guard and is released to {stage}.",
        "",
        f"Model package: {package.arn}",
        f"Approved by: {approved_by}",
        f"Reason: {package.approval_description or '(none given)'}",
        f"Deployment: pipeline execution {execution_id or '(not started)'}",
        "",
        "Metrics vs thresholds:",
        *metric_lines(check_metrics(policy, package), policy.primary_metric),
        "",
        "See what runs where: mlops releases --project " + policy.project,
    ]
    return subject, "\n".join(lines) + "\n"


@dataclass(frozen=True)
class StageOutcome:
    """What a rejection did to one serving stage; ``rolled_back`` when the stage's release changed."""

    stage: str
    summary: str
    rolled_back: bool = False
    released_here: bool = True


def rejected(
    policy: Policy, package: PackageEvidence, outcomes: Sequence[StageOutcome], status: str = REJECTED
) -> tuple[str, str]:
    """A version was rejected, or its approval withdrawn (Approved -> PendingManualApproval)."""
    rolled = [o.stage for o in outcomes if o.rolled_back]
    suffix = f", {' and '.join(rolled)} rolled back" if rolled else ""
    verb = "rejected" if status == REJECTED else "revoked (approval withdrawn)"
    subject = f"[{policy.project}] {_title(policy, package)} {verb}{suffix}"
    lines = [
        f"{policy.model_package_group} version {package.version} was {verb}; it is {status} in the registry.",
        "",
        f"Model package: {package.arn}",
        f"Last changed by: {_who(package.last_modified_by)}",
        f"Reason: {package.approval_description or '(none given)'}",
        "",
        "Serving stages:",
        *(f"  {o.stage}: {o.summary}" for o in outcomes),
        "",
        "See what runs where: mlops releases --project " + policy.project,
    ]
    return subject, "\n".join(lines) + "\n"
