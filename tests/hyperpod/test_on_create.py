"""on_create.sh run for real in a sandbox node (LIFECYCLE_ROOT + LIFECYCLE_DRY_RUN=1).

File changes happen in the sandbox root; privileged commands are recorded, not executed. What this
cannot show: that mount/apt/systemctl succeed on a real HyperPod node (see the module's report).
"""

from __future__ import annotations

import platform

import pytest

from tests.hyperpod.sandbox import (
    BARE_SLURM_CONF,
    BASE_SLURM_CONF,
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


def test_controller_waits_for_hyperpods_slurm_conf_and_starts_slurmctld(tmp_path):
    node = Node(tmp_path, CONTROLLER_IP)
    node.path("/opt/slurm/etc/slurm.conf").chmod(0o640)
    before = node.path("/opt/slurm/etc/slurm.conf").read_bytes()
    result = node.run()
    assert result.returncode == 0, result.output

    assert node.path("/opt/slurm/etc/slurm.conf").read_bytes() == before, "HyperPod's agent owns slurm.conf"
    assert node.path("/opt/slurm/etc/slurm.conf").stat().st_mode & 0o777 == 0o640
    assert "defines partition(s) trn1, cpu" in result.output
    assert "systemctl enable --now slurmctld" in result.commands
    assert "systemctl disable --now slurmd" in result.commands
    assert not any("enable slurmd" in c or "restart" in c for c in result.commands)
    # The controller mounts FSx too (home of job scripts and data), but never sets up Neuron.
    assert MOUNT_CMD in result.commands
    assert "setup_neuron" not in result.output
    assert "role=controller" in result.output


def test_every_step_is_logged_to_the_provisioning_log(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    result = node.run()
    assert result.returncode == 0, result.output
    log = node.read("/var/log/provision/provisioning.log")
    starts = order_of(
        log, "START mount_fsx", "DONE mount_fsx", "START setup_user", "DONE setup_user", "START setup_neuron"
    )
    assert starts == sorted(starts)
    assert log.index("DONE setup_neuron") < log.index("START setup_slurm") < log.index("DONE setup_slurm")
    assert log.rstrip().endswith("provisioning finished: worker in group trn1")
    assert log == result.output, "stdout (CloudWatch) and the log file say the same"


@pytest.mark.parametrize("ip", [CONTROLLER_IP, TRN_IPS[0]], ids=["controller", "worker"])
def test_scripts_wait_for_the_agent_to_name_the_controller_and_leave_slurm_conf_alone(tmp_path, ip):
    # The agent writes slurm.conf in stages: first without the controller, the full file later.
    node = Node(tmp_path, ip, slurm_conf=BARE_SLURM_CONF, slurm_conf_later=(0.3, BASE_SLURM_CONF))
    result = node.run(LIFECYCLE_SLURM_CONF_WAIT_SECONDS="30")
    assert result.returncode == 0, result.output
    assert "waiting for HyperPod's agent" in result.output
    assert node.read("/opt/slurm/etc/slurm.conf") == BASE_SLURM_CONF, "byte-identical to what the agent wrote"
    start = "systemctl enable --now slurmctld" if ip == CONTROLLER_IP else "systemctl restart slurmd"
    assert start in result.commands


def test_slurm_conf_that_never_names_the_controller_fails(tmp_path):
    node = Node(tmp_path, CONTROLLER_IP, slurm_conf=BARE_SLURM_CONF)
    result = node.run(LIFECYCLE_SLURM_CONF_WAIT_SECONDS="1")
    assert result.returncode != 0
    assert "slurm.conf did not name the controller within 1s" in result.output
    assert "FAILED step 'setup_slurm'" in result.output
    assert not any("slurmctld" in c for c in result.commands)
    assert node.read("/opt/slurm/etc/slurm.conf") == BARE_SLURM_CONF


def test_controller_fails_when_slurm_conf_never_appears(tmp_path):
    node = Node(tmp_path, CONTROLLER_IP, slurm_conf=None)
    result = node.run()
    assert result.returncode != 0
    assert "slurm.conf did not name the controller within 0s" in result.output
    assert "does not exist yet" in result.output
    assert not any("slurmctld" in c for c in result.commands)
    assert not node.path("/opt/slurm/etc/slurm.conf").exists(), "never written by the scripts"


@pytest.mark.parametrize("ip", [CONTROLLER_IP, TRN_IPS[0]], ids=["controller", "worker"])
def test_a_missing_partition_fails_loudly_in_one_line(tmp_path, ip):
    conf = BASE_SLURM_CONF.replace("PartitionName=trn1 ", "PartitionName=other ")
    node = Node(tmp_path, ip, slurm_conf=conf)
    result = node.run()
    assert result.returncode != 0
    lines = [line for line in result.output.splitlines() if "defines no partition 'trn1'" in line]
    assert len(lines) == 1, result.output
    assert "worker_groups[].partition_name" in lines[0]
    assert "FAILED step 'setup_slurm'" in result.output
    assert not any(
        "slurmctld" in c or "enable slurmd" in c or "--now slurmd" in c for c in result.commands if "disable" not in c
    )
    assert node.read("/opt/slurm/etc/slurm.conf") == conf
    assert not any("NodeName" in c for c in result.commands)


def test_partitions_in_an_included_file_count(tmp_path):
    main, _, rest = BASE_SLURM_CONF.partition("PartitionName=")
    node = Node(tmp_path, CONTROLLER_IP, slurm_conf=main + "include /opt/slurm/etc/partitions.conf\n")
    node.write("/opt/slurm/etc/partitions.conf", "PartitionName=" + rest)
    result = node.run()
    assert result.returncode == 0, result.output


def test_every_node_rotates_the_slurm_logs(tmp_path):
    for ip in (CONTROLLER_IP, TRN_IPS[0]):
        node = Node(tmp_path / ip, ip)
        assert node.run().returncode == 0
        rule = node.read("/etc/logrotate.d/hyperpod-lifecycle-slurm")
        assert "/var/log/slurm/*.log {" in rule and "copytruncate" in rule and "rotate 5" in rule


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
    # A Lustre client upgrade must not drag in a kernel the module does not match.
    assert "apt-mark hold lustre-client-modules-aws lustre-client-utils" in result.commands
    assert "Status: hold ok installed" in node.read("/var/lib/dpkg/status")

    # Login shells get the Neuron tools on PATH; jobs get the rest from the env's activate hook.
    profile = node.read("/etc/profile.d/neuron.sh")
    assert 'export PATH="/opt/aws/neuron/bin:$PATH"' in profile
    assert node.path("/fsx/envs/neuron/.hyperpod_lifecycle_complete").is_file()
    assert "chown -R 2001:2001 /fsx/envs/neuron" in result.commands

    # slurmd points at the controller (configless), in the unit as the AMI writes it, and starts last.
    unit = node.read("/etc/systemd/system/slurmd.service")
    assert f"ExecStart=/opt/slurm/sbin/slurmd -D -s --conf-server {CONTROLLER_IP}\n" in unit
    assert "$SLURMD_OPTIONS" not in unit
    assert not node.path("/etc/systemd/system/slurmd.service.d").exists()
    assert result.commands[-3:] == ["systemctl daemon-reload", "systemctl enable slurmd", "systemctl restart slurmd"]
    assert result.commands.index(MOUNT_CMD) < result.commands.index("systemctl restart slurmd")
    assert not any("slurmctld" in c for c in result.commands)
    assert not any("apt-get" in c or "pip" in c for c in result.commands), "offline: nothing is downloaded"


def test_a_slurmd_unit_without_slurmd_options_fails_loudly(tmp_path):
    node = Node(tmp_path, TRN_IPS[0], slurmd_unit="[Service]\nExecStart=/opt/slurm/sbin/slurmd -D\n")
    result = node.run()
    assert result.returncode != 0
    assert "has no $SLURMD_OPTIONS to fill in" in result.output
    assert not any("slurmd" in c for c in result.commands if c.startswith("systemctl"))


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
    node = Node(tmp_path, TRN_IPS[0], params=default_parameters(internet_access=True))
    node.write("/fsx/envs/neuron/bin/python", "left by a node that died mid-build")
    result = node.run()
    assert result.returncode == 0, result.output
    assert not node.path("/fsx/envs/neuron/bin/python").exists()
    assert "python3 -m venv /fsx/envs/neuron" in result.commands


def test_an_existing_shared_venv_is_reused(tmp_path):
    node = Node(tmp_path, TRN_IPS[0], params=default_parameters(internet_access=True))
    node.write("/fsx/envs/neuron/.hyperpod_lifecycle_complete", "")
    result = node.run()
    assert result.returncode == 0, result.output
    assert not any("venv" in c or "pip" in c for c in result.commands)
    assert "shared env /fsx/envs/neuron already exists" in result.output


def test_missing_neuron_tools_fail_instead_of_installing(tmp_path):
    node = Node(tmp_path, TRN_IPS[0], neuron_tools=False, params=default_parameters(internet_access=True))
    result = node.run()
    assert result.returncode != 0
    assert "this image is not HyperPod's Trainium (Neuron) AMI" in result.output
    assert not any("apt-get" in c or "yum" in c for c in result.commands)


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
def test_lustre_client_is_installed_when_missing_and_online(tmp_path, os_release, install):
    params = default_parameters(internet_access=True)
    node = Node(tmp_path, TRN_IPS[0], os_release=os_release, lustre_client=False, params=params)
    result = node.run()
    assert result.returncode == 0, result.output
    installs = [c for c in result.commands if "lustre" in c and "mount" not in c and "apt-mark" not in c]
    assert installs and installs[-1].endswith(install)
    assert result.commands.index(installs[-1]) < result.commands.index(MOUNT_CMD)


def test_a_missing_lustre_client_offline_fails_loudly(tmp_path):
    node = Node(tmp_path, TRN_IPS[0], lustre_client=False)
    result = node.run()
    assert result.returncode != 0
    assert "no internet access to install it" in result.output and "training_cluster.internet: nat" in result.output
    assert not any("apt-get" in c or "yum" in c or "dnf" in c for c in result.commands)


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
    assert "provisioning finished" not in node.read("/var/log/provision/provisioning.log")


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
@pytest.mark.parametrize("online", [False, True], ids=["offline", "online"])
def test_a_second_run_changes_nothing(tmp_path, ip, online):
    node = Node(tmp_path, ip, params=default_parameters(internet_access=online))
    first = node.run()
    assert first.returncode == 0, first.output
    before = node.snapshot()
    second = node.run()
    assert second.returncode == 0, second.output
    assert node.snapshot() == before, "files, modes and mtimes are untouched"
    changing = ("mount ", "apt-get", "apt-mark", "yum", "dnf", "venv", "pip", "restart", "daemon-reload", "add")
    assert not [c for c in second.commands if any(w in c for w in changing)]
    # What is left is idempotent by nature: enable/start of an already running service, setting an
    # owner or ACL entry that is already there.
    idempotent = ("systemctl enable", "systemctl start", "systemctl disable", "lfs df", "chown 2001:2001 ", "setfacl")
    assert all(c.startswith(idempotent) for c in second.commands), second.commands


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
    assert f"missing provisioning parameter '{key}'" in node.read("/var/log/provision/provisioning.log")


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
