"""The provisioning_parameters.json document the HyperPod lifecycle scripts read.

Two builders, for two situations:

* ``provisioning_parameters(...)`` - every value is a literal string (a test, a script that
  writes the file, a deployment where the FSx names are known). Validates everything.
* ``provisioning_parameters_template(...)`` - for the CDK stack, where the FSx DNS and mount names
  are CloudFormation tokens (``fsx.dns_name``, ``fsx.mount_name``) known only at deploy time.
  Validates the group names and the mount point, passes the FSx values through untouched; the
  stack writes the document with the tokens resolved at deploy time (e.g. ``Source.json_data``
  of ``aws_s3_deployment``). on_create.sh refuses a file that still holds a token.

The document must sit beside on_create.sh under the cluster's ``SourceS3Uri``, named
``provisioning_parameters.json``. Pure Python, stdlib only: importable at synth time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

SCRIPTS_DIR = Path(__file__).resolve().parent / "scripts"
"""Upload this folder (as is) to the lifecycle prefix in the ``sagemaker-*`` bucket."""
ON_CREATE = "on_create.sh"
"""The ``LifeCycleConfig.OnCreate`` value."""
PARAMETERS_FILE = "provisioning_parameters.json"
"""Object name of the parameters document, beside ``on_create.sh``."""
DEFAULT_MOUNT_POINT = "/fsx"
DEFAULT_JOB_USER = "mlops"
DEFAULT_JOB_UID = 2001
DEFAULT_DATA_PATHS = ("/datasets",)
VERSION = "1.1.0"

# HyperPod instance group names and Slurm partition names: the API's InstanceGroupName pattern.
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_NAME_MAX = 63
# fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com (and .com.cn in the China regions).
_DNS = re.compile(r"^fs-[0-9a-f]{8,17}\.fsx\.[a-z]{2}(-[a-z]+)+-\d+\.amazonaws\.com(\.cn)?$")
# FSx for Lustre MountName: 1-8 of [A-Za-z0-9_-] ("fsx" for SCRATCH_1, 8 random characters otherwise).
_MOUNT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,8}$")
_MOUNT_POINT = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
# A portable POSIX login name (useradd's default rule), at most 32 characters.
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# Names the HyperPod Slurm AMI already uses: reusing one would hand the job user their files.
_RESERVED_USERS = frozenset({"root", "ubuntu", "slurm", "ssm-user", "nobody", "daemon", "sys", "admin"})
# A regular (non-system) UID that useradd accepts everywhere, below nobody (65534).
_UID_MIN, _UID_MAX = 1000, 60000


def provisioning_parameters(
    *,
    controller_group: str,
    worker_groups: Sequence[str],
    fsx_dns_name: str,
    fsx_mount_name: str,
    mount_point: str = DEFAULT_MOUNT_POINT,
    partitions: Mapping[str, str] | None = None,
    internet_access: bool = False,
    job_user: str = DEFAULT_JOB_USER,
    job_uid: int = DEFAULT_JOB_UID,
    data_paths: Sequence[str] = DEFAULT_DATA_PATHS,
) -> dict[str, Any]:
    """The document for literal values; raises ValueError naming the first bad argument.

    ``partitions`` maps a worker group to its Slurm partition name; a group not in it gets a
    partition named after the group. The first worker group's partition is Slurm's default.

    ``internet_access``: the cluster subnet has a NAT route (config ``training_cluster.internet:
    nat``), so the nodes may build the Neuron venv from PyPI; without it they only use what the
    image ships. ``job_user``/``job_uid``: the user jobs run as, created on every node with that
    UID and an equal GID, home ``<mount_point>/home/<job_user>``. ``data_paths``: the data
    repository paths (the ``fs_path`` of each association, relative to the mount point) the job
    user must be able to write.
    """
    if not isinstance(fsx_dns_name, str) or not _DNS.match(fsx_dns_name):
        raise ValueError(
            f"fsx_dns_name must look like fs-0123456789abcdef0.fsx.<region>.amazonaws.com, got {fsx_dns_name!r}"
        )
    if not isinstance(fsx_mount_name, str) or not _MOUNT_NAME.match(fsx_mount_name):
        raise ValueError(
            f"fsx_mount_name must be 1-8 characters of letters, digits, '_' or '-' "
            f"(the file system's MountName), got {fsx_mount_name!r}"
        )
    return provisioning_parameters_template(
        controller_group=controller_group,
        worker_groups=worker_groups,
        fsx_dns_name=fsx_dns_name,
        fsx_mount_name=fsx_mount_name,
        mount_point=mount_point,
        partitions=partitions,
        internet_access=internet_access,
        job_user=job_user,
        job_uid=job_uid,
        data_paths=data_paths,
    )


def provisioning_parameters_template(
    *,
    controller_group: str,
    worker_groups: Sequence[str],
    fsx_dns_name: Any,
    fsx_mount_name: Any,
    mount_point: str = DEFAULT_MOUNT_POINT,
    partitions: Mapping[str, str] | None = None,
    internet_access: bool = False,
    job_user: str = DEFAULT_JOB_USER,
    job_uid: int = DEFAULT_JOB_UID,
    data_paths: Sequence[str] = DEFAULT_DATA_PATHS,
) -> dict[str, Any]:
    """The document with ``fsx_dns_name`` and ``fsx_mount_name`` passed through untouched.

    For CDK tokens, which only resolve at deploy time. Group names, partition names and the mount
    point, the job user and the data paths are literals from config and are validated as in
    ``provisioning_parameters``.
    """
    _check_name("controller_group", controller_group)
    if isinstance(worker_groups, str) or not isinstance(worker_groups, Sequence):
        raise ValueError(f"worker_groups must be a list of instance group names, got {worker_groups!r}")
    if not worker_groups:
        raise ValueError("worker_groups must name at least one instance group")
    for i, group in enumerate(worker_groups):
        _check_name(f"worker_groups[{i}]", group)
    if len(set(worker_groups)) != len(worker_groups):
        raise ValueError(f"worker_groups has duplicates: {list(worker_groups)}")
    if controller_group in worker_groups:
        raise ValueError(f"controller_group {controller_group!r} is also in worker_groups")
    partitions = dict(partitions or {})
    unknown = sorted(set(partitions) - set(worker_groups))
    if unknown:
        raise ValueError(f"partitions names groups that are not in worker_groups: {unknown}")
    for group, partition in partitions.items():
        _check_name(f"partitions[{group!r}]", partition)
    if not isinstance(mount_point, str) or not _MOUNT_POINT.match(mount_point):
        raise ValueError(f"mount_point must be an absolute path such as /fsx (not /), got {mount_point!r}")
    if not isinstance(internet_access, bool):
        raise ValueError(f"internet_access must be True or False, got {internet_access!r}")
    if not isinstance(job_user, str) or not _USER.match(job_user):
        raise ValueError(
            f"job_user must be a login name of 1-32 lowercase letters, digits, '_' or '-' "
            f"starting with a letter or '_', got {job_user!r}"
        )
    if job_user in _RESERVED_USERS:
        raise ValueError(f"job_user must not be a user the image already has ({job_user!r})")
    if isinstance(job_uid, bool) or not isinstance(job_uid, int) or not _UID_MIN <= job_uid <= _UID_MAX:
        raise ValueError(f"job_uid must be an integer from {_UID_MIN} to {_UID_MAX}, got {job_uid!r}")
    paths = _check_data_paths(data_paths)
    return {
        "version": VERSION,
        "workload_manager": "slurm",
        "controller_group": controller_group,
        "worker_groups": [
            {"instance_group_name": group, "partition_name": partitions.get(group, group)} for group in worker_groups
        ],
        "fsx_dns_name": fsx_dns_name,
        "fsx_mountname": fsx_mount_name,
        "fsx_mount_point": mount_point,
        "internet_access": internet_access,
        "job_user": job_user,
        "job_uid": job_uid,
        "data_paths": paths,
    }


def to_json(document: Mapping[str, Any]) -> str:
    """The file's bytes: stable key order and indentation, so the uploaded object is deterministic."""
    return json.dumps(document, indent=2) + "\n"


def _check_data_paths(data_paths: Any) -> list[str]:
    if isinstance(data_paths, str) or not isinstance(data_paths, Sequence):
        raise ValueError(f"data_paths must be a list of paths such as /datasets, got {data_paths!r}")
    paths = []
    for i, path in enumerate(data_paths):
        if not isinstance(path, str) or not _MOUNT_POINT.match(path.rstrip("/") or "/"):
            raise ValueError(f"data_paths[{i}] must be a path inside the mount such as /datasets, got {path!r}")
        parts = path.strip("/").split("/")
        if any(part in (".", "..") for part in parts):
            raise ValueError(f"data_paths[{i}] must not contain '.' or '..', got {path!r}")
        if parts[0] in ("home", "envs", "neuron-cache"):
            raise ValueError(
                f"data_paths[{i}] must not be under /{parts[0]} (the lifecycle scripts own it), got {path!r}"
            )
        paths.append(path.rstrip("/"))
    if len(set(paths)) != len(paths):
        raise ValueError(f"data_paths has duplicates: {paths}")
    return paths


def _check_name(field: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")
    if len(value) > _NAME_MAX or not _NAME.match(value):
        raise ValueError(
            f"{field} must be 1-{_NAME_MAX} letters, digits and inner hyphens "
            f"(HyperPod's instance group name rule), got {value!r}"
        )
