"""Helpers for the step-script tests: run the scripts as the containers would, on small data.

The chain: make_sample_data.py -> the dataset CSV the Feature Store query
writes (record id, features, label; no event time) -> preprocess.py ->
train.py (with checkpoints) -> model.tar.gz -> evaluate.py. It runs once per
test session (shared by the xdist workers through ``once``) under a shared
temporary directory. Not a test module: imported by the ``test_*`` files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd

from mlops_platform.config import load_config
from pipeline_definitions.sources import SCRIPTS_DIR

ROWS = 1200
SEED = 3
ID_COLUMN = "customer_id"
TARGET = "churn"
# The contract order of the example feature group's features, as the config derives it.
FEATURES = list(load_config(Path(__file__).resolve().parents[2] / "config").projects["churn"].pipeline_features())
NUMERIC = FEATURES[:5]
CATEGORICAL = FEATURES[5:]
TEST_FRACTION = 0.15
VALIDATION_FRACTION = 0.15
N_ESTIMATORS = 60
CHECKPOINT_EVERY = 20


def run_script(name: str, *args: str, env: dict | None = None, expect: int = 0) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(SCRIPTS_DIR / name), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == expect, f"{name} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def load_script(name: str, path: Path | None = None):
    """A fresh module object for a step script (or any script file at ``path``)."""
    path = path or SCRIPTS_DIR / name
    spec = importlib.util.spec_from_file_location(f"step_{Path(name).stem}_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def expected_bucket(record_id: str) -> float:
    """The contract, computed independently of preprocess.py: sha256 -> first 8 bytes -> [0, 1)."""
    return int.from_bytes(hashlib.sha256(record_id.encode("utf-8")).digest()[:8], "big") / 2.0**64


def write_dataset(path: Path, rows: int, seed: int, id_prefix: str = "C") -> pd.DataFrame:
    """The generator's rows as the query step writes them: everything but event_time."""
    generator = load_script("make_sample_data.py")
    frame = generator.make_frame(rows, seed).drop(columns=["event_time"])
    if id_prefix != "C":
        frame[ID_COLUMN] = [f"{id_prefix}{i:05d}" for i in range(1, rows + 1)]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    return pd.read_csv(path, dtype={ID_COLUMN: str})


def preprocess_args(input_dir: Path, output_dir: Path) -> list[str]:
    return [
        "--input-dir",
        str(input_dir),
        "--output-dir",
        str(output_dir),
        "--id-column",
        ID_COLUMN,
        "--target-column",
        TARGET,
        "--features",
        ",".join(FEATURES),
        "--test-fraction",
        str(TEST_FRACTION),
        "--validation-fraction",
        str(VALIDATION_FRACTION),
    ]


def package(model_dir: Path, archive_dir: Path) -> Path:
    """What SageMaker does with /opt/ml/model after training."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    archive = archive_dir / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
    return archive


def run_chain(root: Path) -> dict:
    """Run every step script in turn under ``root``; return their standard outputs."""
    raw = root / "raw" / "churn.csv"
    raw.parent.mkdir(parents=True)
    run_script("make_sample_data.py", "--output", str(raw), "--rows", str(ROWS), "--seed", str(SEED))
    dataset = root / "query" / "dataset.csv"
    dataset.parent.mkdir(parents=True)
    pd.read_csv(raw, dtype={ID_COLUMN: str}).drop(columns=["event_time"]).to_csv(
        dataset, index=False, lineterminator="\n"
    )

    out = root / "processed"
    preprocess = run_script("preprocess.py", *preprocess_args(root / "query", out))

    model_dir = root / "model"
    # Only SM_* variables, as the training toolkit sets them: the defaults come from env.
    env = {
        "PATH": "/usr/bin:/bin",
        "SM_CHANNEL_TRAIN": str(out / "train"),
        "SM_CHANNEL_VALIDATION": str(out / "validation"),
        "SM_MODEL_DIR": str(model_dir),
    }
    # Hyperparameters as SageMaker passes them: --key value, underscores or dashes.
    hyperparameters = ["--n_estimators", str(N_ESTIMATORS), "--max-depth", "3", "--features", ",".join(FEATURES)]
    hyperparameters += ["--target_column", TARGET, "--checkpoint-dir", str(root / "checkpoints")]
    hyperparameters += ["--checkpoint-every", str(CHECKPOINT_EVERY)]
    train = run_script("train.py", *hyperparameters, env=env)

    archive_dir = root / "model-artifacts"
    package(model_dir, archive_dir)
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


def chain_paths(shared_dir: Path, once) -> dict:
    """Paths and standard outputs of one run of the chain (made once, shared by all workers).

    Each test module wraps this in its own ``chain`` fixture.
    """
    root = shared_dir / "step-chain"
    stdout = once("step-chain", lambda: run_chain(root))
    return {
        "root": root,
        "raw": root / "raw" / "churn.csv",
        "dataset": root / "query" / "dataset.csv",
        "out": root / "processed",
        "model_dir": root / "model",
        "archive": root / "model-artifacts" / "model.tar.gz",
        "checkpoints": root / "checkpoints",
        "evaluation": root / "evaluation" / "evaluation.json",
        **stdout,
    }
