"""The model's journey on the shipped example, end to end on this machine.

The shipped sample file goes through the ingest core into a stand-in offline
store (a duckdb table with the Iceberg offline store's own columns, a row per
PutRecord as Feature Store writes them), the Query step's SQL text selects the
dataset, then the step scripts preprocess, train, evaluate, and the artifact
serves raw rows through the container's entry points. What the Register step
records (metrics, baseline, feature order) is checked against the config.

Not proven here: Athena itself, the offline store's replication, the
SageMaker containers (the scripts run on this machine's scikit-learn).
"""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from mlops_platform.config import load_config
from pipeline_definitions.scripts.tabular import ingest, query
from pipeline_definitions.sources import SAMPLE_DATA
from tests.pipeline.script_chain import load_script, package, run_script
from tests.synth import EXAMPLE_CONFIG

GROUP = "mlops-churn-customers"
TABLE = "mlops_churn_customers_1767225600"


class OfflineStore:
    """``put_record`` into a duckdb table shaped like the Iceberg offline store (store columns included)."""

    def __init__(self, definitions: ingest.Definitions) -> None:
        self.definitions = definitions
        self.db = duckdb.connect()
        self.db.execute("CREATE SCHEMA sagemaker_featurestore")
        sql_types = {"Integral": "BIGINT", "Fractional": "DOUBLE", "String": "VARCHAR"}
        columns = ", ".join(f'"{n}" {sql_types[t]}' for n, t in definitions.features.items())
        self.db.execute(
            f'CREATE TABLE sagemaker_featurestore."{TABLE}" ({columns}, '
            "write_time TIMESTAMP, api_invocation_time TIMESTAMP, is_deleted BOOLEAN)"
        )
        self.clock = datetime(2026, 12, 1, tzinfo=UTC)
        self.puts = 0

    def _insert(self, values: dict[str, str | None], deleted: bool) -> None:
        self.clock += timedelta(milliseconds=1)
        names = list(self.definitions.features)
        row = [values.get(n) for n in names] + [self.clock.replace(tzinfo=None)] * 2 + [deleted]
        marks = ", ".join("?" for _ in row)
        self.db.execute(f'INSERT INTO sagemaker_featurestore."{TABLE}" VALUES ({marks})', row)

    def put_record(self, *, FeatureGroupName: str, Record: list[dict[str, str]], **_) -> dict:  # noqa: N803
        if FeatureGroupName != GROUP:
            raise AssertionError(FeatureGroupName)
        self.puts += 1
        self._insert({f["FeatureName"]: f["ValueAsString"] for f in Record}, deleted=False)
        return {}

    def delete_record(self, record_id: str, event_time: float) -> None:
        ident, etime = self.definitions.record_identifier, self.definitions.event_time
        self._insert({ident: record_id, etime: str(event_time)}, deleted=True)


@pytest.fixture(scope="module")
def example():
    return load_config(EXAMPLE_CONFIG).projects["churn"]


@pytest.fixture(scope="module")
def journey(example, tmp_path_factory):
    root = tmp_path_factory.mktemp("journey")
    source = example.pipeline_source()
    definitions = ingest.Definitions(
        group_name=GROUP,
        features={f.name: f.type for f in source.features},
        record_identifier=source.record_identifier,
        event_time=source.event_time,
    )
    store = OfflineStore(definitions)
    frame = ingest.validate(ingest.read_path(SAMPLE_DATA), definitions, source=str(SAMPLE_DATA))
    result = ingest.ingest(store, GROUP, ingest.records(frame, definitions), workers=1)
    # Later history: one customer changes plan, one is deleted; the query must see both.
    changed, deleted = frame.iloc[0], frame.iloc[1]
    later = float(frame[source.event_time].max()) + 60
    update = frame.iloc[[0]].copy()
    update[source.event_time] = later
    update["contract"] = "two-year"
    ingest.ingest(store, GROUP, ingest.records(update, definitions), workers=1)
    store.delete_record(str(deleted[source.record_identifier]), later)

    columns = (*example.pipeline_features(), example.pipeline.target_column)
    sql = query.dataset_sql(
        database="sagemaker_featurestore",
        table=TABLE,
        record_identifier=source.record_identifier,
        event_time=source.event_time,
        columns=columns,
        cutoff=query.cutoff_literal("2100-01-01T00:00:00Z", "Fractional"),
    )
    dataset = store.db.execute(sql).df()
    (root / "query").mkdir()
    dataset.to_csv(root / "query" / "dataset.csv", index=False, lineterminator="\n")

    features = ",".join(example.pipeline_features())
    out = root / "processed"
    run_script(
        "preprocess.py",
        *("--input-dir", str(root / "query"), "--output-dir", str(out)),
        *("--id-column", source.record_identifier, "--target-column", example.pipeline.target_column),
        *("--features", features),
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "SM_CHANNEL_TRAIN": str(out / "train"),
        "SM_CHANNEL_VALIDATION": str(out / "validation"),
        "SM_MODEL_DIR": str(root / "model"),
    }
    run_script(
        "train.py",
        *("--n-estimators", "40", "--features", features, "--target-column", example.pipeline.target_column),
        *("--checkpoint-dir", str(root / "checkpoints")),
        env=env,
    )
    archive = package(root / "model", root / "artifacts")
    run_script(
        "evaluate.py",
        *("--model-dir", str(root / "artifacts"), "--test-dir", str(out / "test")),
        *("--output-dir", str(root / "evaluation"), "--bootstrap-rounds", "10"),
    )
    return {
        "root": root,
        "frame": frame,
        "dataset": dataset,
        "ingested": result.ingested,
        "puts": store.puts,
        "changed": str(changed[source.record_identifier]),
        "deleted": str(deleted[source.record_identifier]),
        "archive": archive,
        "out": out,
    }


def test_every_sample_row_goes_in_and_the_query_sees_the_latest_undeleted_state(journey):
    frame, dataset = journey["frame"], journey["dataset"]
    assert journey["ingested"] == len(frame) and journey["puts"] == len(frame) + 1
    ids = list(dataset["customer_id"])
    assert len(ids) == len(set(ids)) == len(frame) - 1
    assert journey["deleted"] not in ids
    assert dataset.set_index("customer_id").loc[journey["changed"], "contract"] == "two-year"
    assert "event_time" not in dataset.columns and "write_time" not in dataset.columns


def test_the_model_is_evaluated_and_registrable_with_its_evidence(journey, example):
    report = json.loads((journey["root"] / "evaluation" / "evaluation.json").read_text())
    metrics = report["binary_classification_metrics"]
    assert 0.0 <= metrics["auc"]["value"] <= 1.0 and "confusion_matrix" in metrics
    # The pipeline's CheckMetric and the approval guard read the primary metric from here.
    assert example.approval.primary_metric in metrics
    baseline = journey["out"] / "baseline"
    assert (baseline / "statistics.json").is_file() and (baseline / "constraints.json").is_file()
    with tarfile.open(journey["archive"]) as tar:
        recorded = json.load(tar.extractfile("features.json"))
    # The order the Register step records as mlops:Features is the one the model was trained on.
    assert recorded["features"] == list(example.pipeline_features())


def test_the_artifact_serves_raw_rows_including_an_unseen_category(journey, example, tmp_path):
    with tarfile.open(journey["archive"]) as tar:
        tar.extractall(tmp_path, filter="data")
    entry = load_script("train.py", tmp_path / "code" / "train.py")
    model = entry.model_fn(str(tmp_path))
    raw = pd.read_csv(SAMPLE_DATA, dtype={"customer_id": str}).iloc[:3]
    rows = raw[list(example.pipeline_features())].copy()
    rows.loc[rows.index[0], "contract"] = "decade-long"  # never seen in training
    body = rows.to_csv(index=False, header=False)
    prediction = entry.predict_fn(entry.input_fn(body, "text/csv"), model)
    response = entry.output_fn(prediction, "text/csv")
    text = response[0] if isinstance(response, tuple) else response
    values = [float(v) for v in str(text).split()]
    assert len(values) == 3 and all(0.0 <= v <= 1.0 for v in values)
    instances = json.dumps({"instances": rows.astype(object).where(rows.notna(), None).values.tolist()})
    again = entry.predict_fn(entry.input_fn(instances, "application/json"), model)
    assert [round(float(v), 9) for v in again] == [round(v, 9) for v in values]


def test_the_sample_file_fits_the_example_feature_group(example):
    columns = list(pd.read_csv(SAMPLE_DATA, nrows=1).columns)
    assert columns == [f.name for f in example.pipeline_source().features]


def test_the_shipped_sample_is_what_the_readme_ingests():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert (
        "mlops --profile dev data ingest churn --group customers pipeline_definitions/sample_data/churn.csv" in readme
    )
