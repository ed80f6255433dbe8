"""Train a gradient-boosted churn classifier and serve it (SageMaker scikit-learn script mode).

Training (``python train.py [options]``), defaults in brackets:

- ``--train`` [$SM_CHANNEL_TRAIN or /opt/ml/input/data/train] and
  ``--validation`` [$SM_CHANNEL_VALIDATION or /opt/ml/input/data/validation]:
  directories of CSV files **with a header row**: the raw features then the
  target (the layout ``preprocess.py`` writes). Validation is optional.
- ``--features a,b,c`` [every column but the target, in file order]: the raw
  feature names in contract order; ``--target-column`` [churn].
- ``--model-dir`` [$SM_MODEL_DIR or /opt/ml/model]: gets ``model.joblib`` (a
  fitted scikit-learn ``Pipeline``), ``features.json`` and a copy of this
  script under ``code/`` so the model archive can serve itself.
- ``--checkpoint-dir`` [/opt/ml/checkpoints] and ``--checkpoint-every`` [10]:
  see *Checkpoints* below.
- Hyperparameters (dash or underscore spelling, as SageMaker passes them
  verbatim): ``--n-estimators`` [100], ``--max-depth`` [3],
  ``--learning-rate`` [0.1], ``--subsample`` [1.0], ``--random-state`` [42].

The model: a ``ColumnTransformer`` (numeric columns: median imputation;
string columns: the constant ``missing`` for gaps, then a one-hot encoding
that ignores categories it has not seen) followed by a
``GradientBoostingClassifier``, all fitted on the train split only.

Checkpoints: the classifier grows with ``warm_start`` in chunks of
``--checkpoint-every`` estimators (chunk ``k`` is fitted with random state
``random_state + k``). After each chunk the fitted pipeline, the number of
estimators done and a fingerprint of the training data, features and
hyperparameters are saved atomically to ``<checkpoint-dir>/checkpoint.joblib``.
On start, a checkpoint with the same fingerprint is loaded and training
continues from it (``checkpoint: resumed ...`` is logged), so an interrupted
(e.g. spot) job gives the same model as an uninterrupted one. A checkpoint that
does not match or cannot be read is ignored. If the directory cannot be
created, training runs without checkpoints.

Metrics are printed one per line as ``<split>:<name>=<value>``, e.g.
``validation:auc=0.871234``; the pipeline's metric definitions match
``validation:auc=([0-9.]+)``.

Serving: the scikit-learn serving container imports this module and calls
``model_fn``, ``input_fn``, ``predict_fn`` and ``output_fn``. Requests carry
raw feature values in contract order (``features.json``): ``text/csv`` rows
without a header, or ``application/json`` ``{"instances": [[...], ...]}``
(lists in contract order, or objects keyed by feature name). Responses are
the churn probability (class 1) of each row: ``text/csv`` one per line
(default) or ``application/json`` ``{"predictions": [...]}``.
"""

from __future__ import annotations

import argparse
import csv
import glob
import hashlib
import io
import json
import math
import os
import shutil
import sys
import tempfile

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

MODEL_FILE = "model.joblib"
FEATURES_FILE = "features.json"
CHECKPOINT_FILE = "checkpoint.joblib"
MISSING_CATEGORY = "missing"


def _feature_list(value: str) -> list[str]:
    """``a,b,c`` (or a JSON list, should a caller send one) as a list of names."""
    value = value.strip()
    names = json.loads(value) if value.startswith("[") else value.split(",")
    return [str(name).strip() for name in names if str(name).strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description="Train the churn classifier.")
    parser.add_argument("--train", default=env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    parser.add_argument(
        "--validation",
        default=env.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"),
    )
    parser.add_argument(
        "--model-dir", "--model_dir", dest="model_dir", default=env.get("SM_MODEL_DIR", "/opt/ml/model")
    )
    parser.add_argument("--features", type=_feature_list, default=[])
    parser.add_argument("--target-column", "--target_column", dest="target_column", default="churn")
    parser.add_argument("--checkpoint-dir", "--checkpoint_dir", dest="checkpoint_dir", default="/opt/ml/checkpoints")
    parser.add_argument("--checkpoint-every", "--checkpoint_every", dest="checkpoint_every", type=int, default=10)
    parser.add_argument("--n-estimators", "--n_estimators", dest="n_estimators", type=int, default=100)
    parser.add_argument("--max-depth", "--max_depth", dest="max_depth", type=int, default=3)
    parser.add_argument("--learning-rate", "--learning_rate", dest="learning_rate", type=float, default=0.1)
    parser.add_argument("--subsample", type=float, default=1.0)
    parser.add_argument("--random-state", "--random_state", dest="random_state", type=int, default=42)
    # Test hook: stop (exit code 3) after this many chunks of this run, as a spot interruption would.
    parser.add_argument(
        "--stop-after-chunks",
        "--stop_after_chunks",
        dest="stop_after_chunks",
        type=int,
        default=0,
        help=argparse.SUPPRESS,
    )
    args = parser.parse_args(argv)
    if args.n_estimators < 1 or args.checkpoint_every < 1:
        parser.error("--n-estimators and --checkpoint-every must be at least 1")
    return args


# --- schema shared by training, evaluation and serving -----------------------


def split_feature_types(frame: pd.DataFrame, features: list[str]) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature names: numbers and booleans vs everything else (strings)."""
    numeric, categorical = [], []
    for name in features:
        series = frame[name]
        is_number = pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
        (numeric if is_number else categorical).append(name)
    return numeric, categorical


def coerce_frame(frame: pd.DataFrame, schema: dict) -> pd.DataFrame:
    """The schema's feature columns, in order: numeric ones as float64, the others as object (NaN for gaps).

    Raises ValueError for a missing column or a non-numeric value in a numeric column.
    """
    missing = [name for name in schema["features"] if name not in frame.columns]
    if missing:
        raise ValueError(f"missing feature column(s) {missing}; expected {schema['features']}")
    numeric = set(schema["numeric"])
    out = {}
    for name in schema["features"]:
        values = frame[name].astype(object).to_numpy().copy()
        # None, NaN, NA and blank text are all "missing".
        missing = np.array([_is_missing(v) for v in values], dtype=bool)
        values[missing] = np.nan
        if name in numeric:
            try:
                out[name] = values.astype("float64")
            except (TypeError, ValueError):
                bad = next(v for v in values[~missing] if not _is_number(v))
                raise ValueError(f"feature {name!r} expects numbers, got {bad!r}") from None
        else:
            values[~missing] = [str(v) for v in values[~missing]]
            out[name] = values
    return pd.DataFrame(out, columns=list(schema["features"]), index=frame.index)


def _is_missing(value) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _is_number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def build_pipeline(schema: dict, args: argparse.Namespace) -> Pipeline:
    numeric = Pipeline([("impute", SimpleImputer(strategy="median"))])
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY)),
            ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]
    )
    transformers = []
    if schema["numeric"]:
        transformers.append(("numeric", numeric, list(schema["numeric"])))
    if schema["categorical"]:
        transformers.append(("categorical", categorical, list(schema["categorical"])))
    classifier = GradientBoostingClassifier(
        n_estimators=1,  # grown chunk by chunk, see train_with_checkpoints
        max_depth=args.max_depth,
        learning_rate=args.learning_rate,
        subsample=args.subsample,
        random_state=args.random_state,
        warm_start=True,
    )
    return Pipeline([("features", ColumnTransformer(transformers)), ("classifier", classifier)])


# --- training ----------------------------------------------------------------


def read_split(directory: str) -> tuple[pd.DataFrame, list[str]] | None:
    """Every CSV in ``directory`` (header row) concatenated, and the paths; None if there are none."""
    paths = sorted(glob.glob(os.path.join(directory, "**", "*.csv"), recursive=True))
    if not paths:
        return None
    return pd.concat([pd.read_csv(p) for p in paths], ignore_index=True), paths


def labels_of(frame: pd.DataFrame, target: str) -> np.ndarray:
    if target not in frame.columns:
        raise SystemExit(f"target column {target!r} not in columns {list(frame.columns)}")
    labels = pd.to_numeric(frame[target], errors="coerce")
    if labels.isna().any() or not set(labels.unique()) <= {0, 1}:
        raise SystemExit(f"target column {target!r} must hold 0/1 only, got {sorted(set(frame[target].astype(str)))}")
    return labels.astype("int64").to_numpy()


def metrics(model: Pipeline, features: pd.DataFrame, labels: np.ndarray) -> dict[str, float]:
    scores = model.predict_proba(features)[:, 1]
    predicted = (scores >= 0.5).astype("int64")
    result = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
    }
    # AUC is undefined when a split holds one class only.
    if len(np.unique(labels)) == 2:
        result["auc"] = float(roc_auc_score(labels, scores))
    return result


def fingerprint(paths: list[str], schema: dict, args: argparse.Namespace) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    settings = {
        "schema": schema,
        "n_estimators": args.n_estimators,
        "max_depth": args.max_depth,
        "learning_rate": args.learning_rate,
        "subsample": args.subsample,
        "random_state": args.random_state,
        "checkpoint_every": args.checkpoint_every,
        "sklearn": sklearn.__version__,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def _checkpoint_dir(path: str) -> str | None:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        print(f"checkpoint: disabled, cannot use {path}: {error}")
        return None
    return path


def load_checkpoint(directory: str | None, expected: str) -> dict | None:
    if directory is None:
        return None
    path = os.path.join(directory, CHECKPOINT_FILE)
    if not os.path.exists(path):
        print("checkpoint: none found, training from scratch")
        return None
    try:
        state = joblib.load(path)
    except Exception as error:  # a partial or foreign file: start again
        print(f"checkpoint: ignoring unreadable {path}: {error}")
        return None
    if not isinstance(state, dict) or state.get("fingerprint") != expected:
        print(f"checkpoint: ignoring {path}: made for other data or hyperparameters")
        return None
    return state


def save_checkpoint(directory: str, state: dict) -> None:
    """Write atomically: a reader (or the S3 sync) never sees half a checkpoint."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-", suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(state, tmp)
        os.replace(tmp, os.path.join(directory, CHECKPOINT_FILE))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class Interrupted(Exception):
    pass


def train_with_checkpoints(
    pipeline: Pipeline, features: pd.DataFrame, labels: np.ndarray, args: argparse.Namespace, print_id: str
) -> Pipeline:
    directory = _checkpoint_dir(args.checkpoint_dir)
    state = load_checkpoint(directory, print_id)
    done = 0
    if state is not None:
        pipeline, done = state["pipeline"], int(state["estimators_done"])
        print(
            f"checkpoint: resumed at {done}/{args.n_estimators} estimators "
            f"(chunk {state['chunks_done']}) from {os.path.join(directory, CHECKPOINT_FILE)}"
        )
    chunks_this_run = 0
    while done < args.n_estimators:
        chunk = done // args.checkpoint_every
        done = min(done + args.checkpoint_every, args.n_estimators)
        pipeline.set_params(classifier__n_estimators=done, classifier__random_state=args.random_state + chunk)
        pipeline.fit(features, labels)
        chunks_this_run += 1
        if directory is not None:
            save_checkpoint(
                directory,
                {"fingerprint": print_id, "estimators_done": done, "chunks_done": chunk + 1, "pipeline": pipeline},
            )
            print(f"checkpoint: saved {done}/{args.n_estimators} estimators (chunk {chunk + 1})")
        if args.stop_after_chunks and chunks_this_run >= args.stop_after_chunks and done < args.n_estimators:
            raise Interrupted(f"stopping after {chunks_this_run} chunk(s) at {done} estimators (--stop-after-chunks)")
    return pipeline


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    read = read_split(args.train)
    if read is None:
        raise SystemExit(f"no training CSV files under {args.train}")
    train, paths = read
    features = args.features or [c for c in train.columns if c != args.target_column]
    unknown = [name for name in features if name not in train.columns]
    if unknown:
        raise SystemExit(f"feature column(s) {unknown} not in training columns {list(train.columns)}")
    labels = labels_of(train, args.target_column)
    numeric, categorical = split_feature_types(train, features)
    schema = {"features": features, "target": args.target_column, "numeric": numeric, "categorical": categorical}
    train_x = coerce_frame(train, schema)

    pipeline = build_pipeline(schema, args)
    try:
        pipeline = train_with_checkpoints(pipeline, train_x, labels, args, fingerprint(paths, schema, args))
    except Interrupted as stop:
        print(f"checkpoint: {stop}")
        return 3

    splits = {"train": (train_x, labels)}
    validation = read_split(args.validation) if os.path.isdir(args.validation) else None
    if validation is not None:
        frame = validation[0]
        splits["validation"] = (coerce_frame(frame, schema), labels_of(frame, args.target_column))
    for split_name, (split_x, split_y) in splits.items():
        for name, value in sorted(metrics(pipeline, split_x, split_y).items()):
            print(f"{split_name}:{name}={value:.6f}")

    os.makedirs(args.model_dir, exist_ok=True)
    joblib.dump(pipeline, os.path.join(args.model_dir, MODEL_FILE))
    with open(os.path.join(args.model_dir, FEATURES_FILE), "w") as handle:
        json.dump(schema, handle, indent=2)
        handle.write("\n")
    # Ship the inference code inside model.tar.gz so the registered model serves
    # with SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code, no repack step needed.
    code_dir = os.path.join(args.model_dir, "code")
    os.makedirs(code_dir, exist_ok=True)
    shutil.copy2(os.path.abspath(__file__), os.path.join(code_dir, "train.py"))
    return 0


# --- inference (SageMaker scikit-learn serving container) -------------------

# input_fn is not given the model; model_fn records the schema here for it.
_SCHEMA: dict | None = None


def load_schema(model_dir: str) -> dict:
    with open(os.path.join(model_dir, FEATURES_FILE)) as handle:
        return json.load(handle)


def _current_schema() -> dict:
    global _SCHEMA
    if _SCHEMA is None:
        _SCHEMA = load_schema(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    return _SCHEMA


def model_fn(model_dir: str) -> dict:
    """Load the pipeline and its schema saved by ``main``."""
    global _SCHEMA
    schema = load_schema(model_dir)
    _SCHEMA = schema
    return {"pipeline": joblib.load(os.path.join(model_dir, MODEL_FILE)), "schema": schema}


def _media_type(content_type: str | None, default: str) -> str:
    if not content_type:
        return default
    first = str(content_type).split(",")[0].split(";")[0].strip().lower()
    return default if first in ("", "*/*") else first


def rows_to_frame(rows: list, schema: dict) -> pd.DataFrame:
    """Positional rows (lists) or objects keyed by feature name into a coerced frame."""
    names = list(schema["features"])
    records = []
    for number, row in enumerate(rows, start=1):
        if isinstance(row, dict):
            unknown = sorted(set(row) - set(names))
            if unknown:
                raise ValueError(f"row {number}: unknown feature(s) {unknown}; expected {names}")
            records.append([row.get(name) for name in names])
        else:
            values = list(row) if isinstance(row, (list, tuple, np.ndarray, pd.Series)) else [row]
            if len(values) != len(names):
                raise ValueError(f"row {number}: expected {len(names)} columns ({', '.join(names)}), got {len(values)}")
            records.append(values)
    if not records:
        raise ValueError("request holds no rows")
    return coerce_frame(pd.DataFrame(records, columns=names, dtype=object), schema)


def input_fn(request_body, request_content_type: str | None = "text/csv") -> pd.DataFrame:
    """Parse a request into a DataFrame with the model's feature columns and dtypes."""
    media = _media_type(request_content_type, "text/csv")
    if media not in ("text/csv", "application/json"):
        raise ValueError(f"unsupported content type {request_content_type!r}: use text/csv or application/json")
    schema = _current_schema()
    if isinstance(request_body, (bytes, bytearray)):
        request_body = request_body.decode("utf-8")
    if media == "text/csv":
        rows = [row for row in csv.reader(io.StringIO(request_body)) if row and any(c.strip() for c in row)]
        return rows_to_frame(rows, schema)
    document = json.loads(request_body)
    rows = document.get("instances") if isinstance(document, dict) else document
    if not isinstance(rows, list):
        raise ValueError('application/json body must be {"instances": [...]} or a list of rows')
    if rows and all(not isinstance(v, (list, tuple, dict)) for v in rows):
        rows = [rows]  # one bare row
    return rows_to_frame(rows, schema)


def predict_fn(input_data, model) -> np.ndarray:
    """The churn probability (class 1) of each row."""
    pipeline, schema = model["pipeline"], model["schema"]
    if isinstance(input_data, pd.DataFrame):
        frame = coerce_frame(input_data, schema)
    else:
        array = np.asarray(input_data, dtype=object)
        frame = rows_to_frame(array.reshape(1, -1).tolist() if array.ndim == 1 else array.tolist(), schema)
    return pipeline.predict_proba(frame)[:, 1]


def output_fn(prediction, accept: str | None = "text/csv"):
    """(body, content type): one probability per line, or {"predictions": [...]}."""
    values = [float(v) for v in np.asarray(prediction, dtype="float64").ravel()]
    media = _media_type(accept, "text/csv")
    if media == "text/csv":
        return "".join(f"{v!r}\n" if math.isfinite(v) else "\n" for v in values), "text/csv"
    if media == "application/json":
        return json.dumps({"predictions": values}), "application/json"
    raise ValueError(f"unsupported accept type {accept!r}: use text/csv or application/json")


if __name__ == "__main__":
    sys.exit(main())
