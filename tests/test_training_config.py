"""Training-cluster guardrails: the values people get wrong give one clear error each."""

from __future__ import annotations

import pytest

from mlops_platform.config import ConfigError, load_config
from tests.synth import example_platform, write_config


def _cluster(**settings) -> dict:
    platform = example_platform()
    platform["training_cluster"] = {"enabled": True, **settings}
    return platform


VALID = [
    pytest.param({}, id="defaults"),
    pytest.param({"fsx": {"storage_capacity_gib": 4800, "throughput_per_unit": 1000}}, id="persistent-4800"),
    pytest.param({"fsx": {"deployment_type": "SCRATCH_2", "throughput_per_unit": None}}, id="scratch"),
    pytest.param({"workers": [{"name": "trn2", "instance_type": "ml.trn2.48xlarge", "count": 4}]}, id="trn2-workers"),
    pytest.param(
        {"fsx": {"data_repositories": [{"s3_prefix": f"projects/churn/d{i}/", "fs_path": f"/d{i}"} for i in range(8)]}},
        id="eight-associations",
    ),
]

INVALID = [
    pytest.param({"fsx": {"storage_capacity_gib": 2000}}, ["1200 or a multiple of 2400"], id="capacity"),
    pytest.param({"fsx": {"throughput_per_unit": 300}}, ["throughput_per_unit 300", "125, 250, 500, 1000"], id="tput"),
    pytest.param(
        {"fsx": {"deployment_type": "SCRATCH_2", "throughput_per_unit": 250}}, ["PERSISTENT_2 only"], id="scratch-tput"
    ),
    pytest.param(
        {"fsx": {"data_repositories": [{"s3_prefix": f"p{i}/", "fs_path": f"/d{i}"} for i in range(9)]}},
        ["data_repositories", "at most 8"],
        id="nine-associations",
    ),
    pytest.param({"subnet_type": "public"}, ["public subnets"], id="public-subnet"),
    pytest.param(
        {"availability_zone_id": "euw1-az1", "fsx_availability_zone_id": "euw1-az2"}, ["one AZ"], id="az-mismatch"
    ),
    pytest.param(
        {"workers": [{"name": "trn", "instance_type": "ml.trn1.48xlarge"}]},
        ["not a HyperPod Trainium type", "ml.trn1.32xlarge"],
        id="no-such-trainium",
    ),
    pytest.param({"cidr": "10.10.0.0/20"}, ["upper half of the dev VPC"], id="cidr-clashes-with-vpc-subnets"),
    pytest.param({"cidr": "10.99.128.0/20"}, ["upper half of the dev VPC"], id="cidr-outside-vpc"),
    pytest.param(
        {"workers": [{"name": "controller", "instance_type": "ml.trn1.32xlarge"}]}, ["unique"], id="duplicate-group"
    ),
    pytest.param({"node_recovery": "Manual"}, ["'Automatic' or 'None'"], id="recovery"),
]


@pytest.mark.parametrize("settings", VALID)
def test_valid_cluster_configs_load(tmp_path, settings):
    assert load_config(write_config(tmp_path, _cluster(**settings))).platform.training_cluster.enabled


@pytest.mark.parametrize("settings,fragments", INVALID)
def test_guardrails(tmp_path, settings, fragments):
    with pytest.raises(ConfigError) as raised:
        load_config(write_config(tmp_path, _cluster(**settings)))
    message = str(raised.value)
    assert "platform.yaml" in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_fsx_input_needs_the_training_cluster(tmp_path):
    from tests.synth import example_project

    project = example_project()
    project["pipeline"] = {"fsx_input": {"directory": "/datasets/churn"}}
    with pytest.raises(ConfigError, match=r"churn.yaml: pipeline.fsx_input: needs the shared training cluster"):
        load_config(write_config(tmp_path, None, {"churn": project}))
