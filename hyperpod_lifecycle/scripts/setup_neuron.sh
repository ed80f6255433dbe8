#!/bin/bash
# setup_neuron.sh MOUNT_POINT USER UID
# Trainium workers: the Python stack jobs use, at MOUNT_POINT/envs/neuron (one for all nodes, on
# FSx, owned by the job user), and an activate hook that exports what Neuron collectives over EFA
# need. `source MOUNT_POINT/envs/neuron/bin/activate` in a job script is all a job has to do.
#
#   internet (provisioning parameter internet_access, config training_cluster.internet: nat):
#     a venv built from PyPI and the Neuron pip repository, torch-neuronx, neuronx-cc and
#     neuronx-distributed pinned to the image's Neuron runtime (NEURON_VERSIONS below).
#   no internet: nothing is downloaded. The image's own PyTorch Neuron venv
#     (/opt/aws_neuronx_venv_pytorch*) is wrapped instead; without one this fails, saying so.
# Built once: the first worker takes a lock on FSx and builds, the others wait and reuse it.
# Safe to run again.
set -euo pipefail
STEP_NAME=setup_neuron
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -eq 3 ]] || die "usage: setup_neuron.sh MOUNT_POINT USER UID"
MOUNT_POINT="$1"
USER_NAME="$2"
USER_ID="$3"
NEURON_BIN=/opt/aws/neuron/bin
VENV="$MOUNT_POINT/envs/neuron"
HOOK="$VENV/bin/neuron-env.sh"
MARKER="$VENV/.hyperpod_lifecycle_complete"
PROFILE="$(rooted /etc/profile.d/neuron.sh)"
NEURON_PIP_INDEX=https://pip.repos.neuron.amazonaws.com
LOCK_WAIT="${LIFECYCLE_VENV_LOCK_SECONDS:-2700}"

# Neuron SDK releases, keyed by the aws-neuronx-runtime-lib version the image ships (major.minor):
#   runtime  SDK     torch-neuronx      neuronx-cc        neuronx-distributed
# The Python packages must come from the same SDK release as the runtime, or the compiler emits
# code the runtime refuses. Add a row when the HyperPod image moves to a new Neuron release (the
# Neuron SDK release notes list the versions of each release).
NEURON_VERSIONS="
2.23 2.21 2.1.2.2.4.0 2.16.372.0 0.10.1
2.27 2.25 2.7.0.2.9.9357 2.20.9961.0 0.14.18461
"

# The image's PyTorch Neuron venvs, most suitable first: the training one, then plain ones, newest first.
preinstalled_venv() {
  local candidate
  for candidate in $(
    cd "$(rooted /opt)" 2>/dev/null && {
      find . -maxdepth 1 -type d -name 'aws_neuronx_venv_pytorch*_nxd_training' | sort -rV
      find . -maxdepth 1 -type d -name 'aws_neuronx_venv_pytorch*' ! -name '*inference*' ! -name '*_nxd_training' | sort -rV
    }
  ); do
    candidate="/opt/${candidate#./}"
    if [[ -f "$(rooted "$candidate/bin/activate")" ]]; then
      echo "$candidate"
      return
    fi
  done
}

check_neuron_tools() {
  # The driver, runtime and tools come with the HyperPod DLAMI (the driver is a kernel module:
  # nothing a lifecycle script could install reliably).
  [[ -x "$(rooted "$NEURON_BIN/neuron-ls")" ]] ||
    die "Neuron tools missing ($NEURON_BIN/neuron-ls): this image is not HyperPod's Trainium (Neuron) AMI"
}

neuron_runtime_version() {
  local version
  version="$(dpkg_status_field aws-neuronx-runtime-lib Version)"
  if [[ -z "$version" ]] && ! is_dry_run && command -v rpm >/dev/null 2>&1; then
    version="$(rpm -q --qf '%{VERSION}' aws-neuronx-runtime-lib 2>/dev/null || true)"
  fi
  echo "$version"
}

write_profile() {
  # Interactive shells: the Neuron tools on PATH, and where the job environment lives.
  if write_if_changed "$PROFILE" <<EOF; then
# Written by hyperpod_lifecycle/setup_neuron.sh on node creation; edits are overwritten.
case ":\$PATH:" in *":$NEURON_BIN:"*) ;; *) export PATH="$NEURON_BIN:\$PATH" ;; esac
export NEURON_VENV="$VENV"
EOF
    log "wrote $PROFILE"
  fi
}

# write_hook: the variables a job needs, sourced by bin/activate (both kinds of env below).
write_hook() {
  if write_if_changed "$(rooted "$HOOK")" 0644 <<EOF; then
# Written by hyperpod_lifecycle/setup_neuron.sh; sourced by $VENV/bin/activate. Edits are overwritten.
case ":\$PATH:" in *":$NEURON_BIN:"*) ;; *) export PATH="$NEURON_BIN:\$PATH" ;; esac
# Neuron collectives between nodes go over EFA with device RDMA (trn1/trn1n).
export FI_PROVIDER=efa
export FI_EFA_USE_DEVICE_RDMA=1
export FI_EFA_FORK_SAFE=1
# One compilation cache for every node and job, so a graph compiles once.
case " \${NEURON_CC_FLAGS:-} " in
  *" --cache_dir="*) ;;
  *) export NEURON_CC_FLAGS="\${NEURON_CC_FLAGS:+\$NEURON_CC_FLAGS }--cache_dir=$MOUNT_POINT/neuron-cache" ;;
esac
# Inside a Slurm job: the collectives' root is the job's first node (the same host torchrun's
# rendezvous uses); srun passes it on to every task.
if [ -n "\${SLURM_JOB_NODELIST:-}" ] && [ -z "\${NEURON_RT_ROOT_COMM_ID:-}" ] && command -v scontrol >/dev/null 2>&1; then
  NEURON_RT_ROOT_COMM_ID="\$(scontrol show hostnames "\$SLURM_JOB_NODELIST" | head -n 1):\${NEURON_RT_ROOT_COMM_PORT:-46820}"
  export NEURON_RT_ROOT_COMM_ID
fi
EOF
    log "wrote $HOOK"
  fi
}

# build_venv: a venv from PyPI and the Neuron pip repository, pinned to the image's runtime.
build_venv() {
  local runtime key row sdk torch cc nxd
  runtime="$(neuron_runtime_version)"
  [[ -n "$runtime" ]] || die "cannot tell the Neuron runtime version: aws-neuronx-runtime-lib is not installed"
  key="$(cut -d. -f1-2 <<<"$runtime")"
  row="$(awk -v k="$key" '$1 == k' <<<"$NEURON_VERSIONS")"
  [[ -n "$row" ]] ||
    die "no pinned Neuron Python packages for aws-neuronx-runtime-lib $runtime: add a row for $key to NEURON_VERSIONS in setup_neuron.sh"
  read -r _ sdk torch cc nxd <<<"$row"
  log "building $VENV for Neuron SDK $sdk (runtime $runtime): torch-neuronx==$torch neuronx-cc==$cc neuronx-distributed==$nxd"
  ensure_python_venv_module
  run python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
  if is_dry_run; then
    # Stand-in for what venv writes, so the steps below have an activate script to extend.
    mkdir -p "$(rooted "$VENV/bin")"
    printf 'VIRTUAL_ENV=%s\nexport VIRTUAL_ENV\n' "$VENV" >"$(rooted "$VENV/bin/activate")"
  fi
  run "$VENV/bin/python" -m pip install --quiet --upgrade pip || die "pip upgrade in $VENV failed (no route to PyPI?)"
  run "$VENV/bin/python" -m pip install --quiet --extra-index-url "$NEURON_PIP_INDEX" \
    "torch-neuronx==$torch" "neuronx-cc==$cc" "neuronx-distributed==$nxd" ||
    die "pip install of the Neuron packages into $VENV failed (no route to $NEURON_PIP_INDEX?)"
  # The hook goes at the end of venv's own activate, once.
  local activate line=". \"$HOOK\""
  activate="$(rooted "$VENV/bin/activate")"
  grep -qxF "$line" "$activate" || printf '\n# hyperpod_lifecycle: EFA and Neuron settings for jobs\n%s\n' "$line" >>"$activate"
}

# wrap_preinstalled VENV: our bin/activate activates the image's venv, then the hook.
wrap_preinstalled() {
  local image_venv="$1"
  log "no internet access: using the image's PyTorch Neuron env $image_venv"
  mkdir -p "$(rooted "$VENV/bin")"
  write_if_changed "$(rooted "$VENV/bin/activate")" 0644 <<EOF || true
# Written by hyperpod_lifecycle/setup_neuron.sh: the image's PyTorch Neuron venv (every Trainium
# node has it at the same path), plus the EFA and Neuron settings for jobs.
if [ ! -f "$image_venv/bin/activate" ]; then
  echo "$VENV/bin/activate: $image_venv is missing on \$(hostname)" >&2
  return 1 2>/dev/null || exit 1
fi
. "$image_venv/bin/activate"
. "$HOOK"
EOF
}

ensure_python_venv_module() {
  # Ubuntu splits ensurepip, which venv needs, into the python3-venv package (we are online here).
  if [[ "$(os_family)" == ubuntu ]] && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    install_packages python3-venv
  fi
}

ensure_shared_env() {
  local lock image_venv
  [[ -d "$(rooted "$MOUNT_POINT")" ]] || die "$MOUNT_POINT does not exist; mount_fsx must run first"
  lock="$(rooted "$MOUNT_POINT/envs/.neuron-venv.lock")"
  mkdir -p "$(dirname "$lock")"
  # Every worker runs this at once against the same FSx: the first takes the lock and builds the
  # env, the others wait and then find the marker. The marker is written last, so a node that died
  # half-way leaves no marker and the next node rebuilds from scratch.
  exec 9>>"$lock" # append: opening must not touch the file on a re-run
  flock -w "$LOCK_WAIT" 9 || die "timed out after ${LOCK_WAIT}s waiting for $lock (another node is building $VENV)"
  if [[ -f "$(rooted "$MARKER")" ]]; then
    log "shared env $VENV already exists"
  else
    [[ -e "$(rooted "$VENV")" ]] && rm -rf -- "$(rooted "$VENV")"
    if internet; then
      build_venv
    else
      image_venv="$(preinstalled_venv)"
      [[ -n "$image_venv" ]] ||
        die "no internet access and no PyTorch Neuron env on the image (/opt/aws_neuronx_venv_pytorch*): set training_cluster.internet: nat so the nodes can build $VENV"
      wrap_preinstalled "$image_venv"
    fi
    write_hook
    run chown -R "$USER_ID:$USER_ID" "$VENV"
    touch "$(rooted "$MARKER")"
    log "shared env $VENV ready (owned by $USER_NAME)"
  fi
  write_hook # a re-run with newer scripts refreshes the hook; unchanged content is left alone
  flock -u 9
}

check_neuron_tools
write_profile
ensure_shared_env
