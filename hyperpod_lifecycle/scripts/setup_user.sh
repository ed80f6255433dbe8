#!/bin/bash
# setup_user.sh ROLE MOUNT_POINT USER UID "DATA_PATH..."
# The user jobs run as, the same on every node: USER with UID and an equal GID, home
# MOUNT_POINT/home/USER on FSx, so a job sees the same files and owner whichever node it lands on.
# Creates (owned by USER) home, home/logs, home/checkpoints and MOUNT_POINT/neuron-cache, and gives
# USER's group write access to each data repository path (MOUNT_POINT + DATA_PATH): FSx imports
# objects from S3 as root, so the group gets an ACL entry there, default entries included so
# directories imported later inherit it (the recursive pass runs on the controller only).
# Safe to run again.
set -euo pipefail
STEP_NAME=setup_user
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[[ $# -eq 5 ]] || die "usage: setup_user.sh controller|worker MOUNT_POINT USER UID \"DATA_PATH...\""
ROLE="$1"
MOUNT_POINT="$2"
USER_NAME="$3"
USER_ID="$4"
DATA_PATHS="$5"
[[ "$USER_NAME" =~ ^[a-z_][a-z0-9_-]{0,31}$ ]] || die "bad user name '$USER_NAME'"
[[ "$USER_ID" =~ ^[0-9]+$ ]] || die "bad UID '$USER_ID'"
HOME_DIR="$MOUNT_POINT/home/$USER_NAME"
PASSWD="$(rooted /etc/passwd)"
GROUP="$(rooted /etc/group)"

# entry FILE NAME: the passwd/group line of NAME; entry_by_id FILE ID: the line with that numeric id.
entry() { [[ -f "$1" ]] && awk -F: -v n="$2" '$1 == n { print; exit }' "$1" || true; }
entry_by_id() { [[ -f "$1" ]] && awk -F: -v i="$2" '$3 == i { print; exit }' "$1" || true; }

ensure_group() {
  local line
  line="$(entry "$GROUP" "$USER_NAME")"
  if [[ -n "$line" ]]; then
    [[ "$(cut -d: -f3 <<<"$line")" == "$USER_ID" ]] ||
      die "group $USER_NAME exists with GID $(cut -d: -f3 <<<"$line"), not $USER_ID: the job user's GID must be the same on every node"
    return
  fi
  line="$(entry_by_id "$GROUP" "$USER_ID")"
  [[ -z "$line" ]] || die "GID $USER_ID is already taken by group $(cut -d: -f1 <<<"$line"); choose another job_uid"
  run groupadd --gid "$USER_ID" "$USER_NAME" || die "groupadd $USER_NAME failed"
  if is_dry_run; then printf '%s:x:%s:\n' "$USER_NAME" "$USER_ID" >>"$GROUP"; fi
  log "created group $USER_NAME ($USER_ID)"
}

ensure_user() {
  local line
  line="$(entry "$PASSWD" "$USER_NAME")"
  if [[ -n "$line" ]]; then
    [[ "$(cut -d: -f3 <<<"$line")" == "$USER_ID" ]] ||
      die "user $USER_NAME exists with UID $(cut -d: -f3 <<<"$line"), not $USER_ID: the job user's UID must be the same on every node"
    [[ "$(cut -d: -f6 <<<"$line")" == "$HOME_DIR" ]] ||
      die "user $USER_NAME has home $(cut -d: -f6 <<<"$line"), not $HOME_DIR"
    log "user $USER_NAME ($USER_ID) exists"
    return
  fi
  line="$(entry_by_id "$PASSWD" "$USER_ID")"
  [[ -z "$line" ]] || die "UID $USER_ID is already taken by user $(cut -d: -f1 <<<"$line"); choose another job_uid"
  # --no-create-home: the home is on FSx, shared; the first node creates it below, under a lock.
  run useradd --uid "$USER_ID" --gid "$USER_ID" --home-dir "$HOME_DIR" --no-create-home \
    --shell /bin/bash "$USER_NAME" || die "useradd $USER_NAME failed"
  if is_dry_run; then printf '%s:x:%s:%s::%s:/bin/bash\n' "$USER_NAME" "$USER_ID" "$USER_ID" "$HOME_DIR" >>"$PASSWD"; fi
  log "created user $USER_NAME ($USER_ID), home $HOME_DIR"
}

# owned_dir PATH MODE: PATH exists, owned by the job user, with MODE (setgid: files keep the group).
owned_dir() {
  local dir
  dir="$(rooted "$1")"
  mkdir -p "$dir"
  chmod "$2" "$dir"
  run chown "$USER_ID:$USER_ID" "$1"
}

ensure_dirs() {
  [[ -d "$(rooted "$MOUNT_POINT")" ]] || die "$MOUNT_POINT does not exist; mount_fsx must run first"
  local lock
  lock="$(rooted "$MOUNT_POINT/home/.setup_user.lock")"
  mkdir -p "$(dirname "$lock")"
  exec 8>>"$lock"
  flock -w 300 8 || die "timed out waiting for $lock"
  if [[ ! -e "$(rooted "$HOME_DIR")" ]]; then
    mkdir -p "$(rooted "$HOME_DIR")"
    # The usual dotfiles (a .bashrc that reads /etc/bash.bashrc, .profile), only into a new home.
    if [[ -d "$(rooted /etc/skel)" ]]; then cp -a "$(rooted /etc/skel)/." "$(rooted "$HOME_DIR")/"; fi
    run chown -R "$USER_ID:$USER_ID" "$HOME_DIR"
    log "created $HOME_DIR"
  fi
  owned_dir "$HOME_DIR" 0750
  owned_dir "$HOME_DIR/logs" 2750
  owned_dir "$HOME_DIR/checkpoints" 2750
  # The Neuron compiler cache (NEURON_CC_FLAGS=--cache_dir=...): shared by every job of the user.
  owned_dir "$MOUNT_POINT/neuron-cache" 2775
  flock -u 8
}

ensure_data_access() {
  local rel dir
  for rel in $DATA_PATHS; do
    dir="$MOUNT_POINT$rel"
    # The data repository association creates the path; create it if the link is not there yet,
    # so the job user can write into it either way.
    mkdir -p "$(rooted "$dir")"
    if [[ "$ROLE" == controller ]]; then
      # Once, from one node: existing imported directories (root-owned) get the group entries.
      run setfacl -R -m "g:$USER_ID:rwX,d:g:$USER_ID:rwX" "$dir" || die "setfacl on $dir failed (are ACLs enabled on the file system?)"
    else
      run setfacl -m "g:$USER_ID:rwX,d:g:$USER_ID:rwX" "$dir" || die "setfacl on $dir failed (are ACLs enabled on the file system?)"
    fi
    log "group $USER_NAME can write $dir"
  done
}

ensure_group
ensure_user
ensure_dirs
ensure_data_access
