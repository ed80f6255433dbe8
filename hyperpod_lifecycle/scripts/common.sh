# shellcheck shell=bash
# Helpers sourced by every lifecycle step. Not run on its own.
#
# Two switches make the scripts testable off a HyperPod node:
#   LIFECYCLE_ROOT=/tmp/x   every absolute path the scripts read or write is taken under /tmp/x
#   LIFECYCLE_DRY_RUN=1     privileged commands (mount, apt-get/yum/dnf, systemctl, ...) are
#                           appended to $LIFECYCLE_ROOT/var/log/provision/dry_run_commands.log
#                           instead of being executed
# They only make sense together: a sandbox root with real commands, or real paths with recorded
# commands, would leave a machine half-configured, so either one alone is refused.

LIFECYCLE_ROOT="${LIFECYCLE_ROOT:-}"
LIFECYCLE_DRY_RUN="${LIFECYCLE_DRY_RUN:-0}"

if [[ -n "$LIFECYCLE_ROOT" && "$LIFECYCLE_DRY_RUN" != 1 ]]; then
  echo "[lifecycle] ERROR: LIFECYCLE_ROOT is set but LIFECYCLE_DRY_RUN is not 1; refusing to run real commands" >&2
  exit 2
fi
if [[ "$LIFECYCLE_DRY_RUN" == 1 && -z "$LIFECYCLE_ROOT" ]]; then
  echo "[lifecycle] ERROR: LIFECYCLE_DRY_RUN=1 needs LIFECYCLE_ROOT (a sandbox directory standing in for /)" >&2
  exit 2
fi

# rooted /etc/fstab -> /etc/fstab on a node, $LIFECYCLE_ROOT/etc/fstab in a sandbox.
rooted() {
  printf '%s%s\n' "$LIFECYCLE_ROOT" "$1"
}

log() {
  printf '%s [%s] %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${STEP_NAME:-lifecycle}" "$*"
}

die() {
  log "ERROR: $*" >&2
  exit 1
}

is_dry_run() {
  [[ "$LIFECYCLE_DRY_RUN" == 1 ]]
}

# run CMD ARGS...: execute a privileged command, or record it in a dry run.
# LIFECYCLE_DRY_RUN_FAIL_FIRST="mount:2" makes the first two recorded `mount` calls fail, so tests
# can exercise the retry path; it is ignored outside a dry run.
run() {
  if ! is_dry_run; then
    "$@"
    return
  fi
  local record
  record="$(rooted /var/log/provision/dry_run_commands.log)"
  mkdir -p "$(dirname "$record")"
  printf '%s\n' "$*" >>"$record"
  local spec="${LIFECYCLE_DRY_RUN_FAIL_FIRST:-}"
  if [[ -n "$spec" && "${spec%%:*}" == "$1" ]]; then
    local counter
    counter="$(rooted "/var/log/provision/.dry_run_failures_$1")"
    local failed=0
    [[ -f "$counter" ]] && failed="$(cat "$counter")"
    if ((failed < ${spec##*:})); then
      echo $((failed + 1)) >"$counter"
      return 1
    fi
  fi
  return 0
}

# write_if_changed FILE [MODE] < content: replace FILE (atomically) only when its content differs,
# so a re-run leaves files and their mtimes alone. MODE applies to a new file. Returns 0 when it
# wrote, 1 when nothing changed.
write_if_changed() {
  local file="$1" mode="${2:-0644}" tmp
  mkdir -p "$(dirname "$file")"
  tmp="$(mktemp "${file}.XXXXXX")"
  cat >"$tmp"
  if [[ -f "$file" ]] && cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    return 1
  fi
  if [[ -f "$file" ]]; then
    # Keep the owner and mode of a file the image or HyperPod put there (e.g. slurm.conf).
    chmod --reference="$file" "$tmp"
    chown --reference="$file" "$tmp" 2>/dev/null || true
  else
    chmod "$mode" "$tmp"
  fi
  mv -f "$tmp" "$file"
  return 0
}

# os_family: ubuntu | amzn2 | amzn2023 | rhel, from /etc/os-release.
os_family() {
  local release id version
  release="$(rooted /etc/os-release)"
  [[ -f "$release" ]] || die "cannot tell the OS: $release is missing"
  # os-release is the node's own shell-syntax file (under the test root in tests), not a script of
  # this repository, so there is nothing for shellcheck to follow.
  # shellcheck source=/dev/null
  id="$(. "$release" && echo "${ID:-}")"
  # shellcheck source=/dev/null
  version="$(. "$release" && echo "${VERSION_ID:-}")"
  case "$id" in
    ubuntu | debian) echo ubuntu ;;
    amzn) if [[ "$version" == 2 ]]; then echo amzn2; else echo amzn2023; fi ;;
    rhel | centos | rocky | almalinux) echo rhel ;;
    *) die "unsupported OS '$id' in $release (expected Ubuntu or Amazon Linux)" ;;
  esac
}

# install_packages PKG...: the distribution's package manager, non-interactive.
install_packages() {
  local family
  family="$(os_family)"
  case "$family" in
    ubuntu)
      run env DEBIAN_FRONTEND=noninteractive apt-get update -q
      run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
      ;;
    amzn2 | rhel) run yum install -y "$@" ;;
    amzn2023) run dnf install -y "$@" ;;
  esac
}

# dpkg_status_field PKG FIELD: FIELD (Version, Status) of PKG in dpkg's database, empty when dpkg
# does not know it. Read from the file, not `dpkg-query`, so a sandbox root answers for itself.
dpkg_status_field() {
  local status
  status="$(rooted /var/lib/dpkg/status)"
  [[ -f "$status" ]] || return 0
  awk -v pkg="$1" -v field="$2" '
    /^Package: / { current = $2 }
    current == pkg && index($0, field ": ") == 1 { print substr($0, length(field) + 3); exit }
  ' "$status"
}

# dpkg_installed_matching REGEX: installed packages whose name matches REGEX, one a line.
dpkg_installed_matching() {
  local status
  status="$(rooted /var/lib/dpkg/status)"
  [[ -f "$status" ]] || return 0
  awk -v re="$1" '
    /^Package: / { name = $2 }
    /^Status: / && $0 ~ / installed$/ && name ~ re { print name " " $2 }
  ' "$status"
}

# internet: the cluster subnet routes to the internet (provisioning parameter internet_access,
# config training_cluster.internet: nat). on_create.sh exports LC_INTERNET_ACCESS.
internet() {
  [[ "${LC_INTERNET_ACCESS:-0}" == 1 ]]
}
