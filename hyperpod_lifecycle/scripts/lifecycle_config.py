#!/usr/bin/env python3
"""Reads provisioning_parameters.json and HyperPod's resource_config.json for the shell steps.

Runs on the node with the AMI's python3 (3.8 or later, stdlib only), so the shell scripts never
parse JSON themselves. Every problem exits 1 with one line naming the file and the field.

    lifecycle_config.py node-env                 shell assignments describing this node
    lifecycle_config.py controller-addrs         the controller group's IPs, comma-separated
    lifecycle_config.py slurm-conf SLURM_CONF    SLURM_CONF with our partition block (re)written at its end

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

BLOCK_BEGIN = "# BEGIN hyperpod_lifecycle partitions (rewritten by setup_slurm.sh; do not edit)"
BLOCK_END = "# END hyperpod_lifecycle partitions"
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
    }
    return "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in values.items())


def expand_hostlist(expr):
    """ip-10-1-0-[11-12,15] -> [ip-10-1-0-11, ip-10-1-0-12, ip-10-1-0-15]; one bracket is enough here."""
    names = []
    for part in re.findall(r"[^,\[]+(?:\[[^\]]*\])?[^,]*", expr):
        m = re.fullmatch(r"(.*)\[([^\]]*)\](.*)", part)
        if not m:
            names.append(part)
            continue
        prefix, ranges, suffix = m.groups()
        for r in ranges.split(","):
            lo, _, hi = r.partition("-")
            width = len(lo)
            for n in range(int(lo), int(hi or lo) + 1):
                names.append(f"{prefix}{n:0{width}d}{suffix}")
    return names


def existing_definitions(conf_text):
    """Node and partition names slurm.conf already defines outside our block (HyperPod's agent
    writes its own from provisioning_parameters.json; defining them twice breaks slurmctld)."""
    nodes, partitions = set(), set()
    for line in strip_block(conf_text).splitlines():
        line = line.split("#", 1)[0].strip()
        m = re.match(r"(?i)NodeName=(\S+)", line)
        if m:
            nodes.update(expand_hostlist(m.group(1)))
        m = re.match(r"(?i)PartitionName=(\S+)", line)
        if m:
            partitions.add(m.group(1))
    return nodes, partitions


def strip_block(conf_text):
    out, inside = [], False
    for line in conf_text.splitlines(keepends=True):
        if line.startswith(BLOCK_BEGIN):
            inside = True
        elif inside and line.startswith(BLOCK_END):
            inside = False
        elif not inside:
            out.append(line)
    return "".join(out)


def slurm_conf(conf_path):
    """slurm.conf as it should be: its own lines untouched, our block (re)written at the end."""
    try:
        with open(conf_path) as f:
            text = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{conf_path}: file not found") from None
    return strip_block(text).rstrip("\n") + "\n\n" + slurm_block(text)


def slurm_block(conf_text):
    params = load_params()
    _, groups = load_resource_config()
    known_nodes, known_partitions = existing_definitions(conf_text)
    # One partition per distinct partition_name, in the order the groups were given; the first is the default.
    members = {}
    for g in params["worker_groups"]:
        members.setdefault(g["partition_name"], []).extend(group_addresses(groups, g["instance_group_name"]))
    lines = [BLOCK_BEGIN]
    for addrs in members.values():
        for ip in addrs:
            if hostname_for(ip) not in known_nodes:
                lines.append(f"NodeName={hostname_for(ip)} NodeAddr={ip}")
                known_nodes.add(hostname_for(ip))
    for index, (partition, addrs) in enumerate(members.items()):
        if partition in known_partitions:
            continue
        nodes = f" Nodes={','.join(hostname_for(ip) for ip in addrs)}" if addrs else ""
        default = "YES" if index == 0 else "NO"
        lines.append(f"PartitionName={partition}{nodes} Default={default} MaxTime=INFINITE State=UP")
    lines.append(BLOCK_END)
    return "\n".join(lines) + "\n"


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
        elif len(argv) == 2 and argv[0] == "slurm-conf":
            out = slurm_conf(argv[1])
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
