"""``mlops loadtest``: Locust (headless, in-process) against a local runtime look-alike; the promotion gate.

The server answers ``POST /endpoints/<name>/invocations`` with ``0.42\\n`` like
the SageMaker runtime. It turns slow (250 ms) and answers every 4th request
with a 500 once more than 17 clients (connections) sent requests in the last
2 s: each Locust user keeps one connection, so of the steps of 20 TPS (5, 10,
15, 20, 25 users) the first three pass a 100 ms p99 and the last two fail,
however fast or loaded the machine (a request rate would vary with the load).

Locust runs on gevent: :func:`loadtest.prepare` patches the process (not ssl)
before the server starts, so its threads are greenlets next to Locust's users.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from botocore.credentials import Credentials

from mlops_platform.cli import loadtest
from mlops_platform.cli.core import CliError, Context
from mlops_platform.config import Promotion, load_config
from tests.synth import EXAMPLE_CONFIG, ROOT

ENDPOINT = "mlops-churn-staging"
BUCKET = "mlops-staging-artifacts-333333333333-eu-west-1"
CHAMPION_ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-churn/2"
CHALLENGER_ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-churn/3"
# Not the config's order: the payload rows must follow the served model package's.
FEATURES = [
    "monthly_charges",
    "tenure_months",
    "total_charges",
    "support_calls",
    "senior_citizen",
    "contract",
    "payment_method",
    "internet_service",
]
SAMPLE = ROOT / "pipeline_definitions" / "sample_data" / "churn.csv"


# --------------------------------------------------------------------------- the local runtime endpoint


@pytest.fixture(scope="module")
def server():
    loadtest.prepare()  # gevent first: the server's threads become greenlets beside Locust's users
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict] = []
    recent: deque[tuple[float, int]] = deque()
    state = {"errors": 0, "slow_above": 17, "window": 2.0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            now = time.monotonic()
            recent.append((now, self.client_address[1]))
            while recent and recent[0][0] < now - state["window"]:
                recent.popleft()
            seen.append({"t": now, "path": self.path, "headers": dict(self.headers.items()), "body": body})
            index = len(seen)
            ok_path = self.path == f"/endpoints/{ENDPOINT}/invocations"
            slow = len({port for _, port in recent}) > state["slow_above"]
            status, answer = (200, b"0.42\n") if ok_path else (404, b"no such endpoint")
            if slow:
                time.sleep(0.25)
                if index % 4 == 0:
                    status, answer = 500, b'{"ErrorCode":"INTERNAL_FAILURE_FROM_MODEL"}'
                    state["errors"] += 1
            else:
                time.sleep(0.005)
            self.send_response(status)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256  # socketserver's 5 drops connects under a burst (1 s SYN retry)

    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{httpd.server_address[1]}", seen=seen, state=state)
    httpd.shutdown()
    httpd.server_close()


# --------------------------------------------------------------------------- stub clients


class FakeSageMaker:
    def __init__(self, instances=2):
        self.instances = instances

    def describe_endpoint(self, EndpointName):  # noqa: N803 - boto3's names
        assert EndpointName == ENDPOINT
        return {
            "EndpointName": ENDPOINT,
            "EndpointConfigName": "cfg-1",
            "EndpointStatus": "InService",
            "ProductionVariants": [{"VariantName": "champion", "CurrentInstanceCount": self.instances}],
        }

    def describe_endpoint_config(self, EndpointConfigName):  # noqa: N803
        return {
            "ProductionVariants": [{"VariantName": "champion", "ModelName": "model-2"}],
            "ShadowProductionVariants": [{"VariantName": "challenger", "ModelName": "model-3"}],
        }

    def describe_model(self, ModelName):  # noqa: N803
        arn = {"model-2": CHAMPION_ARN, "model-3": CHALLENGER_ARN}[ModelName]
        return {"PrimaryContainer": {"ModelPackageName": arn}}

    def describe_model_package(self, ModelPackageName):  # noqa: N803
        return {"CustomerMetadataProperties": {"mlops:Features": json.dumps(FEATURES)}}


class FakeS3:
    def __init__(self):
        self.objects: dict[tuple[str, str], tuple[bytes, datetime]] = {}

    def put_object(self, Bucket, Key, Body, **_):  # noqa: N803
        self.objects[(Bucket, Key)] = (Body if isinstance(Body, bytes) else Body.encode(), datetime.now(UTC))

    def list_objects_v2(self, Bucket, Prefix="", StartAfter="", **_):  # noqa: N803
        keys = sorted(k for b, k in self.objects if b == Bucket and k.startswith(Prefix) and k > StartAfter)
        return {"Contents": [{"Key": k, "LastModified": self.objects[(Bucket, k)][1]} for k in keys]}

    def get_object(self, Bucket, Key):  # noqa: N803
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)][0])}


class FakeCloudWatch:
    def __init__(self):
        self.calls: list[dict] = []

    def get_metric_data(self, **kwargs):
        self.calls.append(kwargs)
        results = []
        for query in kwargs["MetricDataQueries"]:
            metric = query["MetricStat"]["Metric"]["MetricName"]
            values = {"ModelLatency": [4000.0, 6000.0], "CPUUtilization": [30.0, 50.0]}.get(metric, [])
            results.append({"Id": query["Id"], "Values": values})
        return {"MetricDataResults": results}


@pytest.fixture(scope="module")
def ctx():
    return Context(load_config(EXAMPLE_CONFIG))


CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "session-token")


def sample_bodies() -> set[bytes]:
    with SAMPLE.open(newline="") as handle:
        return {loadtest._csv_row([r[f] for f in FEATURES]) for r in csv.DictReader(handle)}


# --------------------------------------------------------------------------- the full run


@pytest.fixture(scope="module")
def run(server, ctx):
    """tps 20 in five 2 s steps against the local server, recorded to the stub S3."""
    s3, cloudwatch = FakeS3(), FakeCloudWatch()
    started = len(server.seen)
    result = loadtest.load_test(
        sagemaker=FakeSageMaker(instances=2),
        cloudwatch=cloudwatch,
        s3=s3,
        credentials=CREDENTIALS,
        region="eu-west-1",
        ctx=ctx,
        project="churn",
        stage="staging",
        target_tps=20,
        latency_ms=100,
        step_seconds=2,
        endpoint_url=server.url,
        seed=7,
    )
    return SimpleNamespace(result=result, s3=s3, cloudwatch=cloudwatch, requests=server.seen[started:])


def test_steps_rise_and_report_latency_and_errors(run, server):
    result = run.result
    assert [s.target_tps for s in result.steps] == [5, 10, 15, 20, 25]
    assert [s.users for s in result.steps] == [5, 10, 15, 20, 25]
    assert result.stopped_by is None and not any(s.cut_short for s in result.steps)
    for step in result.steps:
        assert 1.9 <= step.seconds <= 2.5
        assert step.p50_ms is not None and step.p90_ms is not None and step.p99_ms is not None
        assert step.p50_ms <= step.p90_ms <= step.p99_ms
    # Achieved throughput rises with the steps and stays near the target.
    tps = [s.tps for s in result.steps]
    assert tps == sorted(tps)
    assert 3.5 <= tps[0] <= 6 and 15 <= tps[3] <= 23
    fast, slow = result.steps[:3], result.steps[3:]
    # Under 200 ms: below every slow step (200 ms injected) with room for a loaded machine.
    assert all(s.errors == 0 and s.p99_ms < 200 for s in fast)
    assert all(s.p99_ms >= 200 for s in slow)
    assert all(s.errors > 0 and s.error_rate_percent > 1 for s in slow)
    # Every request was answered and counted once; every 500 is an error.
    assert result.requests == len(run.requests)
    assert sum(s.errors for s in result.steps) == server.state["errors"] > 0
    assert result.steps[-1].error_rate_percent == pytest.approx(100 * slow[-1].errors / slow[-1].requests)


def test_requests_are_sigv4_signed_csv_rows_of_the_served_feature_order(run):
    bodies = sample_bodies()
    assert run.requests
    for request in run.requests:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert request["path"] == f"/endpoints/{ENDPOINT}/invocations"
        assert headers["content-type"] == "text/csv"
        auth = headers["authorization"]
        assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
        assert "/eu-west-1/sagemaker/aws4_request" in auth
        assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token" in auth
        assert headers["x-amz-security-token"] == "session-token"
        assert request["body"] in bodies
    assert run.result.payload_source.startswith("sample data")
    assert len({r["body"] for r in run.requests}) > 10  # sampled, not one row


def test_signature_is_botocores_sigv4_of_the_body(server, monkeypatch):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    url = loadtest.runtime_url("eu-west-1", ENDPOINT, server.url)
    headers = loadtest.sigv4_signer(CREDENTIALS, "eu-west-1", url)(b"1,2,3")
    again = AWSRequest(
        method="POST",
        url=url,
        data=b"1,2,3",
        headers={"Content-Type": "text/csv", "X-Amz-Date": headers["X-Amz-Date"]},
    )
    monkeypatch.setattr(SigV4Auth, "_modify_request_before_signing", lambda self, request: None)
    again.headers["X-Amz-Security-Token"] = "session-token"
    SigV4Auth(CREDENTIALS, "sagemaker", "eu-west-1").add_auth(again)
    assert headers["Authorization"] == again.headers["Authorization"]
    assert (
        loadtest.runtime_url("us-east-1", "e")
        == "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/e/invocations"
    )


def test_recommendation_is_the_highest_passing_step(run):
    rec = run.result.recommendation
    third = run.result.steps[2]
    assert rec.best == third and rec.instances == 2
    assert rec.per_instance_tps == pytest.approx(third.tps / 2)
    assert rec.needed_instances == math.ceil(20 / (third.tps / 2))
    assert not rec.passed  # 20 TPS itself missed the bound


def test_recommend_arithmetic():
    def step(target, requests, p99, errors=0):
        return loadtest.StepResult(100, target, target, 10.0, requests, errors, 1.0, 2.0, p99)

    steps = [step(5, 50, 20), step(10, 100, 40), step(15, 150, 90, errors=1), step(20, 200, 150)]
    rec = loadtest.recommend(steps, target_tps=20, latency_ms=100, instances=2)
    assert rec.best is steps[2] and rec.per_instance_tps == 7.5 and rec.needed_instances == 3
    assert loadtest.recommend(steps, 20, 200, instances=1).needed_instances == 1  # 20 TPS on one instance
    assert loadtest.recommend(steps, 20, 200, instances=1).passed
    failing = [step(5, 50, 20, errors=2)]  # 4 % errors
    assert loadtest.recommend(failing, 20, 100, 1).best is None
    assert loadtest.recommend(steps, 20, 100, None).needed_instances is None


def test_cloudwatch_metrics_in_one_call(run):
    (call,) = run.cloudwatch.calls
    queries = call["MetricDataQueries"]
    assert len(queries) == 10  # 5 metrics x 2 variants (the shadow challenger too)
    by_metric = {}
    for q in queries:
        stat = q["MetricStat"]
        dims = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
        assert dims["EndpointName"] == ENDPOINT and dims["VariantName"] in ("champion", "challenger")
        by_metric[stat["Metric"]["MetricName"]] = stat["Metric"]["Namespace"]
    assert by_metric == {
        "CPUUtilization": "/aws/sagemaker/Endpoints",
        "MemoryUtilization": "/aws/sagemaker/Endpoints",
        "ModelLatency": "AWS/SageMaker",
        "OverheadLatency": "AWS/SageMaker",
        "InvocationsPerInstance": "AWS/SageMaker",
    }
    assert call["StartTime"] <= run.result.started and call["EndTime"] > run.result.ended
    latency = next(m for m in run.result.metrics if m.metric == "ModelLatency" and m.variant == "challenger")
    assert (latency.average, latency.maximum, latency.datapoints) == (5.0, 6.0, 2)  # microseconds -> ms
    memory = next(m for m in run.result.metrics if m.metric == "MemoryUtilization")
    assert memory.average is None and memory.datapoints == 0


def test_result_is_recorded_for_the_gate(run, ctx):
    ((bucket, key),) = run.s3.objects
    assert bucket == BUCKET
    assert key.startswith(f"projects/churn/loadtests/{ENDPOINT}/") and key.endswith("Z.json")
    assert run.result.record_uri == f"s3://{bucket}/{key}"
    record = json.loads(run.s3.objects[(bucket, key)][0])
    assert record["passed"] is False and len(record["steps"]) == 5
    assert {a for v in record["variants"] for a in v["model_package_arns"]} == {CHAMPION_ARN, CHALLENGER_ARN}
    rule = Promotion(require_load_test=True)
    violations = loadtest.load_test_violations(run.s3, ctx, "churn", CHALLENGER_ARN, rule)
    assert len(violations) == 1 and "missed the latency or error bound" in violations[0]


def test_render_prints_the_step_table_and_recommendation(run, capsys):
    from mlops_platform.cli import render

    render.loadtest(run.result)
    out = capsys.readouterr().out
    assert "Target TPS" in out and "p99 ms" in out and "CPUUtilization" in out
    assert f"Recommendation: {run.result.recommendation.needed_instances} instance(s) for 20 TPS" in out
    assert "Recorded: s3://" in out


# --------------------------------------------------------------------------- bounds


def test_max_requests_stops_the_run(server, monkeypatch):
    monkeypatch.setitem(server.state, "slow_above", 10**6)
    url = loadtest.runtime_url("eu-west-1", ENDPOINT, server.url)
    began = time.monotonic()
    steps, stopped_by = loadtest.run_steps(
        url,
        [b"1,2"],
        loadtest.sigv4_signer(CREDENTIALS, "eu-west-1", url),
        target_tps=20,
        step_seconds=2,
        max_requests=8,
    )
    # 5 users send 5 requests in the first second, 3 more in the next: the budget ends the first step.
    assert stopped_by == "max-requests"
    assert [(s.target_tps, s.requests, s.cut_short) for s in steps] == [(5, 8, "max-requests")]
    assert time.monotonic() - began < 2.5


def test_cli_time_bound_captured_payloads_and_prod_refusal(server, ctx, monkeypatch, capsys):
    from mlops_platform.cli import app, main

    s3, cloudwatch = FakeS3(), FakeCloudWatch()
    captured = [",".join(str(i + j) for j in range(len(FEATURES))) for i in range(3)]
    record = {
        "captureData": {"endpointInput": {"data": "\n".join(captured), "encoding": "CSV"}},
        "eventMetadata": {"eventId": "e1"},
    }
    hour = datetime.now(UTC)
    s3.put_object(
        Bucket=BUCKET,
        Key=f"projects/churn/data-capture/{ENDPOINT}/champion/{hour:%Y/%m/%d/%H}/a.jsonl",
        Body=json.dumps(record).encode(),
    )

    class Clients:
        def __init__(self, session):
            self.session = session
            self.sagemaker, self.s3, self.cloudwatch = FakeSageMaker(instances=1), s3, cloudwatch

    monkeypatch.setattr(app, "Clients", Clients)
    for name, value in {"AWS_ACCESS_KEY_ID": "AKIDCLI", "AWS_SECRET_ACCESS_KEY": "secret"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    started = len(server.seen)
    base = ["--config-dir", str(EXAMPLE_CONFIG), "loadtest", "churn", "--tps", "4", "--latency-ms", "500"]
    code = main(
        [*base, "--stage", "staging", "--step-seconds", "1", "--max-minutes", "0.04", "--endpoint-url", server.url]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    sent = server.seen[started:]
    assert sent and {r["body"].decode() for r in sent} <= set(captured)
    assert all(r["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDCLI/") for r in sent)
    assert "Stopped early by --max-minutes 0.04" in out and "cut short: max-minutes" in out
    assert "captured requests" in out
    ((_, key),) = [k for k in s3.objects if "/loadtests/" in k[1]]
    stored = json.loads(s3.objects[(BUCKET, key)][0])
    assert stored["stopped_by"] == "max-minutes" and 2 <= len(stored["steps"]) <= 3

    # prod without --i-know: refused before any AWS call or request, one line, exit 2.
    started = len(server.seen)
    code = main([*base, "--stage", "prod", "--endpoint-url", server.url])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--i-know" in err
    assert len(server.seen) == started and len(cloudwatch.calls) == 1


def test_prod_refused_in_the_function(ctx):
    with pytest.raises(CliError, match="--i-know") as raised:
        loadtest.load_test(
            sagemaker=None,
            cloudwatch=None,
            s3=None,
            credentials=CREDENTIALS,
            region="eu-west-1",
            ctx=ctx,
            project="churn",
            stage="prod",
            target_tps=5,
            latency_ms=100,
        )
    assert raised.value.exit_code == 2


def test_captured_rows_keep_rows_of_the_feature_count(ctx):
    s3 = FakeS3()
    good, short = ",".join(["1"] * len(FEATURES)), "1,2"
    line = {"captureData": {"endpointInput": {"data": f"{good}\n{short}", "encoding": "CSV"}}}
    now = datetime.now(UTC)
    s3.put_object(
        Bucket=BUCKET,
        Key=f"projects/churn/data-capture/{ENDPOINT}/challenger/{now:%Y/%m/%d/%H}/b.jsonl",
        Body=json.dumps(line).encode(),
    )
    variants = [loadtest.VariantServed("challenger", True, ()), loadtest.VariantServed("champion", False, ())]
    assert loadtest.captured_rows(s3, ctx, "churn", "staging", variants, now - timedelta(days=1), 8) == []
    variants = [loadtest.VariantServed("challenger", False, ())]
    assert loadtest.captured_rows(s3, ctx, "churn", "staging", variants, now - timedelta(days=1), 8) == [good.encode()]


# --------------------------------------------------------------------------- promotion gate


def _record(s3, ended: datetime, *, passed: bool, arn: str = CHALLENGER_ARN) -> None:
    key = f"projects/churn/loadtests/{ENDPOINT}/{ended:%Y%m%dT%H%M%SZ}.json"
    body = {
        "ended": ended.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "passed": passed,
        "variants": [{"name": "challenger", "shadow": True, "model_package_arns": [arn]}],
    }
    s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(body).encode())


NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GATE = Promotion(require_load_test=True, load_test_max_age_hours=24)


def test_gate_off_by_default(ctx):
    assert Promotion().require_load_test is False and Promotion().load_test_max_age_hours == 168
    assert loadtest.load_test_violations(FakeS3(), ctx, "churn", CHALLENGER_ARN, Promotion(), now=NOW) == []


def test_gate_passes_with_a_recent_passing_test(ctx):
    s3 = FakeS3()
    _record(s3, NOW - timedelta(hours=30), passed=True)
    _record(s3, NOW - timedelta(hours=2), passed=False)
    _record(s3, NOW - timedelta(hours=3), passed=True)
    assert loadtest.load_test_violations(s3, ctx, "churn", CHALLENGER_ARN, GATE, now=NOW) == []


def test_gate_refuses_failing_stale_missing_and_other_versions(ctx):
    failing = FakeS3()
    _record(failing, NOW - timedelta(hours=1), passed=False)
    (violation,) = loadtest.load_test_violations(failing, ctx, "churn", CHALLENGER_ARN, GATE, now=NOW)
    assert "no passing load test" in violation and "missed the latency or error bound" in violation

    stale = FakeS3()
    _record(stale, NOW - timedelta(hours=30), passed=True)
    (violation,) = loadtest.load_test_violations(stale, ctx, "churn", CHALLENGER_ARN, GATE, now=NOW)
    assert "30 h ago" in violation and "within 24 h" in violation

    other = FakeS3()
    _record(other, NOW - timedelta(hours=1), passed=True, arn=CHAMPION_ARN)
    (violation,) = loadtest.load_test_violations(other, ctx, "churn", CHALLENGER_ARN, GATE, now=NOW)
    assert violation.startswith(f"no load test of {CHALLENGER_ARN}")
    assert loadtest.load_test_violations(FakeS3(), ctx, "churn", CHALLENGER_ARN, GATE, now=NOW)


def test_promote_calls_the_gate():
    from mlops_platform.cli import promote

    assert promote.load_test_violations is loadtest.load_test_violations
    source = (ROOT / "mlops_platform" / "cli" / "promote.py").read_text()
    assert "load_test_violations(clients.s3, ctx, project, candidate.model_package_arn, rule" in source


# --------------------------------------------------------------------------- imports


def test_importing_the_cli_does_not_import_locust():
    code = (
        "import sys, mlops_platform.cli, mlops_platform.cli.app, mlops_platform.cli.loadtest;"
        "print(sorted(m for m in ('locust', 'gevent') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
