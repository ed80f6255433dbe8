"""Serving commands: export release manifests, judge the staging shadow test, promote to prod, verify endpoints.

Like :mod:`mlops_platform.cli.core`, these are functions over injected boto3
clients; nothing here parses arguments or prints. Which account each one needs:

* :func:`export_manifest`, :func:`promote` — governance (release table, registry,
  deploy pipeline); promote also reads the staging shadow test with staging clients.
* :func:`shadow_report` — staging (endpoint, CloudWatch, data capture bucket).
* :func:`verify` — the stage's own account (endpoint, serving stack).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import ClientError

from mlops_platform.approval import aws
from mlops_platform.approval import releases as releases_mod
from mlops_platform.cli.core import APPROVED, CliError, Context, PolicyRefusal, check_reason, describe, resolve
from mlops_platform.config import ConfigError, Promotion, Variant
from mlops_platform.release_manifest import (
    ModelVersion,
    ReleaseManifest,
    load_manifest,
    manifest_for,
    manifest_path,
    write_manifest,
)

CHAMPION, CHALLENGER = "champion", "challenger"
# Newest data capture objects read per variant: enough requests to compare, bounded S3 reads.
CAPTURE_OBJECTS = 50
CAPTURE_MAX_BYTES = 5 * 1024 * 1024
# Hourly buckets keep GetMetricStatistics under its 1440-datapoint limit for up to 14 days.
METRIC_PERIOD = 3600
MAX_HOURS = 14 * 24
POLL_SECONDS = 30
# Endpoint states that end on their own; everything else but InService is a failure.
TRANSITIONAL = ("Creating", "Updating", "SystemUpdating")
ENDPOINT_CONFIG_OUTPUT = "EndpointConfigName"


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    """ISO 8601 UTC to the second, as the release records store times."""
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(err: ClientError) -> tuple[str, str]:
    error = err.response.get("Error", {})
    return str(error.get("Code", "")), str(error.get("Message", "")).lower()


def version_of(arn: str | None) -> int | None:
    """The version number at the end of a model package ARN (``.../<group>/<n>``)."""
    if not arn:
        return None
    tail = arn.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _stage_variants(ctx: Context, project: str, stage: str) -> list[Variant]:
    serving = ctx.config.projects[project].serving
    return serving.staging.resolved_variants(stage) if stage == "staging" else serving.prod.resolved_variants(stage)


# --------------------------------------------------------------------------- releases export


@dataclass(frozen=True)
class Export:
    """A written (or removed) manifest; ``superseded`` explains a differing ``--expect-arn``."""

    project: str
    stage: str
    path: Path
    manifest: ReleaseManifest | None
    superseded: str | None = None


def export_manifest(
    dynamodb: Any,
    sagemaker: Any,
    ctx: Context,
    project: str,
    stage: str,
    out_dir: Path,
    expect_arn: str | None = None,
) -> Export:
    """Write ``<out_dir>/<project>/<stage>.json`` from the release table (no release: remove it).

    Staging also reads prod's records: its champion is what prod serves. Each
    version carries the instance types its package supports for real-time
    inference, read from the registry, so synth can refuse a variant that
    SageMaker would. With
    ``expect_arn`` (the ARN the pipeline execution was started for, ``none``
    for no model) a differing challenger is reported, not refused: the table's
    current release wins.
    """
    ctx.projects(project)
    table = releases_mod.ReleaseTable(dynamodb, ctx.releases_table)
    stage_records = table.releases(project, stage)
    prod_records = table.releases(project, "prod") if stage == "staging" else []
    manifest = manifest_for(project, stage, stage_records, prod_records)
    if manifest is not None:
        manifest = _with_instance_types(sagemaker, manifest)
    path = write_manifest(Path(out_dir), project, stage, manifest)
    superseded = None
    # The rejected handler deploys "none" when a stage is left without a model.
    current = manifest.challenger.model_package_arn if manifest else releases_mod.NO_MODEL_ARN
    if expect_arn and expect_arn != current:
        # A release or rollback recorded after this execution started changed the stage; deploying the
        # table's state keeps the endpoint consistent with the records (the later execution deploys it too).
        superseded = (
            f"this execution was started for {expect_arn}, but the current {stage} release of {project} is "
            f"{current}: a newer release or a rollback superseded it; deploying the table's current release"
        )
    return Export(project, stage, path, manifest, superseded)


def _with_instance_types(sagemaker: Any, manifest: ReleaseManifest) -> ReleaseManifest:
    def read(ref: ModelVersion | None) -> ModelVersion | None:
        if ref is None:
            return None
        package = sagemaker.describe_model_package(ModelPackageName=ref.model_package_arn)
        types = package.get("InferenceSpecification", {}).get("SupportedRealtimeInferenceInstanceTypes", [])
        return ref.model_copy(update={"realtime_instance_types": sorted(types)})

    return manifest.model_copy(update={"challenger": read(manifest.challenger), "champion": read(manifest.champion)})


# --------------------------------------------------------------------------- endpoint contents


@dataclass(frozen=True)
class ServedVariant:
    """One variant of an endpoint config and the model package(s) its model was created from."""

    name: str
    shadow: bool
    model_name: str
    package_arns: tuple[str, ...]


def _package_names(model: dict[str, Any]) -> tuple[str, ...]:
    containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
    return tuple(c["ModelPackageName"] for c in containers if c.get("ModelPackageName"))


def served_variants(sagemaker: Any, config_name: str) -> list[ServedVariant]:
    """Production then shadow variants of an endpoint config, with their models' package ARNs."""
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    out = []
    models: dict[str, tuple[str, ...]] = {}
    for shadow, key in ((False, "ProductionVariants"), (True, "ShadowProductionVariants")):
        for variant in config.get(key) or []:
            model_name = variant["ModelName"]
            if model_name not in models:
                models[model_name] = _package_names(sagemaker.describe_model(ModelName=model_name))
            out.append(ServedVariant(variant["VariantName"], shadow, model_name, models[model_name]))
    return out


def describe_endpoint(sagemaker: Any, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when the endpoint does not exist."""
    try:
        return sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as err:
        code, message = _error(err)
        if code == "ValidationException" and ("could not find" in message or "does not exist" in message):
            return None
        raise


# --------------------------------------------------------------------------- data capture


@dataclass(frozen=True)
class Capture:
    """One captured request/response of one variant (decoded text; None when absent)."""

    event_id: str | None
    input: str | None
    output: str | None


def _decode(part: Any) -> str | None:
    if not isinstance(part, dict) or part.get("data") is None:
        return None
    data = str(part["data"])
    if str(part.get("encoding", "")).upper() == "BASE64":
        try:
            return base64.b64decode(data, validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError):
            return data
    return data


def parse_captures(text: str) -> tuple[list[Capture], int]:
    """Captures in one data capture JSON Lines object, and how many lines were not captures."""
    captures, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            data = record["captureData"]
        except (json.JSONDecodeError, KeyError, TypeError):
            bad += 1
            continue
        metadata = record.get("eventMetadata") or {}
        # The caller's InferenceId names one request on both variants; eventId only when there is none.
        event_id = metadata.get("inferenceId") or metadata.get("eventId")
        captures.append(
            Capture(
                event_id=str(event_id) if event_id else None,
                input=_decode(data.get("endpointInput")),
                output=_decode(data.get("endpointOutput")),
            )
        )
    return captures, bad


def read_captures(
    s3: Any, bucket: str, variant_prefix: str, since: datetime, limit: int = CAPTURE_OBJECTS
) -> tuple[list[Capture], int, int]:
    """Captures of the newest ``limit`` objects under ``<variant_prefix>yyyy/mm/dd/hh/`` written since ``since``.

    Returns (captures, objects read, unreadable lines). A missing bucket reads
    as no captures (data capture never wrote anything).
    """
    # S3 times are whole seconds: an object written in the window's first second must not drop out.
    since = _utc(since).replace(microsecond=0)
    # Keys sort by hour, so StartAfter skips every object of earlier hours without listing them.
    kwargs: dict[str, Any] = {
        "Bucket": bucket,
        "Prefix": variant_prefix,
        "StartAfter": f"{variant_prefix}{since:%Y/%m/%d/%H}",
    }
    objects: list[tuple[datetime, str]] = []
    try:
        while True:
            page = s3.list_objects_v2(**kwargs)
            for obj in page.get("Contents", []):
                if obj["Key"].endswith(".jsonl") and _utc(obj["LastModified"]) >= since:
                    objects.append((_utc(obj["LastModified"]), obj["Key"]))
            if not page.get("IsTruncated"):
                break
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
    except ClientError as err:
        if _error(err)[0] == "NoSuchBucket":
            return [], 0, 0
        raise
    newest = sorted(objects, reverse=True)[:limit]
    captures: list[Capture] = []
    bad = 0
    for _, key in newest:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read(CAPTURE_MAX_BYTES)
        found, skipped = parse_captures(body.decode("utf-8", errors="replace"))
        captures.extend(found)
        bad += skipped
    return captures, len(newest), bad


def _numbers(text: str) -> list[float] | None:
    """The values of a numeric CSV output (commas and line breaks), or None when it is not one."""
    cells = [c.strip() for c in text.replace("\n", ",").split(",") if c.strip()]
    try:
        values = [float(c) for c in cells]
    except ValueError:
        return None
    return values if values and all(math.isfinite(v) for v in values) else None


def outputs_agree(champion: str | None, challenger: str | None) -> bool:
    """Whether two captured outputs of the same request agree.

    Identical text always agrees. Numeric CSV outputs whose values all lie in
    [0, 1] are read as probabilities and agree when every value falls on the
    same side of 0.5 (the same decision); other numeric outputs agree when equal
    after rounding to 1e-6. Anything else must match exactly (surrounding
    whitespace ignored).
    """
    if champion is None or challenger is None:
        return False
    a, b = champion.strip(), challenger.strip()
    if a == b:
        return True
    x, y = _numbers(a), _numbers(b)
    if x is None or y is None or len(x) != len(y):
        return False
    if all(0.0 <= v <= 1.0 for v in (*x, *y)):
        return all((p >= 0.5) == (q >= 0.5) for p, q in zip(x, y, strict=True))
    return all(round(p, 6) == round(q, 6) for p, q in zip(x, y, strict=True))


@dataclass(frozen=True)
class Agreement:
    """How many captured requests both variants answered, and how many answers agree."""

    champion_captures: int
    challenger_captures: int
    paired_by_event: int
    paired_by_input: int
    agreed: int

    @property
    def paired(self) -> int:
        return self.paired_by_event + self.paired_by_input

    @property
    def rate_percent(self) -> float | None:
        return 100.0 * self.agreed / self.paired if self.paired else None


def pair_captures(champion: Iterable[Capture], challenger: Iterable[Capture]) -> Agreement:
    """Pair champion and challenger captures by eventId, else by identical input data; count agreeing outputs.

    Each capture pairs at most once; of several captures with the same input,
    the earliest unpaired ones pair first.
    """
    champion, challenger = list(champion), list(challenger)
    by_event = {c.event_id: i for i, c in enumerate(challenger) if c.event_id}
    by_input: dict[str, deque[int]] = defaultdict(deque)
    for i, c in enumerate(challenger):
        if c.input is not None:
            by_input[c.input].append(i)
    used: set[int] = set()
    pairs: list[tuple[Capture, Capture]] = []
    unmatched: list[Capture] = []
    paired_by_event = 0
    for c in champion:
        match = by_event.get(c.event_id) if c.event_id else None
        if match is not None and match not in used:
            used.add(match)
            pairs.append((c, challenger[match]))
            paired_by_event += 1
        else:
            unmatched.append(c)
    # Inputs only after every event id matched, so an input match never steals an event-id partner.
    for c in unmatched:
        queue = by_input.get(c.input) if c.input is not None else None
        while queue and queue[0] in used:
            queue.popleft()
        if queue:
            match = queue.popleft()
            used.add(match)
            pairs.append((c, challenger[match]))
    return Agreement(
        champion_captures=len(champion),
        challenger_captures=len(challenger),
        paired_by_event=paired_by_event,
        paired_by_input=len(pairs) - paired_by_event,
        agreed=sum(outputs_agree(a.output, b.output) for a, b in pairs),
    )


# --------------------------------------------------------------------------- shadow report


@dataclass(frozen=True)
class VariantReport:
    """CloudWatch numbers and captures of one live variant over the report window."""

    name: str
    role: str  # champion | challenger | unknown (a variant the config does not name)
    shadow: bool
    package_arns: tuple[str, ...]
    invocations: float
    errors_5xx: float
    errors_4xx: float
    latency_ms: float | None
    captures: int = 0
    capture_objects: int = 0

    @property
    def model_package_arn(self) -> str | None:
        return self.package_arns[0] if len(self.package_arns) == 1 else None

    @property
    def version(self) -> int | None:
        return version_of(self.model_package_arn)

    @property
    def error_rate_percent(self) -> float | None:
        return 100.0 * self.errors_5xx / self.invocations if self.invocations else None


@dataclass(frozen=True)
class ShadowReport:
    project: str
    endpoint: str
    endpoint_config: str
    start: datetime
    end: datetime
    hours: int
    variants: list[VariantReport]
    agreement: Agreement | None = None
    notes: list[str] = field(default_factory=list)

    def role(self, role: str) -> VariantReport | None:
        return next((v for v in self.variants if v.role == role), None)

    @property
    def champion(self) -> VariantReport | None:
        return self.role(CHAMPION)

    @property
    def challenger(self) -> VariantReport | None:
        return self.role(CHALLENGER)


def _statistic(
    cloudwatch: Any, endpoint: str, variant: str, metric: str, start: datetime, end: datetime
) -> tuple[float, float]:
    """(Sum, SampleCount) of an AWS/SageMaker metric of one variant from ``start`` up to ``end``."""
    # EndTime is exclusive: round up to the next minute so the latest datapoints count too.
    end = (end + timedelta(minutes=1)).replace(second=0, microsecond=0)
    response = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName=metric,
        Dimensions=[{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": variant}],
        StartTime=start,
        EndTime=end,
        Period=METRIC_PERIOD,
        Statistics=["Sum", "SampleCount"],
    )
    points = response.get("Datapoints", [])
    return sum(p.get("Sum", 0.0) for p in points), sum(p.get("SampleCount", 0.0) for p in points)


def shadow_report(
    sagemaker: Any,
    cloudwatch: Any,
    s3: Any,
    ctx: Context,
    project: str,
    hours: int = 24,
    *,
    now: datetime | None = None,
    capture_objects: int = CAPTURE_OBJECTS,
) -> ShadowReport:
    """Champion vs challenger on the staging endpoint over the last ``hours`` (default 24).

    The window starts no earlier than the endpoint's last update: numbers from
    before it belong to the models of an earlier endpoint config. Variants map to
    champion/challenger by their name in the project's staging config; an
    endpoint with one variant (no champion yet) serves the challenger. Average
    latency is ModelLatency's Sum / SampleCount over the window, in ms.

    Raises :class:`EndpointMissing` when the staging endpoint does not exist.
    """
    ctx.projects(project)
    naming = ctx.naming
    endpoint = naming.endpoint_name(project, "staging")
    description = describe_endpoint(sagemaker, endpoint)
    if description is None:
        raise EndpointMissing(
            f"staging endpoint {endpoint} does not exist: nothing released to staging yet, or its stack is not deployed"
        )
    end = _utc(now or datetime.now(UTC))
    start = end - timedelta(hours=hours)
    notes = []
    modified = description.get("LastModifiedTime")
    if isinstance(modified, datetime) and _utc(modified) > start:
        start = _utc(modified)
        notes.append(f"window starts at the endpoint's last update ({iso(start)}), not {hours} h ago")

    roles = {v.name: v.model for v in _stage_variants(ctx, project, "staging")}
    served = served_variants(sagemaker, description["EndpointConfigName"])
    settings = ctx.config.projects[project].serving.staging
    bucket = naming.artifacts_bucket("staging")
    base = f"{naming.data_capture_prefix(project)}/{endpoint}/"
    capture = settings.data_capture.enabled
    if not capture:
        notes.append("data capture is off in the staging config: no captured requests to compare")

    variants: list[VariantReport] = []
    captured: dict[str, list[Capture]] = {}
    for v in served:
        # Until a champion exists the endpoint runs one variant, serving the stage's latest release.
        role = CHALLENGER if len(served) == 1 else roles.get(v.name, "unknown")
        invocations, _ = _statistic(cloudwatch, endpoint, v.name, "Invocations", start, end)
        errors_5xx, _ = _statistic(cloudwatch, endpoint, v.name, "Invocation5XXErrors", start, end)
        errors_4xx, _ = _statistic(cloudwatch, endpoint, v.name, "Invocation4XXErrors", start, end)
        latency_sum, latency_count = _statistic(cloudwatch, endpoint, v.name, "ModelLatency", start, end)
        records: list[Capture] = []
        objects = 0
        if capture:
            records, objects, bad = read_captures(s3, bucket, f"{base}{v.name}/", start, capture_objects)
            if bad:
                notes.append(f"variant {v.name}: skipped {bad} unreadable data capture lines")
        captured[role] = records
        variants.append(
            VariantReport(
                name=v.name,
                role=role,
                shadow=v.shadow,
                package_arns=v.package_arns,
                invocations=invocations,
                errors_5xx=errors_5xx,
                errors_4xx=errors_4xx,
                # ModelLatency is in microseconds.
                latency_ms=latency_sum / latency_count / 1000.0 if latency_count else None,
                captures=len(records),
                capture_objects=objects,
            )
        )
    unknown = [v.name for v in variants if v.role == "unknown"]
    if unknown:
        notes.append(f"variants not in the staging config: {', '.join(unknown)}")
    agreement = None
    if capture and CHAMPION in captured and CHALLENGER in captured:
        agreement = pair_captures(captured[CHAMPION], captured[CHALLENGER])
    return ShadowReport(
        project=project,
        endpoint=endpoint,
        endpoint_config=description["EndpointConfigName"],
        start=start,
        end=end,
        hours=hours,
        variants=variants,
        agreement=agreement,
        notes=notes,
    )


def evaluate_promotion(report: ShadowReport, rule: Promotion) -> list[str]:
    """Violations of the promotion rule by the report's challenger; empty: it passes.

    The challenger needs ``min_shadow_invocations``, a 5xx error rate of at most
    ``max_error_rate_percent`` and an average model latency at most
    ``max_latency_increase_percent`` above the champion's. Without a champion
    (one variant) the latency comparison is skipped.
    """
    challenger, champion = report.challenger, report.champion
    if challenger is None:
        names = ", ".join(v.name for v in report.variants) or "none"
        return [f"endpoint {report.endpoint} has no challenger variant (variants: {names})"]
    violations = []
    label = f"challenger variant {challenger.name}"
    if challenger.invocations < rule.min_shadow_invocations:
        violations.append(
            f"{label} had {challenger.invocations:g} invocations since {iso(report.start)}; "
            f"the promotion rule needs at least {rule.min_shadow_invocations}"
        )
    rate = challenger.error_rate_percent
    if rate is not None and rate > rule.max_error_rate_percent:
        violations.append(
            f"{label} 5xx error rate is {rate:.2f} % ({challenger.errors_5xx:g} of {challenger.invocations:g}); "
            f"the promotion rule allows {rule.max_error_rate_percent:g} %"
        )
    if champion is not None and challenger.invocations:
        if challenger.latency_ms is None or not champion.latency_ms:
            who = label if challenger.latency_ms is None else f"champion variant {champion.name}"
            violations.append(f"no ModelLatency data for {who}: cannot compare latency")
        else:
            increase = 100.0 * (challenger.latency_ms - champion.latency_ms) / champion.latency_ms
            if increase > rule.max_latency_increase_percent:
                violations.append(
                    f"{label} average model latency {challenger.latency_ms:.1f} ms is {increase:.1f} % above the "
                    f"champion's {champion.latency_ms:.1f} ms; the promotion rule allows "
                    f"{rule.max_latency_increase_percent:g} %"
                )
    if rule.min_agreement_percent is not None:
        agreement = report.agreement
        if agreement is None or agreement.rate_percent is None:
            violations.append(
                "no captured request pairs champion and challenger answered: cannot check the promotion rule's "
                f"{rule.min_agreement_percent:g} % agreement"
            )
        elif agreement.rate_percent < rule.min_agreement_percent:
            violations.append(
                f"{label} agrees with the champion in {agreement.rate_percent:.1f} % of {agreement.paired} captured "
                f"pairs ({agreement.agreed} agree); the promotion rule needs at least {rule.min_agreement_percent:g} %"
            )
    return violations


# --------------------------------------------------------------------------- promote


class EndpointMissing(CliError):
    """The endpoint a command reads does not exist."""

    exit_code = 1


class PromotionRefused(PolicyRefusal):
    """The promotion rule or the registry refuses; carries the shadow report when one was built."""

    def __init__(self, message: str, report: ShadowReport | None = None, violations: list[str] | None = None) -> None:
        super().__init__(message)
        self.report = report
        self.violations = violations or []


class StagingClients(Protocol):
    @property
    def sagemaker(self) -> Any: ...

    @property
    def cloudwatch(self) -> Any: ...

    @property
    def s3(self) -> Any: ...


@dataclass(frozen=True)
class PromoteResult:
    outcome: str  # promoted | resumed (recorded earlier, pipeline started now) | already
    release: Any  # releases.Release of prod
    pipeline: str
    execution_id: str | None
    report: ShadowReport | None = None


def _start_deployment(codepipeline: Any, ctx: Context, release: Any) -> str:
    """Start the deploy pipeline exactly as the approval Lambdas do (same variables, same token formula)."""
    return str(
        aws.start_deployment(
            codepipeline,
            ctx.naming.deploy_pipeline(),
            project=release.project,
            stage=release.stage,
            model_package_arn=release.model_package_arn,
            token=aws.deployment_token("release", release.model_package_arn, release.stage, release.event_id),
        )
    )


def promote(
    *,
    dynamodb: Any,
    sagemaker: Any,
    sts: Any,
    codepipeline: Any,
    staging: Callable[[], StagingClients],
    ctx: Context,
    project: str,
    reason: str,
    hours: int = 24,
    now: datetime | None = None,
) -> PromoteResult:
    """Release staging's current version to prod when the shadow test passes, then start the deploy pipeline.

    Governance clients do the table, registry and pipeline work; ``staging`` makes
    the staging clients for the shadow report, only once the cheap checks pass.
    Raises :class:`PromotionRefused` (exit 3) when staging has no release, the
    version is no longer Approved, or the shadow test fails the project's rule.
    A version prod already serves is not recorded again; a record whose
    pipeline start failed gets its pipeline started (same request token).
    """
    reason = check_reason(reason, "with the prod release")
    ctx.projects(project)
    table = releases_mod.ReleaseTable(dynamodb, ctx.releases_table)
    pipeline = ctx.naming.deploy_pipeline()

    candidate = releases_mod.current_release(table.releases(project, "staging"))
    if candidate is None:
        raise PromotionRefused(f"refused: nothing is released to staging for {project}: there is nothing to promote")
    prod = releases_mod.current_release(table.releases(project, "prod"))
    if prod is not None and prod.version == candidate.version:
        return _resume(codepipeline, ctx, table, prod, "already")

    target = resolve(ctx, candidate.model_package_arn)
    status = describe(sagemaker, target).get("ModelApprovalStatus")
    if status != APPROVED:
        raise PromotionRefused(
            f"refused: {target.group} version {target.version} is {status or 'without a status'} in the model "
            "registry, not Approved"
        )

    try:
        clients = staging()
        report = shadow_report(clients.sagemaker, clients.cloudwatch, clients.s3, ctx, project, hours, now=now)
    except EndpointMissing as err:
        raise PromotionRefused(f"refused: no shadow test to judge: {err}") from None
    violations = evaluate_promotion(report, ctx.config.projects[project].serving.promotion)
    challenger = report.challenger
    if challenger is not None and challenger.model_package_arn != candidate.model_package_arn:
        served = challenger.model_package_arn or "no single model package"
        violations.insert(
            0,
            f"the staging challenger variant {challenger.name} serves {served}, not version {candidate.version} "
            "(the staging release): the shadow numbers are not this version's; wait for its deployment",
        )
    if violations:
        raise PromotionRefused(
            f"refused: {project} version {candidate.version} does not meet the promotion rule: {'; '.join(violations)}",
            report,
            violations,
        )

    recorded_at = iso(now or datetime.now(UTC))
    release = releases_mod.Release(
        project=project,
        stage="prod",
        version=candidate.version,
        model_package_arn=candidate.model_package_arn,
        status=releases_mod.RELEASED,
        recorded_at=recorded_at,
        approved_by=str(sts.get_caller_identity()["Arn"]),
        reason=reason,
        event_id=f"promote:{candidate.version}:{recorded_at}",
    )
    if not table.put_release(release):
        # The version has a prod record already: another promote of this second, or an older release.
        existing = table.get_release(project, "prod", candidate.version)
        if existing is None or existing.status != releases_mod.RELEASED:
            raise CliError(f"the prod release of {project} version {candidate.version} changed meanwhile; run again")
        current = releases_mod.current_release(table.releases(project, "prod"))
        if current is None or current.version != existing.version:
            raise PromotionRefused(
                f"refused: prod recorded {project} version {existing.version} at {existing.recorded_at} and it is "
                f"still released but superseded by version {current.version if current else '-'}; a version cannot "
                "be released twice: reject the newer version to roll prod back to it"
            )
        return _resume(codepipeline, ctx, table, existing, "already", report)
    execution_id = _start_deployment(codepipeline, ctx, release)
    table.set_release_deployment(release, execution_id)
    return PromoteResult("promoted", release, pipeline, execution_id, report)


def _resume(
    codepipeline: Any, ctx: Context, table: Any, release: Any, outcome: str, report: ShadowReport | None = None
) -> PromoteResult:
    """A prod release recorded before: start its pipeline when that never happened."""
    pipeline = ctx.naming.deploy_pipeline()
    if release.deployment_execution_id:
        return PromoteResult(outcome, release, pipeline, release.deployment_execution_id, report)
    execution_id = _start_deployment(codepipeline, ctx, release)
    table.set_release_deployment(release, execution_id)
    return PromoteResult("resumed", release, pipeline, execution_id, report)


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Verification:
    project: str
    stage: str
    endpoint: str
    manifest: ReleaseManifest | None
    problems: list[str]
    summary: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def default_manifest_path(project: str, stage: str) -> Path:
    return manifest_path(Path("releases"), project, stage)


def read_manifest(path: Path, ctx: Context, project: str, stage: str) -> ReleaseManifest | None:
    """The manifest at ``path`` (None when there is no file: nothing released); CliError when malformed."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return load_manifest(path, ctx.config, project, stage)
    except ConfigError as err:
        raise CliError(f"manifest error: {err}") from None


def _same_package(served: str, expected: str) -> bool:
    # A model names its package by ARN (always, across accounts) or, in the registry's account, by name.
    if served.startswith("arn:"):
        return served == expected
    return expected.endswith(f"model-package/{served}")


def _stack_output(cloudformation: Any, stack: str, key: str) -> tuple[str | None, str | None]:
    """(output value, problem) of one output of a stack."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as err:
        code, message = _error(err)
        if code == "ValidationError" and "does not exist" in message:
            return None, f"stack {stack} does not exist"
        raise
    status = stacks[0].get("StackStatus", "")
    if "ROLLBACK" in status or status.endswith("FAILED"):
        return None, f"stack {stack} is {status}: its last deployment did not complete"
    value = next((o.get("OutputValue") for o in stacks[0].get("Outputs") or [] if o.get("OutputKey") == key), None)
    if not value:
        return None, f"stack {stack} has no output {key}"
    return value, None


def verify(
    sagemaker: Any,
    cloudformation: Any,
    ctx: Context,
    project: str,
    stage: str,
    manifest: ReleaseManifest | None,
    *,
    wait_minutes: float = 0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Verification:
    """Check that the stage's endpoint serves what ``manifest`` says (None: that there is no endpoint).

    The endpoint must be InService (waiting up to ``wait_minutes``, default 0,
    polling every 30 s while it is Creating/Updating), run the endpoint config
    the serving stack deployed (a differing one means SageMaker rolled back),
    have exactly the configured variants (no shadow without a champion) and serve
    the manifest's version in each. Returns the problems found, one line each.
    """
    ctx.projects(project)
    naming = ctx.naming
    endpoint = naming.endpoint_name(project, stage)
    problems: list[str] = []
    summary: list[str] = []

    def result() -> Verification:
        return Verification(project, stage, endpoint, manifest, problems, summary)

    description = describe_endpoint(sagemaker, endpoint)
    if manifest is None:
        if description is None:
            summary.append("no release: no endpoint, as expected")
        else:
            problems.append(
                f"no release, but endpoint {endpoint} exists ({description.get('EndpointStatus')}, config "
                f"{description.get('EndpointConfigName')}): the serving stack should have removed it"
            )
        return result()
    if description is None:
        problems.append(
            f"endpoint {endpoint} does not exist, but version {manifest.challenger.version} is released to {stage}"
        )
        return result()

    deadline = clock() + wait_minutes * 60
    status = description.get("EndpointStatus")
    while status in TRANSITIONAL and clock() < deadline:
        sleep(POLL_SECONDS)
        description = describe_endpoint(sagemaker, endpoint)
        if description is None:
            problems.append(f"endpoint {endpoint} disappeared while it was {status}")
            return result()
        status = description.get("EndpointStatus")
    if status != "InService":
        if status in TRANSITIONAL:
            waited = f" after waiting {wait_minutes:g} min" if wait_minutes else " (pass --wait-minutes to wait)"
            problems.append(f"endpoint {endpoint} is still {status}{waited}")
        else:
            why = description.get("FailureReason") or "no failure reason given"
            problems.append(f"endpoint {endpoint} is {status}: {why}")
        return result()

    serving_config = description["EndpointConfigName"]
    stack = naming.stack_name(stage, "serving", project)
    deployed, problem = _stack_output(cloudformation, stack, ENDPOINT_CONFIG_OUTPUT)
    if problem:
        problems.append(problem)
    elif deployed != serving_config:
        problems.append(
            f"SageMaker rolled back: endpoint {endpoint} serves config {serving_config}, the stack deployed {deployed}"
        )
    summary.append(f"endpoint {endpoint} is InService with config {serving_config}")

    configured = {v.name: v for v in _stage_variants(ctx, project, stage)}
    # Without a champion there is nothing to shadow: the production variants serve the challenger alone.
    expected = {n for n, v in configured.items() if not (v.shadow and manifest.champion is None)}
    served = served_variants(sagemaker, serving_config)
    for variant in served:
        kind = "shadow" if variant.shadow else "production"
        wanted = configured.get(variant.name)
        if wanted is None:
            problems.append(f"variant {variant.name} ({kind}) is not in the {stage} config of {project}")
            continue
        if variant.shadow and manifest.champion is None:
            problems.append(
                f"shadow variant {variant.name} exists, but the release has no champion "
                f"(version {manifest.challenger.version} only)"
            )
            continue
        if variant.shadow != wanted.shadow:
            problems.append(f"variant {variant.name} is a {kind} variant; the config says otherwise")
        ref = manifest.champion if wanted.model == CHAMPION and manifest.champion else manifest.challenger
        role = CHAMPION if ref is manifest.champion else CHALLENGER
        if not variant.package_arns:
            problems.append(f"variant {variant.name}: model {variant.model_name} is not created from a model package")
            continue
        wrong = [arn for arn in variant.package_arns if not _same_package(arn, ref.model_package_arn)]
        if wrong:
            problems.append(
                f"variant {variant.name} serves {', '.join(wrong)}, but the release names version {ref.version} "
                f"({ref.model_package_arn}) as its {role}"
            )
        else:
            summary.append(f"variant {variant.name} ({kind}) serves version {ref.version} ({role})")
    missing = sorted(expected - {v.name for v in served})
    if missing:
        problems.append(f"endpoint {endpoint} lacks the configured variants {', '.join(missing)}")
    return result()
