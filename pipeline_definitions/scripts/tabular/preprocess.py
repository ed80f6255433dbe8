"""Split the dataset the Feature Store query wrote, and baseline its features.

Runs in the SageMaker scikit-learn processing container (pandas, numpy and the
standard library only) and locally in tests.

Input (``--input-dir``, default ``/opt/ml/processing/input``): every ``*.csv``
under it (sorted, each with a header row) is read and concatenated. The query
step writes one file: the record identifier (``--id-column``, default
``customer_id``), the feature columns and the label (``--target-column``,
default ``churn``). An ``--event-time-column`` (default ``event_time``) is
ignored if present.

Arguments:

- ``--features a,b,c``: the raw feature names in contract order (default:
  every column except the id, the target and the event time, in file order);
- ``--validation-fraction 0.15`` and ``--test-fraction 0.15`` (of the
  labelled rows), ``--seed 42`` (for the train/validation split).

Labels must be binary: 0/1 (also written "0"/"1", 0.0/1.0) or true/false.
Anything else stops the step with exit code 2 and one line naming the column
and the offending values. Rows without a label are dropped (and counted).

The **test split is chosen by a hash of the record id**: a row is in the test
set when ``sha256(id)`` mapped to [0, 1) is below ``--test-fraction``. The same
customer is therefore always in the test set, whatever other rows the data
holds, so successive model versions are compared on the same rows. The rest is
split into train and validation, **stratified** by label, with ``--seed``.

Nothing is encoded or imputed here (``train.py`` fits that inside the model,
on the train split only). Outputs under ``--output-dir`` (default
``/opt/ml/processing/output``), each CSV **with a header row**, the features in
contract order then the target, no id column:

- ``train/train.csv``, ``validation/validation.csv``, ``test/test.csv``;
- ``baseline/statistics.json`` and ``baseline/constraints.json``: the Model
  Monitor data-quality baseline (schema version 0.0) of the raw feature
  columns of the train split, i.e. what an endpoint receives, without the
  target. Features are named ``_c0``, ``_c1``, ... because that is how Model
  Monitor names the columns of header-less CSV (the format of captured
  endpoint requests); ``baseline/feature_names.json`` maps each positional
  name back to its column.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import math
import os
import sys

import numpy as np
import pandas as pd

# Model Monitor materialises distributions in 10 buckets; match it.
HISTOGRAM_BUCKETS = 10
# KLL sketch accuracy parameter (Model Monitor's generated baselines use 2048 / 0.64).
KLL_K = 2048
KLL_C = 0.64
# Categorical columns with at most this many distinct values get a domain constraint.
MAX_DOMAIN_SIZE = 20
# Exit code for data that breaks the contract (e.g. a non-binary label).
EXIT_BAD_DATA = 2
TRUE_LABELS = {"1", "1.0", "true"}
FALSE_LABELS = {"0", "0.0", "false"}


class BadData(Exception):
    """The input breaks the dataset contract; the message is one line."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Split and baseline the churn dataset.")
    parser.add_argument("--input-dir", default="/opt/ml/processing/input")
    parser.add_argument("--output-dir", default="/opt/ml/processing/output")
    parser.add_argument("--target-column", default="churn")
    parser.add_argument("--id-column", default="customer_id")
    parser.add_argument("--event-time-column", default="event_time")
    parser.add_argument(
        "--features",
        default="",
        help="comma-separated raw feature names in contract order (default: all other columns)",
    )
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
    args.features = [name.strip() for name in args.features.split(",") if name.strip()]
    if len(set(args.features)) != len(args.features):
        parser.error(f"--features lists a column twice: {args.features}")
    return args


def read_input(input_dir: str, id_column: str) -> pd.DataFrame:
    paths = sorted(glob.glob(os.path.join(input_dir, "**", "*.csv"), recursive=True))
    if not paths:
        raise BadData(f"no CSV files found under {input_dir}")
    # Ids stay text (leading zeros, numeric-looking ids hash as written).
    return pd.concat([pd.read_csv(path, dtype={id_column: str}) for path in paths], ignore_index=True)


def feature_columns(frame: pd.DataFrame, args: argparse.Namespace) -> list[str]:
    if args.features:
        missing = [name for name in args.features if name not in frame.columns]
        if missing:
            raise BadData(f"feature column(s) {missing} not in input columns {list(frame.columns)}")
        reserved = [name for name in args.features if name in (args.id_column, args.target_column)]
        if reserved:
            raise BadData(f"--features must not include the id or target column: {reserved}")
        return list(args.features)
    skip = {args.id_column, args.target_column, args.event_time_column}
    return [str(c) for c in frame.columns if c not in skip]


def binary_labels(series: pd.Series, column: str) -> pd.Series:
    """Map 0/1, "0"/"1", 0.0/1.0 and true/false (any case) to int64 0/1; raise BadData otherwise."""
    text = series.astype(str).str.strip().str.lower()
    bad = sorted(set(text[~text.isin(TRUE_LABELS | FALSE_LABELS)]))
    if bad:
        shown = ", ".join(repr(v) for v in bad[:10]) + (f" (and {len(bad) - 10} more)" if len(bad) > 10 else "")
        raise BadData(f"label column {column!r} must be binary (0/1 or true/false); found {shown}")
    return text.isin(TRUE_LABELS).astype("int64")


def hash_bucket(record_id: str) -> float:
    """The record id's place in [0, 1): the first 8 bytes of its SHA-256, as a fraction."""
    digest = hashlib.sha256(str(record_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split(frame: pd.DataFrame, args: argparse.Namespace):
    """(train, validation, test): test by id hash, then a seeded stratified cut of the rest."""
    in_test = frame[args.id_column].map(hash_bucket) < args.test_fraction
    test = frame[in_test.to_numpy()]
    rest = frame[~in_test.to_numpy()]
    # Validation is a fraction of all labelled rows, as the test set is.
    share = args.validation_fraction / (1.0 - args.test_fraction)
    rng = np.random.RandomState(args.seed)
    validation_index = []
    for label in (0, 1):
        index = rest.index[rest[args.target_column].to_numpy() == label].to_numpy()
        chosen = rng.permutation(index)[: int(round(len(index) * share))]
        validation_index.extend(chosen.tolist())
    is_validation = rest.index.isin(validation_index)
    validation = rest[is_validation]
    train = rest[~is_validation]
    if len(train) == 0 or len(validation) == 0 or len(test) == 0:
        raise BadData(
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
    # Header row, features in contract order then the target: what train.py reads.
    frame.to_csv(path, index=False, lineterminator="\n")


def _write_json(document: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(document, handle, indent=2, sort_keys=True)
        handle.write("\n")


def run(args: argparse.Namespace) -> None:
    raw = read_input(args.input_dir, args.id_column)
    for role, column in (("id", args.id_column), ("target", args.target_column)):
        if column not in raw.columns:
            raise BadData(f"{role} column {column!r} not in input columns {list(raw.columns)}")
    features = feature_columns(raw, args)
    if not features:
        raise BadData(f"no feature columns left in input columns {list(raw.columns)}")

    has_label = raw[args.target_column].notna() & (raw[args.target_column].astype(str).str.strip() != "")
    unlabelled = int((~has_label).sum())
    data = raw[has_label.to_numpy()].reset_index(drop=True)
    if unlabelled:
        print(f"dropped {unlabelled} rows without a label in {args.target_column!r}")
    if data[args.id_column].isna().any():
        raise BadData(f"id column {args.id_column!r} has {int(data[args.id_column].isna().sum())} empty values")
    data[args.target_column] = binary_labels(data[args.target_column], args.target_column)

    train, validation, test = split(data, args)
    columns = [*features, args.target_column]
    out = args.output_dir
    _write_csv(train[columns], os.path.join(out, "train", "train.csv"))
    _write_csv(validation[columns], os.path.join(out, "validation", "validation.csv"))
    _write_csv(test[columns], os.path.join(out, "test", "test.csv"))

    positional = train[features].copy()
    positional.columns = [f"_c{i}" for i in range(len(features))]
    statistics, constraints = build_baseline(positional)
    _write_json(statistics, os.path.join(out, "baseline", "statistics.json"))
    _write_json(constraints, os.path.join(out, "baseline", "constraints.json"))
    _write_json(
        {
            "id_column": args.id_column,
            "target": args.target_column,
            # A list keeps column order (a JSON object would be re-sorted as text).
            "features": [{"name": f"_c{i}", "column": name} for i, name in enumerate(features)],
        },
        os.path.join(out, "baseline", "feature_names.json"),
    )
    print(
        f"rows: input={len(raw)} labelled={len(data)} unlabelled={unlabelled} train={len(train)} "
        f"validation={len(validation)} test={len(test)} features={len(features)}"
    )
    for name, part in (("train", train), ("validation", validation), ("test", test)):
        print(f"{name}: positive_rate={part[args.target_column].mean():.4f}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except BadData as error:
        print(f"preprocess: {error}", file=sys.stderr)
        return EXIT_BAD_DATA
    return 0


if __name__ == "__main__":
    sys.exit(main())
