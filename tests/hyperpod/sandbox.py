"""A fake HyperPod node in a temp dir: what the lifecycle scripts see when HyperPod runs them.

The scripts are copied beside a provisioning_parameters.json (as HyperPod downloads the S3 prefix),
and a sandbox root stands in for `/` with what HyperPod's Slurm AMI provides: resource_config.json,
/opt/slurm, the Lustre client, the Neuron tools, an empty mount table. on_create.sh then runs with
LIFECYCLE_ROOT=<root> and LIFECYCLE_DRY_RUN=1, so mount/apt/systemctl are recorded, not executed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from hyperpod_lifecycle import SCRIPTS_DIR, provisioning_parameters, to_json

CONTROLLER_IP = "10.1.0.5"
TRN_IPS = ("10.1.0.11", "10.1.0.12")
CPU_IP = "10.1.0.21"
DNS_NAME = "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com"
MOUNT_NAME = "abcdefgh"
SOURCE = f"{DNS_NAME}@tcp:/{MOUNT_NAME}"


def default_parameters() -> dict:
    # Built with the real generator, so the shell side is tested against what the stack uploads.
    return provisioning_parameters(
        controller_group="controller",
        worker_groups=["trn1", "cpu"],
        fsx_dns_name=DNS_NAME,
        fsx_mount_name=MOUNT_NAME,
    )


def default_resource_config() -> dict:
    # The shape HyperPod writes to /opt/ml/config/resource_config.json.
    def group(name: str, instance_type: str, ips: tuple[str, ...]) -> dict:
        return {
            "Name": name,
            "InstanceType": instance_type,
            "Instances": [
                {"InstanceName": f"{name}-{i + 1}", "AgentIpAddress": f"172.16.0.{i + 1}", "CustomerIpAddress": ip}
                for i, ip in enumerate(ips)
            ],
        }

    return {
        "ClusterConfig": {"ClusterArn": "arn:aws:sagemaker:us-east-1:111111111111:cluster/abc", "ClusterName": "t"},
        "InstanceGroups": [
            group("controller", "ml.m5.xlarge", (CONTROLLER_IP,)),
            group("trn1", "ml.trn1.32xlarge", TRN_IPS),
            group("cpu", "ml.c5.2xlarge", (CPU_IP,)),
        ],
    }


BASE_SLURM_CONF = "# written by HyperPod's agent\nClusterName=t\nSlurmctldHost=ip-10-1-0-5\n"


@dataclass
class Result:
    returncode: int
    output: str
    commands: list[str]


@dataclass
class Node:
    """One node's sandbox. `ip` picks its instance group from resource_config.json."""

    base: Path
    ip: str
    params: dict | str = field(default_factory=default_parameters)
    resource_config: dict = field(default_factory=default_resource_config)
    os_release: str = 'ID=ubuntu\nVERSION_ID="22.04"\n'
    lustre_client: bool = True
    neuron_tools: bool = True
    slurm_conf: str | None = BASE_SLURM_CONF

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.scripts = self.base / "lifecycle"
        shutil.copytree(SCRIPTS_DIR, self.scripts)
        text = self.params if isinstance(self.params, str) else to_json(self.params)
        (self.scripts / "provisioning_parameters.json").write_text(text)
        self.write("/opt/ml/config/resource_config.json", json.dumps(self.resource_config))
        self.write("/etc/os-release", self.os_release)
        self.write("/proc/mounts", "")
        self.write("/etc/fstab", "LABEL=cloudimg-rootfs / ext4 defaults 0 1\n")
        for binary in ("/opt/slurm/sbin/slurmctld", "/opt/slurm/sbin/slurmd"):
            self.executable(binary)
        if self.lustre_client:
            self.executable("/sbin/mount.lustre")
        if self.neuron_tools:
            self.executable("/opt/aws/neuron/bin/neuron-ls")
        if self.slurm_conf is not None:
            self.write("/opt/slurm/etc/slurm.conf", self.slurm_conf)

    def path(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    def write(self, absolute: str, text: str) -> None:
        target = self.path(absolute)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def executable(self, absolute: str) -> None:
        self.write(absolute, "#!/bin/sh\n")
        self.path(absolute).chmod(0o755)

    def read(self, absolute: str) -> str:
        return self.path(absolute).read_text()

    def run(self, **extra_env: str) -> Result:
        """Run on_create.sh as HyperPod would (bash, from the downloaded folder); returns what it did."""
        record = self.path("/var/log/provision/dry_run_commands.log")
        before = record.read_text().splitlines() if record.exists() else []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LIFECYCLE_", "LC_", "SAGEMAKER_"))}
        env |= {
            "LIFECYCLE_ROOT": str(self.root),
            "LIFECYCLE_DRY_RUN": "1",
            "LIFECYCLE_RETRY_BASE_SECONDS": "0",
            "LIFECYCLE_SLURM_CONF_WAIT_SECONDS": "0",
            "LC_NODE_IP": self.ip,
        } | extra_env
        proc = subprocess.run(
            ["bash", str(self.scripts / "on_create.sh")],
            cwd=self.scripts,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        after = record.read_text().splitlines() if record.exists() else []
        return Result(proc.returncode, proc.stdout + proc.stderr, after[len(before) :])

    def snapshot(self) -> dict[str, tuple[bytes, int, int]]:
        """Every file under the root (content, mode, mtime), except the logs a run appends to."""
        state = {}
        for p in sorted(self.root.rglob("*")):
            rel = p.relative_to(self.root).as_posix()
            if p.is_file() and not rel.startswith("var/log/provision/"):
                st = p.stat()
                state[rel] = (p.read_bytes(), st.st_mode, st.st_mtime_ns)
        return state
