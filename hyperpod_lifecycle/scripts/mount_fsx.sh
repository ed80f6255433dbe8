#!/bin/bash
# mount_fsx.sh DNS_NAME MOUNT_NAME MOUNT_POINT
# Mounts FSx for Lustre (DNS_NAME@tcp:/MOUNT_NAME) at MOUNT_POINT and records it in /etc/fstab.
# Safe to run again: an existing correct mount and fstab entry are left alone.
set -euo pipefail
STEP_NAME=mount_fsx
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -eq 3 ]] || die "usage: mount_fsx.sh DNS_NAME MOUNT_NAME MOUNT_POINT"
DNS_NAME="$1"
MOUNT_NAME="$2"
MOUNT_POINT="$3"
[[ -n "$DNS_NAME" ]] || die "DNS_NAME is empty"
[[ -n "$MOUNT_NAME" ]] || die "MOUNT_NAME is empty"
[[ "$MOUNT_POINT" == /?* ]] || die "MOUNT_POINT must be an absolute path, got '$MOUNT_POINT'"

SOURCE="${DNS_NAME}@tcp:/${MOUNT_NAME}"
# flock: the shared venv and job scripts take file locks on /fsx; relatime keeps atime cheap.
OPTIONS="relatime,flock"
ATTEMPTS="${LIFECYCLE_MOUNT_ATTEMPTS:-6}"
DELAY="${LIFECYCLE_RETRY_BASE_SECONDS:-10}"
MOUNTS="$(rooted /proc/mounts)"
FSTAB="$(rooted /etc/fstab)"

# mounted_at: "TYPE SOURCE" of what is mounted at MOUNT_POINT now, empty if nothing.
mounted_at() {
  [[ -f "$MOUNTS" ]] || return 0
  awk -v mp="$MOUNT_POINT" '$2 == mp { found = $3 " " $1 } END { print found }' "$MOUNTS"
}

# is_our_mount "TYPE SOURCE": the kernel lists a Lustre mount by server IP (10.1.2.3@tcp:/name),
# not by the DNS name we mounted, so match the file system type and the mount name.
is_our_mount() {
  [[ "$1" == "lustre "*"@tcp:/${MOUNT_NAME}" ]]
}

ensure_lustre_client() {
  if [[ -x "$(rooted /sbin/mount.lustre)" || -x "$(rooted /usr/sbin/mount.lustre)" ]]; then
    log "Lustre client already installed"
    return
  fi
  # HyperPod's AMIs ship the client; installing one needs the FSx package repository online.
  internet ||
    die "the Lustre client (mount.lustre) is missing and this subnet has no internet access to install it: use HyperPod's AMI, or set training_cluster.internet: nat"
  local family
  family="$(os_family)"
  log "installing the Lustre client ($family)"
  case "$family" in
    # The kernel module must match the running kernel exactly.
    ubuntu) install_packages "lustre-client-modules-$(uname -r)" lustre-client-utils ;;
    amzn2) run amazon-linux-extras install -y lustre ;;
    *) install_packages lustre-client ;;
  esac
}

# hold_lustre_client: an unattended upgrade of lustre-client-modules-aws pulls in a newer kernel,
# and the node reboots into a kernel its Lustre module does not match: /fsx is gone. Hold the
# installed client packages (apt only; other package managers have no such meta package).
hold_lustre_client() {
  [[ "$(os_family)" == ubuntu ]] || return 0
  local unheld
  unheld="$(dpkg_installed_matching '^lustre-client' | awk '$2 != "hold" { print $1 }')"
  if [[ -z "$unheld" ]]; then
    log "Lustre client packages already held (or none installed through apt)"
    return
  fi
  # shellcheck disable=SC2086 # one package name a word
  run apt-mark hold $unheld || die "apt-mark hold $unheld failed"
  if is_dry_run; then
    # Stand-in for dpkg's database, so a re-run in the sandbox sees the hold.
    local status
    status="$(rooted /var/lib/dpkg/status)"
    awk -v held=" $(tr '\n' ' ' <<<"$unheld") " '
      /^Package: / { name = $2 }
      /^Status: install / && index(held, " " name " ") { sub(/^Status: install /, "Status: hold ") }
      { print }
    ' "$status" | write_if_changed "$status" || true
  fi
  log "held $(tr '\n' ' ' <<<"$unheld")against upgrades"
}

ensure_fstab_entry() {
  # _netdev: wait for the network at boot, so a rebooted node remounts instead of hanging.
  local entry="$SOURCE $MOUNT_POINT lustre ${OPTIONS},_netdev 0 0"
  local current=""
  [[ -f "$FSTAB" ]] && current="$(awk -v mp="$MOUNT_POINT" '$2 != mp' "$FSTAB")"
  if printf '%s\n' "${current:+$current$'\n'}$entry" | write_if_changed "$FSTAB"; then
    log "fstab: $entry"
  else
    log "fstab already has $entry"
  fi
}

mount_with_retry() {
  local attempt delay="$DELAY"
  mkdir -p "$(rooted "$MOUNT_POINT")"
  for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
    # A new file system can take minutes to answer, and DNS on a fresh node may still be settling.
    if run mount -t lustre -o "$OPTIONS" "$SOURCE" "$MOUNT_POINT"; then
      if is_dry_run; then
        # Stand-in for the kernel's mount table, so a re-run in the sandbox sees the mount.
        printf '%s %s lustre rw,%s 0 0\n' "$SOURCE" "$MOUNT_POINT" "$OPTIONS" >>"$MOUNTS"
      fi
      return 0
    fi
    ((attempt < ATTEMPTS)) || break
    log "mount attempt $attempt/$ATTEMPTS failed; retrying in ${delay}s"
    sleep "$delay"
    delay=$((delay * 2))
  done
  die "could not mount $SOURCE at $MOUNT_POINT after $ATTEMPTS attempts (check security group ports 988 and 1018-1023)"
}

verify_mount() {
  is_our_mount "$(mounted_at)" || die "$MOUNT_POINT is not a Lustre mount of $MOUNT_NAME after mounting"
  # lfs df talks to every storage target: it fails if the client mounted but cannot reach the servers.
  run lfs df "$MOUNT_POINT" || die "lfs df $MOUNT_POINT failed"
  log "verified $SOURCE at $MOUNT_POINT"
}

log "FSx for Lustre $SOURCE -> $MOUNT_POINT"
ensure_lustre_client
hold_lustre_client
ensure_fstab_entry
current="$(mounted_at)"
if is_our_mount "$current"; then
  log "already mounted ($current)"
elif [[ -n "$current" ]]; then
  die "$MOUNT_POINT is already in use ($current), not by $SOURCE"
else
  mount_with_retry
  verify_mount
fi
