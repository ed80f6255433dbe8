"""The bias and SHAP baselines of evaluate.py: hand-computed numbers on tiny data, and the files on the sample chain.

The metric functions are checked against the definitions worked by hand; the
step itself runs as a subprocess on the step chain's model and validation
split (as the processing container would) and its files are checked for the
shapes Clarify and Model Monitor read (the analysis config against the SageMaker
SDK's own Clarify schema).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

# The step chain is made once per run and shared with tests/pipeline (its fixtures).
from tests.pipeline.conftest import once, shared_dir  # noqa: F401
from tests.pipeline.script_chain import FEATURES, TARGET, chain_paths, load_script, run_script

evaluate = load_script("evaluate.py")

BIAS = {"facets": [{"name": "senior_citizen", "values": [1]}], "label_values": [1], "probability_threshold": 0.5}
SHAP = {"num_samples": 100, "agg_method": "mean_abs"}


# --------------------------------------------------------------------------- hand computations


def test_bias_metrics_match_a_hand_computation():
    # Facet group d: rows 0-3 (4 rows); a: rows 4-9 (6 rows).
    group = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    labels = np.array([1, 0, 0, 0, 1, 1, 1, 0, 0, 0])
    predicted = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0, 1])
    metrics = evaluate.bias_metrics(labels, predicted, group, positive=1)
    # CI = (n_a - n_d) / (n_a + n_d) = (6 - 4) / 10
    assert metrics["CI"] == pytest.approx(0.2)
    # DPL = q_a - q_d = 3/6 - 1/4
    assert metrics["DPL"] == pytest.approx(0.25)
    # DPPL = q'_a - q'_d = 3/6 - 2/4; DI = q'_d / q'_a = (2/4) / (3/6)
    assert metrics["DPPL"] == pytest.approx(0.0)
    assert metrics["DI"] == pytest.approx(1.0)
    # Accuracy: d gets rows 0, 2, 3 right (3/4); a gets rows 4, 5, 7, 8 right (4/6). AD = 4/6 - 3/4
    assert metrics["AD"] == pytest.approx(4 / 6 - 3 / 4)


def test_the_positive_label_can_be_zero():
    group = np.array([1, 1, 0, 0], dtype=bool)
    labels = np.array([0, 0, 0, 1])
    predicted = np.array([0, 1, 1, 1])
    metrics = evaluate.bias_metrics(labels, predicted, group, positive=0)
    assert metrics["DPL"] == pytest.approx(0.5 - 1.0)  # q_a = 1/2 zeros, q_d = 2/2 zeros
    assert metrics["DPPL"] == pytest.approx(0.0 - 0.5)  # q'_a = 0/2, q'_d = 1/2
    assert metrics["DI"] is None  # q'_a = 0: undefined, not a number that would read as extreme bias


def test_an_empty_group_gives_undefined_metrics_not_numbers():
    metrics = evaluate.bias_metrics(np.array([1, 0]), np.array([1, 1]), np.array([0, 0], dtype=bool), positive=1)
    assert metrics["CI"] == pytest.approx(1.0)
    assert metrics["DPL"] is None and metrics["DPPL"] is None and metrics["AD"] is None


def test_facet_groups_by_values_and_by_threshold():
    series = pd.Series([0, 1, 1, 2, None])
    assert evaluate.facet_group(series, {"name": "x", "values": [1]}).tolist() == [False, True, True, False, False]
    assert evaluate.facet_group(series, {"name": "x", "threshold": 1}).tolist() == [False, False, False, True, False]
    text = pd.Series(["a", "b", " a"])
    assert evaluate.facet_group(text, {"name": "x", "values": ["a"]}).tolist() == [True, False, True]


class _Linear:
    """A model whose score is 0.1 + 0.2 x0 + 0.3 x1 + 0.4 [x2 == 'y']: its Shapley values are known."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        score = 0.1 + 0.2 * frame["x0"] + 0.3 * frame["x1"] + 0.4 * (frame["x2"] == "y")
        return np.column_stack([1 - score, score])


def test_exact_shapley_values_of_an_additive_model_are_its_terms():
    schema = {"features": ["x0", "x1", "x2"], "numeric": ["x0", "x1"], "target": "t"}
    rows = np.array([[1.0, 0.0, "y"], [0.0, 1.0, "n"]], dtype=object)
    baseline = [0.0, 0.0, "n"]
    values = evaluate.shapley_values(_Linear(), schema, rows, baseline, num_samples=10, seed=1)
    assert values == pytest.approx(np.array([[0.2, 0.0, 0.4], [0.0, 0.3, 0.0]]))
    assert evaluate.aggregate(values, "mean_abs") == pytest.approx([0.1, 0.15, 0.2])
    assert evaluate.aggregate(values, "mean_sq") == pytest.approx([0.02, 0.045, 0.08])
    assert evaluate.aggregate(values, "median") == pytest.approx([0.1, 0.15, 0.2])


class _Interacting:
    """Score x0 * x1: with baseline 0, each feature gets half of the product (Shapley's symmetry)."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        score = frame["x0"] * frame["x1"]
        return np.column_stack([1 - score, score])


def test_shapley_values_split_an_interaction_and_add_up_to_the_score_difference():
    schema = {"features": ["x0", "x1"], "numeric": ["x0", "x1"], "target": "t"}
    rows = np.array([[0.5, 0.8]], dtype=object)
    values = evaluate.shapley_values(_Interacting(), schema, rows, [0.0, 0.0], num_samples=10, seed=1)
    assert values == pytest.approx(np.array([[0.2, 0.2]]))
    assert values.sum() == pytest.approx(0.4)  # efficiency: f(x) - f(baseline)


def test_permutation_sampling_past_ten_features_is_seeded_and_efficient():
    names = [f"x{i}" for i in range(12)]
    schema = {"features": names, "numeric": names, "target": "t"}

    class Model:
        def predict_proba(self, frame):
            score = frame["x0"] * frame["x1"] * 0.5 + 0.01 * frame[names].sum(axis=1)
            return np.column_stack([1 - score, score])

    rows = np.ones((2, 12), dtype=object)
    first = evaluate.shapley_values(Model(), schema, rows, [0.0] * 12, num_samples=30, seed=7)
    again = evaluate.shapley_values(Model(), schema, rows, [0.0] * 12, num_samples=30, seed=7)
    assert (first == again).all()
    # Every permutation's deltas add up to f(x) - f(baseline), so their mean does too.
    assert first.sum(axis=1) == pytest.approx([0.5 + 0.12] * 2)
    assert first[0, 5] == pytest.approx(0.01)  # an additive feature gets its term whatever the order


# --------------------------------------------------------------------------- the step on the sample chain


@pytest.fixture(scope="module")
def baselines(shared_dir, once) -> dict:  # noqa: F811 - the imported fixtures
    paths = chain_paths(shared_dir, once)
    root, out = paths["root"], paths["out"]
    output = root / "evaluation-clarify"

    def run() -> dict:
        run_script(
            "evaluate.py",
            *("--model-dir", str(root / "model-artifacts"), "--test-dir", str(out / "test")),
            *("--validation-dir", str(out / "validation"), "--output-dir", str(output)),
            *(
                "--bootstrap-rounds",
                "5",
                "--bias-config",
                json.dumps(BIAS),
                "--explainability-config",
                json.dumps(SHAP),
            ),
        )
        return {
            str(path.relative_to(output)): json.loads(path.read_text())
            for path in sorted(output.rglob("*.json"))
            if path.parent != output
        }

    return {"files": once("clarify-baselines", run), "validation": out / "validation", "model_dir": paths["model_dir"]}


def test_the_step_writes_every_registered_file(baselines):
    assert sorted(baselines["files"]) == [
        "bias/analysis_config.json",
        "bias/post_training_constraints.json",
        "bias/post_training_report.json",
        "bias/pre_training_constraints.json",
        "bias/pre_training_report.json",
        "explainability/analysis_config.json",
        "explainability/constraints.json",
        "explainability/method.json",
        "explainability/report.json",
        "model_quality/constraints.json",
        "model_quality/statistics.json",
    ]


def test_the_analysis_configs_pass_the_sdks_clarify_schema(baselines):
    from sagemaker.core.clarify import ANALYSIS_CONFIG_SCHEMA_V1_0

    for name in ("bias/analysis_config.json", "explainability/analysis_config.json"):
        ANALYSIS_CONFIG_SCHEMA_V1_0.validate(baselines["files"][name])
    bias = baselines["files"]["bias/analysis_config.json"]
    assert bias["headers"] == [*FEATURES, TARGET] and bias["label"] == TARGET
    assert bias["facet"] == [{"name_or_index": "senior_citizen", "value_or_threshold": [1]}]
    assert bias["label_values_or_threshold"] == [1] and bias["probability_threshold"] == 0.5
    shap = baselines["files"]["explainability/analysis_config.json"]
    assert shap["headers"] == FEATURES and "model_name" not in shap["predictor"]
    assert shap["methods"]["shap"]["num_samples"] == 100 and shap["methods"]["shap"]["agg_method"] == "mean_abs"
    assert len(shap["methods"]["shap"]["baseline"]) == 1 and len(shap["methods"]["shap"]["baseline"][0]) == len(
        FEATURES
    )


def _validation(baselines) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p) for p in sorted(baselines["validation"].glob("*.csv"))], ignore_index=True)


def test_the_bias_reports_are_the_validation_splits_metrics_recomputed_here(baselines):
    frame = _validation(baselines)
    group = frame["senior_citizen"] == 1
    labels = frame[TARGET].astype(int)
    n_a, n_d = int((~group).sum()), int(group.sum())
    pre = baselines["files"]["bias/pre_training_report.json"]["pre_training_bias_metrics"]
    assert pre["label"] == TARGET and pre["label_value_or_threshold"] == "1"
    [entry] = pre["facets"]["senior_citizen"]
    assert entry["value_or_threshold"] == "1"
    values = {m["name"]: m["value"] for m in entry["metrics"]}
    assert values["CI"] == pytest.approx((n_a - n_d) / (n_a + n_d))
    assert values["DPL"] == pytest.approx(labels[~group].mean() - labels[group].mean())
    assert {m["name"] for m in entry["metrics"]} == {"CI", "DPL"}
    post = baselines["files"]["bias/post_training_report.json"]["post_training_bias_metrics"]
    assert [m["name"] for m in post["facets"]["senior_citizen"][0]["metrics"]] == ["DPPL", "DI", "AD"]


def test_the_constraints_are_the_reports_numbers_in_clarifys_shape(baselines):
    files = baselines["files"]
    for stage in ("pre_training", "post_training"):
        constraints, report = files[f"bias/{stage}_constraints.json"], files[f"bias/{stage}_report.json"]
        assert constraints["version"] == "1.0"
        assert constraints == report  # every metric is defined on the sample data
        for metric in constraints[f"{stage}_bias_metrics"]["facets"]["senior_citizen"][0]["metrics"]:
            assert set(metric) == {"name", "description", "value"} and math.isfinite(metric["value"])


def test_the_shap_baseline_explains_every_feature_and_adds_up(baselines):
    files = baselines["files"]
    label0 = files["explainability/report.json"]["explanations"]["kernel_shap"]["label0"]
    assert list(label0["global_shap_values"]) == FEATURES
    assert all(v >= 0 for v in label0["global_shap_values"].values())  # mean_abs
    assert max(label0["global_shap_values"].values()) > 0
    assert 0 <= label0["expected_value"] <= 1
    assert files["explainability/constraints.json"] == files["explainability/report.json"]
    method = files["explainability/method.json"]
    assert method["method"] == "exact Shapley values" and method["rows"] == 100 and method["seed"] == 42


def test_the_baselines_are_deterministic(baselines, tmp_path):
    paths = baselines["validation"].parent.parent
    again = tmp_path / "again"
    run_script(
        "evaluate.py",
        *("--model-dir", str(paths / "model-artifacts"), "--test-dir", str(paths / "processed" / "test")),
        *("--validation-dir", str(baselines["validation"]), "--output-dir", str(again)),
        *("--bootstrap-rounds", "5", "--bias-config", json.dumps(BIAS), "--explainability-config", json.dumps(SHAP)),
    )
    for name, document in baselines["files"].items():
        assert json.loads((again / name).read_text()) == document, name


def test_an_unknown_facet_stops_the_step_with_one_line(baselines, tmp_path):
    paths = baselines["validation"].parent.parent
    bad = {**BIAS, "facets": [{"name": "age", "values": [1]}]}
    result = run_script(
        "evaluate.py",
        *("--model-dir", str(paths / "model-artifacts"), "--test-dir", str(paths / "processed" / "test")),
        *("--validation-dir", str(baselines["validation"]), "--output-dir", str(tmp_path)),
        *("--bootstrap-rounds", "0", "--bias-config", json.dumps(bad)),
        expect=2,
    )
    assert result.stderr.strip().startswith("evaluate: bias facet 'age' is not a model input")
    assert len(result.stderr.strip().splitlines()) == 1
