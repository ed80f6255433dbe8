"""Session fixtures: each platform variant is synthesized once per test session."""

from __future__ import annotations

import os

import pytest

from mlops_platform.config import load_config
from tests.synth import EXAMPLE_CONFIG, Synthesized, example_platform, example_project, synthesize, write_config

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# Tests must never reach AWS: no credentials, no instance metadata.
for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
    os.environ.pop(var, None)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="session")
def example(tmp_path_factory) -> Synthesized:
    """The shipped example config (four accounts, one project)."""
    return synthesize(load_config(EXAMPLE_CONFIG), tmp_path_factory.mktemp("example") / "cdk.out")


@pytest.fixture(scope="session")
def single_account(tmp_path_factory) -> Synthesized:
    """Every role in one account, two projects, Studio in dev and staging, SSO auth.

    churn retrains on a schedule with spot training from the shared FSx; fraud has its pipeline switched off;
    the shared training cluster (FSx + HyperPod) is on.
    """
    tmp = tmp_path_factory.mktemp("single")
    platform = example_platform()
    for role in platform["accounts"]:
        platform["accounts"][role]["id"] = "555555555555"
    platform["studio"] = {"accounts": ["dev", "staging"], "auth_mode": "SSO"}
    platform["training_cluster"] = {
        "enabled": True,
        "fsx": {"data_repositories": [{"s3_prefix": "projects/churn/datasets/", "fs_path": "/datasets"}]},
    }
    churn = example_project()
    for member in churn["members"]:
        member["sso_user"] = f"{member['user']}@example.com"
    churn["pipeline"] = {
        "retrain_schedule": "rate(7 days)",
        "spot": {"enabled": True, "max_wait_minutes": 120},
        "fsx_input": {"directory": "/datasets/churn"},
    }
    fraud = example_project() | {"name": "fraud", "description": "Card fraud scoring", "pipeline": {"enabled": False}}
    fraud["members"] = [{**m, "sso_user": f"{m['user']}@example.com"} for m in fraud["members"]]
    config_dir = write_config(tmp, platform, {"churn": churn, "fraud": fraud})
    return synthesize(load_config(config_dir), tmp / "cdk.out")
