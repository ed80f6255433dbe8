#!/bin/bash
# HyperPod runs this as root on every node when it is created, and again on the replacement when
# automatic recovery swaps a node out, so every step must be safe to repeat.
#
# Reads provisioning_parameters.json (beside this script, written by the CDK stack) and HyperPod's
# own /opt/ml/config/resource_config.json, decides from this node's instance group whether it is
# the Slurm controller or a worker, then runs, each logged to /var/log/provision/provisioning.log
# (the lifecycle log HyperPod's samples and docs point at):
#   1. mount_fsx.sh     every node: FSx for Lustre at the mount point, Lustre client held
#   2. setup_user.sh    every node: the job user (same UID everywhere), home and dirs on FSx
#   3. setup_neuron.sh  Trainium workers: the shared Neuron env on FSx and its activate hook
#   4. setup_slurm.sh   wait for HyperPod's slurm.conf; controller: slurmctld; worker: slurmd
# slurmd starts last so a worker joins its partition only once it can run a job.
#
# Any failure exits non-zero with the step's name, so HyperPod marks the node failed instead of
# leaving it half-configured. Steps are started with `bash`/`python3` because files fetched from
# S3 lose their execute bits.
set -euo pipefail
STEP_NAME=on_create
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$HERE/common.sh"

LOG="$(rooted /var/log/provision/provisioning.log)"
export LC_PARAMS="$HERE/provisioning_parameters.json"
export LC_RESOURCE_CONFIG="${SAGEMAKER_RESOURCE_CONFIG_PATH:-$(rooted /opt/ml/config/resource_config.json)}"

# step NAME SCRIPT ARGS...: run one step; stop the whole provisioning if it fails.
step() {
  local name="$1"
  shift
  log "START $name"
  if ! "$@"; then
    log "FAILED step '$name' (see the lines above); this node is not usable"
    exit 1
  fi
  log "DONE $name"
}

main() {
  trap 'log "FAILED: line $LINENO: $BASH_COMMAND"' ERR
  log "provisioning started (params: $LC_PARAMS, resource config: $LC_RESOURCE_CONFIG)"
  [[ -f "$LC_PARAMS" ]] || die "step 'read config' failed: $LC_PARAMS is missing (the stack uploads it beside on_create.sh)"
  [[ -f "$LC_RESOURCE_CONFIG" ]] || die "step 'read config' failed: $LC_RESOURCE_CONFIG is missing (HyperPod writes it)"

  local node_env errors
  errors="$(mktemp)"
  if ! node_env="$(python3 "$HERE/lifecycle_config.py" node-env 2>"$errors")"; then
    node_env="$(cat "$errors")"
    rm -f "$errors"
    die "step 'read config' failed: $node_env"
  fi
  rm -f "$errors"
  eval "$node_env" # NODE_ROLE, NODE_GROUP, FSX_*, ...: values shell-quoted by lifecycle_config.py
  log "node: group=$NODE_GROUP role=$NODE_ROLE type=${NODE_INSTANCE_TYPE:-unknown} partition=${NODE_PARTITION:-none} internet=$INTERNET_ACCESS"
  export LC_INTERNET_ACCESS="$INTERNET_ACCESS"

  step mount_fsx bash "$HERE/mount_fsx.sh" "$FSX_DNS_NAME" "$FSX_MOUNT_NAME" "$FSX_MOUNT_POINT"
  step setup_user bash "$HERE/setup_user.sh" "$NODE_ROLE" "$FSX_MOUNT_POINT" "$JOB_USER" "$JOB_UID" "$DATA_PATHS"

  if [[ "$NODE_ROLE" == worker ]]; then
    # Trainium by instance type (ml.trn1.32xlarge, ml.trn1n...); without a type, by the Neuron install.
    if [[ "$NODE_INSTANCE_TYPE" == ml.trn* ]] || [[ -z "$NODE_INSTANCE_TYPE" && -d "$(rooted /opt/aws/neuron)" ]]; then
      step setup_neuron bash "$HERE/setup_neuron.sh" "$FSX_MOUNT_POINT" "$JOB_USER" "$JOB_UID"
    else
      log "SKIP setup_neuron: $NODE_GROUP is not a Trainium group"
    fi
  fi

  step setup_slurm bash "$HERE/setup_slurm.sh" "$NODE_ROLE" "$NODE_PARTITION"
  log "provisioning finished: $NODE_ROLE in group $NODE_GROUP"
}

mkdir -p "$(dirname "$LOG")"
# Everything goes to the log file and to stdout (which HyperPod forwards to CloudWatch). A plain
# pipe, not `exec > >(tee)`, so the log is complete when this script exits, and pipefail passes
# main's exit status through.
main 2>&1 | tee -a "$LOG"
