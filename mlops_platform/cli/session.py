"""boto3 session for the CLI: profile, region and an optional role to assume (governance, or a stage's account)."""

from __future__ import annotations

import re
from typing import Any

import boto3
from botocore.config import Config

from mlops_platform.approval import aws
from mlops_platform.cli.credentials import refreshing_session

_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)


def session_name(sts: Any) -> str:
    """STS session name naming the caller as AWS knows it (never ``$USER``, which anyone can set).

    The last part of the caller's ARN: the IAM user, or the session of the
    role it came from (for IAM Identity Center, the person's user name).
    """
    arn = str(sts.get_caller_identity()["Arn"])
    return ("mlops-" + re.sub(r"[^\w+=,.@-]", "-", arn.rsplit("/", 1)[-1]))[:64]


def make_session(
    *,
    profile: str | None,
    region: str,
    role_arn: str | None,
    source_identity: str | None = None,
    base: boto3.Session | None = None,
) -> boto3.Session:
    """The profile's session (default credential chain when None), optionally assumed into ``role_arn``.

    An assumed session renews its credentials as they near expiry (a command
    may wait hours for an endpoint). ``source_identity`` is set on it (an
    approver's name): AWS keeps it for the whole session chain and records it
    in CloudTrail; the role's trust policy decides whether the caller may claim
    it. Raises botocore's ProfileNotFound / NoCredentialsError / ClientError;
    the caller turns them into one line. ``base``: assume from this session
    (role chaining) instead of the profile's.
    """
    if not role_arn:
        return base or boto3.Session(profile_name=profile, region_name=region)
    return refreshing_session(
        profile=profile,
        region=region,
        role_arn=role_arn,
        session_name=session_name,
        source_identity=source_identity,
        base=base,
    )


class Clients(aws.Clients):
    """The approval core's client holder over ``session``, with the CLI's retry settings."""

    def __init__(self, session: boto3.Session, **clients: Any) -> None:
        super().__init__(session, config=_CONFIG, **clients)
