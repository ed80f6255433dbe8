"""``mlops loadtest PROJECT --stage S --tps N --latency-ms P``: how much traffic the stage's endpoint takes.

Drives the endpoint with Locust used as a library, headless and in-process
(:func:`run_steps`): signed SageMaker runtime ``InvokeEndpoint`` requests
(SigV4, service ``sagemaker``, ``text/csv``) in rising steps of the target TPS
(25, 50, 75, 100, 125 %), each ``step_seconds`` long. A step of N TPS runs N
Locust users, each at ``constant_throughput(1)`` (one request a second; fewer
when a response takes longer than that). The run stops early when
``max_requests`` requests were sent or ``max_seconds`` passed.

Per step: achieved throughput (responses in the step / its duration), p50, p90
and p99 latency over every response (errors included, as Locust counts them),
errors (non-2xx or no response). Then one CloudWatch ``GetMetricData`` call
for the endpoint's variants over the run, and the recommendation: the highest
step whose p99 is within ``latency_ms`` and whose error rate is at most 1 %,
and the instances the target needs at that step's rate per instance.

Payloads are CSV rows sampled from the project's captured requests in the
stage (S3, the last 7 days) or, when there are none, from its sample data
rows, written in the feature order the served model package records
(``mlops:Features``, else the config's ``pipeline_features()``).

The result can be recorded as JSON in the stage's artifacts bucket
(``projects/<p>/loadtests/<endpoint>/<timestamp>.json``);
:func:`load_test_violations` is the promotion gate over those records.

Locust monkey-patches the process with gevent when it is imported, so it is
imported only by :func:`prepare` / :func:`run_steps`, never by importing this
module.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from mlops_platform.cli.core import CliError, Context
from mlops_platform.cli.endpoints import client_error, describe_endpoint, iso, served_variants, utc
from mlops_platform.cli.invoke import CSV, served_features
from mlops_platform.cli.shadow import EndpointMissing, read_captures
from mlops_platform.config import Promotion

STEP_PERCENTS = (25, 50, 75, 100, 125)
MAX_ERROR_RATE_PERCENT = 1.0
CAPTURE_DAYS = 7
MAX_PAYLOADS = 1000
# After the last request is sent, wait this long for the answers still in flight.
DRAIN_SECONDS = 10.0
POLL_SECONDS = 0.05
METRIC_PERIOD = 60
RECORD_OBJECTS = 50  # newest load test records the promotion gate reads
SAMPLE_DATA_DIR = Path(__file__).resolve().parents[2] / "pipeline_definitions" / "sample_data"

# (namespace, metric, statistic, divisor to ms or % as shown)
METRICS: tuple[tuple[str, str, str, float], ...] = (
    ("/aws/sagemaker/Endpoints", "CPUUtilization", "Average", 1.0),
    ("/aws/sagemaker/Endpoints", "MemoryUtilization", "Average", 1.0),
    ("AWS/SageMaker", "ModelLatency", "Average", 1000.0),  # microseconds -> ms
    ("AWS/SageMaker", "OverheadLatency", "Average", 1000.0),
    ("AWS/SageMaker", "InvocationsPerInstance", "Sum", 1.0),  # per minute
)


# --------------------------------------------------------------------------- results


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p`` percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100.0 * len(ordered)) - 1)]


@dataclass(frozen=True)
class StepResult:
    """One step of the run: its target, what it achieved, latency percentiles (ms) and errors."""

    percent: int
    target_tps: int
    users: int
    seconds: float
    requests: int
    errors: int
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    cut_short: str | None = None  # max-requests | max-minutes: the step ended early

    @property
    def tps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_rate_percent(self) -> float | None:
        return 100.0 * self.errors / self.requests if self.requests else None

    def passes(self, latency_ms: float) -> bool:
        rate = self.error_rate_percent
        return (
            self.requests > 0
            and self.p99_ms is not None
            and self.p99_ms <= latency_ms
            and rate is not None
            and rate <= MAX_ERROR_RATE_PERCENT
        )


@dataclass(frozen=True)
class Recommendation:
    """The highest passing step and the instance count the target TPS needs at its rate per instance."""

    target_tps: int
    latency_ms: float
    instances: int | None
    best: StepResult | None
    per_instance_tps: float | None
    needed_instances: int | None

    @property
    def passed(self) -> bool:
        """A step at or above the target TPS met the latency and error bounds."""
        return self.best is not None and self.best.target_tps >= self.target_tps


def recommend(steps: Sequence[StepResult], target_tps: int, latency_ms: float, instances: int | None) -> Recommendation:
    """The highest-TPS step with p99 <= ``latency_ms`` and <= 1 % errors; ``ceil(target / (best / instances))``."""
    passing = [s for s in steps if s.passes(latency_ms) and s.tps > 0]
    best = max(passing, key=lambda s: (s.tps, s.target_tps), default=None)
    per_instance = needed = None
    if best is not None and instances:
        per_instance = best.tps / instances
        needed = max(1, math.ceil(target_tps / per_instance - 1e-9))
    return Recommendation(target_tps, latency_ms, instances, best, per_instance, needed)


@dataclass(frozen=True)
class MetricSummary:
    variant: str
    metric: str
    statistic: str
    average: float | None
    maximum: float | None
    datapoints: int


@dataclass(frozen=True)
class VariantServed:
    name: str
    shadow: bool
    package_arns: tuple[str, ...]


@dataclass(frozen=True)
class LoadTestResult:
    project: str
    stage: str
    endpoint: str
    url: str
    target_tps: int
    latency_ms: float
    step_seconds: float
    max_requests: int
    max_seconds: float
    started: datetime
    ended: datetime
    steps: list[StepResult]
    stopped_by: str | None  # None: every step ran; max-requests | max-minutes
    payload_source: str
    payloads: int
    variants: list[VariantServed]
    instances: int | None
    metrics: list[MetricSummary]
    recommendation: Recommendation
    record_uri: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(s.requests for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        """The record written to S3 (what the promotion gate reads)."""
        rec = self.recommendation
        return {
            "project": self.project,
            "stage": self.stage,
            "endpoint": self.endpoint,
            "started": iso(self.started),
            "ended": iso(self.ended),
            "target_tps": self.target_tps,
            "latency_ms": self.latency_ms,
            "step_seconds": self.step_seconds,
            "max_requests": self.max_requests,
            "stopped_by": self.stopped_by,
            "payload_source": self.payload_source,
            "variants": [
                {"name": v.name, "shadow": v.shadow, "model_package_arns": list(v.package_arns)} for v in self.variants
            ],
            "instances": self.instances,
            "steps": [
                {
                    **asdict(s),
                    "tps": s.tps,
                    "error_rate_percent": s.error_rate_percent,
                    "passes": s.passes(self.latency_ms),
                }
                for s in self.steps
            ],
            "metrics": [asdict(m) for m in self.metrics],
            "recommendation": {
                "best_step_tps": rec.best.tps if rec.best else None,
                "best_step_target_tps": rec.best.target_tps if rec.best else None,
                "per_instance_tps": rec.per_instance_tps,
                "needed_instances": rec.needed_instances,
            },
            "passed": rec.passed,
        }


# --------------------------------------------------------------------------- payloads


def _csv_row(values: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(values)
    return buffer.getvalue().encode()


def sample_rows(path: Path, features: Sequence[str], limit: int = MAX_PAYLOADS) -> list[bytes]:
    """The first ``limit`` rows of a CSV file with a header, as CSV rows of ``features`` in that order."""
    try:
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [f for f in features if f not in (reader.fieldnames or [])]
            if missing:
                raise CliError(f"{path} has no column {', '.join(missing)} of the model's features")
            rows = []
            for record in reader:
                rows.append(_csv_row([record[f] for f in features]))
                if len(rows) >= limit:
                    break
    except OSError as err:
        raise CliError(f"{path}: {err.strerror or err}") from None
    if not rows:
        raise CliError(f"{path} has no data rows to send")
    return rows


def captured_rows(
    s3: Any, ctx: Context, project: str, stage: str, variants: Sequence[VariantServed], since: datetime, columns: int
) -> list[bytes]:
    """CSV request rows captured on the stage's live variants since ``since`` (``columns`` > 0: that many cells)."""
    naming = ctx.naming
    endpoint = naming.endpoint_name(project, stage)
    bucket = naming.artifacts_bucket(stage)
    base = f"{naming.data_capture_prefix(project)}/{endpoint}/"
    rows: list[bytes] = []
    for variant in variants:
        if variant.shadow:  # a shadow variant captures copies of the live requests
            continue
        captures, _, _ = read_captures(s3, bucket, f"{base}{variant.name}/", since)
        for capture in captures:
            for line in (capture.input or "").splitlines():
                cells = next(csv.reader([line]), [])
                if line.strip() and (columns <= 0 or len(cells) == columns):
                    rows.append(line.strip().encode())
    return rows[:MAX_PAYLOADS]


# --------------------------------------------------------------------------- the run


def prepare() -> None:
    """Patch the process with gevent and import Locust: before any AWS connection is made.

    Locust would ``monkey.patch_all()`` on import; by then botocore (urllib3)
    has imported ``ssl``, and patching ``ssl`` afterwards makes every new
    urllib3 SSL context recurse forever. So everything but ``ssl`` is patched
    here and Locust's own patching is skipped: its FastHttpUser speaks TLS
    through ``gevent.ssl`` anyway, and the few botocore calls before and after
    the run just block.
    """
    import os
    import sys
    import warnings

    if "locust" in sys.modules:
        return
    from gevent import monkey

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MonkeyPatchWarning: threading and ssl are imported already
        monkey.patch_all(ssl=False)
    os.environ["LOCUST_SKIP_MONKEY_PATCH"] = "1"
    import locust  # noqa: F401


def runtime_url(region: str, endpoint: str, endpoint_url: str | None = None) -> str:
    """The InvokeEndpoint URL of ``endpoint`` (``endpoint_url``: another runtime base URL, e.g. a local server)."""
    base = (endpoint_url or f"https://runtime.sagemaker.{region}.amazonaws.com").rstrip("/")
    return f"{base}/endpoints/{endpoint}/invocations"


def sigv4_signer(credentials: Any, region: str, url: str) -> Callable[[bytes], dict[str, str]]:
    """Headers (Content-Type, X-Amz-Date, Authorization, token) of a SigV4-signed InvokeEndpoint POST of a body."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    def sign(body: bytes) -> dict[str, str]:
        request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": CSV})
        SigV4Auth(credentials, "sagemaker", region).add_auth(request)
        return {str(k): str(v) for k, v in request.headers.items()}

    return sign


def step_targets(target_tps: int, percents: Sequence[int] = STEP_PERCENTS) -> list[tuple[int, int]]:
    """(percent, TPS) of each step: at least 1 TPS, never the same TPS twice."""
    out: list[tuple[int, int]] = []
    for percent in percents:
        tps = max(1, round(target_tps * percent / 100))
        if not out or tps > out[-1][1]:
            out.append((percent, tps))
    return out


@dataclass
class _Step:
    percent: int
    tps: int
    started: float
    ended: float | None = None
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    cut_short: str | None = None

    def result(self) -> StepResult:
        seconds = (self.ended or self.started) - self.started
        return StepResult(
            percent=self.percent,
            target_tps=self.tps,
            users=self.tps,
            seconds=round(seconds, 3),
            requests=len(self.latencies),
            errors=self.errors,
            p50_ms=percentile(self.latencies, 50),
            p90_ms=percentile(self.latencies, 90),
            p99_ms=percentile(self.latencies, 99),
            cut_short=self.cut_short,
        )


def run_steps(
    url: str,
    payloads: Sequence[bytes],
    sign: Callable[[bytes], dict[str, str]],
    *,
    target_tps: int,
    step_seconds: float = 60.0,
    max_requests: int = 50_000,
    max_seconds: float = 15 * 60.0,
    percents: Sequence[int] = STEP_PERCENTS,
    seed: int | None = None,
    timeout_seconds: float = 60.0,
) -> tuple[list[StepResult], str | None]:
    """Run the rising steps against ``url`` with Locust (headless, in-process); the steps and what stopped them.

    A step of N TPS runs N users at one request a second each; users carry
    over from step to step, the new ones spawn at once (at most 100 a second)
    and start at a random point of their first second, so requests spread
    evenly instead of arriving in bursts. A response
    counts in the step it arrives in. Once ``max_requests`` were sent or
    ``max_seconds`` passed, no request is sent any more, the answers in flight
    are awaited (up to 10 s) and the run ends: stopped by ``max-requests`` or
    ``max-minutes`` (None when every step ran).
    """
    if not payloads:
        raise CliError("no payloads to send")
    prepare()
    import gevent
    from locust import FastHttpUser, constant_throughput, task
    from locust.env import Environment

    parts = urlsplit(url)
    host = f"{parts.scheme}://{parts.netloc}"
    path = parts.path
    rng = random.Random(seed)
    state: dict[str, Any] = {"sent": 0, "done": 0, "open": True, "step": None}

    class Invoker(FastHttpUser):
        wait_time = constant_throughput(1)
        insecure = False  # verify the runtime's TLS certificate (Locust's default does not)
        network_timeout = timeout_seconds
        connection_timeout = min(timeout_seconds, 10.0)

        def on_start(self) -> None:
            # Users spawn in batches, and constant_throughput paces each from its creation: a random
            # phase within the 1 s period, then pacing from there, spreads the requests evenly.
            gevent.sleep(rng.random())
            self._cp_last_run = time.perf_counter()  # the pacing anchor of Locust's constant_pacing

        @task
        def invoke(self) -> None:
            if not state["open"] or state["sent"] >= max_requests:
                state["open"] = False
                return
            state["sent"] += 1
            body = payloads[rng.randrange(len(payloads))]
            # bytes go out as they are (the exact body signed); Locust's annotation says str only.
            self.client.post(path, data=body, headers=sign(body), name="InvokeEndpoint")  # type: ignore[arg-type]

    Invoker.host = host

    def on_request(response_time: float, exception: BaseException | None = None, **_: Any) -> None:
        state["done"] += 1
        step: _Step | None = state["step"]
        if step is None:
            return
        step.latencies.append(float(response_time))
        if exception is not None:
            step.errors += 1

    environment = Environment(user_classes=[Invoker], catch_exceptions=True)
    environment.events.request.add_listener(on_request)
    runner = environment.create_local_runner()
    clock = time.monotonic
    deadline = clock() + max_seconds
    steps: list[_Step] = []
    stopped_by: str | None = None
    users = 0
    try:
        targets = step_targets(target_tps, percents)
        for number, (percent, tps) in enumerate(targets):
            step = _Step(percent, tps, clock())
            steps.append(step)
            state["step"] = step
            runner.start(tps, spawn_rate=float(min(100, max(1, tps - users))))  # the new users at once
            users = tps
            end = min(step.started + step_seconds, deadline)
            while clock() < end and state["open"]:
                gevent.sleep(POLL_SECONDS)
            step.ended = clock()
            if not state["open"]:
                stopped_by = step.cut_short = "max-requests"
            elif step.ended >= deadline and (number < len(targets) - 1 or step.ended - step.started < step_seconds):
                stopped_by = step.cut_short = "max-minutes"
            if stopped_by:
                break
        state["open"] = False
        drain = clock() + DRAIN_SECONDS
        while state["done"] < state["sent"] and clock() < drain:
            gevent.sleep(POLL_SECONDS)
    finally:
        state["open"] = False
        runner.quit()
    return [s.result() for s in steps], stopped_by


# --------------------------------------------------------------------------- CloudWatch


def endpoint_metrics(
    cloudwatch: Any, endpoint: str, variants: Sequence[str], start: datetime, end: datetime
) -> list[MetricSummary]:
    """Average and maximum of the instance and latency metrics of each variant over the run: one GetMetricData call.

    Latencies in ms, utilization in %, InvocationsPerInstance per minute.
    """
    queries: list[dict[str, Any]] = []
    keys: list[tuple[str, str, str]] = []
    for variant in variants:
        for namespace, metric, statistic, _ in METRICS:
            keys.append((variant, metric, statistic))
            queries.append(
                {
                    "Id": f"m{len(queries)}",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": namespace,
                            "MetricName": metric,
                            "Dimensions": [
                                {"Name": "EndpointName", "Value": endpoint},
                                {"Name": "VariantName", "Value": variant},
                            ],
                        },
                        "Period": METRIC_PERIOD,
                        "Stat": statistic,
                    },
                    "ReturnData": True,
                }
            )
    if not queries:
        return []
    start = utc(start).replace(second=0, microsecond=0)
    # EndTime is exclusive: up to the next whole minute, so the last minute counts.
    end = (utc(end) + timedelta(minutes=1)).replace(second=0, microsecond=0)
    response = cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
    values: dict[str, list[float]] = {}
    for item in response.get("MetricDataResults", []):
        values.setdefault(item["Id"], []).extend(float(v) for v in item.get("Values", []))
    divisors = {metric: divisor for _, metric, _, divisor in METRICS}
    out = []
    for index, (variant, metric, statistic) in enumerate(keys):
        points = [v / divisors[metric] for v in values.get(f"m{index}", [])]
        out.append(
            MetricSummary(
                variant=variant,
                metric=metric,
                statistic=statistic,
                average=sum(points) / len(points) if points else None,
                maximum=max(points) if points else None,
                datapoints=len(points),
            )
        )
    return out


# --------------------------------------------------------------------------- the command


def load_test(
    *,
    sagemaker: Any,
    cloudwatch: Any,
    s3: Any,
    credentials: Any,
    region: str,
    ctx: Context,
    project: str,
    stage: str,
    target_tps: int,
    latency_ms: float,
    step_seconds: float = 60.0,
    max_requests: int = 50_000,
    max_seconds: float = 15 * 60.0,
    endpoint_url: str | None = None,
    sample_file: Path | None = None,
    record: bool = True,
    i_know: bool = False,
    percents: Sequence[int] = STEP_PERCENTS,
    seed: int | None = None,
    now: Callable[[], datetime] | None = None,
) -> LoadTestResult:
    """Load-test the stage's endpoint in rising steps; CloudWatch numbers, the recommendation, the S3 record.

    Refuses prod unless ``i_know`` (CliError, exit 2). Raises
    :class:`EndpointMissing` (exit 1) when the endpoint does not exist.
    """
    refuse_prod(stage, i_know)
    ctx.projects(project)
    settings = ctx.config.projects[project]
    clock = now or (lambda: datetime.now(UTC))
    naming = ctx.naming
    endpoint = naming.endpoint_name(project, stage)
    if credentials is None:
        raise CliError(f"no AWS credentials found to sign the requests: pass --profile or export credentials ({stage})")
    description = describe_endpoint(sagemaker, endpoint)
    if description is None:
        raise EndpointMissing(f"{stage} endpoint {endpoint} does not exist: nothing released to {stage} yet")
    notes: list[str] = []
    status = description.get("EndpointStatus")
    if status and status != "InService":
        notes.append(f"endpoint {endpoint} is {status}, not InService")
    variants = [
        VariantServed(v.name, v.shadow, v.package_arns)
        for v in served_variants(sagemaker, description["EndpointConfigName"])
    ]
    live = description.get("ProductionVariants") or []
    counts = [int(v["CurrentInstanceCount"]) for v in live if v.get("CurrentInstanceCount") is not None]
    instances = sum(counts) if counts else None
    if instances is None:
        notes.append("the endpoint reports no CurrentInstanceCount (serverless?): no instance recommendation")

    orders = served_features(sagemaker, endpoint)
    features = list(orders[0]) if orders else list(settings.pipeline_features())
    payloads: list[bytes] = []
    source = ""
    if getattr(settings.serving, stage).data_capture.enabled:
        since = clock() - timedelta(days=CAPTURE_DAYS)
        payloads = captured_rows(s3, ctx, project, stage, variants, since, len(features))
        source = f"captured requests ({stage}, last {CAPTURE_DAYS} days)"
    if not payloads:
        path = sample_file or SAMPLE_DATA_DIR / f"{project}.csv"
        payloads = sample_rows(path, features)
        source = f"sample data {path}"

    url = runtime_url(region, endpoint, endpoint_url)
    started = clock()
    steps, stopped_by = run_steps(
        url,
        payloads,
        sigv4_signer(credentials, region, url),
        target_tps=target_tps,
        step_seconds=step_seconds,
        max_requests=max_requests,
        max_seconds=max_seconds,
        percents=percents,
        seed=seed,
    )
    ended = clock()
    metrics = endpoint_metrics(cloudwatch, endpoint, [v.name for v in variants], started, ended)
    if not any(m.datapoints for m in metrics):
        notes.append("no CloudWatch datapoints yet: endpoint metrics arrive a minute or more after the requests")
    result = LoadTestResult(
        project=project,
        stage=stage,
        endpoint=endpoint,
        url=url,
        target_tps=target_tps,
        latency_ms=latency_ms,
        step_seconds=step_seconds,
        max_requests=max_requests,
        max_seconds=max_seconds,
        started=started,
        ended=ended,
        steps=steps,
        stopped_by=stopped_by,
        payload_source=source,
        payloads=len(payloads),
        variants=variants,
        instances=instances,
        metrics=metrics,
        recommendation=recommend(steps, target_tps, latency_ms, instances),
        notes=notes,
    )
    if not record:
        return result
    bucket = naming.artifacts_bucket(stage)
    key = f"{record_prefix(ctx, project, stage)}{utc(ended):%Y%m%dT%H%M%SZ}.json"
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(result.to_json(), indent=2).encode(),
        ContentType="application/json",
    )
    return LoadTestResult(**{**result.__dict__, "record_uri": f"s3://{bucket}/{key}"})


def refuse_prod(stage: str, i_know: bool) -> None:
    if stage == "prod" and not i_know:
        raise CliError("refused: a load test sends production-scale traffic to the prod endpoint; add --i-know")


def record_prefix(ctx: Context, project: str, stage: str) -> str:
    naming = ctx.naming
    return f"{naming.project_prefix(project)}/loadtests/{naming.endpoint_name(project, stage)}/"


# --------------------------------------------------------------------------- promotion gate


def load_test_violations(
    s3: Any, ctx: Context, project: str, model_package_arn: str, rule: Promotion, *, now: datetime | None = None
) -> list[str]:
    """Why the promotion gate refuses: no passing staging load test of ``model_package_arn`` within the max age.

    Empty when ``rule.require_load_test`` is off or a record in the staging
    artifacts bucket (``projects/<p>/loadtests/<endpoint>/``) passed, tested an
    endpoint serving that version and ended at most ``load_test_max_age_hours``
    ago.
    """
    if not rule.require_load_test:
        return []
    bucket = ctx.naming.artifacts_bucket("staging")
    prefix = record_prefix(ctx, project, "staging")
    keys: list[str] = []
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    try:
        while True:
            page = s3.list_objects_v2(**kwargs)
            keys.extend(o["Key"] for o in page.get("Contents", []) if o["Key"].endswith(".json"))
            if not page.get("IsTruncated"):
                break
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
    except ClientError as err:
        if client_error(err)[0] != "NoSuchBucket":
            raise
    current = utc(now or datetime.now(UTC))
    oldest = current - timedelta(hours=rule.load_test_max_age_hours)
    stale: datetime | None = None
    failed = 0
    for key in sorted(keys, reverse=True)[:RECORD_OBJECTS]:  # keys end in their UTC timestamp: newest first
        try:
            record = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            ended = utc(datetime.strptime(str(record["ended"]), "%Y-%m-%dT%H:%M:%SZ"))
            served = {a for v in record.get("variants", []) for a in v.get("model_package_arns", [])}
        except (ClientError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if model_package_arn not in served:
            continue
        if record.get("passed") is not True:
            failed += 1
            continue
        if ended >= oldest:
            return []
        stale = stale or ended
    where = f"s3://{bucket}/{prefix}"
    if stale is not None:
        hours = (current - stale).total_seconds() / 3600
        return [
            f"the newest passing load test of {model_package_arn} ended {iso(stale)} ({hours:.0f} h ago); the "
            f"promotion rule needs one within {rule.load_test_max_age_hours} h (mlops loadtest {project} --stage "
            "staging)"
        ]
    if failed:
        return [
            f"no passing load test of {model_package_arn} in {where}: {failed} load test(s) of it missed the "
            "latency or error bound at the target TPS"
        ]
    return [f"no load test of {model_package_arn} in {where} (mlops loadtest {project} --stage staging)"]
