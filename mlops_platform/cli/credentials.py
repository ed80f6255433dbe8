"""Assume-role credentials that refresh themselves, for commands that outlive one STS session.

``mlops verify --wait-minutes`` and ``mlops scaling`` may wait as long as a prod
blue/green update runs (SageMaker's maximum is 28800 s, :mod:`mlops_platform.catalog`),
while an assumed role's session lasts one hour by default. botocore's
:class:`~botocore.credentials.RefreshableCredentials` calls AssumeRole again
before the current credentials expire (15 min advisory, 10 min mandatory), on
the next request that needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
import botocore.session
from botocore.credentials import RefreshableCredentials, _local_now
from botocore.utils import parse_timestamp

DURATION_SECONDS = 3600


def assume_role_refresher(
    sts: Any,
    role_arn: str,
    session_name: str,
    duration: int = DURATION_SECONDS,
    source_identity: str | None = None,
) -> Callable[[], dict[str, str]]:
    """A ``refresh_using`` callable: AssumeRole once per call, in the metadata shape botocore expects."""
    extra = {"SourceIdentity": source_identity} if source_identity else {}

    def fetch() -> dict[str, str]:
        credentials = sts.assume_role(
            RoleArn=role_arn, RoleSessionName=session_name, DurationSeconds=duration, **extra
        )["Credentials"]
        expiry = credentials["Expiration"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": expiry.isoformat() if isinstance(expiry, datetime) else str(expiry),
        }

    return fetch


def refreshing_credentials(
    fetch: Callable[[], dict[str, str]], *, time_fetcher: Callable[[], datetime] = _local_now
) -> RefreshableCredentials:
    """Credentials that call ``fetch`` now and again whenever they near expiry (``time_fetcher``: the clock)."""
    metadata = fetch()
    return RefreshableCredentials(
        access_key=metadata["access_key"],
        secret_key=metadata["secret_key"],
        token=metadata["token"],
        expiry_time=parse_timestamp(metadata["expiry_time"]),
        refresh_using=fetch,
        method="sts-assume-role",
        time_fetcher=time_fetcher,
    )


def refreshing_session(
    *,
    profile: str | None,
    region: str,
    role_arn: str,
    session_name: str | Callable[[Any], str],
    source_identity: str | None = None,
    base: boto3.Session | None = None,
    time_fetcher: Callable[[], datetime] = _local_now,
) -> boto3.Session:
    """A session in ``role_arn``; its credentials renew through the profile's STS client as they near expiry.

    ``session_name``: the name, or a function of the profile's STS client that
    makes it; ``source_identity`` is set on every session it assumes; ``base``:
    assume from this session instead of the profile's (role chaining).
    """
    source = base or boto3.Session(profile_name=profile, region_name=region)
    sts = source.client("sts")
    name = session_name(sts) if callable(session_name) else session_name
    fetch = assume_role_refresher(sts, role_arn, name, source_identity=source_identity)
    core = botocore.session.Session()
    core._credentials = refreshing_credentials(fetch, time_fetcher=time_fetcher)  # type: ignore[attr-defined]
    return boto3.Session(botocore_session=core, region_name=region)
