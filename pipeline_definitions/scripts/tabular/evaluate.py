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
  ``--bootstrap-rounds 200`` and ``--seed 42`` (for the standard deviations);
- ``--bias-config`` (optional JSON ``{"facets": [{"name", "values" | "threshold"}],
  "label_values": [1], "probability_threshold": 0.5}``; needs
  ``--validation-dir``): writes the **bias baseline** under ``bias/``, see
  *Bias* below;
- ``--explainability-config`` (optional JSON ``{"num_samples", "agg_method"}``;
  needs ``--validation-dir``): writes the **SHAP baseline** under
  ``explainability/``, see *Explainability*; ``--shap-rows 100`` validation
  rows (a seeded sample) are explained.

Bias (SageMaker Clarify's definitions and short names, on the validation
split; facet group *d*: rows whose feature is one of ``values``, or above
``threshold``; *a*: the other rows; a label or prediction is positive when it
equals ``label_values[0]``, a prediction is 1 when its score is at least
``probability_threshold``): pre-training **CI** = (n_a - n_d) / (n_a + n_d)
and **DPL** = q_a - q_d (q: the share of positive labels); post-training
**DPPL** = q'_a - q'_d (q': the share of positive predictions), **DI** = q'_d
/ q'_a and **AD** = accuracy_a - accuracy_d. A metric that is undefined (an
empty group, DI with q'_a = 0) is ``null`` in the report and left out of the
constraints. Files: ``analysis_config.json`` (Clarify's analysis
configuration, which Model Monitor's bias job reads: ``text/csv``, headers =
features then label, label, ``label_values_or_threshold``, ``facet``,
``probability_threshold``, the methods above), ``pre_training_report.json``
and ``post_training_report.json`` (Clarify's ``analysis.json`` sections
``pre_training_bias_metrics`` / ``post_training_bias_metrics``), and
``pre_training_constraints.json`` / ``post_training_constraints.json`` (the
same metrics, the form Model Monitor compares a run's ``analysis.json`` with:
a live metric further from zero than its baseline is a violation).

Explainability: Shapley values of each explained row's churn score against
one **baseline row** (numeric features: the validation median; text: the most
frequent value), i.e. the quantity Clarify's Kernel SHAP estimates when given
that baseline. With up to 10 features they are computed exactly (every
coalition); with more, from ``num_samples`` seeded random permutations per row
(the permutation-sampling estimator). Global values aggregate the rows with
``agg_method`` (``mean_abs``: mean of absolute values, ``median``, ``mean_sq``:
mean of squares). Files: ``analysis_config.json`` (Clarify: headers = the
features, ``methods.shap`` with the baseline row, ``num_samples``,
``agg_method``; ``predictor`` CSV in and out, no ``model_name``: Model Monitor
fills in the endpoint's model), ``report.json`` and ``constraints.json``
(Clarify's ``explanations.kernel_shap.label0``: ``global_shap_values`` and
``expected_value``, the score of the baseline row; Model Monitor flags a run
whose global SHAP ranking scores an nDCG below 0.9 against it) and
``method.json`` (how the values were computed).

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
    parser.add_argument("--bias-config", default="", help="JSON: facets, label_values, probability_threshold")
    parser.add_argument("--explainability-config", default="", help="JSON: num_samples, agg_method")
    parser.add_argument("--shap-rows", type=int, default=100)
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
        if args.bias_config or args.explainability_config:
            if not args.validation_dir:
                raise BadData("--bias-config and --explainability-config need --validation-dir")
            frame, validation_labels = read_test(args.validation_dir, schema)
            if args.bias_config:
                write_bias_baseline(model, schema, frame, validation_labels, _json_arg(args.bias_config), args)
            if args.explainability_config:
                config = _json_arg(args.explainability_config)
                write_explainability_baseline(model, schema, frame, config, args)
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


# --------------------------------------------------------------------------- bias

PRE_TRAINING = (("CI", "Class Imbalance (CI)"), ("DPL", "Difference in Positive Proportions in Labels (DPL)"))
POST_TRAINING = (
    ("DPPL", "Difference in Positive Proportions in Predicted Labels (DPPL)"),
    ("DI", "Disparate Impact (DI)"),
    ("AD", "Accuracy Difference (AD)"),
)


def _json_arg(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        raise BadData(f"not a JSON object: {text[:80]!r}") from None
    if not isinstance(value, dict):
        raise BadData(f"not a JSON object: {text[:80]!r}")
    return value


def facet_group(series: pd.Series, facet: dict) -> np.ndarray:
    """Rows of the sensitive group: the feature is one of ``facet["values"]``, or above ``facet["threshold"]``."""
    numeric = pd.to_numeric(series, errors="coerce")
    if "threshold" in facet:
        return (numeric > float(facet["threshold"])).to_numpy(dtype=bool)
    values = facet["values"]
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    by_number = numeric.isin(numbers).to_numpy(dtype=bool) if numbers else np.zeros(len(series), dtype=bool)
    by_text = series.astype(str).str.strip().isin({str(v).strip() for v in values}).to_numpy(dtype=bool)
    return by_number | by_text


def _share(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _difference(left: float | None, right: float | None) -> float | None:
    return None if left is None or right is None else left - right


def bias_metrics(labels: np.ndarray, predicted: np.ndarray, group: np.ndarray, positive: int) -> dict:
    """Clarify's CI, DPL (pre-training) and DPPL, DI, AD (post-training) of facet group ``group`` (d) vs the rest (a).

    ``labels`` and ``predicted`` are 0/1; ``positive`` is the label value of the positive outcome.
    """
    outcome, forecast, d = labels == positive, predicted == positive, group.astype(bool)
    a = ~d
    n_a, n_d = int(a.sum()), int(d.sum())
    q_a, q_d = _share(outcome[a]), _share(outcome[d])
    p_a, p_d = _share(forecast[a]), _share(forecast[d])
    correct = outcome == forecast
    return {
        "CI": _ratio(n_a - n_d, n_a + n_d) if n_a + n_d else None,
        "DPL": _difference(q_a, q_d),
        "DPPL": _difference(p_a, p_d),
        "DI": p_d / p_a if p_a and p_d is not None else None,
        "AD": _difference(_share(correct[a]), _share(correct[d])),
    }


def _facet_label(facet: dict) -> str:
    return str(facet["threshold"]) if "threshold" in facet else ",".join(str(v) for v in facet["values"])


def bias_analysis_config(schema: dict, config: dict) -> dict:
    """Clarify's analysis configuration for the bias monitor (and a Clarify processing job)."""
    return {
        "version": "1.0",
        "dataset_type": "text/csv",
        "headers": [*schema["features"], schema["target"]],
        "label": schema["target"],
        "label_values_or_threshold": list(config["label_values"]),
        "facet": [
            {
                "name_or_index": facet["name"],
                "value_or_threshold": [facet["threshold"]] if "threshold" in facet else list(facet["values"]),
            }
            for facet in config["facets"]
        ],
        "probability_threshold": float(config["probability_threshold"]),
        "methods": {
            "pre_training_bias": {"methods": [name for name, _ in PRE_TRAINING]},
            "post_training_bias": {"methods": [name for name, _ in POST_TRAINING]},
        },
    }


def _bias_section(schema: dict, config: dict, results: list[dict], names, keep_null: bool) -> dict:
    facets: dict[str, list] = {}
    for facet, metrics in zip(config["facets"], results, strict=True):
        entries = [
            {"name": name, "description": description, "value": metrics[name]}
            for name, description in names
            if keep_null or metrics[name] is not None
        ]
        facets.setdefault(facet["name"], []).append({"value_or_threshold": _facet_label(facet), "metrics": entries})
    return {
        "label": schema["target"],
        "label_value_or_threshold": str(config["label_values"][0]),
        "facets": facets,
    }


def write_bias_baseline(model, schema: dict, frame: pd.DataFrame, labels: np.ndarray, config: dict, args) -> None:
    """``bias/``: the analysis config, the pre-/post-training reports and their constraints (see the module doc)."""
    for facet in config.get("facets") or []:
        if facet.get("name") not in schema["features"]:
            raise BadData(f"bias facet {facet.get('name')!r} is not a model input ({', '.join(schema['features'])})")
    if not config.get("facets"):
        raise BadData("--bias-config names no facet")
    threshold = float(config["probability_threshold"])
    probabilities = model.predict_proba(coerce_features(frame, schema))[:, 1]
    predicted = (probabilities >= threshold).astype("int64")
    positive = int(config["label_values"][0])
    results = [bias_metrics(labels, predicted, facet_group(frame[f["name"]], f), positive) for f in config["facets"]]
    documents = {"analysis_config.json": bias_analysis_config(schema, config)}
    for stage, names in (("pre_training", PRE_TRAINING), ("post_training", POST_TRAINING)):
        key = f"{stage}_bias_metrics"
        documents[f"{stage}_report.json"] = {"version": "1.0", key: _bias_section(schema, config, results, names, True)}
        documents[f"{stage}_constraints.json"] = {
            "version": "1.0",
            key: _bias_section(schema, config, results, names, False),
        }
    _write_documents(os.path.join(args.output_dir, "bias"), documents)


# --------------------------------------------------------------------------- explainability

EXACT_SHAPLEY_MAX_FEATURES = 10


def baseline_row(frame: pd.DataFrame, schema: dict) -> list:
    """One row of raw feature values: numeric median, text most frequent value (ties: the first in sort order)."""
    numeric = set(schema["numeric"])
    coerced = coerce_features(frame, schema)
    row: list = []
    for name in schema["features"]:
        column = coerced[name]
        if name in numeric:
            median = float(np.nanmedian(column.to_numpy(dtype="float64"))) if column.notna().any() else None
            row.append(median)
        else:
            present = sorted(str(v) for v in column.dropna())
            if not present:
                row.append(None)
                continue
            counts = pd.Series(present).value_counts(sort=False)
            row.append(str(counts.index[int(np.argmax(counts.to_numpy()))]))
    return row


def _model_scores(model, schema: dict, rows: np.ndarray) -> np.ndarray:
    frame = pd.DataFrame(rows, columns=list(schema["features"]))
    return model.predict_proba(coerce_features(frame, schema))[:, 1]


def shapley_values(model, schema: dict, rows: np.ndarray, baseline: list, num_samples: int, seed: int) -> np.ndarray:
    """Shapley values (rows x features) of the score against ``baseline``: exact up to 10 features, else sampled."""
    count, width = rows.shape
    base = np.array(baseline, dtype=object)
    if width <= EXACT_SHAPLEY_MAX_FEATURES:
        coalitions = np.array([[(m >> j) & 1 for j in range(width)] for m in range(2**width)], dtype=bool)
        sizes = coalitions.sum(axis=1)
        composite = np.where(coalitions[None, :, :], rows[:, None, :], base[None, None, :])
        scores = _model_scores(model, schema, composite.reshape(-1, width)).reshape(count, len(coalitions))
        weights = np.array(
            [math.factorial(s) * math.factorial(width - s - 1) / math.factorial(width) for s in range(width)]
        )
        values = np.zeros((count, width))
        for j in range(width):
            without = np.flatnonzero(~coalitions[:, j])
            values[:, j] = (scores[:, without | (1 << j)] - scores[:, without]) @ weights[sizes[without]]
        return values
    rng = np.random.RandomState(seed)
    values = np.zeros((count, width))
    for i in range(count):
        orders = np.array([rng.permutation(width) for _ in range(num_samples)])
        # Step k of a permutation has its first k features from the row, the rest from the baseline.
        steps = np.zeros((num_samples, width + 1, width), dtype=bool)
        for k in range(1, width + 1):
            steps[np.arange(num_samples)[:, None], k, orders[:, :k]] = True
        composite = np.where(steps, rows[i][None, None, :], base[None, None, :])
        scores = _model_scores(model, schema, composite.reshape(-1, width)).reshape(num_samples, width + 1)
        deltas = np.diff(scores, axis=1)
        for k in range(width):
            np.add.at(values[i], orders[:, k], deltas[:, k])
        values[i] /= num_samples
    return values


def aggregate(values: np.ndarray, method: str) -> np.ndarray:
    """Clarify's global SHAP value per feature: ``mean_abs``, ``median`` or ``mean_sq`` over the rows."""
    if method == "mean_abs":
        return np.mean(np.abs(values), axis=0)
    if method == "median":
        return np.median(values, axis=0)
    if method == "mean_sq":
        return np.mean(values**2, axis=0)
    raise BadData(f"agg_method {method!r} is not one of mean_abs, median, mean_sq")


def write_explainability_baseline(model, schema: dict, frame: pd.DataFrame, config: dict, args) -> None:
    """``explainability/``: Clarify's analysis config, the global SHAP report, its constraints and the method."""
    method, num_samples = config.get("agg_method", "mean_abs"), int(config.get("num_samples", 100))
    features = list(schema["features"])
    baseline = baseline_row(frame, schema)
    rng = np.random.RandomState(args.seed)
    chosen = np.sort(rng.choice(len(frame), size=min(len(frame), args.shap_rows), replace=False))
    rows = frame[features].iloc[chosen].astype(object).to_numpy()
    values = shapley_values(model, schema, rows, baseline, num_samples, args.seed)
    expected = float(_model_scores(model, schema, np.array([baseline], dtype=object))[0])
    explanation = {
        "version": "1.0",
        "explanations": {
            "kernel_shap": {
                "label0": {
                    "global_shap_values": {
                        name: float(v) for name, v in zip(features, aggregate(values, method), strict=True)
                    },
                    "expected_value": expected,
                }
            }
        },
    }
    exact = len(features) <= EXACT_SHAPLEY_MAX_FEATURES
    documents = {
        "analysis_config.json": {
            "version": "1.0",
            "dataset_type": "text/csv",
            "headers": features,
            "methods": {
                "shap": {
                    "baseline": [baseline],
                    "num_samples": num_samples,
                    "agg_method": method,
                    "use_logit": False,
                    "save_local_shap_values": False,
                }
            },
            "predictor": {
                "content_type": "text/csv",
                "accept_type": "text/csv",
                "instance_type": "ml.m5.xlarge",
                "initial_instance_count": 1,
            },
        },
        "report.json": explanation,
        "constraints.json": explanation,
        "method.json": {
            "method": "exact Shapley values" if exact else "permutation-sampled Shapley values",
            "against": "one baseline row (numeric median, text most frequent value of the validation split)",
            "rows": len(chosen),
            "permutations_per_row": None if exact else num_samples,
            "seed": args.seed,
            "agg_method": method,
        },
    }
    _write_documents(os.path.join(args.output_dir, "explainability"), documents)


def _write_documents(directory: str, documents: dict) -> None:
    os.makedirs(directory, exist_ok=True)
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
