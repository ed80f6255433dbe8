"""What synth needs from ``cdk.context.json``: the availability zones of every account with a VPC.

Without an entry, CDK falls back to dummy zones (``dummy1a``) in a plain
``python app.py`` run and tries an AWS lookup under the CLI; either way the
templates would not deploy. Synth stays offline, so a missing entry is an
error that names the entry to add and how to read its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlops_platform.config import WORKLOAD_ROLES, PlatformConfig


def zone_context_key(account: str, region: str) -> str:
    return f"availability-zones:account={account}:region={region}"


def missing_zone_context(config: PlatformConfig, context: Mapping[str, Any]) -> str | None:
    """One line naming the first account role without a zone entry, or None when all have one."""
    for role in WORKLOAD_ROLES:  # governance has no VPC
        account = config.platform.accounts.of(role)
        key = zone_context_key(account.id, account.region)
        zones = context.get(key)
        if isinstance(zones, list) and len(zones) >= config.platform.network.max_azs:
            continue
        have = (
            f"has {len(zones)} zone(s), network.max_azs needs {config.platform.network.max_azs}"
            if isinstance(zones, list)
            else "has no entry"
        )
        return (
            f"cdk.context.json: {key}: {have} for the {role} account; add the zone names of account "
            f"{account.id}, read with that account's credentials by: aws ec2 describe-availability-zones "
            f"--region {account.region} --query \"AvailabilityZones[?ZoneType=='availability-zone'].ZoneName\""
        )
    return None
