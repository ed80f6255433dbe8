"""Shared fixtures for the pipeline_definitions tests.

Definitions are built at most once per test run per input set (each build
costs seconds, see ``once``), always with AWS credentials removed from the
environment and sockets refused, so any AWS or network call the SDK attempts is
recorded.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pipeline_definitions.inputs import PipelineInputs  # noqa: E402


def base_inputs_kwargs() -> dict:
    return dict(
        pipeline_name="mlops-churn",
        region="eu-west-1",
        role_arn="arn:aws:iam::222222222222:role/mlops-churn-pipeline",
        bucket="mlops-artifacts-222222222222-eu-west-1",
        # The registry group lives in the governance account (111111111111).
        model_package_group_arn=("arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/mlops-churn"),
        preprocess_code_uri="s3://cdk-assets-222222222222-eu-west-1/1111aaaa.py",
        train_code_uri="s3://cdk-assets-222222222222-eu-west-1/2222bbbb.tar.gz",
        evaluate_code_uri="s3://cdk-assets-222222222222-eu-west-1/3333cccc.py",
        ingest_code_uri="s3://cdk-assets-222222222222-eu-west-1/4444dddd.py",
        query_code_uri="s3://cdk-assets-222222222222-eu-west-1/5555eeee.py",
        feature_group_name="mlops-churn-customers",
        record_identifier="customer_id",
        feature_columns=("tenure_months", "monthly_charges", "contract"),
        athena_workgroup="mlops-churn",
    )


def variant_inputs_kwargs() -> dict:
    """Every switch on, in another region: spot, VPC, KMS, tags, raw data to ingest."""
    kwargs = base_inputs_kwargs()
    kwargs.update(
        pipeline_name="mlops-churn-big",
        region="us-east-1",
        bucket="mlops-artifacts-222222222222-us-east-1",
        model_package_group_arn=("arn:aws:sagemaker:us-east-1:111111111111:model-package-group/mlops-churn"),
        training_instance_type="ml.r5d.2xlarge",
        training_instance_count=2,
        ingest_data_uri="s3://mlops-artifacts-222222222222-us-east-1/projects/churn/raw/",
        use_spot=True,
        max_run_seconds=1800,
        max_wait_seconds=5400,
        subnet_ids=["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
        security_group_ids=["sg-0123456789abcdef0"],
        kms_key_arn=("arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
        metric_name="f1",
        metric_threshold=0.55,
        tags={"project": "churn", "cost-centre": "ml"},
    )
    return kwargs


@contextmanager
def offline():
    """No AWS credentials, no region, no sockets; yields the list of attempted connections."""
    attempts: list = []
    patch = pytest.MonkeyPatch()

    def refuse_connect(self, address):
        attempts.append(("connect", address))
        raise OSError(f"network disabled in tests: connect {address!r}")

    def refuse_getaddrinfo(host, *args, **kwargs):
        attempts.append(("getaddrinfo", host))
        raise socket.gaierror(f"network disabled in tests: resolve {host!r}")

    for name in list(os.environ):
        if name.startswith("AWS_"):
            patch.delenv(name)
    patch.setenv("AWS_CONFIG_FILE", os.devnull)
    patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    patch.setattr(socket.socket, "connect", refuse_connect)
    patch.setattr(socket, "getaddrinfo", refuse_getaddrinfo)
    try:
        yield attempts
    finally:
        patch.undo()


def _build(inputs: PipelineInputs) -> dict:
    from pipeline_definitions.tabular import build_definition

    with offline() as attempts:
        text = build_definition(inputs)
    return {"text": text, "attempts": [list(map(str, attempt)) for attempt in attempts]}


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory) -> Path:
    """A directory every xdist worker of this run shares (this session's base temp otherwise).

    Expensive results (definition builds, the step-script chain) are made once per
    run and shared: xdist's loadgroup does not keep groups on one worker with
    pytest 9 (it sets a node id attribute pytest no longer reads).
    """
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def exclusive(lock_path: Path):
    """Hold an exclusive lock on ``lock_path`` (across processes) for the block."""
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def once(shared_dir):
    """``once(name, produce)``: ``produce()``'s JSON-able result, computed by the first worker."""

    def run(name: str, produce):
        result = shared_dir / f"{name}.json"
        with exclusive(shared_dir / f"{name}.lock"):
            if not result.exists():
                result.write_text(json.dumps(produce()))
            return json.loads(result.read_text())

    return run


@pytest.fixture
def make_inputs():
    """Factory: the base inputs with some fields overridden."""

    def make(**overrides) -> PipelineInputs:
        kwargs = base_inputs_kwargs()
        kwargs.update(overrides)
        return PipelineInputs(**kwargs)

    return make


@pytest.fixture(scope="session")
def base_inputs() -> PipelineInputs:
    return PipelineInputs(**base_inputs_kwargs())


@pytest.fixture(scope="session")
def variant_inputs() -> PipelineInputs:
    return PipelineInputs(**variant_inputs_kwargs())


@pytest.fixture(scope="session")
def base_build(once, base_inputs) -> tuple[str, list]:
    """(definition text, attempted connections) for the default inputs."""
    built = once("definition-base", lambda: _build(base_inputs))
    return built["text"], built["attempts"]


@pytest.fixture(scope="session")
def variant_build(once, variant_inputs) -> tuple[str, list]:
    built = once("definition-variant", lambda: _build(variant_inputs))
    return built["text"], built["attempts"]


@pytest.fixture(scope="session")
def base_definition(base_build) -> dict:
    return json.loads(base_build[0])


@pytest.fixture(scope="session")
def variant_definition(variant_build) -> dict:
    return json.loads(variant_build[0])
