"""Dummy AWS credentials for moto tests: no profile, no shared config or credentials file, no custom endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest


def use_dummy_aws(patch: pytest.MonkeyPatch, root: Path, region: str) -> None:
    """Point boto3 at dummy credentials and ``region``, with config files under ``root`` that do not exist."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
        patch.delenv(name, raising=False)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(root / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(root / "no-aws-credentials"),
    }.items():
        patch.setenv(name, value)
