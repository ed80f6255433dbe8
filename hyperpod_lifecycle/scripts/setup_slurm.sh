#!/bin/bash
# setup_slurm.sh ROLE   (ROLE: controller | worker)
# controller: keep our partitions in slurm.conf and run slurmctld.
# worker:     point slurmd at the controller (configless) and run slurmd.
# Slurm itself comes with HyperPod's Slurm AMI under /opt/slurm; this never installs it.
# Needs LC_PARAMS and LC_RESOURCE_CONFIG (exported by on_create.sh). Safe to run again.
set -euo pipefail
STEP_NAME=setup_slurm
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$HERE/common.sh"

[[ $# -eq 1 ]] || die "usage: setup_slurm.sh controller|worker"
ROLE="$1"
SLURM_HOME=/opt/slurm
SLURM_CONF="$(rooted "$SLURM_HOME/etc/slurm.conf")"
WAIT="${LIFECYCLE_SLURM_CONF_WAIT_SECONDS:-120}"

# start_service NAME CHANGED: restart when its configuration changed, otherwise start (a no-op
# when it is already running), so a re-run does not bounce a healthy daemon.
start_service() {
  run systemctl enable "$1"
  if [[ "$2" == 1 ]]; then
    run systemctl restart "$1"
  else
    run systemctl start "$1"
  fi
}

controller() {
  [[ -x "$(rooted "$SLURM_HOME/sbin/slurmctld")" ]] ||
    die "slurmctld not found under $SLURM_HOME/sbin: is this HyperPod's Slurm AMI?"
  # HyperPod's agent writes the base slurm.conf while the lifecycle scripts start: wait for it.
  local waited=0
  until [[ -f "$SLURM_CONF" ]]; do
    ((waited < WAIT)) || die "$SLURM_CONF did not appear within ${WAIT}s"
    sleep 5
    waited=$((waited + 5))
  done
  local conf changed=0
  conf="$(python3 "$HERE/lifecycle_config.py" slurm-conf "$SLURM_CONF")" || die "cannot build the partitions for $SLURM_CONF"
  if printf '%s\n' "$conf" | write_if_changed "$SLURM_CONF"; then
    changed=1
    log "updated partitions in $SLURM_CONF"
  else
    log "partitions in $SLURM_CONF already up to date"
  fi
  while read -r line; do log "  $line"; done < <(grep '^PartitionName=' "$SLURM_CONF" || true)
  start_service slurmctld "$changed"
  # The controller is in no partition: a slurmd here would only register a node that never runs jobs.
  # Tolerated: an image without a slurmd unit on the controller is already what we want.
  run systemctl disable --now slurmd || log "no slurmd unit to disable"
}

worker() {
  [[ -x "$(rooted "$SLURM_HOME/sbin/slurmd")" ]] ||
    die "slurmd not found under $SLURM_HOME/sbin: is this HyperPod's Slurm AMI?"
  local addrs changed=0
  addrs="$(python3 "$HERE/lifecycle_config.py" controller-addrs)" || die "cannot find the controller's address"
  # Configless: slurmd fetches slurm.conf from slurmctld, so workers never hold a stale copy.
  # The AMI's unit passes $SLURMD_OPTIONS to slurmd; a drop-in sets it without editing the unit.
  local dropin
  dropin="$(rooted /etc/systemd/system/slurmd.service.d/50-hyperpod-lifecycle.conf)"
  if write_if_changed "$dropin" <<EOF; then
# Written by hyperpod_lifecycle/setup_slurm.sh on node creation.
[Service]
Environment="SLURMD_OPTIONS=--conf-server ${addrs}"
EOF
    changed=1
    run systemctl daemon-reload
    log "slurmd will fetch its configuration from $addrs"
  fi
  start_service slurmd "$changed"
}

case "$ROLE" in
  controller) controller ;;
  worker) worker ;;
  *) die "ROLE must be controller or worker, got '$ROLE'" ;;
esac
