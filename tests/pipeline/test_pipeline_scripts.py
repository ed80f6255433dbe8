"""The step scripts, run for real as subprocesses on small data, as the containers would.

make_sample_data.py -> preprocess.py -> train.py -> tar model -> evaluate.py, once
once per test session in a temporary directory; the tests then check what each wrote.
"""

from __future__ import annotations

import csv
import glob
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from pipeline_definitions.sources import (
    SAMPLE_DATA,
    SCRIPTS_DIR,
    build_train_source_tarball,
    train_source_tarball_bytes,
)
from pipeline_definitions.tabular import METRIC_REGEX

ROWS = 1200
SEED = 3


def run_script(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(SCRIPTS_DIR / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"step_{name[:-3]}", SCRIPTS_DIR / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_chain(root: Path) -> dict:
    """Run every step script in turn under ``root``; return their standard outputs."""
    raw_dir = root / "raw"
    raw_dir.mkdir(parents=True)
    raw = raw_dir / "churn.csv"
    run_script("make_sample_data.py", "--output", str(raw), "--rows", str(ROWS), "--seed", str(SEED))

    out = root / "processed"
    preprocess = run_script("preprocess.py", "--input-dir", str(raw_dir), "--output-dir", str(out))

    model_dir = root / "model"
    # Only SM_* variables, as the training toolkit sets them: the defaults come from env.
    env = {
        "PATH": "/usr/bin:/bin",
        "SM_CHANNEL_TRAIN": str(out / "train"),
        "SM_CHANNEL_VALIDATION": str(out / "validation"),
        "SM_MODEL_DIR": str(model_dir),
    }
    train = run_script("train.py", "--n_estimators", "60", "--max-depth", "3", env=env)

    # What SageMaker does with /opt/ml/model after training.
    archive_dir = root / "model-artifacts"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "model.tar.gz", "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)

    evaluate = run_script(
        "evaluate.py",
        "--model-dir",
        str(archive_dir),
        "--test-dir",
        str(out / "test"),
        "--output-dir",
        str(root / "evaluation"),
        "--bootstrap-rounds",
        "20",
    )
    return {"preprocess": preprocess.stdout, "train": train.stdout, "evaluate": evaluate.stdout}


@pytest.fixture(scope="session")
def run(shared_dir, once) -> dict:
    """Paths and standard outputs of one run of the chain (shared by all workers)."""
    root = shared_dir / "step-chain"
    stdout = once("step-chain", lambda: run_chain(root))
    return {
        "raw": root / "raw" / "churn.csv",
        "out": root / "processed",
        "model_dir": root / "model",
        "evaluation": root / "evaluation" / "evaluation.json",
        **stdout,
    }


def read_split(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, header=None)


def test_shipped_sample_data_is_the_generator_output(tmp_path):
    regenerated = tmp_path / "churn.csv"
    run_script("make_sample_data.py", "--output", str(regenerated))
    assert regenerated.read_bytes() == SAMPLE_DATA.read_bytes()
    assert SAMPLE_DATA.stat().st_size < 500_000
    frame = pd.read_csv(SAMPLE_DATA)
    assert len(frame) == 3000
    assert frame["churn"].isna().sum() > 0 and frame["total_charges"].isna().sum() > 0
    assert {"contract", "payment_method", "internet_service"} <= set(frame.columns)


def test_splits_have_expected_rows_and_target_first(run):
    raw = pd.read_csv(run["raw"])
    labelled = int(raw["churn"].notna().sum())
    assert labelled < ROWS  # the generator leaves some labels missing on purpose
    train = read_split(run["out"] / "train" / "train.csv")
    validation = read_split(run["out"] / "validation" / "validation.csv")
    test = read_split(run["out"] / "test" / "test.csv")
    assert len(test) == round(labelled * 0.15)
    assert len(validation) == round(labelled * 0.15)
    assert len(train) + len(validation) + len(test) == labelled
    for frame in (train, validation, test):
        assert set(frame[0].unique()) <= {0, 1}
        assert frame.notna().all().all()
        assert frame.shape[1] == train.shape[1]
    # No header row: the first line is numbers only.
    first = next(csv.reader(io.StringIO((run["out"] / "train" / "train.csv").read_text())))
    assert all(re.fullmatch(r"-?[0-9.eE+-]+", cell) for cell in first)
    assert f"train={len(train)}" in run["preprocess"]


def test_preprocess_is_deterministic(run, tmp_path):
    again = tmp_path / "again"
    run_script("preprocess.py", "--input-dir", str(run["raw"].parent), "--output-dir", str(again))
    for name in ("train/train.csv", "test/test.csv", "baseline/statistics.json", "baseline/constraints.json"):
        assert (again / name).read_bytes() == (run["out"] / name).read_bytes(), name


def test_baseline_statistics_schema(run):
    statistics = json.loads((run["out"] / "baseline" / "statistics.json").read_text())
    names = json.loads((run["out"] / "baseline" / "feature_names.json").read_text())
    train = read_split(run["out"] / "train" / "train.csv")
    assert statistics["version"] == 0.0
    assert statistics["dataset"]["item_count"] == len(train)
    features = statistics["features"]
    assert [f["name"] for f in features] == [f"_c{i}" for i in range(train.shape[1] - 1)]
    assert [f["name"] for f in names["features"]] == [f["name"] for f in features]
    assert names["target"] == "churn"
    columns = {f["column"]: f["name"] for f in names["features"]}
    assert "contract_month_to_month" in columns and "tenure_months" in columns
    by_column = {column: features[int(name[2:])] for column, name in columns.items()}
    assert by_column["tenure_months"]["inferred_type"] == "Integral"
    assert by_column["monthly_charges"]["inferred_type"] == "Fractional"
    assert by_column["total_charges"]["numerical_statistics"]["common"]["num_missing"] == 0  # imputed
    for feature in features:
        assert feature["inferred_type"] in ("Integral", "Fractional")
        numbers = feature["numerical_statistics"]
        assert set(numbers["common"]) == {"num_present", "num_missing"}
        assert numbers["common"]["num_present"] == len(train)
        for key in ("mean", "sum", "std_dev", "min", "max"):
            assert isinstance(numbers[key], float), key
        assert numbers["min"] <= numbers["mean"] <= numbers["max"]
        kll = numbers["distribution"]["kll"]
        assert sum(b["count"] for b in kll["buckets"]) == len(train)
        assert kll["sketch"]["parameters"]["k"] == 2048.0


def test_baseline_constraints_schema(run):
    constraints = json.loads((run["out"] / "baseline" / "constraints.json").read_text())
    assert constraints["version"] == 0.0
    for feature in constraints["features"]:
        assert set(feature) >= {"name", "inferred_type", "completeness"}
        assert feature["completeness"] == 1.0
        assert feature["num_constraints"]["is_non_negative"] is True
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


def test_training_writes_model_and_parseable_metrics(run):
    assert (run["model_dir"] / "model.joblib").is_file()
    assert (run["model_dir"] / "code" / "train.py").read_bytes() == (SCRIPTS_DIR / "train.py").read_bytes()
    output = run["train"]
    match = re.search(METRIC_REGEX.format(split="validation", metric="auc"), output)
    assert match, output
    assert 0.6 < float(match.group(1)) <= 1.0


def test_model_serves_through_model_fn_and_predict_fn(run):
    train = load_script("train.py")
    model = train.model_fn(str(run["model_dir"]))
    test = read_split(run["out"] / "test" / "test.csv")
    probabilities = train.predict_fn(test.iloc[:5, 1:].to_numpy(), model)
    assert probabilities.shape == (5,)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert train.predict_fn(test.iloc[0, 1:].to_numpy(), model).shape == (1,)


def test_evaluation_report(run):
    report = json.loads(run["evaluation"].read_text())
    metrics = report["binary_classification_metrics"]
    for name in ("auc", "accuracy", "precision", "recall", "f1"):
        assert set(metrics[name]) == {"value", "standard_deviation"}, name
        assert 0.0 <= metrics[name]["value"] <= 1.0
        assert metrics[name]["standard_deviation"] >= 0.0
    assert metrics["auc"]["value"] > 0.6
    matrix = metrics["confusion_matrix"]
    test_rows = len(read_split(run["out"] / "test" / "test.csv"))
    assert sum(matrix[a][p] for a in ("0", "1") for p in ("0", "1")) == test_rows
    assert "test:auc=" in run["evaluate"]


def test_evaluate_refuses_archive_escaping_its_directory(tmp_path, run):
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
            str(run["out"] / "test"),
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
