"""The step scripts, run for real as subprocesses on small data, as the containers would.

The chain (see ``script_chain``) runs once per test session in a temporary
directory; the tests then check what each step wrote.
"""

from __future__ import annotations

import glob
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile

import pandas as pd
import pytest

from pipeline_definitions.sources import (
    SAMPLE_DATA,
    SCRIPTS_DIR,
    build_train_source_tarball,
    train_source_tarball_bytes,
)
from pipeline_definitions.tabular import METRIC_REGEX
from tests.pipeline.script_chain import (
    CATEGORICAL,
    FEATURES,
    ID_COLUMN,
    N_ESTIMATORS,
    NUMERIC,
    ROWS,
    TARGET,
    chain_paths,
    load_script,
    run_script,
)


@pytest.fixture(scope="module")
def chain(shared_dir, once) -> dict:
    return chain_paths(shared_dir, once)


SAMPLE_COLUMNS = [ID_COLUMN, "event_time", *FEATURES, TARGET]


def read_split(path) -> pd.DataFrame:
    return pd.read_csv(path)


def test_shipped_sample_data_is_the_generator_output(tmp_path):
    regenerated = tmp_path / "churn.csv"
    run_script("make_sample_data.py", "--output", str(regenerated))
    assert regenerated.read_bytes() == SAMPLE_DATA.read_bytes()
    assert SAMPLE_DATA.stat().st_size < 500_000
    frame = pd.read_csv(SAMPLE_DATA, dtype={ID_COLUMN: str})
    assert len(frame) == 2000
    # The columns of the example feature group, in its order.
    assert list(frame.columns) == SAMPLE_COLUMNS
    assert frame[ID_COLUMN].is_unique
    assert frame[ID_COLUMN].str.fullmatch(r"C\d{5}").all() and frame[ID_COLUMN].iloc[0] == "C00001"
    assert pd.api.types.is_float_dtype(frame["event_time"]) and frame["event_time"].notna().all()
    assert frame["event_time"].min() >= 1704067200.0
    for name in ("tenure_months", "support_calls", "senior_citizen"):
        assert pd.api.types.is_integer_dtype(frame[name]), name
    assert frame[TARGET].isna().sum() > 0 and frame["total_charges"].isna().sum() > 0
    assert frame["payment_method"].isna().sum() > 0
    assert set(frame[TARGET].dropna().unique()) == {0, 1}


def test_splits_have_expected_rows_header_and_raw_columns(chain):
    dataset = pd.read_csv(chain["dataset"], dtype={ID_COLUMN: str})
    assert "event_time" not in dataset.columns and ID_COLUMN in dataset.columns
    labelled = int(dataset[TARGET].notna().sum())
    assert labelled < ROWS  # the generator leaves some labels missing on purpose
    train = read_split(chain["out"] / "train" / "train.csv")
    validation = read_split(chain["out"] / "validation" / "validation.csv")
    test = read_split(chain["out"] / "test" / "test.csv")
    assert len(train) + len(validation) + len(test) == labelled
    for frame in (train, validation, test):
        # Header row: the features in contract order, then the target; no id, no event time.
        assert list(frame.columns) == [*FEATURES, TARGET]
        assert set(frame[TARGET].unique()) <= {0, 1}
        assert pd.api.types.is_integer_dtype(frame[TARGET])
        # Raw values: strings stay strings, nothing one-hot encoded.
        assert set(frame["contract"].unique()) <= {"month-to-month", "one-year", "two-year"}
    # Nothing imputed: the gaps of the raw data are still there.
    all_rows = pd.concat([train, validation, test])
    assert all_rows["total_charges"].isna().sum() == dataset.loc[dataset[TARGET].notna(), "total_charges"].isna().sum()
    assert all_rows["payment_method"].isna().sum() > 0
    first = (chain["out"] / "train" / "train.csv").read_text().splitlines()[0]
    assert first == ",".join([*FEATURES, TARGET])
    assert f"train={len(train)}" in chain["preprocess"]
    assert f"dropped {ROWS - labelled} rows without a label in 'churn'" in chain["preprocess"]


def test_preprocess_is_deterministic(chain, tmp_path):
    again = tmp_path / "again"
    run_script(
        "preprocess.py",
        "--input-dir",
        str(chain["dataset"].parent),
        "--output-dir",
        str(again),
        "--features",
        ",".join(FEATURES),
    )
    for name in (
        "train/train.csv",
        "validation/validation.csv",
        "test/test.csv",
        "baseline/statistics.json",
        "baseline/constraints.json",
        "baseline/feature_names.json",
    ):
        assert (again / name).read_bytes() == (chain["out"] / name).read_bytes(), name


def test_default_features_are_all_other_columns_in_file_order(chain, tmp_path):
    # The query's dataset has id, features, label; event_time is skipped if present.
    out = tmp_path / "out"
    run_script("preprocess.py", "--input-dir", str(chain["raw"].parent), "--output-dir", str(out))
    assert list(read_split(out / "test" / "test.csv").columns) == [*FEATURES, TARGET]


def test_baseline_statistics_schema(chain):
    statistics = json.loads((chain["out"] / "baseline" / "statistics.json").read_text())
    names = json.loads((chain["out"] / "baseline" / "feature_names.json").read_text())
    train = read_split(chain["out"] / "train" / "train.csv")
    assert statistics["version"] == 0.0
    assert statistics["dataset"]["item_count"] == len(train)
    features = statistics["features"]
    # Raw train features in contract order, named positionally; the target is not in it.
    assert [f["name"] for f in features] == [f"_c{i}" for i in range(len(FEATURES))]
    assert [f["name"] for f in names["features"]] == [f["name"] for f in features]
    assert [f["column"] for f in names["features"]] == FEATURES
    assert names["target"] == TARGET
    by_column = dict(zip(FEATURES, features, strict=True))
    assert by_column["tenure_months"]["inferred_type"] == "Integral"
    assert by_column["senior_citizen"]["inferred_type"] == "Integral"
    assert by_column["monthly_charges"]["inferred_type"] == "Fractional"
    # Gaps are not imputed: the baseline counts them, as Model Monitor would on raw requests.
    missing_total = int(train["total_charges"].isna().sum())
    assert missing_total > 0
    assert by_column["total_charges"]["numerical_statistics"]["common"] == {
        "num_present": len(train) - missing_total,
        "num_missing": missing_total,
    }
    for name in NUMERIC:
        numbers = by_column[name]["numerical_statistics"]
        assert set(numbers["common"]) == {"num_present", "num_missing"}
        assert numbers["common"]["num_present"] == int(train[name].notna().sum())
        for key in ("mean", "sum", "std_dev", "min", "max"):
            assert isinstance(numbers[key], float), key
        assert numbers["min"] <= numbers["mean"] <= numbers["max"]
        assert numbers["mean"] == pytest.approx(train[name].mean())
        kll = numbers["distribution"]["kll"]
        assert sum(b["count"] for b in kll["buckets"]) == numbers["common"]["num_present"]
        assert kll["sketch"]["parameters"]["k"] == 2048.0
    for name in CATEGORICAL:
        feature = by_column[name]
        assert feature["inferred_type"] == "String"
        strings = feature["string_statistics"]
        counts = train[name].value_counts()
        assert strings["distinct_count"] == float(len(counts))
        buckets = strings["distribution"]["categorical"]["buckets"]
        assert {b["value"]: b["count"] for b in buckets} == {k: float(v) for k, v in counts.items()}


def test_baseline_constraints_schema(chain):
    constraints = json.loads((chain["out"] / "baseline" / "constraints.json").read_text())
    train = read_split(chain["out"] / "train" / "train.csv")
    assert constraints["version"] == 0.0
    by_column = dict(zip(FEATURES, constraints["features"], strict=True))
    for name, feature in by_column.items():
        assert set(feature) >= {"name", "inferred_type", "completeness"}
        assert feature["completeness"] == pytest.approx(train[name].notna().mean())
    assert by_column["tenure_months"]["completeness"] == 1.0
    assert by_column["total_charges"]["completeness"] < 1.0
    for name in NUMERIC:
        assert by_column[name]["num_constraints"]["is_non_negative"] is True
    assert by_column["contract"]["string_constraints"]["domains"] == ["month-to-month", "one-year", "two-year"]
    config = constraints["monitoring_config"]
    assert config["evaluate_constraints"] == "Enabled"
    assert config["emit_metrics"] == "Enabled"
    assert config["distribution_constraints"]["perform_comparison"] == "Enabled"


def test_baseline_handles_string_and_missing_values():
    preprocess = load_script("preprocess.py")
    frame = pd.DataFrame({"plan": ["a", "b", None, "a"], "score": [1.5, None, 2.5, 3.0]})
    statistics, constraints = preprocess.build_baseline(frame)
    plan, score = statistics["features"]
    assert plan["inferred_type"] == "String"
    assert plan["string_statistics"]["common"] == {"num_present": 3, "num_missing": 1}
    assert plan["string_statistics"]["distinct_count"] == 2.0
    assert score["numerical_statistics"]["common"] == {"num_present": 3, "num_missing": 1}
    assert score["numerical_statistics"]["sum"] == 7.0
    plan_constraint = constraints["features"][0]
    assert plan_constraint["completeness"] == 0.75
    assert plan_constraint["string_constraints"]["domains"] == ["a", "b"]


def test_preprocess_rejects_bad_fractions(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS_DIR / "preprocess.py"),
            "--input-dir",
            str(tmp_path),
            "--test-fraction",
            "0.6",
            "--validation-fraction",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "must leave rows for training" in result.stderr


def test_training_writes_model_schema_and_parseable_metrics(chain):
    model_dir = chain["model_dir"]
    assert (model_dir / "model.joblib").is_file()
    assert (model_dir / "code" / "train.py").read_bytes() == (SCRIPTS_DIR / "train.py").read_bytes()
    schema = json.loads((model_dir / "features.json").read_text())
    assert schema == {"features": FEATURES, "target": TARGET, "numeric": NUMERIC, "categorical": CATEGORICAL}
    output = chain["train"]
    match = re.search(METRIC_REGEX.format(split="validation", metric="auc"), output)
    assert match, output
    assert 0.6 < float(match.group(1)) <= 1.0
    assert re.search(METRIC_REGEX.format(split="train", metric="f1"), output)
    assert f"checkpoint: saved {N_ESTIMATORS}/{N_ESTIMATORS} estimators" in output
    assert (chain["checkpoints"] / "checkpoint.joblib").is_file()


def test_model_is_a_pipeline_fitted_on_raw_columns(chain):
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import Pipeline

    model = joblib.load(chain["model_dir"] / "model.joblib")
    assert isinstance(model, Pipeline)
    assert isinstance(model.steps[0][1], ColumnTransformer)
    classifier = model.steps[-1][1]
    assert isinstance(classifier, GradientBoostingClassifier)
    assert classifier.n_estimators_ == N_ESTIMATORS
    assert list(model.feature_names_in_) == FEATURES
    # The encoder learnt its categories from the train split only.
    train = read_split(chain["out"] / "train" / "train.csv")
    encoder = model.named_steps["features"].named_transformers_["categorical"].named_steps["onehot"]
    learnt = {name: set(categories) for name, categories in zip(CATEGORICAL, encoder.categories_, strict=True)}
    assert learnt["contract"] == set(train["contract"].unique())
    assert learnt["payment_method"] == set(train["payment_method"].dropna().unique()) | {"missing"}


def test_evaluation_report_has_the_model_quality_format(chain):
    report = json.loads(chain["evaluation"].read_text())
    assert set(report) == {"binary_classification_metrics"}
    metrics = report["binary_classification_metrics"]
    scalars = [
        "recall",
        "precision",
        "accuracy",
        "recall_best_constant_classifier",
        "precision_best_constant_classifier",
        "accuracy_best_constant_classifier",
        "true_positive_rate",
        "true_negative_rate",
        "false_positive_rate",
        "false_negative_rate",
        "auc",
        "f0_5",
        "f1",
        "f2",
        "f0_5_best_constant_classifier",
        "f1_best_constant_classifier",
        "f2_best_constant_classifier",
    ]
    curves = ["receiver_operating_characteristic_curve", "precision_recall_curve"]
    assert set(metrics) == {"confusion_matrix", *scalars, *curves}
    for name in scalars:
        assert set(metrics[name]) == {"value", "standard_deviation"}, name
        assert isinstance(metrics[name]["value"], float), name
        assert 0.0 <= metrics[name]["value"] <= 1.0, name
        assert metrics[name]["standard_deviation"] >= 0.0, name
    assert metrics["auc"]["value"] > 0.6
    matrix = metrics["confusion_matrix"]
    test = read_split(chain["out"] / "test" / "test.csv")
    assert set(matrix) == {"0", "1"} and all(set(matrix[a]) == {"0", "1"} for a in matrix)
    assert sum(matrix[a][p] for a in ("0", "1") for p in ("0", "1")) == len(test)
    assert matrix["1"]["0"] + matrix["1"]["1"] == int(test[TARGET].sum())
    tp, fn, fp, tn = matrix["1"]["1"], matrix["1"]["0"], matrix["0"]["1"], matrix["0"]["0"]
    assert metrics["recall"]["value"] == pytest.approx(tp / (tp + fn))
    assert metrics["precision"]["value"] == pytest.approx(tp / (tp + fp))
    assert metrics["accuracy"]["value"] == pytest.approx((tp + tn) / len(test))
    assert metrics["false_positive_rate"]["value"] == pytest.approx(fp / (fp + tn))
    assert metrics["true_negative_rate"]["value"] == pytest.approx(tn / (fp + tn))
    # Best constant classifier: always "churn" (as Model Monitor reports it).
    rate = test[TARGET].mean()
    assert metrics["recall_best_constant_classifier"]["value"] == 1.0
    assert metrics["precision_best_constant_classifier"]["value"] == pytest.approx(rate)
    assert metrics["f1_best_constant_classifier"]["value"] == pytest.approx(2 * rate / (rate + 1))
    roc = metrics["receiver_operating_characteristic_curve"]
    assert len(roc["false_positive_rates"]) == len(roc["true_positive_rates"]) > 2
    assert roc["false_positive_rates"][0] == 0.0 and roc["true_positive_rates"][-1] == 1.0
    pr = metrics["precision_recall_curve"]
    assert len(pr["precisions"]) == len(pr["recalls"]) > 2
    assert pr["recalls"] == sorted(pr["recalls"])
    assert "test:auc=" in chain["evaluate"]


def test_evaluate_refuses_archive_escaping_its_directory(tmp_path, chain):
    archive_dir = tmp_path / "model"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "model.tar.gz", "w:gz") as tar:
        data = b"x"
        info = tarfile.TarInfo("../escape.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS_DIR / "evaluate.py"),
            "--model-dir",
            str(archive_dir),
            "--test-dir",
            str(chain["out"] / "test"),
            "--output-dir",
            str(tmp_path / "eval"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "refusing" in result.stderr
    assert not (tmp_path / "escape.txt").exists()


def test_train_source_tarball_is_deterministic(tmp_path):
    first = build_train_source_tarball(tmp_path / "a")
    second = build_train_source_tarball(tmp_path / "b")
    assert first.name == "sourcedir.tar.gz"
    assert first.read_bytes() == second.read_bytes() == train_source_tarball_bytes()
    with tarfile.open(first) as tar:
        assert tar.getnames() == ["train.py"]
        member = tar.getmember("train.py")
        assert member.mtime == 0 and member.uid == 0
        assert tar.extractfile(member).read() == (SCRIPTS_DIR / "train.py").read_bytes()


def _old_python() -> str | None:
    """A Python 3.8 interpreter that actually runs (pyenv shims may exist but refuse)."""
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))
    candidates = [shutil.which("python3.8"), *pyenv]
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "-c", "pass"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return candidate
    return None


def test_step_scripts_compile_on_the_containers_python():
    # The scikit-learn containers run an older Python than this repo; ruff's
    # py311 upgrades must not leak into the step scripts.
    python = _old_python()
    if python is None:
        pytest.skip("no working python3.8 on this machine")
    code = "import sys; [compile(open(p).read(), p, 'exec') for p in sys.argv[1:]]"
    scripts = [str(SCRIPTS_DIR / name) for name in ("preprocess.py", "train.py", "evaluate.py")]
    result = subprocess.run([python, "-c", code, *scripts], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
