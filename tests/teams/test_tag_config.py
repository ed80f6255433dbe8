"""The cost-allocation tags in config: platform.yaml must set cost-center; a project may override it."""

from __future__ import annotations

import pytest

from mlops_platform.config import ConfigError, load_config
from tests.synth import example_platform, example_project, write_config


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (
            {},
            "tags: needs 'cost-center': every resource is tagged with it, so the bill can be split by team",
        ),
        ({"cost-center": ""}, "tags: needs 'cost-center'"),
        (
            {"cost-center": "ml", "mlops:project": "x"},
            "tags: mlops:project: tag keys starting with 'mlops:' are set by the platform",
        ),
    ],
    ids=["missing", "empty", "reserved key"],
)
def test_platform_tags_need_a_cost_center_and_leave_mlops_keys_alone(tmp_path, tags, expected):
    platform = example_platform() | {"tags": tags}
    config_dir = write_config(tmp_path, platform)
    with pytest.raises(ConfigError) as error:
        load_config(config_dir)
    message = str(error.value)
    assert message.startswith(f"{config_dir / 'platform.yaml'}: ") and expected in message
    assert "\n" not in message


def test_a_project_may_name_its_own_cost_center(tmp_path):
    project = example_project() | {"cost_center": "ml-churn"}
    config = load_config(write_config(tmp_path, None, {"churn": project}))
    assert config.projects["churn"].cost_center == "ml-churn"
    assert load_config(write_config(tmp_path / "b")).projects["churn"].cost_center is None
