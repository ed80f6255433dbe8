"""boto3 session for the CLI: profile, region and an optional role to assume (governance, or a stage's account)."""

from __future__ import annotations

import getpass
import re
from typing import Any

import boto3
from botocore.config import Config

from mlops_platform.approval import aws

_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)


def session_name() -> str:
    """STS session name carrying the local user name, so CloudTrail and LastModifiedBy show who acted."""
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name is not a reason to fail
        user = "unknown"
    return ("mlops-cli-" + re.sub(r"[^\w+=,.@-]", "-", user))[:64]


def make_session(*, profile: str | None, region: str, role_arn: str | None) -> boto3.Session:
    """The profile's session (default credential chain when None), optionally assumed into ``role_arn``.

    Raises botocore's ProfileNotFound / NoCredentialsError / ClientError; the
    caller turns them into one line.
    """
    session = boto3.Session(profile_name=profile, region_name=region)
    if not role_arn:
        return session
    credentials = session.client("sts", config=_CONFIG).assume_role(
        RoleArn=role_arn, RoleSessionName=session_name(), DurationSeconds=3600
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


class Clients(aws.Clients):
    """The approval core's client holder over ``session``, with the CLI's retry settings."""

    def __init__(self, session: boto3.Session, **clients: Any) -> None:
        super().__init__(session, config=_CONFIG, **clients)
