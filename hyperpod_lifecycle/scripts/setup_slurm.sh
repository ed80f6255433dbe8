#!/bin/bash
# setup_slurm.sh ROLE PARTITION   (ROLE: controller | worker; PARTITION: the worker's, empty on the controller)
# HyperPod's agent writes /opt/slurm/etc/slurm.conf (controller, nodes and the partitions named in
# provisioning_parameters.json). This script never edits it: it waits until the agent is done,
# checks the partitions are there, then
#   controller: starts slurmctld, keeps slurmd off;
#   worker:     points slurmd at the controller (configless) in its unit, starts slurmd.
# Every node also gets a logrotate rule for the Slurm logs. Slurm comes with HyperPod's Slurm AMI
# under /opt/slurm; this never installs it. Needs LC_PARAMS and LC_RESOURCE_CONFIG (exported by
# on_create.sh). Safe to run again.
set -euo pipefail
STEP_NAME=setup_slurm
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$HERE/common.sh"

[[ $# -ge 1 && $# -le 2 ]] || die "usage: setup_slurm.sh controller|worker [PARTITION]"
ROLE="$1"
PARTITION="${2:-}"
SLURM_HOME=/opt/slurm
SLURM_CONF="$(rooted "$SLURM_HOME/etc/slurm.conf")"
SLURMD_UNIT="$(rooted /etc/systemd/system/slurmd.service)"
LOGROTATE="$(rooted /etc/logrotate.d/hyperpod-lifecycle-slurm)"
WAIT="${LIFECYCLE_SLURM_CONF_WAIT_SECONDS:-600}"
POLL="${LIFECYCLE_SLURM_CONF_POLL_SECONDS:-10}"

# wait_for_slurm_conf all|PARTITION: poll (at most $WAIT seconds) until the agent's slurm.conf names
# the controller, then fail unless it defines the partition(s). Reads the file, never writes it.
wait_for_slurm_conf() {
  local deadline=$((SECONDS + WAIT)) message rc
  while true; do
    rc=0
    message="$(python3 "$HERE/lifecycle_config.py" slurm-check "$SLURM_CONF" "$1" 2>&1)" || rc=$?
    case "$rc" in
      0)
        log "$message"
        return 0
        ;;
      3)
        ((SECONDS < deadline)) || die "$SLURM_CONF did not name the controller within ${WAIT}s: $message"
        log "waiting for HyperPod's agent: $message"
        sleep "$POLL"
        ;;
      *) die "$message" ;;
    esac
  done
}

write_logrotate() {
  # Slurm's daemons log to /var/log/slurm on HyperPod; copytruncate keeps their open files valid
  # without a signal, so the rule needs no postrotate.
  if write_if_changed "$LOGROTATE" <<'EOF'; then
# Written by hyperpod_lifecycle/setup_slurm.sh on node creation; edits are overwritten.
/var/log/slurm/*.log {
    size 100M
    rotate 5
    compress
    delaycompress
    copytruncate
    missingok
    notifempty
}
EOF
    log "wrote $LOGROTATE"
  fi
}

controller() {
  [[ -x "$(rooted "$SLURM_HOME/sbin/slurmctld")" ]] ||
    die "slurmctld not found under $SLURM_HOME/sbin: is this HyperPod's Slurm AMI?"
  wait_for_slurm_conf all
  run systemctl enable --now slurmctld
  # The controller is in no partition: a slurmd here would only register a node that never runs jobs.
  # Tolerated: an image without a slurmd unit on the controller is already what we want.
  run systemctl disable --now slurmd || log "no slurmd unit to disable"
}

# configure_slurmd ADDRS: HyperPod's slurmd unit runs `slurmd ... $SLURMD_OPTIONS` and the value is
# rendered into the unit itself (the reference lifecycle scripts substitute it with envsubst),
# not read from the environment, so a drop-in setting SLURMD_OPTIONS would not reach slurmd.
# Returns 0 when the unit changed.
configure_slurmd() {
  local addrs="$1" unit rendered
  [[ -f "$SLURMD_UNIT" ]] || die "$SLURMD_UNIT is missing: is this HyperPod's Slurm AMI?"
  unit="$(cat "$SLURMD_UNIT")"
  if [[ "$unit" == *"--conf-server ${addrs}"* ]]; then
    log "slurmd already fetches its configuration from $addrs"
    return 1
  fi
  rendered="${unit//\$\{SLURMD_OPTIONS\}/--conf-server ${addrs}}"
  rendered="${rendered//\$SLURMD_OPTIONS/--conf-server ${addrs}}"
  [[ "$rendered" != "$unit" ]] ||
    die "$SLURMD_UNIT has no \$SLURMD_OPTIONS to fill in and no --conf-server $addrs; cannot make slurmd configless"
  printf '%s\n' "$rendered" | write_if_changed "$SLURMD_UNIT"
  log "slurmd will fetch its configuration from $addrs"
}

worker() {
  [[ -x "$(rooted "$SLURM_HOME/sbin/slurmd")" ]] ||
    die "slurmd not found under $SLURM_HOME/sbin: is this HyperPod's Slurm AMI?"
  [[ -n "$PARTITION" ]] || die "a worker needs its PARTITION"
  local addrs
  addrs="$(python3 "$HERE/lifecycle_config.py" controller-addrs)" || die "cannot find the controller's address"
  # Workers are configless: slurmd fetches slurm.conf from slurmctld. If the agent put a copy
  # here too, wait until it is complete, as on the controller.
  if [[ -f "$SLURM_CONF" ]]; then
    wait_for_slurm_conf "$PARTITION"
  else
    log "no local $SLURM_CONF: slurmd fetches it from the controller"
  fi
  if configure_slurmd "$addrs"; then
    run systemctl daemon-reload
    run systemctl enable slurmd
    run systemctl restart slurmd
  else
    run systemctl enable --now slurmd
  fi
}

case "$ROLE" in
  controller) controller ;;
  worker) worker ;;
  *) die "ROLE must be controller or worker, got '$ROLE'" ;;
esac
write_logrotate
