"""Evaluate the trained churn model on the held-out test split.

Runs in the SageMaker scikit-learn processing container and locally in tests.
Defaults:

- ``--model-dir /opt/ml/processing/model``: holds ``model.tar.gz`` from the
  training job (extracted here; ``model.joblib`` and ``features.json`` inside);
- ``--test-dir /opt/ml/processing/test``: CSV with a header row, the raw
  features and the target (what ``preprocess.py`` writes);
- ``--output-dir /opt/ml/processing/evaluation``: gets ``evaluation.json``;
- ``--validation-dir`` (optional): the validation split; with it the step also
  writes the **model-quality baseline** under ``model_quality/``: the
  predictions on the validation split with their labels (``predictions.csv``:
  ``probability,prediction,label``), their metrics (``statistics.json``, the
  format above) and ``constraints.json`` in Model Monitor's model-quality
  format, one ``LessThanThreshold`` constraint per ``--quality-thresholds``
  entry (``auc=0.75,accuracy=0.7``: the approval policy's thresholds, so live
  quality alarms where an approval would have been refused);
- ``--threshold 0.5`` (score cut-off for the label metrics),
  ``--bootstrap-rounds 200`` and ``--seed 42`` (for the standard deviations).

Test labels must be binary (0/1, "0"/"1", true/false): anything else stops
the step with exit code 2 and one line naming the column and the bad values.

``evaluation.json`` is in the SageMaker Model Monitor model-quality format
(``binary_classification_metrics``): ``confusion_matrix`` (``{"0": {"0": n,
"1": n}, "1": {...}}``, actual then predicted label), ``recall``,
``precision``, ``accuracy``, ``true_positive_rate``, ``true_negative_rate``,
``false_positive_rate``, ``false_negative_rate``, ``auc``, ``f0_5``, ``f1``,
``f2``, the ``*_best_constant_classifier`` variants of recall, precision,
accuracy and the F-scores (the constant classifier that always predicts the
positive class, as Model Monitor reports it), each as ``{"value": x,
"standard_deviation": s}``, and the curves
``receiver_operating_characteristic_curve`` (``false_positive_rates``,
``true_positive_rates``) and ``precision_recall_curve`` (``precisions``,
``recalls``, by increasing recall).

The pipeline's condition step and the approval guard read
``binary_classification_metrics.<metric>.value``. Standard deviations come
from a seeded bootstrap of the test set, so the same model and data always
give the same file. Undefined values (e.g. AUC on a one-class test set) are
reported as 0.0 so the JSON stays valid.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import tarfile
import tempfile

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

MODEL_FILE = "model.joblib"
FEATURES_FILE = "features.json"
EXIT_BAD_DATA = 2
TRUE_LABELS = {"1", "1.0", "true"}
FALSE_LABELS = {"0", "0.0", "false"}
# Metrics that get {"value", "standard_deviation"}, in the order of the documented format.
SCALAR_METRICS = (
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
)


class BadData(Exception):
    """The test data breaks the contract; the message is one line."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate the churn model.")
    parser.add_argument("--model-dir", default="/opt/ml/processing/model")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    parser.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--bootstrap-rounds", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--validation-dir", default=None)
    parser.add_argument("--quality-thresholds", default="", help="metric=threshold,... for constraints.json")
    return parser.parse_args(argv)


def quality_thresholds(text: str) -> dict[str, float]:
    """``auc=0.75,accuracy=0.7`` -> ``{"auc": 0.75, "accuracy": 0.7}``; BadData naming a bad entry."""
    thresholds = {}
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        name, _, value = entry.partition("=")
        try:
            thresholds[name.strip()] = float(value)
        except ValueError:
            raise BadData(f"--quality-thresholds entry {entry!r} is not metric=number") from None
        if name.strip() not in SCALAR_METRICS:
            raise BadData(f"--quality-thresholds: {name.strip()!r} is not a binary classification metric")
    return thresholds


def model_quality_constraints(thresholds: dict[str, float]) -> dict:
    """Model Monitor's model-quality constraints: a breach when a live metric falls below its threshold."""
    return {
        "version": 0.0,
        "binary_classification_constraints": {
            name: {"threshold": value, "comparison_operator": "LessThanThreshold"}
            for name, value in sorted(thresholds.items())
        },
    }


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
    """(pipeline, schema) from ``model.tar.gz`` in ``model_dir``, or from the extracted files."""
    archive = os.path.join(model_dir, "model.tar.gz")
    if os.path.exists(archive):
        _safe_extract(archive, workdir)
        model_dir = workdir
    with open(os.path.join(model_dir, FEATURES_FILE)) as handle:
        schema = json.load(handle)
    return joblib.load(os.path.join(model_dir, MODEL_FILE)), schema


def binary_labels(series: pd.Series, column: str) -> np.ndarray:
    text = series.astype(str).str.strip().str.lower()
    bad = sorted(set(text[~text.isin(TRUE_LABELS | FALSE_LABELS)]))
    if bad:
        shown = ", ".join(repr(v) for v in bad[:10]) + (f" (and {len(bad) - 10} more)" if len(bad) > 10 else "")
        raise BadData(f"label column {column!r} must be binary (0/1 or true/false); found {shown}")
    return text.isin(TRUE_LABELS).astype("int64").to_numpy()


def read_test(test_dir: str, schema: dict) -> tuple[pd.DataFrame, np.ndarray]:
    paths = sorted(glob.glob(os.path.join(test_dir, "**", "*.csv"), recursive=True))
    if not paths:
        raise BadData(f"no test CSV files under {test_dir}")
    frame = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    target = schema["target"]
    missing = [c for c in [*schema["features"], target] if c not in frame.columns]
    if missing:
        raise BadData(f"test data lacks column(s) {missing}; has {list(frame.columns)}")
    labels = binary_labels(frame[target], target)
    return frame[list(schema["features"])], labels


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


def _f_beta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    return _ratio((1 + b2) * precision * recall, b2 * precision + recall)


def _counts(labels: np.ndarray, predicted: np.ndarray) -> dict[str, int]:
    return {
        "tp": int(np.sum((labels == 1) & (predicted == 1))),
        "fn": int(np.sum((labels == 1) & (predicted == 0))),
        "fp": int(np.sum((labels == 0) & (predicted == 1))),
        "tn": int(np.sum((labels == 0) & (predicted == 0))),
    }


def _scores(labels: np.ndarray, probabilities: np.ndarray, threshold: float) -> dict[str, float]:
    c = _counts(labels, (probabilities >= threshold).astype("int64"))
    total = c["tp"] + c["fn"] + c["fp"] + c["tn"]
    positives, negatives = c["tp"] + c["fn"], c["fp"] + c["tn"]
    recall = _ratio(c["tp"], positives)
    precision = _ratio(c["tp"], c["tp"] + c["fp"])
    # The constant classifier that predicts the positive class for every row.
    constant_recall = 1.0 if positives else 0.0
    constant_precision = _ratio(positives, total)
    result = {
        "recall": recall,
        "precision": precision,
        "accuracy": _ratio(c["tp"] + c["tn"], total),
        "recall_best_constant_classifier": constant_recall,
        "precision_best_constant_classifier": constant_precision,
        "accuracy_best_constant_classifier": _ratio(positives, total),
        "true_positive_rate": recall,
        "true_negative_rate": _ratio(c["tn"], negatives),
        "false_positive_rate": _ratio(c["fp"], negatives),
        "false_negative_rate": _ratio(c["fn"], positives),
        # AUC needs both classes; 0.0 otherwise so JSON stays valid.
        "auc": float(roc_auc_score(labels, probabilities)) if positives and negatives else 0.0,
    }
    for name, beta in (("f0_5", 0.5), ("f1", 1.0), ("f2", 2.0)):
        result[name] = _f_beta(precision, recall, beta)
        result[f"{name}_best_constant_classifier"] = _f_beta(constant_precision, constant_recall, beta)
    return {name: float(value) if math.isfinite(value) else 0.0 for name, value in result.items()}


def _curves(labels: np.ndarray, probabilities: np.ndarray) -> dict:
    if len(np.unique(labels)) < 2:
        return {
            "receiver_operating_characteristic_curve": {"false_positive_rates": [], "true_positive_rates": []},
            "precision_recall_curve": {"precisions": [], "recalls": []},
        }
    fpr, tpr, _ = roc_curve(labels, probabilities)
    precisions, recalls, _ = precision_recall_curve(labels, probabilities)
    # scikit-learn lists the PR curve by decreasing recall; the format reads left to right.
    return {
        "receiver_operating_characteristic_curve": {
            "false_positive_rates": [float(v) for v in fpr],
            "true_positive_rates": [float(v) for v in tpr],
        },
        "precision_recall_curve": {
            "precisions": [float(v) for v in precisions[::-1]],
            "recalls": [float(v) for v in recalls[::-1]],
        },
    }


def evaluate(labels, probabilities, threshold: float, rounds: int, seed: int) -> dict:
    point = _scores(labels, probabilities, threshold)
    rng = np.random.RandomState(seed)
    samples: dict[str, list[float]] = {name: [] for name in point}
    for _ in range(rounds):
        index = rng.randint(0, len(labels), size=len(labels))
        for name, value in _scores(labels[index], probabilities[index], threshold).items():
            samples[name].append(value)
    c = _counts(labels, (probabilities >= threshold).astype("int64"))
    metrics: dict = {"confusion_matrix": {"0": {"0": c["tn"], "1": c["fp"]}, "1": {"0": c["fn"], "1": c["tp"]}}}
    curves = _curves(labels, probabilities)
    for name in SCALAR_METRICS:
        metrics[name] = {
            "value": point[name],
            "standard_deviation": float(np.std(samples[name])) if rounds else 0.0,
        }
        if name == "false_negative_rate":
            metrics.update(curves)
    return {"binary_classification_metrics": metrics}


def run(args: argparse.Namespace) -> dict:
    thresholds = quality_thresholds(args.quality_thresholds)
    with tempfile.TemporaryDirectory() as workdir:
        model, schema = load_model(args.model_dir, workdir)
        features, labels = read_test(args.test_dir, schema)
        probabilities = model.predict_proba(coerce_features(features, schema))[:, 1]
        if args.validation_dir:
            write_quality_baseline(model, schema, args, thresholds)
    return evaluate(labels, probabilities, args.threshold, args.bootstrap_rounds, args.seed)


def write_quality_baseline(model, schema: dict, args: argparse.Namespace, thresholds: dict[str, float]) -> None:
    """Predictions on the validation split with labels, their metrics, and the constraints (``model_quality/``)."""
    features, labels = read_test(args.validation_dir, schema)
    probabilities = model.predict_proba(coerce_features(features, schema))[:, 1]
    directory = os.path.join(args.output_dir, "model_quality")
    os.makedirs(directory, exist_ok=True)
    pd.DataFrame(
        {"probability": probabilities, "prediction": (probabilities >= args.threshold).astype("int64"), "label": labels}
    ).to_csv(os.path.join(directory, "predictions.csv"), index=False)
    documents = {
        "statistics.json": evaluate(labels, probabilities, args.threshold, args.bootstrap_rounds, args.seed),
        "constraints.json": model_quality_constraints(thresholds),
    }
    for name, document in documents.items():
        with open(os.path.join(directory, name), "w") as handle:
            json.dump(document, handle, indent=2)
            handle.write("\n")


def coerce_features(frame: pd.DataFrame, schema: dict) -> pd.DataFrame:
    """The dtypes the model was fitted with (as train.py's coerce_frame): numbers as float, the rest as text."""
    numeric = set(schema["numeric"])
    out = {}
    for name in schema["features"]:
        series = frame[name]
        if name in numeric:
            out[name] = pd.to_numeric(series, errors="raise").astype("float64").to_numpy()
        else:
            values = series.astype(object).to_numpy().copy()
            missing = pd.isna(values) | np.array([isinstance(v, str) and not v.strip() for v in values], dtype=bool)
            values[missing] = np.nan
            values[~missing] = [str(v) for v in values[~missing]]
            out[name] = values
    return pd.DataFrame(out, columns=list(schema["features"]), index=frame.index)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except BadData as error:
        print(f"evaluate: {error}", file=sys.stderr)
        return EXIT_BAD_DATA

    os.makedirs(args.output_dir, exist_ok=True)
    path = os.path.join(args.output_dir, "evaluation.json")
    with open(path, "w") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    summary = report["binary_classification_metrics"]
    for name in ("auc", "accuracy", "precision", "recall", "f1"):
        print(f"test:{name}={summary[name]['value']:.6f}")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
