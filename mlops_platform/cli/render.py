"""rich tables for the ``mlops`` commands (stdout)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from mlops_platform.approval import policy as policy_mod
from mlops_platform.cli import core
from mlops_platform.cli.dlq import MAX_MESSAGES, REDRIVE_VISIBILITY_SECONDS, Listing, RedriveResult
from mlops_platform.cli.endpoints import CHALLENGER, CHAMPION
from mlops_platform.cli.export import Export
from mlops_platform.cli.invoke import Response
from mlops_platform.cli.loadtest import LoadTestResult
from mlops_platform.cli.monitoring import MODEL_MONITOR, MonitoringStatus, MonitorRun, violations
from mlops_platform.cli.promote import PromoteResult
from mlops_platform.cli.shadow import ShadowReport, VariantReport
from mlops_platform.cli.verify import Verification
from mlops_platform.config import Promotion
from mlops_platform.release_manifest import describe as describe_manifest

if TYPE_CHECKING:  # pandas is imported only by the commands that read data
    from mlops_platform.cli.data import IngestSummary


def _console() -> Console:
    # Piped output (scripts, tests) gets wide lines so ARNs are never wrapped.
    return Console(width=None if sys.stdout.isatty() else 240, highlight=False, soft_wrap=False)


def _time(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value) if value else "-"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def pending(rows: list[core.PendingVersion], projects: list[str]) -> None:
    console = _console()
    if not rows:
        console.print(f"No versions await approval ({', '.join(projects) or 'no projects'}).")
        return
    table = Table(title="Versions awaiting approval", title_justify="left")
    for name in ("Project", "Version", "Registered", "Description"):
        table.add_column(name)
    table.add_column("Model package ARN", no_wrap=True)
    for row in rows:
        table.add_row(row.project, str(row.version or "-"), _time(row.created), row.description or "", row.arn)
    console.print(table)
    console.print("Review one with: mlops approvals show ARN")


def version(report: core.VersionReport) -> None:
    console = _console()
    package, policy, target = report.package, report.policy, report.target
    console.print(f"Model package  {target.arn}")
    console.print(f"Project        {target.project} (group {target.group}, version {target.version})")
    console.print(f"Status         {package.status or '-'}")
    if package.approval_description:
        console.print(f"Description    {package.approval_description}")
    console.print(f"Registered by  {package.registrant.describe() if package.registrant else 'unknown'}")
    if package.last_modified_by:
        console.print(f"Last change by {package.last_modified_by.describe()}")

    metrics = Table(title="Metrics vs thresholds", title_justify="left")
    metrics.add_column("Metric")
    metrics.add_column("Threshold (>=)", justify="right")
    metrics.add_column(f"v{target.version}", justify="right")
    for stage in report.stages:
        label = f"{stage.stage} (v{stage.release.version})" if stage.release else f"{stage.stage} (none)"
        metrics.add_column(label, justify="right")
    metrics.add_column("Result")
    for check in report.model_check.metric_checks:
        name = f"{check.name} (primary)" if check.name == policy.primary_metric else check.name
        served = [_fmt((stage.metrics or {}).get(check.name)) for stage in report.stages]
        verdict = "pass" if check.passed else f"FAIL{': ' + check.problem if check.problem else ''}"
        metrics.add_row(name, _fmt(check.threshold), _fmt(check.value), *served, verdict)
    console.print(metrics)

    evidence = Table(title="Evidence", title_justify="left")
    for name in ("Evidence", "Required", "Status"):
        evidence.add_column(name)
    evidence.add_column("Location", no_wrap=True)
    locations = {
        policy_mod.EVALUATION_REPORT: package.evaluation_report_uri,
        policy_mod.DATA_QUALITY_BASELINE: " + ".join(
            u for u in (package.data_quality_statistics_uri, package.data_quality_constraints_uri) if u
        ),
    }
    for kind in policy_mod.EVIDENCE_KINDS:
        required = kind in policy.required_evidence
        status = "present" if package.has(kind) else ("MISSING" if required else "absent")
        evidence.add_row(kind, "yes" if required else "no", status, locations[kind] or "-")
    console.print(evidence)

    if report.model_check.allowed:
        console.print("Policy: metrics and evidence meet the policy; the guard checks the approver on approval.")
    else:
        console.print("Policy: an approval would be refused:")
        for violation in report.model_check.violations:
            console.print(f"  - {violation}")


def updated(result: core.UpdateResult) -> None:
    console = _console()
    t = result.target
    if not result.changed:
        console.print(f"{t.group} version {t.version} is already {result.status}; nothing changed.")
        return
    console.print(f"{result.status} {t.group} version {t.version} (was {result.previous_status or 'unset'}).")
    if result.status == core.APPROVED:
        console.print(
            "The approval guard now checks the approver; a valid approval is released to staging and deployed."
        )
    else:
        console.print("If it was released, the rejected handler revokes it and rolls its stage back.")


def releases(stages: list[core.StageReleases]) -> None:
    console = _console()
    current = Table(title="What runs where", title_justify="left")
    for name in ("Project", "Stage", "Version", "Released at", "Approved by"):
        current.add_column(name)
    current.add_column("Model package ARN", no_wrap=True)
    for stage in stages:
        release = stage.current
        if release is None:
            current.add_row(stage.project, stage.stage, "-", "-", "-", "no model released")
        else:
            current.add_row(
                stage.project,
                stage.stage,
                str(release.version),
                release.recorded_at,
                release.approved_by,
                release.model_package_arn,
            )
    console.print(current)

    history = Table(title="History", title_justify="left")
    for name in ("Recorded at", "Project", "Stage", "Version", "Event", "Status", "Detail"):
        history.add_column(name)
    rows: list[tuple[str, ...]] = []
    for stage in stages:
        for r in stage.releases:
            status = r.status + (f" at {r.revoked_at}" if r.revoked_at else "")
            detail = f"by {r.approved_by}" + (f": {r.reason}" if r.reason else "")
            if r.deployment_execution_id:
                detail += f" (deployment {r.deployment_execution_id})"
            rows.append((r.recorded_at, stage.project, stage.stage, str(r.version), "release", status, detail))
        for rb in stage.rollbacks:
            if rb.target_version is not None:
                event, detail = f"rollback to v{rb.target_version}", f"v{rb.revoked_version} rejected"
            else:
                event, detail = "rollback", f"v{rb.revoked_version} rejected; no model to serve"
            if rb.reason:
                detail += f": {rb.reason}"
            rows.append(
                (rb.recorded_at, stage.project, stage.stage, str(rb.revoked_version), event, rb.outcome, detail)
            )
    if not rows:
        console.print("No releases recorded yet.")
        return
    for row in sorted(rows, reverse=True):
        history.add_row(*row)
    console.print(history)


# --------------------------------------------------------------------------- dead letters


def dead_letters(listing: Listing) -> None:
    console = _console()
    if not listing.messages:
        console.print(f"No failed approval events in {listing.queue} ({listing.project}).")
        return
    table = Table(title=f"Failed approval events of {listing.project} ({listing.queue})", title_justify="left")
    table.add_column("Message id", no_wrap=True)
    table.add_column("Handler", overflow="fold")
    for name in ("Event id", "Status / call", "Failed at", "Attempts", "Why"):
        table.add_column(name)
    table.add_column("Model package ARN", no_wrap=True)
    for m in listing.messages:
        table.add_row(
            m.message_id,
            m.handler,
            m.event_id or "-",
            m.status or "-",
            _time(m.failed_at),
            "-" if m.attempts is None else str(m.attempts),
            m.reason,
            m.model_package_arn or "-",
        )
    console.print(table)
    if listing.truncated:
        console.print(f"Only the first {len(listing.messages)} messages are shown; more wait in the queue.")
    console.print(
        f"Nothing was deleted. Replay them with: mlops dlq redrive {listing.project} [--dry-run] [--message-id ID]"
    )


def redriven(result: RedriveResult) -> None:
    console = _console()
    if not result.replays:
        console.print(
            f"No failed approval events in {result.queue} ({result.project}); nothing to redrive (a message another "
            f"command holds is visible again within {REDRIVE_VISIBILITY_SECONDS // 60} minutes)."
        )
        return
    title = f"{'Dry run: r' if result.dry_run else 'R'}edrive of {result.queue}"
    table = Table(title=title, title_justify="left")
    table.add_column("Message id", no_wrap=True)
    for name in ("Handler", "Event id", "Outcome", "Detail"):
        table.add_column(name)
    for r in result.replays:
        letter = r.letter
        table.add_row(
            r.message_id,
            letter.handler if letter else "-",
            (letter.event_id if letter else None) or "-",
            r.outcome,
            r.detail,
        )
    console.print(table)
    if result.dry_run:
        console.print(
            f"{len(result.planned)} would be replayed, {len(result.skipped)} skipped; nothing was invoked or deleted."
        )
    else:
        console.print(
            f"{len(result.replayed)} replayed, {len(result.failed)} failed (kept), {len(result.skipped)} skipped."
        )
    if result.truncated:
        console.print(f"The queue holds more than {MAX_MESSAGES} messages; run redrive again for the rest.")


# --------------------------------------------------------------------------- serving


def exported(result: Export) -> None:
    """One line: the manifest written (or removed) and what it deploys."""
    action = "wrote" if result.manifest is not None else "removed"
    _console().print(f"{result.project}/{result.stage}: {action} {result.path}: {describe_manifest(result.manifest)}")


def _version(variant: VariantReport) -> str:
    if variant.version is not None:
        return f"v{variant.version}"
    return ", ".join(variant.package_arns) or "not from a model package"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} %"


def shadow(report: ShadowReport, rule: Promotion, violations: list[str]) -> None:
    console = _console()
    # A line of its own: a table title would wrap at the table's width.
    console.print(
        f"Shadow test of {report.project}: endpoint {report.endpoint}, {_time(report.start)} to {_time(report.end)}"
    )
    table = Table()
    table.add_column("")
    ordered = sorted(report.variants, key=lambda v: {CHAMPION: 0, CHALLENGER: 1}.get(v.role, 2))
    for variant in ordered:
        table.add_column(f"{variant.role} ({variant.name})", justify="right")
    rows: list[tuple[str, Any]] = [
        ("Serves", _version),
        ("Traffic", lambda v: "shadow copy" if v.shadow else "live"),
        ("Invocations", lambda v: f"{v.invocations:g}"),
        ("5xx errors", lambda v: f"{v.errors_5xx:g}"),
        ("4xx errors", lambda v: f"{v.errors_4xx:g}"),
        ("5xx error rate", lambda v: _percent(v.error_rate_percent)),
        ("Avg model latency", lambda v: "-" if v.latency_ms is None else f"{v.latency_ms:.1f} ms"),
        (
            "Captured requests read",
            lambda v: f"{v.captures} ({v.capture_objects} object{'s' * (v.capture_objects != 1)})",
        ),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(v) for v in ordered))
    console.print(table)
    agreement = report.agreement
    if agreement is not None and not agreement.champion_captures and not agreement.challenger_captures:
        console.print("Captured pairs: no captured requests in the window.")
    elif agreement is not None:
        console.print(
            f"Captured pairs: {agreement.paired} of {agreement.challenger_captures} challenger captures matched a "
            f"champion capture ({agreement.paired_by_event} by eventId, {agreement.paired_by_input} by identical "
            f"input); outputs agree in {agreement.agreed} ({_percent(agreement.rate_percent)})."
        )
    for note in report.notes:
        console.print(f"Note: {note}")
    rule_text = (
        f"at least {rule.min_shadow_invocations} challenger invocations, 5xx error rate <= "
        f"{rule.max_error_rate_percent:g} %, latency at most {rule.max_latency_increase_percent:g} % above the champion"
    )
    if not violations:
        console.print(f"Promotion: passes the rule ({rule_text}).")
    else:
        console.print(f"Promotion: would be refused ({rule_text}):")
        for violation in violations:
            console.print(f"  - {violation}")


def promoted(result: PromoteResult) -> None:
    console = _console()
    r = result.release
    if result.outcome == "already":
        console.print(
            f"{r.project} version {r.version} already runs in prod (recorded {r.recorded_at} by {r.approved_by}; "
            f"deployment {result.execution_id}); nothing changed."
        )
        return
    if result.outcome == "resumed":
        console.print(
            f"{r.project} version {r.version} was recorded for prod at {r.recorded_at}; its deployment had not started."
        )
    else:
        console.print(f"Recorded prod release of {r.project} version {r.version} ({r.model_package_arn})")
        console.print(f"  at {r.recorded_at} by {r.approved_by}: {r.reason}")
    console.print(f"Started deploy pipeline {result.pipeline}: execution {result.execution_id}")


def verification(result: Verification) -> None:
    """What was verified (stdout); the problems go to stderr via the caller."""
    console = _console()
    console.print(f"{result.project}/{result.stage}: verified")
    for line in result.summary:
        console.print(f"  {line}")


# --------------------------------------------------------------------------- data


@contextmanager
def ingest_progress(group: str) -> Iterator[Callable[[int], Callable[[int, int], None]]]:
    """``start(total)`` -> the ``(done, total)`` callback of an ingest, shown on stderr.

    A rich progress bar when stderr is a terminal, otherwise a line at every
    further 10 % (logs, CI, tests).
    """
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TimeRemainingColumn

        bar = Progress(
            f"ingest {group}",
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=False,
        )

        def start_bar(total: int) -> Callable[[int, int], None]:
            task = bar.add_task("records", total=total)

            def update(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return update

        with bar:
            yield start_bar
        return

    def start_lines(total: int) -> Callable[[int, int], None]:
        shown = -1

        def update(done: int, total: int) -> None:
            nonlocal shown
            tenth = 10 if total == 0 else done * 10 // total
            if tenth > shown:
                shown = tenth
                print(f"ingest {group}: {tenth * 10} % ({done}/{total} records)", file=sys.stderr, flush=True)

        return update

    yield start_lines


def ingested(summary: IngestSummary) -> None:
    """One line on stdout: what went in (or, for a dry run, what would)."""
    if summary.dry_run:
        print(
            f"dry run: {summary.total} records of {summary.path} fit {summary.feature_group}; "
            f"would ingest {summary.total} records into {summary.feature_group} ({summary.rejected} rejected); "
            "nothing was written",
            flush=True,
        )
        return
    print(f"ingested {summary.ingested} records into {summary.feature_group} ({summary.rejected} rejected)", flush=True)


def invoked(response: Response) -> None:
    """The endpoint's response body on stdout, as it came (text decoded when it is UTF-8)."""
    try:
        text = response.body.decode()
    except UnicodeDecodeError:
        sys.stdout.flush()
        sys.stdout.buffer.write(response.body)
        sys.stdout.flush()
        return
    print(text if text.endswith("\n") else text + "\n", end="", flush=True)


# --------------------------------------------------------------------------- monitoring


def _run_text(run: MonitorRun | None) -> str:
    if run is None:
        return "never ran"
    text = f"{run.status} (scheduled {_time(run.scheduled)})"
    return text + (f": {run.failure_reason}" if run.failure_reason else "")


def _report_lines(content: Any) -> list[str]:
    """A few lines of a violations summary: its violations when it lists them, else its top-level values."""
    found = violations(content)
    if found is not None:
        lines = [f"{len(found)} violation{'s' * (len(found) != 1)}"]
        for v in found[:10]:
            feature = v.get("feature_name") or v.get("feature") or "-"
            check = v.get("constraint_check_type") or v.get("check") or "-"
            lines.append(f"  - {feature}: {check}" + (f": {v['description']}" if v.get("description") else ""))
        if len(found) > 10:
            lines.append(f"  ... and {len(found) - 10} more")
        return lines
    if isinstance(content, dict):
        return [f"{k}: {json.dumps(v, default=str)[:200]}" for k, v in list(content.items())[:20]]
    return [json.dumps(content, default=str)[:400]]


def monitoring_status(result: MonitoringStatus) -> None:
    console = _console()
    engine = "SageMaker Model Monitor" if result.engine == MODEL_MONITOR else "drift pipeline"
    console.print(f"Monitoring of {result.project}/{result.stage}: {engine} ({result.engine})")
    if result.engine == MODEL_MONITOR:
        console.print(f"Endpoint       {result.endpoint}")
        for schedule in result.schedules:
            kind = f", {schedule.monitoring_type}" if schedule.monitoring_type else ""
            console.print(f"Schedule {schedule.name}: {schedule.status}{kind}")
            if schedule.failure_reason:
                console.print(f"  schedule failure: {schedule.failure_reason}")
            console.print(f"  last execution: {_run_text(schedule.last)}")
            if schedule.runs:
                table = Table(title=f"Last executions of {schedule.name}", title_justify="left")
                for name in ("Scheduled", "Status", "Failure reason"):
                    table.add_column(name)
                table.add_column("Processing job", no_wrap=True)
                for run in schedule.runs:
                    table.add_row(
                        _time(run.scheduled), run.status, run.failure_reason or "-", run.processing_job or "-"
                    )
                console.print(table)
    else:
        console.print(f"Pipeline       {result.drift_pipeline}")
        if result.runs:
            table = Table(title=f"Last executions of {result.drift_pipeline}", title_justify="left")
            for name in ("Started", "Status", "Failure reason"):
                table.add_column(name)
            table.add_column("Execution", no_wrap=True)
            for drift in result.runs:
                table.add_row(_time(drift.started), drift.status, drift.failure_reason or "-", drift.arn)
            console.print(table)
        report = result.report
        if report is not None:
            if report.uri:
                console.print(f"Latest report  {report.uri} ({_time(report.modified)})")
            if report.problem:
                console.print(f"  {report.problem}" if report.uri else f"Latest report  {report.problem}")
            else:
                for line in _report_lines(report.content):
                    console.print(f"  {line}")
    if result.alarms:
        table = Table(title=f"Alarms {result.alarm_prefix}*", title_justify="left")
        table.add_column("Alarm", no_wrap=True)
        for name in ("State", "Since", "Version", "Reason"):
            table.add_column(name)
        for alarm in result.alarms:
            table.add_row(alarm.name, alarm.state, _time(alarm.updated), alarm.version or "-", alarm.reason or "-")
        console.print(table)
    for note in result.notes:
        console.print(f"Note: {note}")
    firing = result.firing
    if firing:
        if result.retraining is False:
            effect = "retraining is off (monitoring.retraining.enabled)"
        else:
            effect = "a transition to ALARM starts retraining in dev, at most once per cool-down"
        console.print(
            f"{len(firing)} alarm{'s' * (len(firing) != 1)} firing: {', '.join(a.name for a in firing)} ({effect})"
        )
    elif result.alarms:
        console.print("No alarm is firing.")


# --------------------------------------------------------------------------- load test


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def loadtest(result: LoadTestResult) -> None:
    """The step table, the endpoint's CloudWatch numbers and the recommendation."""
    console = _console()
    console.print(
        f"Load test of {result.project}/{result.stage}: endpoint {result.endpoint}, {_time(result.started)} to "
        f"{_time(result.ended)}, {result.requests} requests; payloads: {result.payloads} rows from "
        f"{result.payload_source}"
    )
    table = Table()
    for name in ("Step", "Target TPS", "Users", "Seconds", "Requests", "TPS", "p50 ms", "p90 ms", "p99 ms"):
        table.add_column(name, justify="right")
    for name in ("Errors", "Error rate", f"p99 <= {result.latency_ms:g} ms, errors <= 1 %"):
        table.add_column(name, justify="right")
    for step in result.steps:
        verdict = "pass" if step.passes(result.latency_ms) else "fail"
        if step.cut_short:
            verdict += f" (cut short: {step.cut_short})"
        table.add_row(
            f"{step.percent} %",
            str(step.target_tps),
            str(step.users),
            f"{step.seconds:.1f}",
            str(step.requests),
            f"{step.tps:.1f}",
            _ms(step.p50_ms),
            _ms(step.p90_ms),
            _ms(step.p99_ms),
            str(step.errors),
            _percent(step.error_rate_percent),
            verdict,
        )
    console.print(table)
    if result.stopped_by:
        limit = (
            f"--max-requests {result.max_requests}"
            if result.stopped_by == "max-requests"
            else f"--max-minutes {result.max_seconds / 60:g}"
        )
        console.print(f"Stopped early by {limit}.")
    if result.metrics:
        metrics = Table(title="CloudWatch over the run (per-minute datapoints)", title_justify="left")
        for name in ("Variant", "Metric", "Average", "Maximum", "Datapoints"):
            metrics.add_column(name, justify="left" if name in ("Variant", "Metric") else "right")
        units = {"CPUUtilization": " %", "MemoryUtilization": " %", "ModelLatency": " ms", "OverheadLatency": " ms"}
        for m in result.metrics:
            unit = units.get(m.metric, " /min")
            metrics.add_row(
                m.variant,
                m.metric,
                "-" if m.average is None else f"{m.average:.1f}{unit}",
                "-" if m.maximum is None else f"{m.maximum:.1f}{unit}",
                str(m.datapoints),
            )
        console.print(metrics)
    rec = result.recommendation
    if rec.best is None:
        console.print(
            f"Recommendation: no step kept p99 <= {rec.latency_ms:g} ms with <= 1 % errors; the endpoint does not "
            f"take even {result.steps[0].target_tps if result.steps else 0} TPS within the bound."
        )
    else:
        best = rec.best
        console.print(
            f"Highest passing step: {best.target_tps} TPS target ({best.percent} %), {best.tps:.1f} TPS achieved, "
            f"p99 {_ms(best.p99_ms)} ms, {_percent(best.error_rate_percent)} errors."
        )
        if rec.needed_instances is not None and rec.per_instance_tps is not None:
            console.print(
                f"Recommendation: {rec.needed_instances} instance(s) for {rec.target_tps} TPS "
                f"({rec.per_instance_tps:.1f} TPS per instance at {rec.instances} instance(s) now)."
            )
    console.print(f"Target {rec.target_tps} TPS within the bound: {'passed' if rec.passed else 'not passed'}.")
    for note in result.notes:
        console.print(f"Note: {note}")
    if result.record_uri:
        console.print(f"Recorded: {result.record_uri}")
