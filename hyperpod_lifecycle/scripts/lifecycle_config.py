#!/usr/bin/env python3
"""Reads provisioning_parameters.json and HyperPod's resource_config.json for the shell steps.

Runs on the node with the AMI's python3 (3.8 or later, stdlib only), so the shell scripts never
parse JSON themselves. Every problem exits 1 with one line naming the file and the field.

    lifecycle_config.py node-env                 shell assignments describing this node
    lifecycle_config.py controller-addrs         the controller group's IPs, comma-separated
    lifecycle_config.py slurm-check SLURM_CONF all|PARTITION
                                                 exit 0 when HyperPod's slurm.conf names the controller and
                                                 defines the partition(s); 3 while it is not ready; 1 if a
                                                 partition is missing. Reads the file, never writes it.

Inputs come from the environment, set by on_create.sh:
    LC_PARAMS            path of provisioning_parameters.json
    LC_RESOURCE_CONFIG   path of resource_config.json
    LC_NODE_IP           this node's IP (tests); otherwise read from the network interfaces
"""

import contextlib
import json
import os
import re
import shlex
import socket
import subprocess
import sys

USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
DATA_PATH = re.compile(r"^(/[A-Za-z0-9._-]+)+$")
REQUIRED_PARAMS = ("workload_manager", "controller_group", "worker_groups", "fsx_dns_name", "fsx_mountname")


class ConfigError(Exception):
    pass


def _load(env_var):
    path = os.environ.get(env_var)
    if not path:
        raise ConfigError(f"{env_var} is not set")
    try:
        with open(path) as f:
            return path, json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from None


def load_params():
    path, params = _load("LC_PARAMS")
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: expected a JSON object")
    for key in REQUIRED_PARAMS:
        value = params.get(key)
        if value in (None, "", []):
            raise ConfigError(f"{path}: missing provisioning parameter '{key}'")
        # The stack writes this file with tokens resolved at deploy time; a literal token here
        # means the synth-time document was uploaded instead, and the mount would fail obscurely.
        if isinstance(value, str) and "${Token[" in value:
            raise ConfigError(f"{path}: provisioning parameter '{key}' is an unresolved CDK token: {value}")
    if params["workload_manager"] != "slurm":
        raise ConfigError(f"{path}: workload_manager must be 'slurm', got {params['workload_manager']!r}")
    groups = params["worker_groups"]
    if not isinstance(groups, list):
        raise ConfigError(f"{path}: worker_groups must be a list")
    for i, group in enumerate(groups):
        for key in ("instance_group_name", "partition_name"):
            if not isinstance(group, dict) or not group.get(key):
                raise ConfigError(f"{path}: missing provisioning parameter 'worker_groups[{i}].{key}'")
    internet = params.get("internet_access", False)
    if not isinstance(internet, bool):
        raise ConfigError(f"{path}: internet_access must be true or false, got {internet!r}")
    user = params.get("job_user", "mlops")
    if not isinstance(user, str) or not USER_NAME.match(user) or user == "root":
        raise ConfigError(f"{path}: job_user must be a login name such as mlops, got {user!r}")
    uid = params.get("job_uid", 2001)
    if isinstance(uid, bool) or not isinstance(uid, int) or not 1000 <= uid <= 60000:
        raise ConfigError(f"{path}: job_uid must be an integer from 1000 to 60000, got {uid!r}")
    data_paths = params.get("data_paths", ["/datasets"])
    if not isinstance(data_paths, list) or not all(
        isinstance(d, str) and DATA_PATH.match(d) and ".." not in d.split("/") for d in data_paths
    ):
        raise ConfigError(f"{path}: data_paths must be a list of paths such as /datasets, got {data_paths!r}")
    return params


def load_resource_config():
    path, config = _load("LC_RESOURCE_CONFIG")
    groups = config.get("InstanceGroups") if isinstance(config, dict) else None
    if not isinstance(groups, list):
        raise ConfigError(f"{path}: missing 'InstanceGroups'")
    return path, groups


def hostname_for(ip):
    # HyperPod names Slurm nodes after the EC2 private DNS host part: 10.1.0.11 -> ip-10-1-0-11.
    return "ip-" + ip.replace(".", "-")


def group_addresses(groups, name):
    for group in groups:
        if group.get("Name") == name:
            return [i["CustomerIpAddress"] for i in group.get("Instances", []) if i.get("CustomerIpAddress")]
    return []


def own_addresses():
    forced = os.environ.get("LC_NODE_IP")
    if forced:
        return [forced]
    found = []
    with contextlib.suppress(OSError):  # no `hostname` binary: fall through to the socket
        found = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=False).stdout.split()
    # Fallback: the source address the kernel would use; connect() on UDP sends nothing.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 1))
            found.append(s.getsockname()[0])
        except OSError:
            pass
    return found


def node_env():
    params = load_params()
    rc_path, groups = load_resource_config()
    mine = set(own_addresses())
    group = next(
        (g for g in groups if any(i.get("CustomerIpAddress") in mine for i in g.get("Instances", []))),
        None,
    )
    if group is None:
        raise ConfigError(f"{rc_path}: no instance group lists this node's address ({', '.join(sorted(mine))})")
    name = group.get("Name", "")
    workers = {g["instance_group_name"]: g["partition_name"] for g in params["worker_groups"]}
    if name == params["controller_group"]:
        role, partition = "controller", ""
    elif name in workers:
        role, partition = "worker", workers[name]
    else:
        raise ConfigError(
            f"instance group '{name}' is neither controller_group '{params['controller_group']}' "
            f"nor one of worker_groups {sorted(workers)} in provisioning_parameters.json"
        )
    controllers = controller_addrs()
    values = {
        "NODE_ROLE": role,
        "NODE_GROUP": name,
        "NODE_INSTANCE_TYPE": group.get("InstanceType", ""),
        "NODE_PARTITION": partition,
        "CONTROLLER_ADDRS": ",".join(controllers),
        "FSX_DNS_NAME": params["fsx_dns_name"],
        "FSX_MOUNT_NAME": params["fsx_mountname"],
        "FSX_MOUNT_POINT": params.get("fsx_mount_point") or "/fsx",
        "INTERNET_ACCESS": "1" if params.get("internet_access", False) else "0",
        "JOB_USER": params.get("job_user", "mlops"),
        "JOB_UID": params.get("job_uid", 2001),
        # Space-separated; each is a safe path (checked above), relative to the mount point.
        "DATA_PATHS": " ".join(params.get("data_paths", ["/datasets"])),
    }
    return "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in values.items())


SLURM_NOT_READY = 3
_CONTROLLER_KEYS = ("slurmctldhost", "controlmachine", "controladdr")


def _conf_lines(conf_path, seen=None):
    """slurm.conf's settings as (key, value) pairs, following `Include` lines one file deep each."""
    seen = set() if seen is None else seen
    if conf_path in seen:
        return []
    seen.add(conf_path)
    with open(conf_path) as f:
        text = f.read()
    pairs = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        head, _, rest = line.partition(" ")
        if head.lower() == "include" and rest.strip():
            # Paths in slurm.conf are the node's; in a sandbox they live under LIFECYCLE_ROOT.
            target = rest.strip()
            if not target.startswith("/"):
                target = os.path.join(os.path.dirname(conf_path), target)
            else:
                target = os.environ.get("LIFECYCLE_ROOT", "") + target
            with contextlib.suppress(FileNotFoundError):
                pairs.extend(_conf_lines(target, seen))
            continue
        key, sep, value = line.partition("=")
        if sep:
            pairs.append((key.strip().lower(), value.strip()))
    return pairs


def slurm_check(conf_path, which):
    """Is the HyperPod agent's slurm.conf ready, and does it define our partitions?

    Returns (exit code, message): 0 ready; SLURM_NOT_READY while the file is missing or names no
    controller yet (the caller polls); 1 when a partition is missing (the caller fails). Never
    writes the file: HyperPod's agent owns it.
    """
    params = load_params()
    controllers = controller_addrs()
    names = set(controllers) | {hostname_for(ip) for ip in controllers}
    try:
        pairs = _conf_lines(conf_path)
    except FileNotFoundError:
        return SLURM_NOT_READY, f"{conf_path} does not exist yet"
    named = False
    for key, value in pairs:
        # SlurmctldHost=ip-10-1-0-5(10.1.0.5), ControlMachine=ip-10-1-0-5, ControlAddr=10.1.0.5
        if key in _CONTROLLER_KEYS and set(re.split(r"[\s(),]+", value)) & names:
            named = True
    if not named:
        return SLURM_NOT_READY, f"{conf_path} names no controller ({', '.join(sorted(names))}) yet"
    defined = {value.split()[0] for key, value in pairs if key == "partitionname" and value}
    wanted = [g["partition_name"] for g in params["worker_groups"]] if which == "all" else [which]
    missing = [p for p in dict.fromkeys(wanted) if p not in defined]
    if missing:
        return 1, (
            f"{conf_path} defines no partition {', '.join(repr(p) for p in missing)} "
            f"(it has: {', '.join(sorted(defined - {'DEFAULT'})) or 'none'}); HyperPod writes partitions from "
            f"worker_groups[].partition_name in provisioning_parameters.json"
        )
    return 0, f"{conf_path} names the controller and defines partition(s) {', '.join(wanted)}"


def controller_addrs():
    params = load_params()
    rc_path, groups = load_resource_config()
    addrs = group_addresses(groups, params["controller_group"])
    if not addrs:
        raise ConfigError(f"{rc_path}: controller group '{params['controller_group']}' has no instances")
    return addrs


def main(argv):
    try:
        if argv == ["node-env"]:
            out = node_env()
        elif argv == ["controller-addrs"]:
            out = ",".join(controller_addrs()) + "\n"
        elif len(argv) == 3 and argv[0] == "slurm-check":
            code, message = slurm_check(argv[1], argv[2])
            print(message, file=sys.stderr if code else sys.stdout)
            return code
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
