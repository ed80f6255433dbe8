"""Session fixtures: each platform variant is synthesized once per test session."""

from __future__ import annotations

import os

import pytest

from mlops_platform.config import load_config
from tests.synth import (
    EXAMPLE_CONFIG,
    Synthesized,
    example_platform,
    example_project,
    release,
    synthesize,
    write_config,
)

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# Tests must never reach AWS: no credentials, no instance metadata.
for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
    os.environ.pop(var, None)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="session")
def example(tmp_path_factory) -> Synthesized:
    """The shipped example config (four accounts, one project), with churn released to both stages.

    Staging shadow-tests version 3 against prod's version 2; prod serves 2 as challenger beside champion 1.
    """
    config = load_config(EXAMPLE_CONFIG)
    releases = {
        ("churn", "staging"): release(config, "churn", "staging", challenger=3, champion=2),
        ("churn", "prod"): release(config, "churn", "prod", challenger=2, champion=1),
    }
    return synthesize(config, tmp_path_factory.mktemp("example") / "cdk.out", releases)


@pytest.fixture(scope="session")
def single_account(tmp_path_factory) -> Synthesized:
    """Every role in one account, two projects, Studio in dev and staging, SSO auth.

    churn retrains on a schedule with spot training from the shared FSx; fraud has its pipeline switched off;
    the shared training cluster (FSx + HyperPod) is on. Nothing of churn is released (no endpoints); fraud's
    first release serves in staging alone and in prod from a serverless endpoint.
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
    fraud["serving"] = {
        "staging": {"variants": [{"name": "primary"}], "data_capture": {"sampling_percentage": 50}},
        "prod": {
            "variants": [{"name": "primary", "serverless": {"memory_mb": 3072, "max_concurrency": 10}}],
            "data_capture": {"enabled": False},
        },
    }
    config_dir = write_config(tmp, platform, {"churn": churn, "fraud": fraud})
    config = load_config(config_dir)
    releases = {
        ("fraud", "staging"): release(config, "fraud", "staging", challenger=1),
        ("fraud", "prod"): release(config, "fraud", "prod", challenger=1),
    }
    return synthesize(config, tmp / "cdk.out", releases)
