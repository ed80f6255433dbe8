"""The dataset contract of preprocess.py: hash-chosen test rows, stratified split, binary labels."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from pipeline_definitions.sources import SCRIPTS_DIR
from tests.pipeline.script_chain import (
    FEATURES,
    ID_COLUMN,
    SEED,
    TARGET,
    TEST_FRACTION,
    VALIDATION_FRACTION,
    chain_paths,
    expected_bucket,
    load_script,
    preprocess_args,
    write_dataset,
)


@pytest.fixture(scope="module")
def chain(shared_dir, once) -> dict:
    return chain_paths(shared_dir, once)


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path)


def _as_written(frame: pd.DataFrame, tmp_path) -> pd.DataFrame:
    """``frame`` as it reads back from a CSV (the dtypes a split file gets)."""
    path = tmp_path / "as-written.csv"
    frame.to_csv(path, index=False)
    return pd.read_csv(path)


def test_test_split_is_exactly_the_ids_hashed_below_the_fraction(chain, tmp_path):
    dataset = pd.read_csv(chain["dataset"], dtype={ID_COLUMN: str})
    labelled = dataset[dataset[TARGET].notna()]
    chosen = labelled[labelled[ID_COLUMN].map(expected_bucket) < TEST_FRACTION]
    assert 0 < len(chosen) < len(labelled)
    expected = _as_written(chosen[[*FEATURES, TARGET]].astype({TARGET: "int64"}), tmp_path)
    test = _read(chain["out"] / "test" / "test.csv")
    pd.testing.assert_frame_equal(test, expected, check_dtype=False)
    # And none of those rows is in train or validation.
    train = _read(chain["out"] / "train" / "train.csv")
    validation = _read(chain["out"] / "validation" / "validation.csv")
    assert len(train) + len(validation) == len(labelled) - len(chosen)


def test_test_split_keeps_its_rows_when_other_rows_are_added(tmp_path):
    preprocess = load_script("preprocess.py")
    first_in = tmp_path / "v1"
    write_dataset(first_in / "part-1.csv", 600, SEED)
    assert preprocess.main(preprocess_args(first_in, tmp_path / "out1")) == 0

    # The next version of the data: the same customers plus new ones.
    second_in = tmp_path / "v2"
    second_in.mkdir()
    (second_in / "part-1.csv").write_bytes((first_in / "part-1.csv").read_bytes())
    added = write_dataset(second_in / "part-2.csv", 400, SEED + 1, id_prefix="N")
    assert preprocess.main(preprocess_args(second_in, tmp_path / "out2")) == 0

    old = _read(tmp_path / "out1" / "test" / "test.csv")
    new = _read(tmp_path / "out2" / "test" / "test.csv")
    labelled_added = added[added[TARGET].notna()]
    n_added = int((labelled_added[ID_COLUMN].map(expected_bucket) < TEST_FRACTION).sum())
    assert n_added > 0
    assert len(new) == len(old) + n_added
    # The old test rows, unchanged and in the same order, then the new customers' test rows.
    pd.testing.assert_frame_equal(new.iloc[: len(old)].reset_index(drop=True), old, check_dtype=False)


def test_train_validation_split_is_stratified_and_seeded(chain, tmp_path):
    train = _read(chain["out"] / "train" / "train.csv")
    validation = _read(chain["out"] / "validation" / "validation.csv")
    rest = len(train) + len(validation)
    share = VALIDATION_FRACTION / (1 - TEST_FRACTION)
    assert abs(len(validation) - rest * share) <= 1.0
    assert abs(train[TARGET].mean() - validation[TARGET].mean()) < 0.01
    # Another seed: another validation set, the same test set.
    preprocess = load_script("preprocess.py")
    out = tmp_path / "seed"
    assert preprocess.main([*preprocess_args(chain["dataset"].parent, out), "--seed", "7"]) == 0
    assert (out / "test" / "test.csv").read_bytes() == (chain["out"] / "test" / "test.csv").read_bytes()
    assert (out / "validation" / "validation.csv").read_bytes() != (
        chain["out"] / "validation" / "validation.csv"
    ).read_bytes()


def test_labels_in_other_spellings_are_accepted(tmp_path, capsys):
    preprocess = load_script("preprocess.py")
    frame = write_dataset(tmp_path / "in" / "data.csv", 300, SEED)
    labelled = frame[frame[TARGET].notna()].copy()
    unlabelled = len(frame) - len(labelled)
    labelled[TARGET] = labelled[TARGET].map({0: "false", 1: "True"})
    labelled.to_csv(tmp_path / "in" / "data.csv", index=False)
    assert preprocess.main(preprocess_args(tmp_path / "in", tmp_path / "out")) == 0
    parts = [_read(tmp_path / "out" / name / f"{name}.csv") for name in ("train", "validation", "test")]
    labels = pd.concat([p[TARGET] for p in parts])
    assert set(labels.unique()) == {0, 1} and len(labels) == len(labelled)
    assert unlabelled == 0 or "dropped" not in capsys.readouterr().out


def test_non_binary_labels_stop_with_exit_2_and_one_line(tmp_path):
    data = tmp_path / "in"
    data.mkdir()
    (data / "dataset.csv").write_text(
        "customer_id,tenure_months,contract,churn\nC1,3,one-year,0\nC2,5,two-year,yes\nC3,7,one-year,2\nC4,9,x,\n"
    )
    result = subprocess.run(
        [sys.executable, str(SCRIPTS_DIR / "preprocess.py"), "--input-dir", str(data), "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "'churn'" in lines[0] and "'2'" in lines[0] and "'yes'" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "train").exists()


def test_missing_id_column_is_a_clear_error(tmp_path, capsys):
    preprocess = load_script("preprocess.py")
    data = tmp_path / "in"
    data.mkdir()
    (data / "dataset.csv").write_text("tenure_months,churn\n3,0\n4,1\n")
    assert preprocess.main(["--input-dir", str(data), "--output-dir", str(tmp_path / "out")]) == 2
    assert "id column 'customer_id' not in input columns" in capsys.readouterr().err


def test_evaluate_rejects_non_binary_test_labels(chain, tmp_path, capsys):
    evaluate = load_script("evaluate.py")
    test = _read(chain["out"] / "test" / "test.csv")
    test.loc[test.index[0], TARGET] = 3
    (tmp_path / "test").mkdir()
    test.to_csv(tmp_path / "test" / "test.csv", index=False)
    argv = ["--model-dir", str(chain["archive"].parent), "--test-dir", str(tmp_path / "test")]
    assert evaluate.main([*argv, "--output-dir", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'churn'" in err and "'3'" in err
    assert not (tmp_path / "eval" / "evaluation.json").exists()
