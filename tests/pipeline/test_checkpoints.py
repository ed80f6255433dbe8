"""train.py checkpoints: an interrupted training resumes and ends with the model of an uninterrupted one."""

from __future__ import annotations

import os

import joblib
import numpy as np
import pandas as pd
import pytest

from tests.pipeline.script_chain import (
    FEATURES,
    chain_paths,
    load_script,
)


@pytest.fixture(scope="module")
def chain(shared_dir, once) -> dict:
    return chain_paths(shared_dir, once)


def _argv(chain, model_dir, checkpoint_dir, *extra: str) -> list[str]:
    out = chain["out"]
    return [
        "--train",
        str(out / "train"),
        "--validation",
        str(out / "validation"),
        "--model-dir",
        str(model_dir),
        "--checkpoint-dir",
        str(checkpoint_dir),
        "--features",
        ",".join(FEATURES),
        "--n-estimators",
        "30",
        "--checkpoint-every",
        "10",
        # Subsampling makes every chunk depend on its random state.
        "--subsample",
        "0.7",
        "--max-depth",
        "2",
        *extra,
    ]


def _probabilities(train, model_dir, frame) -> np.ndarray:
    model = train.model_fn(str(model_dir))
    return train.predict_fn(frame, model)


def test_interrupted_training_resumes_to_the_uninterrupted_model(chain, tmp_path, capsys):
    train = load_script("train.py")
    test = pd.read_csv(chain["out"] / "test" / "test.csv")

    assert train.main(_argv(chain, tmp_path / "whole", tmp_path / "ckpt-whole")) == 0
    capsys.readouterr()

    # Interrupted after the first chunk, as a spot reclaim would.
    checkpoints = tmp_path / "ckpt"
    assert train.main(_argv(chain, tmp_path / "model", checkpoints, "--stop-after-chunks", "1")) == 3
    first = capsys.readouterr().out
    assert "checkpoint: none found, training from scratch" in first
    assert "checkpoint: saved 10/30 estimators (chunk 1)" in first
    assert not (tmp_path / "model" / "model.joblib").exists()
    state = joblib.load(checkpoints / "checkpoint.joblib")
    assert state["estimators_done"] == 10 and state["chunks_done"] == 1
    assert state["pipeline"].named_steps["classifier"].n_estimators_ == 10

    # Restarted: resumes at chunk 1, not from scratch.
    assert train.main(_argv(chain, tmp_path / "model", checkpoints)) == 0
    second = capsys.readouterr().out
    assert "checkpoint: resumed at 10/30 estimators (chunk 1)" in second
    assert "saved 10/30" not in second
    assert "checkpoint: saved 20/30 estimators (chunk 2)" in second
    assert "checkpoint: saved 30/30 estimators (chunk 3)" in second
    assert not [name for name in os.listdir(checkpoints) if name != "checkpoint.joblib"]  # no temp files left

    resumed = _probabilities(train, tmp_path / "model", test)
    whole = _probabilities(train, tmp_path / "whole", test)
    np.testing.assert_array_equal(resumed, whole)


def test_checkpoint_for_other_settings_or_unreadable_is_ignored(chain, tmp_path, capsys):
    train = load_script("train.py")
    checkpoints = tmp_path / "ckpt"
    assert train.main(_argv(chain, tmp_path / "a", checkpoints, "--stop-after-chunks", "1")) == 3
    capsys.readouterr()
    # Other hyperparameters: the checkpoint does not apply.
    assert train.main(_argv(chain, tmp_path / "b", checkpoints, "--max-depth", "3", "--stop-after-chunks", "1")) == 3
    assert "made for other data or hyperparameters" in capsys.readouterr().out
    # A truncated file (e.g. a partial download) is ignored too.
    (checkpoints / "checkpoint.joblib").write_bytes(b"not a checkpoint")
    assert train.main(_argv(chain, tmp_path / "c", checkpoints, "--n-estimators", "10")) == 0
    output = capsys.readouterr().out
    assert "ignoring unreadable" in output and "saved 10/10" in output
