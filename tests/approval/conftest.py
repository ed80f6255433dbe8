"""Fixtures for the approval Lambdas (``lambda/approval``) and the admin CLI.

``lambda/approval`` is a Lambda asset directory, not a package (``lambda`` is a
Python keyword): it goes on ``sys.path`` here, as the Lambda runtime puts the
asset root on its path, and the handlers are imported by their module names
(``notify``, ``guard``, ``rejected``). Bytecode writing is switched off so the
tests leave no ``__pycache__`` inside the asset directory.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
REPO = Path(__file__).resolve().parents[2]
LAMBDA_DIR = REPO / "lambda" / "approval"
if str(LAMBDA_DIR) not in sys.path:
    sys.path.insert(0, str(LAMBDA_DIR))

from moto import mock_aws  # noqa: E402

from tests.approval.support import REGION, MotoServer, Platform  # noqa: E402

AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials and region; no profile, no shared config, no custom endpoint."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))


@functools.cache
def shared_session():
    """One boto3 session per test process: it loads endpoint and service models once, not per test.

    moto hooks every botocore session created after ``import moto``, so its
    clients are intercepted inside each ``mock_aws`` block.
    """
    import boto3

    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture
def platform(aws_env):
    """The governance resources in an in-process moto (``mock_aws``), fresh for every test."""
    with mock_aws():
        yield Platform(shared_session().client).create()


@pytest.fixture(scope="module")
def moto_server():
    """A ThreadedMotoServer on 127.0.0.1 and a free port, shared by the tests of one module."""
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def server_platform(aws_env, moto_server):
    """The governance resources on the loopback moto server, emptied before every test."""
    moto_server.reset()
    return Platform(moto_server.client_factory(shared_session())).create()
