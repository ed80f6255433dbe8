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
    # The dev VPC's own subnets take 10.10.0.0-10.10.31.255 (two private /20s): anything after them is free.
    pytest.param({"cidr": "10.10.32.0/20"}, id="cidr-right-after-the-vpc-subnets"),
    pytest.param({"cidr": "10.10.255.240/28"}, id="cidr-smallest-at-the-end"),
    pytest.param({"controller": {"name": "controller", "instance_type": "ml.c5.2xlarge"}}, id="cpu-controller"),
    pytest.param({"internet": "nat"}, id="nat"),
    pytest.param(
        {
            "fsx": {
                "deployment_type": "SCRATCH_2",
                "throughput_per_unit": None,
                "data_repositories": [{"s3_prefix": "projects/churn/d/", "fs_path": "/d"}],
            }
        },
        id="scratch-2-links-s3",  # associations work on every Lustre 2.15 type but SCRATCH_1
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
        ["training_cluster.workers[0].instance_type", "trn1 has no size '48xlarge'", "did you mean 'ml.trn1.32xlarge'"],
        id="no-such-trainium",
    ),
    pytest.param({"cidr": "10.10.0.0/20"}, ["training_cluster.cidr", "overlaps"], id="cidr-clashes-with-vpc-subnets"),
    pytest.param({"cidr": "10.99.128.0/20"}, ["training_cluster.cidr", "outside the dev VPC"], id="cidr-outside-vpc"),
    pytest.param(
        {"workers": [{"name": "controller", "instance_type": "ml.trn1.32xlarge"}]}, ["unique"], id="duplicate-group"
    ),
    pytest.param({"node_recovery": "Manual"}, ["'Automatic' or 'None'"], id="recovery"),
    pytest.param(
        {"internet": "nat", "nat_cidr": "10.10.128.0/28"},
        ["training_cluster.nat_cidr", "overlaps the cluster"],
        id="nat-cidr-in-cluster-subnet",
    ),
    pytest.param({"internet": "nat", "nat_cidr": "10.10.0.0/28"}, ["nat_cidr", "Private subnet"], id="nat-cidr-vpc"),
    pytest.param({"internet": "open"}, ["internet", "'none' or 'nat'"], id="internet-value"),
]


# (id, cluster settings, network overrides, the whole message after "platform.yaml: <field>: ")
EXACT = [
    (
        "cidr-overlaps-a-private-subnet",
        {"cidr": "10.10.16.0/20"},
        {},
        "training_cluster.cidr",
        "10.10.16.0/20 overlaps the dev VPC's Private subnet 10.10.16.0/20 (AZ 2); the VPC's own subnets take "
        "10.10.0.0-10.10.31.255: choose a range after them, e.g. 10.10.32.0/20",
    ),
    (
        "cidr-overlaps-a-public-subnet",  # with NAT the VPC also has a public /24 per AZ after the private ones
        {"cidr": "10.10.32.0/24"},
        {"nat_gateways": 1},
        "training_cluster.cidr",
        "10.10.32.0/24 overlaps the dev VPC's Public subnet 10.10.32.0/24 (AZ 1); the VPC's own subnets take "
        "10.10.0.0-10.10.33.255: choose a range after them, e.g. 10.10.34.0/24",
    ),
    (
        "cidr-overlaps-the-third-az",
        {"cidr": "10.10.40.0/21"},
        {"max_azs": 3},
        "training_cluster.cidr",
        "10.10.40.0/21 overlaps the dev VPC's Private subnet 10.10.32.0/20 (AZ 3); the VPC's own subnets take "
        "10.10.0.0-10.10.47.255: choose a range after them, e.g. 10.10.48.0/21",
    ),
    (
        "cidr-outside-the-vpc",
        {"cidr": "10.99.128.0/20"},
        {},
        "training_cluster.cidr",
        "10.99.128.0/20 is outside the dev VPC 10.10.0.0/16; the cluster subnet is carved from that VPC, whose own "
        "subnets take 10.10.0.0-10.10.31.255: choose a range after them, e.g. 10.10.32.0/20",
    ),
    (
        "no-room-left-in-a-small-vpc",
        {"cidr": "10.10.0.0/20"},
        {"vpc_cidrs": {"dev": "10.10.0.0/19", "staging": "10.20.0.0/16", "prod": "10.30.0.0/16"}},
        "training_cluster.cidr",
        "10.10.0.0/20 overlaps the dev VPC's Private subnet 10.10.0.0/20 (AZ 1); the VPC's own subnets take "
        "10.10.0.0-10.10.31.255: no /20 is left after them; use a longer prefix or a larger dev range",
    ),
    (
        "cidr-smaller-than-aws-allows",
        {"cidr": "10.10.32.0/29"},
        {},
        "training_cluster.cidr",
        "10.10.32.0/29: AWS subnets are /16 to /28",
    ),
    (
        "trainium-without-efa",
        {"workers": [{"name": "trn2", "instance_type": "ml.trn2.3xlarge"}]},
        {},
        "training_cluster.workers[0].instance_type",
        "'ml.trn2.3xlarge' is not a HyperPod Trainium worker type with EFA; allowed: ml.trn1.32xlarge, "
        "ml.trn1n.32xlarge, ml.trn2.48xlarge",
    ),
    (
        "controller-size-does-not-exist",
        {"controller": {"name": "controller", "instance_type": "ml.m5.hyuge"}},
        {},
        "training_cluster.controller.instance_type",
        "'ml.m5.hyuge': m5 has no size 'hyuge'; m5 sizes for HyperPod clusters: large, xlarge, 2xlarge, 4xlarge, "
        "8xlarge, 12xlarge, 16xlarge, 24xlarge",
    ),
]


@pytest.mark.parametrize("settings,network,field,expected", [pytest.param(*c[1:], id=c[0]) for c in EXACT])
def test_rule_names_file_field_and_what_is_allowed(tmp_path, settings, network, field, expected):
    platform = _cluster(**settings)
    platform["network"].update(network)
    config_dir = write_config(tmp_path, platform)
    with pytest.raises(ConfigError) as raised:
        load_config(config_dir)
    assert str(raised.value) == f"{config_dir / 'platform.yaml'}: {field}: {expected}"


def test_cidr_is_not_checked_while_the_cluster_is_off(tmp_path):
    platform = example_platform()
    platform["training_cluster"] = {"enabled": False, "keep_file_system": False, "cidr": "10.10.0.0/20"}
    assert not load_config(write_config(tmp_path, platform)).platform.training_cluster.in_app


def test_switching_off_must_say_what_happens_to_the_file_system(tmp_path):
    """enabled: false alone could leave a deployed cluster billing outside the app; it is refused, one line."""
    platform = example_platform()
    platform["training_cluster"] = {"enabled": False}
    config_dir = write_config(tmp_path, platform)
    with pytest.raises(ConfigError) as raised:
        load_config(config_dir)
    message = str(raised.value)
    assert message.startswith(f"{config_dir / 'platform.yaml'}: training_cluster.keep_file_system: required")
    assert "\n" not in message and "deletes the cluster" in message


@pytest.mark.parametrize("keep,in_app", [(True, True), (False, False)])
def test_switched_off_states(tmp_path, keep, in_app):
    platform = example_platform()
    platform["training_cluster"] = {"enabled": False, "keep_file_system": keep}
    cluster = load_config(write_config(tmp_path, platform)).platform.training_cluster
    assert (cluster.enabled, cluster.in_app) == (False, in_app)


def test_no_section_means_no_stack(tmp_path):
    assert not load_config(write_config(tmp_path, example_platform())).platform.training_cluster.in_app


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


def test_the_pipeline_says_where_fsx_and_trainium_went(tmp_path):
    """Both options are refused with the reason and where to go instead (the training cluster)."""
    from tests.synth import example_project

    project = example_project()
    project["pipeline"] = {"fsx_input": {"directory": "/datasets/churn"}}
    with pytest.raises(
        ConfigError, match=r"churn.yaml: pipeline: .*fsx_input is no longer an option.*training_cluster"
    ):
        load_config(write_config(tmp_path, None, {"churn": project}))
    project["pipeline"] = {"training_instance_type": "ml.trn1.2xlarge"}
    with pytest.raises(ConfigError, match=r"ml.trn1.2xlarge: the pipeline trains a scikit-learn model"):
        load_config(write_config(tmp_path / "trn", None, {"churn": project}))
