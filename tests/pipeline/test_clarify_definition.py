"""The pipeline definition with bias and explainability baselines: Evaluate writes them, Register registers them.

One build with both switched on (made once per run, as the conftest builds are);
the base build has neither.
"""

from __future__ import annotations

import json

import pytest

from pipeline_definitions.cache import cache_key
from pipeline_definitions.inputs import PipelineInputs, bias_settings, explainability_settings
from tests.pipeline.conftest import _build, base_inputs_kwargs
from tests.pipeline.test_pipeline_definition import steps_by_name

BIAS = bias_settings([("contract", ["month-to-month"]), ("tenure_months", 12)], [1], 0.6)
SHAP = explainability_settings(50, "median")


@pytest.fixture(scope="module")
def clarify_inputs() -> PipelineInputs:
    return PipelineInputs(**base_inputs_kwargs(), bias_config=BIAS, explainability_config=SHAP)


@pytest.fixture(scope="module")
def clarify_definition(once, clarify_inputs) -> dict:
    built = once("definition-clarify", lambda: _build(clarify_inputs))
    assert built["attempts"] == []  # offline, like the other builds
    return json.loads(built["text"])


def _file(name: str, content_type: bool = True) -> dict:
    source = {
        "S3Uri": {
            "Std:Join": {
                "On": "/",
                "Values": [
                    {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
                    *name.split("/"),
                ],
            }
        }
    }
    return {**source, "ContentType": "application/json"} if content_type else source


def test_settings_are_canonical_json():
    assert json.loads(BIAS) == {
        "facets": [{"name": "contract", "values": ["month-to-month"]}, {"name": "tenure_months", "threshold": 12.0}],
        "label_values": [1],
        "probability_threshold": 0.6,
    }
    assert SHAP == '{"agg_method":"median","num_samples":50}'


def test_the_settings_are_part_of_the_cache_key(clarify_inputs, base_inputs):
    assert cache_key(clarify_inputs) != cache_key(base_inputs)
    assert cache_key(clarify_inputs) != cache_key(
        PipelineInputs(
            **base_inputs_kwargs(), bias_config=BIAS, explainability_config=explainability_settings(50, "mean_abs")
        )
    )
    assert PipelineInputs.from_json(clarify_inputs.to_json()) == clarify_inputs


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"bias_config": bias_settings([("age", [1])], [1], 0.5)}, "must name a feature column"),
        ({"bias_config": bias_settings([], [1], 0.5)}, "needs at least one facet"),
        ({"bias_config": '{"facets": []}'}, "must be an object with keys"),
        ({"explainability_config": '{"agg_method":"max","num_samples":5}'}, "agg_method must be one of"),
        ({"explainability_config": '{"num_samples": 5, "agg_method": "median"}'}, "canonical JSON"),
    ],
)
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        PipelineInputs(**base_inputs_kwargs(), **overrides)


def test_evaluate_gets_the_settings(clarify_definition, base_definition):
    arguments = steps_by_name(clarify_definition)["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--bias-config") + 1] == BIAS
    assert arguments[arguments.index("--explainability-config") + 1] == SHAP
    assert "--validation-dir" in arguments
    base = steps_by_name(base_definition)["Evaluate"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert "--bias-config" not in base and "--explainability-config" not in base


def test_register_records_the_bias_and_explainability_reports(clarify_definition):
    metrics = steps_by_name(clarify_definition)["Register"]["Arguments"]["ModelMetrics"]
    assert metrics["Bias"] == {
        "PreTrainingReport": _file("bias/pre_training_report.json"),
        "PostTrainingReport": _file("bias/post_training_report.json"),
    }
    assert metrics["Explainability"] == {"Report": _file("explainability/report.json")}


def test_register_records_the_drift_check_baselines_monitoring_reads(clarify_definition):
    baselines = steps_by_name(clarify_definition)["Register"]["Arguments"]["DriftCheckBaselines"]
    assert baselines["Bias"] == {
        "ConfigFile": _file("bias/analysis_config.json"),
        "PreTrainingConstraints": _file("bias/pre_training_constraints.json"),
        "PostTrainingConstraints": _file("bias/post_training_constraints.json"),
    }
    assert baselines["Explainability"] == {
        "ConfigFile": _file("explainability/analysis_config.json"),
        "Constraints": _file("explainability/constraints.json"),
    }
    # The quality baselines are still there.
    assert {"ModelDataQuality", "ModelQuality"} <= set(baselines)


def test_the_base_definition_registers_no_bias_or_explainability(base_definition):
    register = steps_by_name(base_definition)["Register"]["Arguments"]
    # The SDK writes empty Bias/Explainability blocks into ModelMetrics either way.
    for block in ("ModelMetrics", "DriftCheckBaselines"):
        assert register[block].get("Bias", {}) == {} and register[block].get("Explainability", {}) == {}
