"""Session fixtures: each platform variant is synthesized once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import botocore.loaders
import pytest

from mlops_platform.config import load_config
from tests.synth import (
    EXAMPLE_CONFIG,
    Synthesized,
    example_platform,
    example_project,
    release,
    synthesized_once,
    write_config,
)

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def _share_botocore_models() -> None:
    """Read each botocore model file once per test process instead of once per boto3 session.

    The moto tests create hundreds of sessions, and each would parse the same
    JSON (the SageMaker model alone takes ~60 ms). botocore already returns one
    shared copy per session (``instance_cache``); this widens that to the process.
    """
    for name in ("load_service_model", "load_data_with_path"):
        original = getattr(botocore.loaders.Loader, name)

        def cached(self, *args, _original=original, _cache={}, **kwargs):  # noqa: B006 - the cache is the point
            key = (tuple(self.search_paths), args, tuple(sorted(kwargs.items())))
            if key not in _cache:
                _cache[key] = _original(self, *args, **kwargs)
            return _cache[key]

        setattr(botocore.loaders.Loader, name, cached)


_share_botocore_models()
# Tests must never reach AWS: no credentials, no instance metadata.
for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
    os.environ.pop(var, None)
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="session")
def example(tmp_path_factory) -> Synthesized:
    """The shipped example config (four accounts, one project), with churn released to both stages.

    Staging shadow-tests version 3 against prod's version 2; prod serves 2 as challenger beside champion 1.
    """

    def releases(config):
        return {
            ("churn", "staging"): release(config, "churn", "staging", challenger=3, champion=2),
            ("churn", "prod"): release(config, "churn", "prod", challenger=2, champion=1),
        }

    return synthesized_once(_shared(tmp_path_factory, "example"), lambda _: load_config(EXAMPLE_CONFIG), releases)


@pytest.fixture(scope="session")
def single_account(tmp_path_factory) -> Synthesized:
    """Every role in one account, two projects, Studio in dev and staging, SSO auth, approval handlers reserved.

    churn retrains on a schedule with spot training from the shared FSx; fraud has its pipeline switched off;
    the shared training cluster (FSx + HyperPod) is on. Nothing of churn is released (no endpoints); fraud's
    first release serves in staging alone and in prod from a serverless endpoint.
    """
    return synthesized_once(_shared(tmp_path_factory, "single"), _single_account_config, _single_account_releases)


@pytest.fixture(scope="session")
def overlap(tmp_path_factory) -> Synthesized:
    """The example plus ``churn-eu``, a copy of churn whose every name starts with churn's, both released alike.

    churn-eu has its own cost center, Canvas on and a 30-minute warm pool (none of it reaches churn's stacks).

    Without churn-eu's file this config is the example: its churn templates must be the example's.
    """
    return synthesized_once(_shared(tmp_path_factory, "overlap"), _overlap_config, _overlap_releases)


OVERLAPPING = "churn-eu"
OVERLAP_WARM_POOL_MINUTES = 30


def _overlap_config(tmp: Path):
    other = example_project()
    other["name"] = OVERLAPPING
    other["cost_center"] = "ml-churn-eu"  # its own, over platform.yaml's
    other["canvas"] = {"enabled": True}  # tests/test_canvas.py; churn beside it keeps Canvas off
    other["pipeline"] = {**other.get("pipeline", {}), "warm_pool_minutes": OVERLAP_WARM_POOL_MINUTES}
    quality = other["monitoring"]["model_quality"]
    quality["ground_truth_s3_uri"] = quality["ground_truth_s3_uri"].replace("/churn/", f"/{OVERLAPPING}/")
    return load_config(write_config(tmp, None, {OVERLAPPING: other}))


def _overlap_releases(config):
    return {
        (project, stage): release(config, project, stage, challenger=challenger, champion=champion)
        for project in ("churn", OVERLAPPING)
        for stage, challenger, champion in (("staging", 3, 2), ("prod", 2, 1))
    }


def _shared(tmp_path_factory, name: str) -> Path:
    """A directory every pytest-xdist worker of this session sees (the session's base temp dir)."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / f"synth-{name}"


def _single_account_config(tmp: Path):
    platform = example_platform()
    for role in platform["accounts"]:
        platform["accounts"][role]["id"] = "555555555555"
    platform["studio"] = {"accounts": ["dev", "staging"], "auth_mode": "SSO"}
    platform["approval_workflow"] = {"reserved_concurrency": 2}
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
    }
    # The other engine: the platform's own drift check, on the same baselines, metrics and alarms (staging).
    # Bias and explainability need Model Monitor, so this variant leaves them out.
    checks = {k: v for k, v in churn["monitoring"].items() if k not in ("bias", "explainability")}
    churn["monitoring"] = {**checks, "engine": "pipeline", "stages": ["staging"]}
    fraud = example_project() | {
        "name": "fraud",
        "description": "Card fraud scoring",
        "pipeline": {"enabled": False},
        "monitoring": {"enabled": False},
    }
    fraud["members"] = [{**m, "sso_user": f"{m['user']}@example.com"} for m in fraud["members"]]
    fraud["serving"] = {
        "staging": {"variants": [{"name": "primary"}], "data_capture": {"sampling_percentage": 50}},
        "prod": {
            "variants": [{"name": "primary", "serverless": {"memory_mb": 3072, "max_concurrency": 10}}],
            "data_capture": {"enabled": False},
        },
    }
    return load_config(write_config(tmp, platform, {"churn": churn, "fraud": fraud}))


def _single_account_releases(config):
    """Fraud is released to both stages; churn to staging only (its prod has no release yet)."""
    return {
        ("churn", "staging"): release(config, "churn", "staging", challenger=1),
        ("fraud", "staging"): release(config, "fraud", "staging", challenger=1),
        ("fraud", "prod"): release(config, "fraud", "prod", challenger=1),
    }
