"""provisioning_parameters(): the JSON document on_create.sh reads, and its validation."""

from __future__ import annotations

import json

import pytest

from hyperpod_lifecycle import (
    ON_CREATE,
    PARAMETERS_FILE,
    SCRIPTS_DIR,
    provisioning_parameters,
    provisioning_parameters_template,
    to_json,
)

DNS = "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com"
GOOD = {"controller_group": "controller", "worker_groups": ["trn1"], "fsx_dns_name": DNS, "fsx_mount_name": "abcdefgh"}


def test_document_has_the_keys_the_scripts_and_hyperpod_samples_use():
    assert provisioning_parameters(**GOOD) == {
        "version": "1.1.0",
        "workload_manager": "slurm",
        "controller_group": "controller",
        "worker_groups": [{"instance_group_name": "trn1", "partition_name": "trn1"}],
        "fsx_dns_name": DNS,
        "fsx_mountname": "abcdefgh",
        "fsx_mount_point": "/fsx",
        "internet_access": False,
        "job_user": "mlops",
        "job_uid": 2001,
        "data_paths": ["/datasets"],
    }


def test_internet_job_user_and_data_paths_are_written_into_the_document():
    doc = provisioning_parameters(
        **GOOD, internet_access=True, job_user="trainer", job_uid=3000, data_paths=["/datasets/", "/ckpt"]
    )
    assert (doc["internet_access"], doc["job_user"], doc["job_uid"]) == (True, "trainer", 3000)
    assert doc["data_paths"] == ["/datasets", "/ckpt"]
    template = provisioning_parameters_template(
        controller_group="controller",
        worker_groups=["trn1"],
        fsx_dns_name=FakeToken(),
        fsx_mount_name=FakeToken(),
        internet_access=True,
        job_user="trainer",
        job_uid=3000,
    )
    assert (template["internet_access"], template["job_user"], template["job_uid"]) == (True, "trainer", 3000)


def test_partitions_default_to_the_group_name_and_keep_group_order():
    doc = provisioning_parameters(
        **GOOD | {"worker_groups": ["trn1-big", "cpu"], "partitions": {"cpu": "debug"}, "mount_point": "/data"}
    )
    assert doc["worker_groups"] == [
        {"instance_group_name": "trn1-big", "partition_name": "trn1-big"},
        {"instance_group_name": "cpu", "partition_name": "debug"},
    ]
    assert doc["fsx_mount_point"] == "/data"


@pytest.mark.parametrize(
    "dns",
    [
        "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com",
        "fs-01234567.fsx.eu-west-2.amazonaws.com",
        "fs-0123456789abcdef0.fsx.us-gov-west-1.amazonaws.com",
        "fs-0123456789abcdef0.fsx.cn-north-1.amazonaws.com.cn",
    ],
)
def test_accepts_fsx_dns_names(dns):
    assert provisioning_parameters(**GOOD | {"fsx_dns_name": dns})["fsx_dns_name"] == dns


@pytest.mark.parametrize("name", ["fsx", "abcdefgh", "a_b-c"])
def test_accepts_mount_names(name):
    assert provisioning_parameters(**GOOD | {"fsx_mount_name": name})["fsx_mountname"] == name


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"controller_group": ""}, "controller_group must be a non-empty string"),
        ({"controller_group": "ctl_1"}, "controller_group must be 1-63 letters"),
        ({"controller_group": "x" * 64}, "controller_group must be 1-63"),
        ({"worker_groups": []}, "worker_groups must name at least one"),
        ({"worker_groups": "trn1"}, "worker_groups must be a list"),
        ({"worker_groups": ["trn1", ""]}, r"worker_groups\[1\] must be a non-empty string"),
        ({"worker_groups": ["trn1", "trn1"]}, "worker_groups has duplicates"),
        ({"worker_groups": ["trn1", "controller"]}, "controller_group 'controller' is also in worker_groups"),
        ({"partitions": {"gpu": "p"}}, "partitions names groups that are not in worker_groups: \\['gpu'\\]"),
        ({"partitions": {"trn1": "bad name"}}, r"partitions\['trn1'\] must be"),
        ({"fsx_dns_name": ""}, "fsx_dns_name must look like fs-"),
        ({"fsx_dns_name": "fsx.example.com"}, "fsx_dns_name must look like"),
        ({"fsx_dns_name": "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com:988"}, "fsx_dns_name"),
        ({"fsx_dns_name": "fs-0123456789abcdef0.efs.us-east-1.amazonaws.com"}, "fsx_dns_name"),
        ({"fsx_mount_name": ""}, "fsx_mount_name must be 1-8 characters"),
        ({"fsx_mount_name": "abcdefghi"}, "fsx_mount_name must be 1-8"),
        ({"fsx_mount_name": "ab/cd"}, "fsx_mount_name"),
        ({"mount_point": "/"}, "mount_point must be an absolute path"),
        ({"mount_point": "fsx"}, "mount_point must be an absolute path"),
        ({"mount_point": "/fsx data"}, "mount_point"),
        ({"internet_access": "nat"}, "internet_access must be True or False"),
        ({"internet_access": 1}, "internet_access must be True or False"),
        ({"job_user": ""}, "job_user must be a login name"),
        ({"job_user": "Ml Ops"}, "job_user must be a login name"),
        ({"job_user": "x" * 33}, "job_user must be a login name"),
        ({"job_user": "root"}, "job_user must not be a user the image already has"),
        ({"job_user": "ubuntu"}, "job_user must not be a user the image already has"),
        ({"job_uid": "2001"}, "job_uid must be an integer from 1000 to 60000"),
        ({"job_uid": True}, "job_uid must be an integer"),
        ({"job_uid": 0}, "job_uid must be an integer"),
        ({"job_uid": 999}, "job_uid must be an integer"),
        ({"job_uid": 65534}, "job_uid must be an integer"),
        ({"data_paths": "/datasets"}, "data_paths must be a list"),
        ({"data_paths": ["datasets"]}, r"data_paths\[0\] must be a path inside the mount"),
        ({"data_paths": ["/"]}, r"data_paths\[0\] must be a path"),
        ({"data_paths": ["/a/../etc"]}, r"data_paths\[0\] must not contain"),
        ({"data_paths": ["/home/x"]}, r"data_paths\[0\] must not be under /home"),
        ({"data_paths": ["/d", "/d/"]}, "data_paths has duplicates"),
    ],
)
def test_rejects_bad_input_with_a_message_naming_the_argument(change, message):
    with pytest.raises(ValueError, match=message):
        provisioning_parameters(**GOOD | change)


class FakeToken:
    """Stands in for a CDK token (an IResolvable, or its string form): never inspected."""


def test_template_passes_fsx_values_through_untouched():
    dns, mount = FakeToken(), "${Token[TOKEN.123]}"
    doc = provisioning_parameters_template(
        controller_group="controller", worker_groups=["trn1"], fsx_dns_name=dns, fsx_mount_name=mount
    )
    assert doc["fsx_dns_name"] is dns
    assert doc["fsx_mountname"] is mount
    assert doc["worker_groups"] == [{"instance_group_name": "trn1", "partition_name": "trn1"}]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"controller_group": ""}, "controller_group"),
        ({"worker_groups": ["controller"]}, "also in worker_groups"),
        ({"worker_groups": []}, "at least one"),
        ({"job_uid": 12}, "job_uid"),
        ({"internet_access": "none"}, "internet_access"),
    ],
)
def test_template_still_validates_group_names(change, message):
    with pytest.raises(ValueError, match=message):
        provisioning_parameters_template(**GOOD | {"fsx_dns_name": FakeToken(), "fsx_mount_name": FakeToken()} | change)


def test_to_json_is_stable_and_round_trips():
    doc = provisioning_parameters(**GOOD)
    text = to_json(doc)
    assert text == to_json(provisioning_parameters(**GOOD))
    assert text.endswith("\n")
    assert json.loads(text) == doc


def test_scripts_dir_holds_the_entry_point_and_no_parameters_file():
    # The stack supplies provisioning_parameters.json; a copy in the folder would collide with it.
    assert (SCRIPTS_DIR / ON_CREATE).is_file()
    assert not (SCRIPTS_DIR / PARAMETERS_FILE).exists()
    assert sorted(p.name for p in SCRIPTS_DIR.iterdir()) == [
        "common.sh",
        "lifecycle_config.py",
        "mount_fsx.sh",
        "on_create.sh",
        "setup_neuron.sh",
        "setup_slurm.sh",
        "setup_user.sh",
    ]
