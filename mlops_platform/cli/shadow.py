"""``mlops shadow report``: judge the staging shadow test, champion against challenger.

Reads the staging endpoint, its CloudWatch metrics and its data capture
objects with staging clients, pairs the two variants' captured answers and
checks the challenger against the project's promotion rule. Functions over
injected boto3 clients; nothing here parses arguments or prints.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from mlops_platform.cli.core import CliError, Context
from mlops_platform.cli.endpoints import (
    CHALLENGER,
    CHAMPION,
    client_error,
    describe_endpoint,
    iso,
    served_variants,
    stage_variants,
    utc,
)
from mlops_platform.config import Promotion

# Newest data capture objects read per variant: enough requests to compare, bounded S3 reads.
CAPTURE_OBJECTS = 50
CAPTURE_MAX_BYTES = 5 * 1024 * 1024
# Hourly buckets keep GetMetricStatistics under its 1440-datapoint limit for up to 14 days.
METRIC_PERIOD = 3600
MAX_HOURS = 14 * 24


class EndpointMissing(CliError):
    """The endpoint a command reads does not exist."""

    exit_code = 1


def version_of(arn: str | None) -> int | None:
    """The version number at the end of a model package ARN (``.../<group>/<n>``)."""
    if not arn:
        return None
    tail = arn.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else None


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
    since = utc(since).replace(microsecond=0)
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
                if obj["Key"].endswith(".jsonl") and utc(obj["LastModified"]) >= since:
                    objects.append((utc(obj["LastModified"]), obj["Key"]))
            if not page.get("IsTruncated"):
                break
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
    except ClientError as err:
        if client_error(err)[0] == "NoSuchBucket":
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
    end = utc(now or datetime.now(UTC))
    start = end - timedelta(hours=hours)
    notes = []
    modified = description.get("LastModifiedTime")
    if isinstance(modified, datetime) and utc(modified) > start:
        start = utc(modified)
        notes.append(f"window starts at the endpoint's last update ({iso(start)}), not {hours} h ago")

    roles = {v.name: v.model for v in stage_variants(ctx, project, "staging")}
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
