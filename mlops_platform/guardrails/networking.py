"""Networking rules for the training cluster: what HyperPod and FSx for Lustre check when they start.

- ``MLOps-HyperPodEfaSelfRules``: every security group of a HyperPod cluster
  admits all traffic from itself and sends all traffic to itself (EFA).
- ``MLOps-HyperPodPrivateSubnet``: cluster subnets are defined in the stack and
  do not give instances public IPs, and their route tables have no internet gateway route.
- ``MLOps-HyperPodLifecycleBucket``: lifecycle scripts come from a bucket whose
  name starts with ``sagemaker-`` (HyperPod reads no other).
- ``MLOps-FsxLustrePorts``: Lustre traffic runs both ways (FSx for Lustre
  User Guide, "File system access control with Amazon VPC": the servers open
  connections back to their clients). Every security group of an FSx for
  Lustre file system admits and sends TCP 988 and 1018-1023; and for each
  HyperPod cluster of the same stack, its groups and the file system's groups
  admit and send those ports to each other (a rule naming the other group, a
  CIDR, or all traffic). A group without inline egress rules keeps
  CloudFormation's default allow-all egress and counts as sending.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mlops_platform.guardrails.core import Finding, GuardrailSettings, StageTemplates

RULES = {
    "MLOps-HyperPodEfaSelfRules": "HyperPod security groups need all-traffic ingress and egress to themselves for EFA.",
    "MLOps-HyperPodPrivateSubnet": "HyperPod clusters must run in private subnets of the stack (no public IP or IGW).",
    "MLOps-HyperPodLifecycleBucket": "HyperPod lifecycle scripts must come from a bucket named 'sagemaker-*'.",
    "MLOps-FsxLustrePorts": (
        "FSx for Lustre security groups and their clients' (HyperPod) groups must admit and send TCP 988 and "
        "1018-1023 both ways."
    ),
}


def check(stage: StageTemplates, settings: GuardrailSettings) -> Iterator[Finding]:
    for stack in stage.stacks:
        resources = stack.resources
        yield from _lustre_both_ways(stack.path, resources)
        for logical_id, resource in resources.items():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::SageMaker::Cluster":
                groups = _refs(props.get("VpcConfig", {}).get("SecurityGroupIds", []))
                # No group, or one from outside the stack (""), cannot be verified and fails.
                for group in groups or [""]:
                    if not _has_self_rule(resources, group):
                        yield Finding(
                            "MLOps-HyperPodEfaSelfRules", logical_id, "VpcConfig.SecurityGroupIds", template=stack.path
                        )
                for subnet in _refs(props.get("VpcConfig", {}).get("Subnets", [])) or [""]:
                    if not _is_private(resources, subnet):
                        yield Finding(
                            "MLOps-HyperPodPrivateSubnet", logical_id, "VpcConfig.Subnets", template=stack.path
                        )
                for i, group in enumerate(props.get("InstanceGroups", [])):
                    uri = group.get("LifeCycleConfig", {}).get("SourceS3Uri")
                    if not (isinstance(uri, str) and uri.startswith("s3://sagemaker-")):
                        yield Finding(
                            "MLOps-HyperPodLifecycleBucket",
                            logical_id,
                            f"InstanceGroups[{i}].LifeCycleConfig",
                            template=stack.path,
                        )


def _refs(values: Any) -> list[str]:
    """Logical ids referenced by ``Ref`` or ``Fn::GetAtt`` in a list (others are not this stack's)."""
    found = []
    for value in values if isinstance(values, list) else []:
        if isinstance(value, dict) and "Ref" in value:
            found.append(value["Ref"])
        elif isinstance(value, dict) and "Fn::GetAtt" in value:
            found.append(value["Fn::GetAtt"][0])
        else:
            found.append("")
    return found


def _rules(resources: dict, group: str, direction: str) -> Iterator[dict]:
    """Inline and stand-alone ingress/egress rules of a security group."""
    inline = "SecurityGroupIngress" if direction == "ingress" else "SecurityGroupEgress"
    yield from resources.get(group, {}).get("Properties", {}).get(inline, [])
    kind = "AWS::EC2::SecurityGroupIngress" if direction == "ingress" else "AWS::EC2::SecurityGroupEgress"
    for resource in resources.values():
        if resource["Type"] == kind and _refs([resource["Properties"].get("GroupId")]) == [group]:
            yield resource["Properties"]


def _has_self_rule(resources: dict, group: str) -> bool:
    def all_to_self(rule: dict, peer_key: str) -> bool:
        return str(rule.get("IpProtocol")) == "-1" and _refs([rule.get(peer_key)]) == [group]

    return any(all_to_self(r, "SourceSecurityGroupId") for r in _rules(resources, group, "ingress")) and any(
        all_to_self(r, "DestinationSecurityGroupId") for r in _rules(resources, group, "egress")
    )


LUSTRE_PORTS = ((988, 988), (1018, 1023))
_PEER = {"ingress": "SourceSecurityGroupId", "egress": "DestinationSecurityGroupId"}


def _lustre_both_ways(path: str, resources: dict) -> Iterator[Finding]:
    clusters = [
        (logical_id, _refs(r.get("Properties", {}).get("VpcConfig", {}).get("SecurityGroupIds", [])))
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::SageMaker::Cluster"
    ]
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::FSx::FileSystem" or props.get("FileSystemType") != "LUSTRE":
            continue
        groups = _refs(props.get("SecurityGroupIds", [])) or [""]
        for group in groups:
            missing = [d for d in ("ingress", "egress") if not _lustre(resources, group, d, None)]
            if missing:
                yield Finding(
                    "MLOps-FsxLustrePorts",
                    logical_id,
                    "SecurityGroupIds",
                    f"{group or 'a group from outside the stack'}: no Lustre {' or '.join(missing)}",
                    template=path,
                )
        for cluster_id, nodes in clusters:
            for node in [n for n in nodes if n] or [""]:
                gaps = [
                    f"{side} {direction}"
                    for side in ("file system", "cluster")
                    for direction in ("ingress", "egress")
                    if not any(
                        _lustre(resources, fs, direction, node)
                        if side == "file system"
                        else _lustre(resources, node, direction, fs)
                        for fs in groups
                        if fs and node
                    )
                ]
                if gaps:
                    yield Finding(
                        "MLOps-FsxLustrePorts",
                        cluster_id,
                        "VpcConfig.SecurityGroupIds",
                        f"{node or 'a group from outside the stack'} and {logical_id}: no Lustre {', '.join(gaps)}",
                        template=path,
                    )


def _lustre(resources: dict, group: str, direction: str, peer: str | None) -> bool:
    """Whether ``group`` admits (ingress) or sends (egress) both Lustre port ranges, to ``peer`` if given.

    A rule counts when it names ``peer`` (any group when ``peer`` is None), or a
    CIDR; an egress check passes for a group without inline egress rules (the
    default allow-all egress CloudFormation keeps then).
    """
    if not group or group not in resources:
        return False
    if direction == "egress" and "SecurityGroupEgress" not in resources[group].get("Properties", {}):
        return True

    def covers(rule: dict, low: int, high: int) -> bool:
        source = _refs([rule.get(_PEER[direction])])[0] if rule.get(_PEER[direction]) else None
        if source is None and not (rule.get("CidrIp") or rule.get("CidrIpv6")):
            return False
        if peer is not None and source is not None and source != peer:
            return False
        if str(rule.get("IpProtocol")) == "-1":
            return True
        return (
            str(rule.get("IpProtocol")) == "tcp" and rule.get("FromPort", 0) <= low and rule.get("ToPort", -1) >= high
        )

    rules = list(_rules(resources, group, direction))
    return all(any(covers(r, low, high) for r in rules) for low, high in LUSTRE_PORTS)


def _is_private(resources: dict, subnet: str) -> bool:
    resource = resources.get(subnet)
    if not resource or resource["Type"] != "AWS::EC2::Subnet":
        return False
    if resource["Properties"].get("MapPublicIpOnLaunch") is True:
        return False
    tables = [
        r["Properties"]["RouteTableId"]
        for r in resources.values()
        if r["Type"] == "AWS::EC2::SubnetRouteTableAssociation" and _refs([r["Properties"].get("SubnetId")]) == [subnet]
    ]
    for route in resources.values():
        if route["Type"] == "AWS::EC2::Route" and route["Properties"].get("RouteTableId") in tables:
            gateway = _refs([route["Properties"].get("GatewayId")])
            if gateway and resources.get(gateway[0], {}).get("Type") == "AWS::EC2::InternetGateway":
                return False
    return True
