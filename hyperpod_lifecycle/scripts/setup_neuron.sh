#!/bin/bash
# setup_neuron.sh [MOUNT_POINT]
# Trainium workers: Neuron tools on PATH, EFA settings for collectives, and one Python venv on the
# shared file system (default /fsx) that every node's jobs use. Safe to run again.
set -euo pipefail
STEP_NAME=setup_neuron
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

MOUNT_POINT="${1:-/fsx}"
NEURON_BIN=/opt/aws/neuron/bin
VENV="$MOUNT_POINT/envs/neuron"
PROFILE="$(rooted /etc/profile.d/neuron.sh)"

ensure_neuron_packages() {
  # The HyperPod DLAMI ships the Neuron driver, runtime and tools; install the user-space parts
  # only if an image without them is used (the driver must come with the image: it is a kernel module).
  if [[ -x "$(rooted "$NEURON_BIN/neuron-ls")" ]]; then
    log "Neuron tools present in $NEURON_BIN"
  else
    log "Neuron tools missing; installing the runtime, collectives and tools"
    install_packages aws-neuronx-runtime-lib aws-neuronx-collectives aws-neuronx-tools
  fi
}

write_profile() {
  # NEURON_RT_ROOT_COMM_ID names the rank-0 host of a job, so it can only be known inside the
  # job: derive it from the Slurm allocation rather than fixing a host here.
  if write_if_changed "$PROFILE" <<EOF; then
# Written by hyperpod_lifecycle/setup_neuron.sh on node creation; edits are overwritten.
case ":\$PATH:" in *":$NEURON_BIN:"*) ;; *) export PATH="$NEURON_BIN:\$PATH" ;; esac
# Neuron collectives go over EFA with device RDMA (trn1/trn1n).
export FI_PROVIDER=efa
export FI_EFA_USE_DEVICE_RDMA=1
export FI_EFA_FORK_SAFE=1
export NEURON_VENV="$VENV"
if [ -n "\${SLURM_JOB_NODELIST:-}" ] && [ -z "\${NEURON_RT_ROOT_COMM_ID:-}" ] && command -v scontrol >/dev/null 2>&1; then
  NEURON_RT_ROOT_COMM_ID="\$(scontrol show hostnames "\$SLURM_JOB_NODELIST" | head -n 1):\${NEURON_RT_ROOT_COMM_PORT:-46820}"
  export NEURON_RT_ROOT_COMM_ID
fi
EOF
    log "wrote $PROFILE"
  else
    log "$PROFILE unchanged"
  fi
}

ensure_shared_venv() {
  local venv marker lock
  venv="$(rooted "$VENV")"
  marker="$venv/.hyperpod_lifecycle_complete"
  lock="$(rooted "$MOUNT_POINT/envs/.neuron-venv.lock")"
  [[ -d "$(rooted "$MOUNT_POINT")" ]] || die "$MOUNT_POINT does not exist; mount_fsx must run first"
  mkdir -p "$(dirname "$venv")"
  # Every worker runs this at once against the same /fsx: the first takes the lock and builds the
  # venv, the others wait and then find the marker. The marker is written last, so a node that died
  # half-way leaves no marker and the next node rebuilds from scratch.
  exec 9>>"$lock" # append: opening must not touch the file on a re-run
  flock -w 900 9 || die "timed out waiting for $lock"
  if [[ -f "$marker" ]]; then
    log "shared venv $VENV already exists"
  else
    [[ -e "$venv" ]] && rm -rf -- "$venv"
    ensure_python_venv_module
    log "creating shared venv $VENV"
    # System site packages: the image's Neuron Python packages stay visible inside the venv.
    run python3 -m venv --system-site-packages "$VENV" || die "python3 -m venv $VENV failed"
    mkdir -p "$venv"
    touch "$marker"
  fi
  flock -u 9
}

ensure_python_venv_module() {
  # Ubuntu splits ensurepip, which venv needs, into the python3-venv package.
  local family
  family="$(os_family)"
  if [[ "$family" == ubuntu ]] && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    install_packages python3-venv
  fi
}

ensure_neuron_packages
write_profile
ensure_shared_venv
