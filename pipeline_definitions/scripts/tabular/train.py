"""Train a gradient-boosted churn classifier (SageMaker scikit-learn script mode).

Training (``python train.py [options]``), defaults in brackets:

- ``--train`` [$SM_CHANNEL_TRAIN or /opt/ml/input/data/train] and
  ``--validation`` [$SM_CHANNEL_VALIDATION or /opt/ml/input/data/validation]:
  directories of header-less CSV files, target in the first column (the layout
  ``preprocess.py`` writes). Validation is optional.
- ``--model-dir`` [$SM_MODEL_DIR or /opt/ml/model]: gets ``model.joblib`` and a
  copy of this script under ``code/`` so the model archive can serve itself.
- Hyperparameters (dash or underscore spelling, as SageMaker passes them
  verbatim): ``--n-estimators`` [100], ``--max-depth`` [3],
  ``--learning-rate`` [0.1], ``--subsample`` [1.0], ``--random-state`` [42].

Metrics are printed one per line as ``<split>:<name>=<value>``, e.g.
``validation:auc=0.871234``; the pipeline's metric definitions match
``validation:auc=([0-9.]+)``.

Serving: the scikit-learn serving container imports this module and calls
``model_fn`` and ``predict_fn`` (the churn probability for each CSV row of
features, target column excluded).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

MODEL_FILE = "model.joblib"


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
    parser.add_argument("--n-estimators", "--n_estimators", dest="n_estimators", type=int, default=100)
    parser.add_argument("--max-depth", "--max_depth", dest="max_depth", type=int, default=3)
    parser.add_argument("--learning-rate", "--learning_rate", dest="learning_rate", type=float, default=0.1)
    parser.add_argument("--subsample", type=float, default=1.0)
    parser.add_argument("--random-state", "--random_state", dest="random_state", type=int, default=42)
    return parser.parse_args(argv)


def read_split(directory: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Read every CSV in ``directory`` (target first, no header); None if there are none."""
    paths = sorted(glob.glob(os.path.join(directory, "**", "*.csv"), recursive=True))
    if not paths:
        return None
    frame = pd.concat([pd.read_csv(p, header=None) for p in paths], ignore_index=True)
    values = frame.to_numpy(dtype="float64")
    return values[:, 1:], values[:, 0].astype("int64")


def metrics(model, features: np.ndarray, labels: np.ndarray) -> dict[str, float]:
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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    train = read_split(args.train)
    if train is None:
        raise SystemExit(f"no training CSV files under {args.train}")
    features, labels = train

    model = GradientBoostingClassifier(
        n_estimators=args.n_estimators,
        max_depth=args.max_depth,
        learning_rate=args.learning_rate,
        subsample=args.subsample,
        random_state=args.random_state,
    )
    model.fit(features, labels)

    splits = {"train": train}
    validation = read_split(args.validation) if os.path.isdir(args.validation) else None
    if validation is not None:
        splits["validation"] = validation
    for split_name, (split_features, split_labels) in splits.items():
        for name, value in sorted(metrics(model, split_features, split_labels).items()):
            print(f"{split_name}:{name}={value:.6f}")

    os.makedirs(args.model_dir, exist_ok=True)
    joblib.dump(model, os.path.join(args.model_dir, MODEL_FILE))
    # Ship the inference code inside model.tar.gz so the registered model serves
    # with SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code, no repack step needed.
    code_dir = os.path.join(args.model_dir, "code")
    os.makedirs(code_dir, exist_ok=True)
    shutil.copy2(os.path.abspath(__file__), os.path.join(code_dir, "train.py"))
    return 0


# --- inference (SageMaker scikit-learn serving container) -------------------


def model_fn(model_dir: str):
    """Load the model saved by ``main``."""
    return joblib.load(os.path.join(model_dir, MODEL_FILE))


def predict_fn(input_data, model):
    """Return the churn probability for each row of features."""
    features = np.asarray(input_data, dtype="float64")
    if features.ndim == 1:
        features = features.reshape(1, -1)
    return model.predict_proba(features)[:, 1]


if __name__ == "__main__":
    sys.exit(main())
