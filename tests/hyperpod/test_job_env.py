"""What a job sees: the job user, its directories on FSx, the Neuron env and its activate hook,
and the README's sbatch example checked against what the scripts create."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.hyperpod.sandbox import CONTROLLER_IP, PREINSTALLED_VENV, TRN_IPS, Node, default_parameters

README = Path(__file__).resolve().parents[2] / "README.md"
VENV = "/fsx/envs/neuron"
HOOK_VARS = {
    "FI_PROVIDER": "efa",
    "FI_EFA_USE_DEVICE_RDMA": "1",
    "FI_EFA_FORK_SAFE": "1",
    "NEURON_CC_FLAGS": "--cache_dir=/fsx/neuron-cache",
    "NEURON_RT_ROOT_COMM_ID": "ip-10-1-0-11:46820",
}


def hook_environment(node: Node, tmp_path: Path, file: str = f"{VENV}/bin/neuron-env.sh") -> dict[str, str]:
    """Source the hook in a clean bash as a Slurm job would, with a stand-in `scontrol`."""
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir(exist_ok=True)
    scontrol = fake_bin / "scontrol"
    scontrol.write_text('#!/bin/sh\n[ "$1 $2" = "show hostnames" ] && printf "ip-10-1-0-11\\nip-10-1-0-12\\n"\n')
    scontrol.chmod(0o755)
    script = f". {shlex.quote(str(node.path(file)))} && env"
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        env={"PATH": f"{fake_bin}:/usr/bin:/bin", "SLURM_JOB_NODELIST": "ip-10-1-0-[11-12]"},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


# --- the job user ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ip", [CONTROLLER_IP, TRN_IPS[0]], ids=["controller", "worker"])
def test_the_job_user_has_uid_2001_and_its_home_on_fsx_on_every_node(tmp_path, ip):
    node = Node(tmp_path, ip)
    result = node.run()
    assert result.returncode == 0, result.output
    passwd = node.read("/etc/passwd").splitlines()
    assert "mlops:x:2001:2001::/fsx/home/mlops:/bin/bash" in passwd
    assert "mlops:x:2001:" in node.read("/etc/group").splitlines()
    assert "groupadd --gid 2001 mlops" in result.commands
    assert (
        "useradd --uid 2001 --gid 2001 --home-dir /fsx/home/mlops --no-create-home --shell /bin/bash mlops"
        in result.commands
    )
    assert node.path("/fsx/home/mlops/.bashrc").is_file(), "a new home gets /etc/skel"


@pytest.mark.parametrize("ip", [CONTROLLER_IP, TRN_IPS[0]], ids=["controller", "worker"])
def test_logs_checkpoints_cache_and_data_are_writable_by_the_job_user(tmp_path, ip):
    node = Node(tmp_path, ip)
    result = node.run()
    assert result.returncode == 0, result.output
    for path, mode in [
        ("/fsx/home/mlops", 0o750),
        ("/fsx/home/mlops/logs", 0o2750),
        ("/fsx/home/mlops/checkpoints", 0o2750),
        ("/fsx/neuron-cache", 0o2775),
    ]:
        assert node.path(path).is_dir(), path
        assert node.path(path).stat().st_mode & 0o7777 == mode, path
        assert f"chown 2001:2001 {path}" in result.commands, path
    # The S3-linked path: FSx imports as root, so the job user's group gets (default) ACL entries.
    assert node.path("/fsx/datasets").is_dir()
    recursive = "-R " if ip == CONTROLLER_IP else ""
    assert f"setfacl {recursive}-m g:2001:rwX,d:g:2001:rwX /fsx/datasets" in result.commands


def test_every_data_path_and_a_custom_job_user_are_honoured(tmp_path):
    params = default_parameters(job_user="trainer", job_uid=3001, data_paths=["/datasets", "/projects/churn"])
    node = Node(tmp_path, TRN_IPS[0], params=params)
    result = node.run()
    assert result.returncode == 0, result.output
    assert "trainer:x:3001:3001::/fsx/home/trainer:/bin/bash" in node.read("/etc/passwd")
    assert "setfacl -m g:3001:rwX,d:g:3001:rwX /fsx/projects/churn" in result.commands
    assert "chown -R 3001:3001 /fsx/envs/neuron" in result.commands


def test_a_uid_taken_by_another_user_fails_naming_it(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    node.write("/etc/passwd", node.read("/etc/passwd") + "someone:x:2001:2001::/home/someone:/bin/sh\n")
    result = node.run()
    assert result.returncode != 0
    assert "UID 2001 is already taken by user someone" in result.output
    assert "FAILED step 'setup_user'" in result.output


def test_an_existing_job_user_with_another_uid_fails(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    node.write("/etc/passwd", node.read("/etc/passwd") + "mlops:x:1500:1500::/fsx/home/mlops:/bin/bash\n")
    node.write("/etc/group", node.read("/etc/group") + "mlops:x:2001:\n")
    result = node.run()
    assert result.returncode != 0
    assert "user mlops exists with UID 1500, not 2001" in result.output


# --- the Neuron env -------------------------------------------------------------------------------


def test_online_the_venv_is_built_with_versions_pinned_to_the_runtime(tmp_path):
    node = Node(tmp_path, TRN_IPS[0], params=default_parameters(internet_access=True))
    result = node.run()
    assert result.returncode == 0, result.output
    assert "python3 -m venv /fsx/envs/neuron" in result.commands
    # Runtime 2.23.x is Neuron SDK 2.21: the table row in setup_neuron.sh.
    assert (
        "/fsx/envs/neuron/bin/python -m pip install --quiet --extra-index-url https://pip.repos.neuron.amazonaws.com "
        "torch-neuronx==2.1.2.2.4.0 neuronx-cc==2.16.372.0 neuronx-distributed==0.10.1"
    ) in result.commands
    assert "Neuron SDK 2.21 (runtime 2.23.110.0-9b5179492)" in result.output
    assert "chown -R 2001:2001 /fsx/envs/neuron" in result.commands
    activate = node.read(f"{VENV}/bin/activate")
    assert activate.rstrip().endswith(f'. "{VENV}/bin/neuron-env.sh"'), "the hook runs from venv's own activate"
    env = hook_environment(node, tmp_path, f"{VENV}/bin/neuron-env.sh")
    assert {k: env.get(k) for k in HOOK_VARS} == HOOK_VARS
    assert env["PATH"].startswith("/opt/aws/neuron/bin:")


def test_the_hook_keeps_flags_the_job_already_set(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    assert node.run().returncode == 0
    proc = subprocess.run(
        [
            "bash",
            "-c",
            f'NEURON_CC_FLAGS="--model-type transformer"; . {node.path(VENV + "/bin/neuron-env.sh")}; '
            'echo "$NEURON_CC_FLAGS"; . ' + str(node.path(VENV + "/bin/neuron-env.sh")) + '; echo "$NEURON_CC_FLAGS"',
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.splitlines() == ["--model-type transformer --cache_dir=/fsx/neuron-cache"] * 2


def test_online_a_runtime_without_a_pinned_row_fails_naming_the_table(tmp_path):
    node = Node(tmp_path, TRN_IPS[0], params=default_parameters(internet_access=True), neuron_runtime="2.99.1.0")
    result = node.run()
    assert result.returncode != 0
    assert "no pinned Neuron Python packages for aws-neuronx-runtime-lib 2.99.1.0" in result.output
    assert not any("pip" in c for c in result.commands)
    assert not node.path(f"{VENV}/.hyperpod_lifecycle_complete").exists()


def test_offline_without_a_preinstalled_env_fails_in_one_line_naming_the_setting(tmp_path):
    node = Node(tmp_path, TRN_IPS[0], preinstalled_venv=None)
    result = node.run()
    assert result.returncode != 0
    lines = [line for line in result.output.splitlines() if "training_cluster.internet: nat" in line]
    assert len(lines) == 1, result.output
    assert "no internet access and no PyTorch Neuron env on the image" in lines[0]
    assert "FAILED step 'setup_neuron'" in result.output
    assert not any("pip" in c or "venv" in c or "apt-get" in c for c in result.commands), "nothing is downloaded"
    assert not node.path(f"{VENV}/.hyperpod_lifecycle_complete").exists()
    assert not any("slurmd" in c for c in result.commands), "the node never joins its partition"


def test_offline_the_images_env_is_wrapped_and_the_variables_still_exported(tmp_path):
    node = Node(tmp_path, TRN_IPS[0])
    # An inference env and an older training env are there too: the newest training env wins.
    node.write("/opt/aws_neuronx_venv_pytorch_2_5_nxd_inference/bin/activate", "")
    node.write("/opt/aws_neuronx_venv_pytorch_2_1_nxd_training/bin/activate", "")
    result = node.run()
    assert result.returncode == 0, result.output
    assert f"using the image's PyTorch Neuron env {PREINSTALLED_VENV}" in result.output
    activate = node.read(f"{VENV}/bin/activate")
    assert f'. "{PREINSTALLED_VENV}/bin/activate"' in activate
    assert activate.rstrip().endswith(f'. "{VENV}/bin/neuron-env.sh"')
    assert not any("pip" in c or "venv" in c for c in result.commands)
    env = hook_environment(node, tmp_path)
    assert {k: env.get(k) for k in HOOK_VARS} == HOOK_VARS
    assert node.path(f"{VENV}/.hyperpod_lifecycle_complete").is_file()


# --- the README's job -----------------------------------------------------------------------------


def readme_sbatch() -> str:
    text = README.read_text()
    section = text.split("\n## Train on Trainium\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"<<'SBATCH'\n(.*?)\nSBATCH\n", section, re.S)
    assert match, "the Train on Trainium section has a `cat > ... <<'SBATCH'` example"
    return match.group(1)


def test_readme_sbatch_is_a_two_node_job_that_sources_the_activate_hook():
    sbatch = readme_sbatch()
    assert "#SBATCH --nodes=2" in sbatch and "#SBATCH --exclusive" in sbatch
    assert "#SBATCH --output=/fsx/home/mlops/logs/%x-%j.out" in sbatch
    assert re.search(r"^source /fsx/envs/neuron/bin/activate$", sbatch, re.M)
    assert re.search(r"srun .*torchrun .*--nnodes[ =]2 .*--nproc_per_node[ =]32", sbatch.replace("\\\n", " "))
    assert "scontrol show hostnames" in sbatch, "rendezvous on the job's first node"
    partition = re.search(r"#SBATCH --partition=(\S+)", sbatch).group(1)
    assert partition == default_parameters()["worker_groups"][0]["partition_name"]


def test_every_path_the_readme_job_uses_is_one_the_scripts_create(tmp_path):
    sbatch = readme_sbatch()
    worker = Node(tmp_path / "worker", TRN_IPS[0])
    assert worker.run().returncode == 0
    paths = set(re.findall(r"(/fsx/[^\s\"']*)", sbatch))
    assert f"{VENV}/bin/activate" in paths
    for path in paths:
        # Up to the first component the job fills in ($SLURM_JOB_ID, %x-%j): that part must exist.
        fixed = re.split(r"/[^/]*[$%]", path, maxsplit=1)[0].rstrip("/")
        assert worker.path(fixed).exists(), f"README uses {path}, but the scripts do not create {fixed}"
    assert worker.path("/fsx/home/mlops/logs").is_dir()
