"""A fake HyperPod node in a temp dir: what the lifecycle scripts see when HyperPod runs them.

The scripts are copied beside a provisioning_parameters.json (as HyperPod downloads the S3 prefix),
and a sandbox root stands in for `/` with what HyperPod's Slurm AMI provides: resource_config.json,
/opt/slurm, the Lustre client, the Neuron tools, an empty mount table. on_create.sh then runs with
LIFECYCLE_ROOT=<root> and LIFECYCLE_DRY_RUN=1, so mount/apt/systemctl are recorded, not executed.

HyperPod's agent writes slurm.conf while the lifecycle scripts run: ``slurm_conf`` is what is there
when on_create.sh starts, ``slurm_conf_later=(seconds, text)`` what the "agent" writes ``seconds`` after
the scripts first said they wait for it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hyperpod_lifecycle import SCRIPTS_DIR, provisioning_parameters, to_json

CONTROLLER_IP = "10.1.0.5"
TRN_IPS = ("10.1.0.11", "10.1.0.12")
CPU_IP = "10.1.0.21"
DNS_NAME = "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com"
MOUNT_NAME = "abcdefgh"
SOURCE = f"{DNS_NAME}@tcp:/{MOUNT_NAME}"


def default_parameters(**overrides) -> dict:
    # Built with the real generator, so the shell side is tested against what the stack uploads.
    return provisioning_parameters(
        **{
            "controller_group": "controller",
            "worker_groups": ["trn1", "cpu"],
            "fsx_dns_name": DNS_NAME,
            "fsx_mount_name": MOUNT_NAME,
        }
        | overrides
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


# slurm.conf as HyperPod's agent first writes it (no controller yet), and when it is done.
BARE_SLURM_CONF = "# written by HyperPod's agent\nClusterName=t\nSlurmdSpoolDir=/var/spool/slurmd\n"
BASE_SLURM_CONF = (
    BARE_SLURM_CONF + "SlurmctldHost=ip-10-1-0-5(10.1.0.5)\n"
    "NodeName=ip-10-1-0-[11-12] NodeAddr=10.1.0.[11-12] CPUs=128 State=CLOUD\n"
    "NodeName=ip-10-1-0-21 NodeAddr=10.1.0.21 CPUs=8 State=CLOUD\n"
    "PartitionName=trn1 Nodes=ip-10-1-0-[11-12] Default=YES MaxTime=INFINITE State=UP\n"
    "PartitionName=cpu Nodes=ip-10-1-0-21 Default=NO MaxTime=INFINITE State=UP\n"
)
# The AMI's slurmd unit: the reference lifecycle scripts render $SLURMD_OPTIONS into it.
SLURMD_UNIT = (
    "[Unit]\nDescription=Slurm node daemon\nAfter=network-online.target\n\n"
    "[Service]\nType=simple\nExecStart=/opt/slurm/sbin/slurmd -D -s $SLURMD_OPTIONS\n"
    "ExecReload=/bin/kill -HUP $MAINPID\n\n[Install]\nWantedBy=multi-user.target\n"
)
NEURON_RUNTIME = "2.23.110.0-9b5179492"
PREINSTALLED_VENV = "/opt/aws_neuronx_venv_pytorch_2_5_nxd_training"


def dpkg_status(packages: dict[str, str], held: tuple[str, ...] = ()) -> str:
    return "".join(
        f"Package: {name}\nStatus: {'hold' if name in held else 'install'} ok installed\nVersion: {version}\n\n"
        for name, version in packages.items()
    )


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
    slurm_conf_later: tuple[float, str] | None = None
    neuron_runtime: str | None = NEURON_RUNTIME
    preinstalled_venv: str | None = PREINSTALLED_VENV
    slurmd_unit: str | None = SLURMD_UNIT

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
        if self.slurmd_unit is not None:
            self.write("/etc/systemd/system/slurmd.service", self.slurmd_unit)
        self.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nubuntu:x:1000:1000::/home/ubuntu:/bin/bash\n")
        self.write("/etc/group", "root:x:0:\nubuntu:x:1000:\n")
        self.write("/etc/skel/.bashrc", "# skel\n")
        packages = {"lustre-client-modules-aws": "1.0", "lustre-client-utils": "2.15.6", "bash": "5.1"}
        if self.neuron_runtime:
            packages["aws-neuronx-runtime-lib"] = self.neuron_runtime
        self.write("/var/lib/dpkg/status", dpkg_status(packages))
        if self.preinstalled_venv:
            self.write(f"{self.preinstalled_venv}/bin/activate", "VIRTUAL_ENV=/opt/image-venv\n")

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
            "LIFECYCLE_SLURM_CONF_POLL_SECONDS": "0.1",
            "LC_NODE_IP": self.ip,
        } | extra_env
        agent = None
        if self.slurm_conf_later is not None:
            delay, text = self.slurm_conf_later

            def write_later() -> None:
                # Only once the scripts have seen the bare file and said they wait (however slow the machine),
                # then after ``delay``: the test then proves the waiting, not a race.
                log = self.path("/var/log/provision/provisioning.log")
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    if log.exists() and "waiting for HyperPod's agent" in log.read_text(errors="replace"):
                        break
                    time.sleep(0.05)
                time.sleep(delay)
                # Written to a temp file and renamed, as an agent should: never a half-written file.
                tmp = self.path("/opt/slurm/etc/.slurm.conf.agent")
                tmp.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_text(text)
                tmp.replace(self.path("/opt/slurm/etc/slurm.conf"))

            agent = threading.Thread(target=write_later, daemon=True)
            agent.start()
        proc = subprocess.run(
            ["bash", str(self.scripts / "on_create.sh")],
            cwd=self.scripts,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if agent is not None:
            agent.join()
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
