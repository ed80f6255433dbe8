"""Config of bias and explainability monitoring: defaults, and each bad setting as one line naming the field."""

from __future__ import annotations

import copy

import pytest

from mlops_platform.config import Bias, ConfigError, Explainability, load_config
from tests.synth import EXAMPLE_CONFIG, example_project, write_config

FEATURES = ", ".join(load_config(EXAMPLE_CONFIG).projects["churn"].pipeline_features())


def _churn(**monitoring) -> dict:
    project = example_project()
    project["monitoring"] = {**copy.deepcopy(project["monitoring"]), **monitoring}
    return project


def _error(tmp_path, project: dict) -> str:
    with pytest.raises(ConfigError) as raised:
        load_config(write_config(tmp_path, None, {"churn": project}))
    message = str(raised.value)
    assert "\n" not in message
    return message.split(": ", 1)[1]  # after "<file>: "


def test_defaults_are_off():
    assert Bias() == Bias(enabled=False, facets=[], label_values_or_threshold=[1], probability_threshold=None)
    assert Bias().max_dppl == 0.2
    assert Explainability() == Explainability(enabled=False, num_samples=100, agg_method="mean_abs")


def test_the_example_monitors_bias_of_senior_citizens_and_explainability():
    monitoring = load_config(EXAMPLE_CONFIG).projects["churn"].monitoring
    assert monitoring.bias.enabled and [(f.name, f.value_or_threshold) for f in monitoring.bias.facets] == [
        ("senior_citizen", [1])
    ]
    # No threshold of its own: model quality's.
    assert monitoring.bias_probability_threshold == monitoring.model_quality.probability_threshold == 0.5
    assert monitoring.explainability.enabled


def test_a_facet_threshold_is_a_number(tmp_path):
    project = _churn(bias={"enabled": True, "facets": [{"name": "tenure_months", "value_or_threshold": 48}]})
    config = load_config(write_config(tmp_path, None, {"churn": project}))
    assert config.projects["churn"].monitoring.bias.facets[0].value_or_threshold == 48


BAD = [
    (
        "bias-without-facet",
        {"bias": {"enabled": True}},
        "monitoring.bias.facets: bias needs at least one facet: a model input and its sensitive group, "
        "e.g. {name: senior_citizen, value_or_threshold: [1]}",
    ),
    (
        "unknown-facet",
        {"bias": {"enabled": True, "facets": [{"name": "age", "value_or_threshold": [1]}]}},
        f"monitoring.bias.facets[0].name: 'age' is not a model input; allowed: {FEATURES}",
    ),
    (
        "label-is-no-facet",
        {"bias": {"enabled": True, "facets": [{"name": "churn", "value_or_threshold": [1]}]}},
        f"monitoring.bias.facets[0].name: 'churn' is not a model input; allowed: {FEATURES}",
    ),
    (
        "bias-with-pipeline-engine",
        {
            "engine": "pipeline",
            "bias": {"enabled": True, "facets": [{"name": "senior_citizen", "value_or_threshold": [1]}]},
        },
        "monitoring.bias.enabled: bias monitoring needs engine: model_monitor (the pipeline engine's drift check "
        "does data and model quality only); set engine: model_monitor or turn it off",
    ),
    (
        "explainability-with-pipeline-engine",
        {"engine": "pipeline", "bias": {"enabled": False}, "explainability": {"enabled": True}},
        "monitoring.explainability.enabled: explainability monitoring needs engine: model_monitor (the pipeline "
        "engine's drift check does data and model quality only); set engine: model_monitor or turn it off",
    ),
    (
        "bias-without-ground-truth",
        {"model_quality": {"enabled": False}},
        "monitoring.bias.enabled: bias monitoring needs the labels of served requests: set "
        "model_quality.ground_truth_s3_uri",
    ),
    (
        "facet-listed-twice",
        {
            "bias": {
                "enabled": True,
                "facets": [
                    {"name": "senior_citizen", "value_or_threshold": [1]},
                    {"name": "senior_citizen", "value_or_threshold": [0]},
                ],
            }
        },
        "monitoring.bias.facets: a feature is listed twice: senior_citizen",
    ),
]


@pytest.mark.parametrize("monitoring,expected", [pytest.param(*case[1:], id=case[0]) for case in BAD])
def test_bad_bias_or_explainability_setting_is_one_line_naming_the_field(tmp_path, monitoring, expected):
    assert _error(tmp_path, _churn(**monitoring)) == expected


@pytest.mark.parametrize(
    "monitoring,field",
    [
        ({"explainability": {"enabled": True, "agg_method": "max"}}, "monitoring.explainability.agg_method"),
        ({"explainability": {"enabled": True, "num_samples": 0}}, "monitoring.explainability.num_samples"),
        ({"bias": {"enabled": True, "label_values_or_threshold": [2]}}, "monitoring.bias.label_values_or_threshold"),
        ({"bias": {"enabled": True, "probability_threshold": 1.5}}, "monitoring.bias.probability_threshold"),
        ({"bias": {"enabled": True, "facet": []}}, "monitoring.bias.facet"),
    ],
)
def test_out_of_range_values_name_their_field(tmp_path, monitoring, field):
    project = _churn(**monitoring)
    if "bias" in monitoring and "facets" not in monitoring["bias"] and "facet" not in monitoring["bias"]:
        project["monitoring"]["bias"]["facets"] = [{"name": "senior_citizen", "value_or_threshold": [1]}]
    assert _error(tmp_path, project).startswith(f"{field}"), _error(tmp_path, project)


def test_an_off_project_checks_no_facet(tmp_path):
    """Facets are checked against the model's inputs only where bias is on."""
    project = _churn(bias={"enabled": False, "facets": [{"name": "age", "value_or_threshold": [1]}]})
    assert not load_config(write_config(tmp_path, None, {"churn": project})).projects["churn"].monitoring.bias.enabled
