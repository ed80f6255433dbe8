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
VERSION = "1.0.0"

# HyperPod instance group names and Slurm partition names: the API's InstanceGroupName pattern.
_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")
_NAME_MAX = 63
# fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com (and .com.cn in the China regions).
_DNS = re.compile(r"^fs-[0-9a-f]{8,17}\.fsx\.[a-z]{2}(-[a-z]+)+-\d+\.amazonaws\.com(\.cn)?$")
# FSx for Lustre MountName: 1-8 of [A-Za-z0-9_-] ("fsx" for SCRATCH_1, 8 random characters otherwise).
_MOUNT_NAME = re.compile(r"^[A-Za-z0-9_-]{1,8}$")
_MOUNT_POINT = re.compile(r"^(/[A-Za-z0-9._-]+)+$")


def provisioning_parameters(
    *,
    controller_group: str,
    worker_groups: Sequence[str],
    fsx_dns_name: str,
    fsx_mount_name: str,
    mount_point: str = DEFAULT_MOUNT_POINT,
    partitions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The document for literal values; raises ValueError naming the first bad argument.

    ``partitions`` maps a worker group to its Slurm partition name; a group not in it gets a
    partition named after the group. The first worker group's partition is Slurm's default.
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
    )


def provisioning_parameters_template(
    *,
    controller_group: str,
    worker_groups: Sequence[str],
    fsx_dns_name: Any,
    fsx_mount_name: Any,
    mount_point: str = DEFAULT_MOUNT_POINT,
    partitions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The document with ``fsx_dns_name`` and ``fsx_mount_name`` passed through untouched.

    For CDK tokens, which only resolve at deploy time. Group names, partition names and the mount
    point are literals from config and are validated as in ``provisioning_parameters``.
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
    }


def to_json(document: Mapping[str, Any]) -> str:
    """The file's bytes: stable key order and indentation, so the uploaded object is deterministic."""
    return json.dumps(document, indent=2) + "\n"


def _check_name(field: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} must be a non-empty string, got {value!r}")
    if len(value) > _NAME_MAX or not _NAME.match(value):
        raise ValueError(
            f"{field} must be 1-{_NAME_MAX} letters, digits and inner hyphens "
            f"(HyperPod's instance group name rule), got {value!r}"
        )
