"""Fixtures for the serving commands: a moto world of four accounts and an in-process ``mlops`` runner.

Commands run through :func:`mlops_platform.cli.main` (the console-script entry
point) inside ``mock_aws``; output is captured with ``capsys``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from moto import mock_aws

from mlops_platform.cli import main
from mlops_platform.cli.session import Clients
from tests.aws_env import use_dummy_aws
from tests.serving_cli.support import REGION, KeepsShadowVariants, World, write_config


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials and region; no profile, no shared config, no custom endpoint."""
    use_dummy_aws(monkeypatch, tmp_path, REGION)


@pytest.fixture
def world(aws_env, tmp_path, monkeypatch):
    """Governance, staging and prod in moto; the CLI's SageMaker clients keep shadow variants (support.py)."""
    with mock_aws():
        created = World(write_config(tmp_path)).create()
        original = Clients._get

        def get(self, service):
            client = original(self, service)
            if service == "sagemaker" and not isinstance(client, KeepsShadowVariants):
                client = KeepsShadowVariants(client, created.shadow_store)
                self._clients[service] = client
            return client

        monkeypatch.setattr(Clients, "_get", get)
        yield created


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def mlops(world, capsys, monkeypatch, tmp_path):
    """Run ``mlops ARGS`` in-process in ``tmp_path`` (so ``releases/`` lands there); returns code, stdout, stderr."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(["--config-dir", str(world.config_dir), *args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
