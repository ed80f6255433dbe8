"""Evaluate the trained churn model on the held-out test split.

Runs in the SageMaker scikit-learn processing container and locally in tests.
Defaults:

- ``--model-dir /opt/ml/processing/model``: holds ``model.tar.gz`` from the
  training job (extracted here; ``model.joblib`` inside);
- ``--test-dir /opt/ml/processing/test``: header-less CSV, target first;
- ``--output-dir /opt/ml/processing/evaluation``: gets ``evaluation.json``;
- ``--threshold 0.5`` (score cut-off for the label metrics),
  ``--bootstrap-rounds 200`` and ``--seed 42`` (for the standard deviations).

``evaluation.json`` uses the SageMaker model-quality metrics shape::

    {"binary_classification_metrics": {
        "auc": {"value": 0.87, "standard_deviation": 0.01}, "accuracy": {...},
        "precision": {...}, "recall": {...}, "f1": {...},
        "confusion_matrix": {"0": {"0": n, "1": n}, "1": {"0": n, "1": n}}}}

The pipeline's condition step reads ``binary_classification_metrics.<metric>.value``.
Standard deviations come from a seeded bootstrap of the test set, so the same
model and data always give the same file.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tarfile
import tempfile

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
)

MODEL_FILE = "model.joblib"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate the churn model.")
    parser.add_argument("--model-dir", default="/opt/ml/processing/model")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    parser.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--bootstrap-rounds", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def _safe_extract(archive: str, destination: str) -> None:
    """Extract ``archive`` refusing members that would land outside ``destination``."""
    root = os.path.realpath(destination)
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            target = os.path.realpath(os.path.join(root, member.name))
            if target != root and not target.startswith(root + os.sep):
                raise SystemExit(f"refusing to extract {member.name!r} outside {destination}")
            if member.issym() or member.islnk():
                raise SystemExit(f"refusing to extract link {member.name!r}")
        tar.extractall(root)


def load_model(model_dir: str, workdir: str):
    archive = os.path.join(model_dir, "model.tar.gz")
    if os.path.exists(archive):
        _safe_extract(archive, workdir)
        return joblib.load(os.path.join(workdir, MODEL_FILE))
    # Already-extracted artifacts (handy locally).
    return joblib.load(os.path.join(model_dir, MODEL_FILE))


def read_test(test_dir: str) -> tuple[np.ndarray, np.ndarray]:
    paths = sorted(glob.glob(os.path.join(test_dir, "**", "*.csv"), recursive=True))
    if not paths:
        raise SystemExit(f"no test CSV files under {test_dir}")
    values = pd.concat([pd.read_csv(p, header=None) for p in paths], ignore_index=True).to_numpy(dtype="float64")
    return values[:, 1:], values[:, 0].astype("int64")


def _scores(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = (probabilities >= threshold).astype("int64")
    result = {
        "accuracy": accuracy_score(labels, predicted),
        "precision": precision_score(labels, predicted, zero_division=0),
        "recall": recall_score(labels, predicted, zero_division=0),
        "f1": f1_score(labels, predicted, zero_division=0),
        # AUC needs both classes; report NaN-free 0.0 otherwise so JSON stays valid.
        "auc": roc_auc_score(labels, probabilities) if len(np.unique(labels)) == 2 else 0.0,
    }
    return {name: float(value) for name, value in result.items()}


def evaluate(labels, probabilities, threshold: float, rounds: int, seed: int) -> dict:
    point = _scores(labels, probabilities, threshold)
    rng = np.random.RandomState(seed)
    samples: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(rounds):
        index = rng.randint(0, len(labels), size=len(labels))
        for name, value in _scores(labels[index], probabilities[index], threshold).items():
            samples[name].append(value)
    metrics = {
        name: {
            "value": value,
            "standard_deviation": float(np.std(samples[name])) if rounds else 0.0,
        }
        for name, value in point.items()
    }
    matrix = confusion_matrix(labels, (probabilities >= threshold).astype("int64"), labels=[0, 1])
    metrics["confusion_matrix"] = {
        str(actual): {str(pred): int(matrix[actual][pred]) for pred in (0, 1)} for actual in (0, 1)
    }
    return {"binary_classification_metrics": metrics}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    features, labels = read_test(args.test_dir)
    with tempfile.TemporaryDirectory() as workdir:
        model = load_model(args.model_dir, workdir)
        probabilities = model.predict_proba(features)[:, 1]
    report = evaluate(labels, probabilities, args.threshold, args.bootstrap_rounds, args.seed)

    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "evaluation.json")
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
        handle.write("\n")
    summary = report["binary_classification_metrics"]
    for name in ("auc", "accuracy", "precision", "recall", "f1"):
        print(f"test:{name}={summary[name]['value']:.6f}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
