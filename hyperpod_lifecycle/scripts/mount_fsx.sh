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
