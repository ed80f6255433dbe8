"""Preprocess raw churn CSVs into train/validation/test splits and a data-quality baseline.

Runs in the SageMaker scikit-learn processing container (pandas, numpy and the
standard library only) and locally in tests. Defaults:

- ``--input-dir /opt/ml/processing/input``: every ``*.csv`` under it (sorted, with
  a header row) is read and concatenated;
- ``--output-dir /opt/ml/processing/output``: gets ``train/train.csv``,
  ``validation/validation.csv``, ``test/test.csv`` and ``baseline/``;
- ``--target-column churn``, ``--validation-fraction 0.15``,
  ``--test-fraction 0.15``, ``--seed 42``.

Cleaning: rows without a target are dropped; numeric gaps are filled with the
column median; string columns are one-hot encoded with categories in sorted
order (a gap becomes the category ``missing``), so the same input always gives
the same columns in the same order.

Split files follow the convention of SageMaker's built-in algorithms: **no
header, target in the first column, features after it** in the order listed in
``baseline/feature_names.json``. ``train.py`` and ``evaluate.py`` rely on it.

The baseline (``baseline/statistics.json`` and ``baseline/constraints.json``)
follows the SageMaker Model Monitor data-quality schema (version 0.0). It
describes the *feature* columns of the training split, i.e. what an endpoint
receives, without the target. Features are named ``_c0``, ``_c1``, ... because
that is how Model Monitor names the columns of header-less CSV (the format of
captured endpoint requests); ``baseline/feature_names.json`` maps each
positional name back to the column it came from.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import sys

import numpy as np
import pandas as pd

MISSING_CATEGORY = "missing"
# Model Monitor materialises distributions in 10 buckets; match it.
HISTOGRAM_BUCKETS = 10
# KLL sketch accuracy parameter (Model Monitor's generated baselines use 2048 / 0.64).
KLL_K = 2048
KLL_C = 0.64
# Categorical columns with at most this many distinct values get a domain constraint.
MAX_DOMAIN_SIZE = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Clean, split and baseline churn data.")
    parser.add_argument("--input-dir", default="/opt/ml/processing/input")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    parser.add_argument("--target-column", default="churn")
    parser.add_argument("--validation-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    for name in ("validation_fraction", "test_fraction"):
        value = getattr(args, name)
        if not 0.0 < value < 1.0:
            parser.error(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
    if args.validation_fraction + args.test_fraction >= 1.0:
        parser.error("--validation-fraction plus --test-fraction must leave rows for training")
    return args


def read_input(input_dir: str) -> pd.DataFrame:
    paths = sorted(glob.glob(os.path.join(input_dir, "**", "*.csv"), recursive=True))
    if not paths:
        raise SystemExit(f"no CSV files found under {input_dir}")
    return pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)


def _column_token(value: str) -> str:
    token = re.sub(r"[^0-9a-zA-Z]+", "_", str(value)).strip("_").lower()
    return token or "blank"


def clean(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Return a frame with the integer target first and only numeric features after it."""
    if target not in frame.columns:
        raise SystemExit(f"target column {target!r} not in input columns {list(frame.columns)}")
    frame = frame[frame[target].notna()].reset_index(drop=True)
    labels = pd.to_numeric(frame[target], errors="raise").astype("int64")

    features = {}
    for column in frame.columns:
        if column == target:
            continue
        series = frame[column]
        if pd.api.types.is_bool_dtype(series):
            features[column] = series.fillna(False).astype("int64")
        elif pd.api.types.is_numeric_dtype(series):
            median = series.median()
            filled = series.fillna(0.0 if pd.isna(median) else median)
            # A float column holding only whole numbers is written as integers, so a
            # CSV reader (and Model Monitor) infers Integral for it, as the baseline says.
            if np.all(np.mod(filled.to_numpy(dtype="float64"), 1.0) == 0.0):
                filled = filled.astype("int64")
            features[column] = filled
        else:
            text = series.astype("object").where(series.notna(), MISSING_CATEGORY).astype(str)
            for category in sorted(text.unique()):
                name = f"{column}_{_column_token(category)}"
                features[name] = (text == category).astype("int64")
    out = pd.DataFrame({target: labels})
    for name, values in features.items():
        out[name] = values.to_numpy()
    return out


def split(frame: pd.DataFrame, validation_fraction: float, test_fraction: float, seed: int):
    """Shuffle with a fixed seed and cut into train/validation/test."""
    order = np.random.RandomState(seed).permutation(len(frame))
    n_test = int(round(len(frame) * test_fraction))
    n_validation = int(round(len(frame) * validation_fraction))
    test = frame.iloc[order[:n_test]]
    validation = frame.iloc[order[n_test : n_test + n_validation]]
    train = frame.iloc[order[n_test + n_validation :]]
    if len(train) == 0 or len(validation) == 0 or len(test) == 0:
        raise SystemExit(
            f"too few rows ({len(frame)}) for the requested split: "
            f"train={len(train)} validation={len(validation)} test={len(test)}"
        )
    return train, validation, test


def _kll_sketch(values: np.ndarray) -> dict:
    """A deterministic KLL-style sketch: level i holds items of weight 2**i.

    Every compaction keeps every other item of the sorted level (offset 0) so
    the same data always gives the same sketch.
    """
    levels = []
    current = np.sort(values.astype("float64"))
    while len(current) > KLL_K:
        carry = len(current) % 2
        levels.append(current[:carry].tolist())
        current = current[carry::2]
    levels.append(current.tolist())
    return {"parameters": {"c": KLL_C, "k": float(KLL_K)}, "data": levels}


def _histogram(values: np.ndarray) -> list[dict]:
    low, high = float(values.min()), float(values.max())
    if low == high:
        return [{"lower_bound": low, "upper_bound": high, "count": float(len(values))}]
    counts, edges = np.histogram(values.astype("float64"), bins=HISTOGRAM_BUCKETS, range=(low, high))
    return [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(c)}
        for i, c in enumerate(counts)
    ]


def _inferred_type(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_integer_dtype(series):
        return "Integral"
    if pd.api.types.is_numeric_dtype(series):
        present = series.dropna().to_numpy(dtype="float64")
        return "Integral" if np.all(np.mod(present, 1.0) == 0.0) else "Fractional"
    return "String"


def _finite(value: float) -> float:
    # JSON has no NaN/Infinity; an all-missing column reports 0.0 instead.
    return float(value) if math.isfinite(value) else 0.0


def build_baseline(features: pd.DataFrame) -> tuple[dict, dict]:
    """Return (statistics, constraints) in the Model Monitor data-quality schema.

    Column names are taken from ``features`` as they are; callers decide naming.
    """
    item_count = int(len(features))
    stat_features = []
    constraint_features = []
    for name in features.columns:
        series = features[name]
        inferred = _inferred_type(series)
        present = int(series.notna().sum())
        common = {"num_present": present, "num_missing": item_count - present}
        constraint = {
            "name": str(name),
            "inferred_type": inferred,
            "completeness": (present / item_count) if item_count else 0.0,
        }
        if inferred == "String":
            values = series.dropna().astype(str)
            counts = values.value_counts()
            buckets = [{"value": str(value), "count": float(counts[value])} for value in sorted(counts.index)]
            stat_features.append(
                {
                    "name": str(name),
                    "inferred_type": inferred,
                    "string_statistics": {
                        "common": common,
                        "distinct_count": float(len(counts)),
                        "distribution": {"categorical": {"buckets": buckets}},
                    },
                }
            )
            if 0 < len(counts) <= MAX_DOMAIN_SIZE:
                constraint["string_constraints"] = {"domains": sorted(str(v) for v in counts.index)}
        else:
            values = series.dropna().to_numpy(dtype="float64")
            numerical = {"common": common}
            if len(values):
                numerical.update(
                    {
                        "mean": _finite(values.mean()),
                        "sum": _finite(values.sum()),
                        # Population standard deviation, as Model Monitor (Deequ) reports it.
                        "std_dev": _finite(values.std(ddof=0)),
                        "min": _finite(values.min()),
                        "max": _finite(values.max()),
                        "distribution": {"kll": {"buckets": _histogram(values), "sketch": _kll_sketch(values)}},
                    }
                )
                constraint["num_constraints"] = {"is_non_negative": bool(values.min() >= 0)}
            else:
                numerical.update({"mean": 0.0, "sum": 0.0, "std_dev": 0.0, "min": 0.0, "max": 0.0})
            stat_features.append({"name": str(name), "inferred_type": inferred, "numerical_statistics": numerical})
        constraint_features.append(constraint)

    statistics = {"version": 0.0, "dataset": {"item_count": item_count}, "features": stat_features}
    constraints = {
        "version": 0.0,
        "features": constraint_features,
        # The defaults Model Monitor writes into the constraints it suggests.
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": 1.0,
            "domain_content_threshold": 1.0,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": 0.1,
                "comparison_method": "Robust",
                "categorical_comparison_threshold": 0.1,
                "categorical_drift_method": "LInfinity",
            },
        },
    }
    return statistics, constraints


def _write_csv(frame: pd.DataFrame, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # No header, target first: the layout SageMaker algorithms and train.py expect.
    frame.to_csv(path, header=False, index=False)


def _write_json(document: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raw = read_input(args.input_dir)
    data = clean(raw, args.target_column)
    train, validation, test = split(data, args.validation_fraction, args.test_fraction, args.seed)

    out = args.output_dir
    _write_csv(train, os.path.join(out, "train", "train.csv"))
    _write_csv(validation, os.path.join(out, "validation", "validation.csv"))
    _write_csv(test, os.path.join(out, "test", "test.csv"))

    feature_columns = [c for c in data.columns if c != args.target_column]
    positional = train[feature_columns].copy()
    positional.columns = [f"_c{i}" for i in range(len(feature_columns))]
    statistics, constraints = build_baseline(positional)
    _write_json(statistics, os.path.join(out, "baseline", "statistics.json"))
    _write_json(constraints, os.path.join(out, "baseline", "constraints.json"))
    _write_json(
        {
            "target": args.target_column,
            # A list keeps column order (a JSON object would be re-sorted as text).
            "features": [{"name": f"_c{i}", "column": name} for i, name in enumerate(feature_columns)],
        },
        os.path.join(out, "baseline", "feature_names.json"),
    )
    print(
        f"rows: input={len(raw)} labelled={len(data)} train={len(train)} "
        f"validation={len(validation)} test={len(test)} features={len(feature_columns)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
