"""Fixtures of the retraining tests: dummy credentials for moto, no profile, no shared config."""

from __future__ import annotations

import pytest

from tests.aws_env import use_dummy_aws

REGION = "eu-west-1"


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    use_dummy_aws(monkeypatch, tmp_path, REGION)
