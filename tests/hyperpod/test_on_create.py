"""on_create.sh run for real in a sandbox node (LIFECYCLE_ROOT + LIFECYCLE_DRY_RUN=1).

File changes happen in the sandbox root; privileged commands are recorded, not executed. What this
cannot show: that mount/apt/systemctl succeed on a real HyperPod node (see the module's report).
"""

from __future__ import annotations

import platform
import re

import pytest

from tests.hyperpod.sandbox import (
    CONTROLLER_IP,
    CPU_IP,
    DNS_NAME,
    MOUNT_NAME,
    SOURCE,
    TRN_IPS,
    Node,
    default_parameters,
)

MOUNT_CMD = f"mount -t lustre -o relatime,flock {SOURCE} /fsx"
FSTAB_LINE = f"{SOURCE} /fsx lustre relatime,flock,_netdev 0 0"


def order_of(output: str, *markers: str) -> list[int]:
    return [output.index(m) for m in markers]


# --- controller -----------------------------------------------------------------------------------


def test_controller_writes_partitions_and_starts_slurmctld(tmp_path):
    node = Node(tmp_path, CONTROLLER_IP)
    result = node.run()
    assert result.returncode == 0, result.output

    conf = node.read("/opt/slurm/etc/slurm.conf")
    assert conf.startswith("# written by HyperPod's agent\nClusterName=t\n"), "the agent's lines are kept"
    assert "PartitionName=trn1 Nodes=ip-10-1-0-11,ip-10-1-0-12 Default=YES MaxTime=INFINITE State=UP" in conf
    assert "PartitionName=cpu Nodes=ip-10-1-0-21 Default=NO MaxTime=INFINITE State=UP" in conf
    assert "NodeName=ip-10-1-0-11 NodeAddr=10.1.0.11" in conf
    assert "ip-10-1-0-5" not in conf.split("SlurmctldHost=ip-10-1-0-5")[1], "the controller is in no partition"

    assert "systemctl enable slurmctld" in result.commands
    assert "systemctl restart slurmctld" in result.commands
    assert "systemctl disable --now slurmd" in result.commands
    assert not any("enable slurmd" in c for c in result.commands)
    # The controller mounts FSx too (home of job scripts and data), but never sets up Neuron.
    assert MOUNT_CMD in result.commands
    assert "setup_neuron" not in result.output
    assert "role=controller" in result.output


def test_every_step_is_logged_to_the_provision_log(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    result = node.run()
    assert result.returncode == 0, result.output
    log = node.read("/var/log/provision/provision.log")
    starts = order_of(log, "START mount_fsx", "DONE mount_fsx", "START setup_neuron", "DONE setup_neuron")
    assert starts == sorted(starts)
    assert log.index("DONE setup_neuron") < log.index("START setup_slurm") < log.index("DONE setup_slurm")
    assert log.rstrip().endswith("provisioning finished: worker in group trn1")
    assert log == result.output, "stdout (CloudWatch) and the log file say the same"


def test_partitions_hyperpod_already_defined_are_not_duplicated(tmp_path):
    # HyperPod's agent may already have written nodes and partitions from provisioning_parameters.json.
    agent_conf = (
        "ClusterName=t\nNodeName=ip-10-1-0-[11-12] NodeAddr=10.1.0.[11-12]\n"
        "PartitionName=trn1 Nodes=ip-10-1-0-[11-12] Default=YES\n"
    )
    node = Node(tmp_path, CONTROLLER_IP, slurm_conf=agent_conf)
    assert node.run().returncode == 0
    conf = node.read("/opt/slurm/etc/slurm.conf")
    assert conf.count("PartitionName=trn1") == 1
    assert "NodeName=ip-10-1-0-11 " not in conf
    assert "NodeName=ip-10-1-0-21 NodeAddr=10.1.0.21" in conf
    assert "PartitionName=cpu Nodes=ip-10-1-0-21 Default=NO" in conf


def test_slurm_conf_keeps_its_mode_when_rewritten(tmp_path):
    node = Node(tmp_path, CONTROLLER_IP)
    node.path("/opt/slurm/etc/slurm.conf").chmod(0o640)
    assert node.run().returncode == 0
    assert "PartitionName=trn1" in node.read("/opt/slurm/etc/slurm.conf")
    assert node.path("/opt/slurm/etc/slurm.conf").stat().st_mode & 0o777 == 0o640


def test_controller_fails_when_slurm_conf_never_appears(tmp_path):
    node = Node(tmp_path, CONTROLLER_IP, slurm_conf=None)
    result = node.run()
    assert result.returncode != 0
    assert "slurm.conf did not appear" in result.output
    assert "FAILED step 'setup_slurm'" in result.output
    assert not any("slurmctld" in c for c in result.commands)


def test_no_slurm_on_the_image_fails_instead_of_installing_it(tmp_path):
    node = Node(tmp_path, CONTROLLER_IP)
    node.path("/opt/slurm/sbin/slurmctld").unlink()
    result = node.run()
    assert result.returncode != 0
    assert "slurmctld not found under /opt/slurm/sbin" in result.output
    assert not any("apt-get" in c or "yum" in c for c in result.commands)


# --- workers --------------------------------------------------------------------------------------


def test_trainium_worker_mounts_fsx_sets_up_neuron_and_starts_slurmd(tmp_path):
    node = Node(tmp_path, TRN_IPS[1])
    result = node.run()
    assert result.returncode == 0, result.output
    assert "role=worker" in result.output and "partition=trn1" in result.output

    # FSx: the DNS and mount names from provisioning_parameters.json, fstab with _netdev, verified.
    assert MOUNT_CMD in result.commands
    assert "lfs df /fsx" in result.commands
    fstab = node.read("/etc/fstab")
    assert fstab.splitlines() == ["LABEL=cloudimg-rootfs / ext4 defaults 0 1", FSTAB_LINE]
    assert node.path("/fsx").is_dir()

    # Neuron and EFA environment for every login shell; the collectives root comes from the job.
    profile = node.read("/etc/profile.d/neuron.sh")
    assert 'export PATH="/opt/aws/neuron/bin:$PATH"' in profile
    assert "export FI_PROVIDER=efa" in profile
    assert "export FI_EFA_USE_DEVICE_RDMA=1" in profile
    assert "SLURM_JOB_NODELIST" in profile
    assert not re.search(r"NEURON_RT_ROOT_COMM_ID=['\"]?[\w.-]+:\d+", profile), "no hard-coded host"

    # One shared venv on FSx, built once.
    assert "python3 -m venv --system-site-packages /fsx/envs/neuron" in result.commands
    assert node.path("/fsx/envs/neuron/.hyperpod_lifecycle_complete").is_file()

    # slurmd points at the controller (configless) and starts after everything else.
    dropin = node.read("/etc/systemd/system/slurmd.service.d/50-hyperpod-lifecycle.conf")
    assert f'Environment="SLURMD_OPTIONS=--conf-server {CONTROLLER_IP}"' in dropin
    assert result.commands[-3:] == ["systemctl daemon-reload", "systemctl enable slurmd", "systemctl restart slurmd"]
    assert result.commands.index(MOUNT_CMD) < result.commands.index("systemctl restart slurmd")
    assert not any("slurmctld" in c for c in result.commands)
    assert not any("apt-get" in c for c in result.commands), "the AMI already has Lustre and Neuron"


def test_fsx_shell_sees_shell_safe_values(tmp_path):
    # Names come from JSON into bash through eval: they must arrive verbatim, never be executed.
    name = "x$(touch${IFS}pwned)`touch${IFS}pwned2`"
    node = Node(tmp_path, TRN_IPS[0], params=default_parameters() | {"fsx_mountname": name})
    result = node.run()
    assert result.returncode == 0, result.output
    assert f"mount -t lustre -o relatime,flock {DNS_NAME}@tcp:/{name} /fsx" in result.commands
    assert not list(tmp_path.rglob("pwned*"))


def test_non_trainium_worker_skips_neuron(tmp_path):
    node = Node(tmp_path, CPU_IP)
    result = node.run()
    assert result.returncode == 0, result.output
    assert "SKIP setup_neuron: cpu is not a Trainium group" in result.output
    assert not node.path("/etc/profile.d/neuron.sh").exists()
    assert "systemctl restart slurmd" in result.commands


def test_a_half_built_shared_venv_is_rebuilt(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    node.write("/fsx/envs/neuron/bin/python", "left by a node that died mid-build")
    result = node.run()
    assert result.returncode == 0, result.output
    assert not node.path("/fsx/envs/neuron/bin/python").exists()
    assert "python3 -m venv --system-site-packages /fsx/envs/neuron" in result.commands


def test_an_existing_shared_venv_is_reused(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    node.write("/fsx/envs/neuron/.hyperpod_lifecycle_complete", "")
    result = node.run()
    assert result.returncode == 0, result.output
    assert not any("venv" in c for c in result.commands)


def test_missing_neuron_tools_are_installed(tmp_path):
    node = Node(tmp_path, TRN_IPS[0], neuron_tools=False)
    result = node.run()
    assert result.returncode == 0, result.output
    assert any(
        c.endswith("apt-get install -y -q aws-neuronx-runtime-lib aws-neuronx-collectives aws-neuronx-tools")
        for c in result.commands
    )


# --- FSx mount ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("os_release", "install"),
    [
        (
            'ID=ubuntu\nVERSION_ID="22.04"\n',
            f"apt-get install -y -q lustre-client-modules-{platform.release()} lustre-client-utils",
        ),
        ('ID="amzn"\nVERSION_ID="2"\n', "amazon-linux-extras install -y lustre"),
        ('ID="amzn"\nVERSION_ID="2023"\n', "dnf install -y lustre-client"),
    ],
    ids=["ubuntu", "amazon-linux-2", "amazon-linux-2023"],
)
def test_lustre_client_is_installed_when_missing(tmp_path, os_release, install):
    node = Node(tmp_path, TRN_IPS[0], os_release=os_release, lustre_client=False)
    result = node.run()
    assert result.returncode == 0, result.output
    installs = [c for c in result.commands if "lustre" in c and "mount" not in c]
    assert installs and installs[-1].endswith(install)
    assert result.commands.index(installs[-1]) < result.commands.index(MOUNT_CMD)


def test_mount_is_retried_with_backoff_while_fsx_comes_up(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    result = node.run(LIFECYCLE_DRY_RUN_FAIL_FIRST="mount:2")
    assert result.returncode == 0, result.output
    assert result.commands.count(MOUNT_CMD) == 3
    assert "mount attempt 1/6 failed" in result.output and "mount attempt 2/6 failed" in result.output


def test_mount_that_never_succeeds_fails_the_node(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    result = node.run(LIFECYCLE_DRY_RUN_FAIL_FIRST="mount:99", LIFECYCLE_MOUNT_ATTEMPTS="3")
    assert result.returncode != 0
    assert result.commands.count(MOUNT_CMD) == 3
    assert f"could not mount {SOURCE} at /fsx after 3 attempts" in result.output
    assert "FAILED step 'mount_fsx'" in result.output
    assert not any("systemctl" in c or "venv" in c for c in result.commands), "later steps did not run"
    assert "provisioning finished" not in node.read("/var/log/provision/provision.log")


def test_a_mount_the_kernel_lists_by_server_ip_counts_as_ours(tmp_path):
    # Lustre mounts show up in /proc/mounts as <server ip>@tcp:/<mount name>, not the DNS name.
    node = Node(tmp_path, TRN_IPS[0])
    node.write("/proc/mounts", f"10.1.9.9@tcp:/{MOUNT_NAME} /fsx lustre rw,flock,lazystatfs 0 0\n")
    node.path("/fsx").mkdir()
    result = node.run()
    assert result.returncode == 0, result.output
    assert MOUNT_CMD not in result.commands
    assert "already mounted" in result.output


def test_something_else_mounted_at_fsx_fails(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    node.write("/proc/mounts", "/dev/nvme1n1 /fsx ext4 rw 0 0\n")
    result = node.run()
    assert result.returncode != 0
    assert "/fsx is already in use (ext4 /dev/nvme1n1)" in result.output


def test_a_stale_fstab_entry_for_the_mount_point_is_replaced(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    node.write("/etc/fstab", "LABEL=root / ext4 defaults 0 1\nold@tcp:/zzz /fsx lustre defaults 0 0\n")
    assert node.run().returncode == 0
    assert node.read("/etc/fstab").splitlines() == ["LABEL=root / ext4 defaults 0 1", FSTAB_LINE]


# --- re-runs (automatic node recovery runs on_create.sh again) ------------------------------------


@pytest.mark.parametrize("ip", [CONTROLLER_IP, TRN_IPS[0], CPU_IP], ids=["controller", "trn1", "cpu"])
def test_a_second_run_changes_nothing(tmp_path, ip):
    node = Node(tmp_path, ip)
    first = node.run()
    assert first.returncode == 0, first.output
    before = node.snapshot()
    second = node.run()
    assert second.returncode == 0, second.output
    assert node.snapshot() == before, "files, modes and mtimes are untouched"
    changing = ("mount ", "apt-get", "yum", "dnf", "venv", "restart", "daemon-reload")
    assert not [c for c in second.commands if any(w in c for w in changing)]
    # What is left is idempotent by nature: enable/start of an already running service.
    assert all(
        c.startswith(("systemctl enable", "systemctl start", "systemctl disable", "lfs df")) for c in second.commands
    )


# --- bad input fails loudly, before touching anything ---------------------------------------------


@pytest.mark.parametrize(
    "key", ["workload_manager", "controller_group", "worker_groups", "fsx_dns_name", "fsx_mountname"]
)
def test_a_missing_provisioning_parameter_fails_naming_it(tmp_path, key):
    params = default_parameters()
    del params[key]
    node = Node(tmp_path, TRN_IPS[0], params=params)
    result = node.run()
    assert result.returncode != 0
    assert f"missing provisioning parameter '{key}'" in result.output
    assert "step 'read config' failed" in result.output
    assert result.commands == []
    assert f"missing provisioning parameter '{key}'" in node.read("/var/log/provision/provision.log")


def test_a_worker_group_without_partition_fails_naming_it(tmp_path):
    params = default_parameters()
    del params["worker_groups"][1]["partition_name"]
    result = Node(tmp_path, TRN_IPS[0], params=params).run()
    assert result.returncode != 0
    assert "missing provisioning parameter 'worker_groups[1].partition_name'" in result.output


def test_an_unresolved_cdk_token_fails_naming_it(tmp_path):
    params = default_parameters() | {"fsx_dns_name": "${Token[TOKEN.42]}"}
    result = Node(tmp_path, TRN_IPS[0], params=params).run()
    assert result.returncode != 0
    assert "'fsx_dns_name' is an unresolved CDK token" in result.output


def test_parameters_file_that_is_not_json_fails(tmp_path):
    result = Node(tmp_path, TRN_IPS[0], params="{not json").run()
    assert result.returncode != 0
    assert "provisioning_parameters.json: not valid JSON" in result.output


def test_missing_parameters_file_fails(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    (node.scripts / "provisioning_parameters.json").unlink()
    result = node.run()
    assert result.returncode != 0
    assert "provisioning_parameters.json is missing (the stack uploads it beside on_create.sh)" in result.output


def test_missing_resource_config_fails(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    node.path("/opt/ml/config/resource_config.json").unlink()
    result = node.run()
    assert result.returncode != 0
    assert "resource_config.json is missing (HyperPod writes it)" in result.output


def test_sagemaker_resource_config_path_overrides_the_default(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    moved = tmp_path / "elsewhere.json"
    node.path("/opt/ml/config/resource_config.json").rename(moved)
    result = node.run(SAGEMAKER_RESOURCE_CONFIG_PATH=str(moved))
    assert result.returncode == 0, result.output


def test_a_node_missing_from_resource_config_fails(tmp_path):
    result = Node(tmp_path, "10.9.9.9").run()
    assert result.returncode != 0
    assert "no instance group lists this node's address (10.9.9.9)" in result.output


def test_a_group_that_is_neither_controller_nor_worker_fails(tmp_path):
    params = default_parameters()
    params["worker_groups"] = params["worker_groups"][:1]
    result = Node(tmp_path, CPU_IP, params=params).run()
    assert result.returncode != 0
    assert "instance group 'cpu' is neither controller_group 'controller' nor one of worker_groups" in result.output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LIFECYCLE_DRY_RUN": "0"}, "LIFECYCLE_ROOT is set but LIFECYCLE_DRY_RUN is not 1"),
        ({"LIFECYCLE_ROOT": ""}, "LIFECYCLE_DRY_RUN=1 needs LIFECYCLE_ROOT"),
    ],
)
def test_sandbox_switches_only_work_together(tmp_path, env, message):
    # Guards the tests themselves: a half-sandboxed run could mount or write on the real machine.
    node = Node(tmp_path, TRN_IPS[0])
    result = node.run(**env)
    assert result.returncode != 0
    assert message in result.output
