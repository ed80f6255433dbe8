"""PipelineInputs validation, normalisation and derived values (no SDK involved)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline_definitions.inputs import PipelineInputs, has_instance_storage

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def make(make_inputs):
    return make_inputs


def test_defaults_and_derived_values(make):
    inputs = make()
    assert inputs.s3_prefix == "pipelines"
    assert inputs.artifacts_s3_uri == "s3://mlops-artifacts-222222222222-eu-west-1/pipelines/mlops-churn"
    assert inputs.ingest_data_uri == ""  # the Ingest step loads nothing unless told
    assert inputs.checkpoint_s3_uri == inputs.artifacts_s3_uri + "/checkpoints"
    assert inputs.model_package_group_name == "mlops-churn"
    assert inputs.registry_account == "111111111111"
    assert not inputs.use_spot and not inputs.uses_vpc
    assert inputs.metric_name == "auc" and inputs.metric_threshold == 0.7


def test_frozen_hashable_and_normalised(make):
    a = make(
        subnet_ids=["subnet-0123456789abcdef0"],
        security_group_ids=["sg-0123456789abcdef0"],
        hyperparameters={"n-estimators": 50, "max-depth": 2},
    )
    b = make(
        subnet_ids=("subnet-0123456789abcdef0",),
        security_group_ids=("sg-0123456789abcdef0",),
        hyperparameters=(("max-depth", "2"), ("n-estimators", "50")),
    )
    assert a == b and hash(a) == hash(b)
    assert a.to_json() == b.to_json()
    assert a.hyperparameters == (("max-depth", "2"), ("n-estimators", "50"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.bucket = "other"  # type: ignore[misc]


def test_json_round_trip(make):
    inputs = make(use_spot=True, tags={"team": "ml"}, metric_threshold=1)
    assert PipelineInputs.from_json(inputs.to_json()) == inputs
    assert '"metric_threshold":1.0' in inputs.to_json()
    with pytest.raises(ValueError, match="unknown fields"):
        PipelineInputs.from_json('{"nope": 1}')


def test_importing_the_package_does_not_import_sagemaker():
    code = (
        "import sys, pipeline_definitions, pipeline_definitions.tabular, pipeline_definitions.cache; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sagemaker'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"feature_columns": ()}, "at least one model input"),
        ({"feature_columns": ("churn",)}, "must differ"),
        ({"feature_columns": ("bad name",)}, "not a feature name"),
        ({"query_code_uri": "s3://bucket/query.txt"}, "query_code_uri"),
        ({"ingest_data_uri": "/local/raw"}, "ingest_data_uri"),
        ({"athena_workgroup": "no spaces"}, "athena_workgroup"),
        ({"subnet_ids": ["subnet-0123456789abcdef0"]}, "together"),
        ({"model_package_group_arn": "mlops-churn"}, "model_package_group_arn"),
        ({"model_package_group_arn": "arn:aws:sagemaker:us-east-1:111111111111:model-package-group/x"}, "same region"),
        ({"role_arn": "${Token[TOKEN.123]}"}, "role_arn"),
        ({"bucket": "${Token[TOKEN.9]}"}, "bucket"),
        ({"train_code_uri": "s3://bucket/train.py"}, "sourcedir"),
        ({"preprocess_code_uri": "/local/preprocess.py"}, "preprocess_code_uri"),
        ({"use_spot": True, "max_run_seconds": 7200, "max_wait_seconds": 3600}, "max_wait_seconds"),
        ({"metric_name": "loss"}, "metric_name"),
        ({"metric_threshold": 1.5}, "metric_threshold"),
        ({"training_instance_type": "trn1.32xlarge"}, "training_instance_type"),
        ({"hyperparameters": {"sagemaker_program": "x.py"}}, "reserved"),
        ({"kms_key_arn": "alias/mine"}, "kms_key_arn"),
        ({"kms_key_arn": "arn:aws:kms:us-east-1:222222222222:alias/mlops/dev"}, "volume keys cannot be aliases"),
    ],
)
def test_invalid_inputs_raise_value_error(make, overrides, message):
    with pytest.raises(ValueError, match=message):
        make(**overrides)


def test_cdk_asset_style_code_uris_are_accepted(make):
    # CDK names a file asset <hash><last suffix>: sourcedir.tar.gz becomes <hash>.gz.
    inputs = make(train_code_uri="s3://cdk-hnb659fds-assets-222222222222-eu-west-1/0a1b2c.gz")
    assert inputs.train_code_uri.endswith(".gz")


def test_instance_type_helpers():
    assert has_instance_storage("ml.trn1.2xlarge") and has_instance_storage("ml.g5.xlarge")
    assert not has_instance_storage("ml.m5.xlarge")
