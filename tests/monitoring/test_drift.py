"""The drift check (the monitoring engine for accounts without Model Monitor) on captured requests in moto S3.

The baseline is what ``preprocess.py`` writes for the sample data; the captures
are rows of the same data (or shifted copies) in SageMaker's data-capture
format under two variants.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws
from sklearn.metrics import roc_auc_score

from pipeline_definitions.scripts.monitoring import drift
from tests.pipeline.script_chain import FEATURES

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "pipeline_definitions" / "sample_data" / "churn.csv"
PREPROCESS = ROOT / "pipeline_definitions" / "scripts" / "tabular" / "preprocess.py"
BUCKET = "capture-bucket"
ENDPOINT = "churn-prod"
SCHEDULE = "churn-prod-drift"
PREFIX = f"datacapture/{ENDPOINT}"
END = "2026-12-01T11:00:00Z"
HOUR = "2026/12/01/10"
DIMS = [{"Name": "Endpoint", "Value": ENDPOINT}, {"Name": "MonitoringSchedule", "Value": SCHEDULE}]


class RecordingCloudWatch:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def put_metric_data(self, **kwargs) -> None:
        self.calls.append(kwargs)

    def data(self, namespace: str) -> list[dict]:
        return [d for c in self.calls if c["Namespace"] == namespace for d in c["MetricData"]]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("drift-baseline")
    (root / "input").mkdir()
    shutil.copy(SAMPLE, root / "input" / "churn.csv")
    args = ["--input-dir", str(root / "input"), "--output-dir", str(root / "out")]
    args += ["--id-column", "customer_id", "--target-column", "churn", "--features", ",".join(FEATURES)]
    done = subprocess.run([sys.executable, str(PREPROCESS), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return root / "out" / "baseline"


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return pd.read_csv(SAMPLE)


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def csv_row(values) -> str:
    return ",".join("" if pd.isna(v) else str(v) for v in values) + "\n"


def capture_lines(frame: pd.DataFrame, hour: str = HOUR, scores=None, id_prefix: str = "i") -> list[str]:
    """One capture record per row, a few as BASE64 and JSON requests and one holding two rows."""
    day = hour.replace("/", "-", 2).replace("/", "T")
    rows = frame[FEATURES].to_numpy(dtype=object).tolist()
    scores = scores if scores is not None else [0.5] * len(rows)
    lines, i = [], 0
    while i < len(rows):
        take = 2 if i == 3 else 1
        chunk, chunk_scores = rows[i : i + take], scores[i : i + take]
        text = "".join(csv_row(r) for r in chunk)
        request = {"observedContentType": "text/csv", "mode": "INPUT", "data": text, "encoding": "CSV"}
        if i % 50 == 7:
            request.update(data=base64.b64encode(text.encode()).decode(), encoding="BASE64")
        elif i % 50 == 11:
            instances = [[None if pd.isna(v) else v for v in r] for r in chunk]
            request.update(observedContentType="application/json", data=json.dumps({"instances": instances}))
            request["encoding"] = "JSON"
        output = {"observedContentType": "text/csv", "mode": "OUTPUT", "encoding": "CSV"}
        output["data"] = "".join(f"{s}\n" for s in chunk_scores)
        record = {
            "captureData": {
                "endpointInput": request,
                "endpointOutput": output,
            },
            "eventMetadata": {
                "eventId": f"e-{id_prefix}{i}",
                "inferenceTime": f"{day}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
                "inferenceId": f"{id_prefix}{i}",
            },
            "eventVersion": "0",
        }
        lines.append(json.dumps(record))
        i += take
    return lines


def put_capture(s3, variant: str, frame: pd.DataFrame, hour: str = HOUR, **kwargs) -> None:
    lines = capture_lines(frame, hour, **kwargs)
    half = len(lines) // 2
    for n, part in enumerate((lines[:half], lines[half:])):
        key = f"{PREFIX}/{variant}/{hour}/capture-{n}.jsonl"
        s3.put_object(Bucket=BUCKET, Key=key, Body=("\n".join(part) + "\n").encode())


def run(s3, baseline: Path, tmp_path: Path, *extra: str, cloudwatch=None, storage=None):
    cloudwatch = cloudwatch or RecordingCloudWatch()
    storage = storage or drift.Storage(s3=s3)
    argv = ["--capture-uri", f"s3://{BUCKET}/{PREFIX}/", "--baseline-dir", str(baseline)]
    argv += ["--output-dir", str(tmp_path / "out"), "--endpoint", ENDPOINT, "--schedule", SCHEDULE]
    argv += ["--window-hours", "1", "--end", END, *extra]
    code = drift.main(argv, storage=storage, cloudwatch=cloudwatch)
    return code, cloudwatch, storage


def violations(tmp_path: Path, variant: str = "") -> list[dict]:
    path = tmp_path / "out" / variant / "constraint_violations.json"
    return json.loads(path.read_text())["violations"]


def checks(found: list[dict], kind: str) -> set[str]:
    return {v["feature_name"] for v in found if v["constraint_check_type"] == kind}


def draw(sample: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """Rows of the sample data without its missing values: the baseline's completeness (about 98%) is a
    strict floor, as in Model Monitor, so a sample with a few more gaps than the train split would break it."""
    complete = sample.dropna(subset=[*FEATURES, "churn"]).astype({"churn": "int64"})
    return complete.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)


def test_unchanged_data_has_no_violation(s3, baseline, sample, tmp_path):
    put_capture(s3, "champion", draw(sample, 1500, 1))
    put_capture(s3, "challenger", draw(sample, 1500, 2))
    code, cloudwatch, _ = run(s3, baseline, tmp_path)
    assert code == 0
    assert violations(tmp_path) == []
    assert violations(tmp_path, "champion") == [] and violations(tmp_path, "challenger") == []
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows"] == 3000 and summary["violations"] == 0
    assert summary["variants"]["champion"]["rows"] == 1500
    assert summary["records"] == summary["variants"]["champion"]["records"] * 2  # one two-row record per file
    statistics = json.loads((tmp_path / "out" / "statistics.json").read_text())
    assert statistics["dataset"]["item_count"] == 3000
    assert [f["name"] for f in statistics["features"]] == FEATURES


def test_shifted_features_drift_in_the_shifted_variant_only(s3, baseline, sample, tmp_path):
    put_capture(s3, "champion", draw(sample, 1500, 3))
    shifted = draw(sample, 1500, 4)
    shifted["monthly_charges"] = (shifted["monthly_charges"] * 1.6).round(2)
    shifted["contract"] = np.where(np.arange(len(shifted)) % 10 < 8, "month-to-month", shifted["contract"])
    put_capture(s3, "challenger", shifted)
    code, cloudwatch, _ = run(s3, baseline, tmp_path)
    assert code == 0
    assert checks(violations(tmp_path, "challenger"), "baseline_drift_check") == {"monthly_charges", "contract"}
    assert violations(tmp_path, "champion") == []
    assert checks(violations(tmp_path), "baseline_drift_check") <= {"monthly_charges", "contract"}
    drift_metrics = {
        d["MetricName"]: d["Value"]
        for d in cloudwatch.data(drift.DATA_NAMESPACE)
        if d["Dimensions"] == [*DIMS, {"Name": "VariantName", "Value": "challenger"}]
    }
    assert drift_metrics["feature_baseline_drift_monthly_charges"] > 0.1
    assert drift_metrics["feature_baseline_drift_tenure_months"] < 0.1
    assert drift_metrics["constraint_violations"] == 2


def test_missing_values_break_completeness(s3, baseline, sample, tmp_path):
    frame = draw(sample, 1000, 5)
    frame.loc[frame.index % 10 == 0, "tenure_months"] = np.nan
    put_capture(s3, "champion", frame)
    assert run(s3, baseline, tmp_path)[0] == 0
    found = violations(tmp_path, "champion")
    assert checks(found, "completeness_check") == {"tenure_months"}
    assert checks(found, "data_type_check") == set()


def test_text_in_a_numeric_feature_breaks_the_data_type(s3, baseline, sample, tmp_path):
    frame = draw(sample, 1000, 6).astype({"support_calls": object})
    frame.loc[5, "support_calls"] = "many"
    put_capture(s3, "champion", frame)
    assert run(s3, baseline, tmp_path)[0] == 0
    found = violations(tmp_path, "champion")
    assert checks(found, "data_type_check") == {"support_calls"}
    assert checks(found, "completeness_check") == set() and checks(found, "baseline_drift_check") == set()


def test_metrics_carry_the_column_names_and_model_monitor_dimensions(s3, baseline, sample, tmp_path):
    put_capture(s3, "champion", draw(sample, 600, 7))
    put_capture(s3, "challenger", draw(sample, 600, 8))
    code, cloudwatch, _ = run(s3, baseline, tmp_path)
    assert code == 0
    assert {c["Namespace"] for c in cloudwatch.calls} == {"aws/sagemaker/Endpoints/data-metrics"}
    assert all(len(c["MetricData"]) <= 1000 for c in cloudwatch.calls)
    endpoint_level = {d["MetricName"] for d in cloudwatch.data(drift.DATA_NAMESPACE) if d["Dimensions"] == DIMS}
    assert {f"feature_baseline_drift_{name}" for name in FEATURES} <= endpoint_level
    assert "constraint_violations" in endpoint_level
    assert not any("_c0" in d["MetricName"] for d in cloudwatch.data(drift.DATA_NAMESPACE))


def test_metrics_are_sent_in_batches_of_at_most_1000():
    cloudwatch = RecordingCloudWatch()
    data = [{"MetricName": f"m{i}", "Value": 1.0} for i in range(2500)]
    assert drift.publish(cloudwatch, {"ns": data}) == 2500
    assert [len(c["MetricData"]) for c in cloudwatch.calls] == [1000, 1000, 500]


def test_model_quality_with_ground_truth_flags_a_breach(s3, baseline, sample, tmp_path):
    frame = draw(sample, 800, 9)
    rng = np.random.default_rng(0)
    scores = [round(float(s), 4) for s in rng.random(len(frame))]  # a useless model: auc near 0.5
    put_capture(s3, "champion", frame, scores=scores)
    ids = [r["eventMetadata"]["inferenceId"] for r in map(json.loads, capture_lines(frame, scores=scores))]
    # Every row's label: the two-row record gets two lines of ground truth.
    labels, row = {}, 0
    for i in ids:
        take = 2 if i == "i3" else 1
        labels[i] = frame["churn"].iloc[row : row + take].tolist()
        row += take
    truth = [
        json.dumps(
            {
                "groundTruthData": {"data": "\n".join(str(v) for v in values), "encoding": "CSV"},
                "eventMetadata": {"eventId": key},
                "eventVersion": "0",
            }
        )
        for key, values in labels.items()
    ]
    s3.put_object(Bucket=BUCKET, Key=f"ground-truth/{HOUR}/labels.jsonl", Body="\n".join(truth).encode())
    constraints = tmp_path / "model-quality-constraints.json"
    rules = {"auc": {"threshold": 0.7, "comparison_operator": "LessThanThreshold"}}
    constraints.write_text(json.dumps({"version": 0.0, "binary_classification_constraints": rules}))
    code, cloudwatch, _ = run(
        s3,
        baseline,
        tmp_path,
        "--ground-truth-uri",
        f"s3://{BUCKET}/ground-truth/",
        "--model-quality-constraints",
        str(constraints),
    )
    assert code == 0
    statistics = json.loads((tmp_path / "out" / "model_quality" / "statistics.json").read_text())
    auc = statistics["binary_classification_metrics"]["auc"]["value"]
    assert statistics["dataset"]["item_count"] == len(frame)
    assert auc == pytest.approx(roc_auc_score(frame["churn"], scores))
    found = json.loads((tmp_path / "out" / "model_quality" / "constraint_violations.json").read_text())["violations"]
    assert [(v["metric_name"], v["constraint_check_type"]) for v in found] == [("auc", "LessThanThreshold")]
    model = {d["MetricName"]: d["Value"] for d in cloudwatch.data(drift.MODEL_NAMESPACE) if d["Dimensions"] == DIMS}
    assert set(model) == {"auc", "accuracy", "precision", "recall", "f1", "constraint_violations"}
    assert model["auc"] == pytest.approx(auc) and model["constraint_violations"] == 1


def test_only_the_window_hour_prefixes_are_listed_and_read(s3, baseline, sample, tmp_path):
    for hour, seed in (("2026/12/01/09", 10), (HOUR, 11), ("2026/12/01/11", 12)):
        put_capture(s3, "champion", draw(sample, 300, seed), hour=hour, id_prefix=hour[-2:])
    listed = []
    client = boto3.client("s3", region_name="us-east-1")
    client.meta.events.register(
        "before-parameter-build.s3.ListObjectsV2",
        lambda params, **_: listed.append(params.get("Prefix")),
        unique_id="record",
    )
    code, _, storage = run(s3, baseline, tmp_path, storage=drift.Storage(s3=client))
    assert code == 0
    assert listed == [f"{PREFIX}/", f"{PREFIX}/champion/{HOUR}/"]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["rows"] == 300


def test_an_empty_window_exits_non_zero_with_one_line_and_publishes_nothing(s3, baseline, sample, tmp_path, capsys):
    put_capture(s3, "champion", draw(sample, 100, 13), hour="2026/12/01/08")
    code, cloudwatch, _ = run(s3, baseline, tmp_path)
    assert code == drift.EXIT_NO_CAPTURE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drift: no captured records")
    assert cloudwatch.calls == [] and not (tmp_path / "out").exists()


def test_a_missing_baseline_exits_non_zero_with_one_line(s3, sample, tmp_path, capsys):
    put_capture(s3, "champion", draw(sample, 100, 14))
    code, cloudwatch, _ = run(s3, tmp_path / "no-baseline", tmp_path)
    assert code == drift.EXIT_BAD_BASELINE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "constraints.json is missing" in err[0]
    assert cloudwatch.calls == []
