"""``mlops invoke``: stub ``sagemaker`` (endpoint -> config -> model -> package) and ``sagemaker-runtime`` clients."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlops_platform.cli import app
from mlops_platform.cli import invoke as invoke_mod
from mlops_platform.cli import session as session_mod
from mlops_platform.cli.core import CliError, Context
from mlops_platform.config import load_config
from tests.features.test_ingest import write_config

ENDPOINT = "mlops-churn-staging"
PACKAGE = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlops-churn/3"
FEATURES = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "senior_citizen"]


class Runtime:
    """sagemaker-runtime: records each InvokeEndpoint and answers ``answer``."""

    def __init__(self, answer: bytes = b"0.87\n", content_type: str = "text/csv") -> None:
        self.calls: list[dict[str, Any]] = []
        self.answer, self.content_type = answer, content_type

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {
            "Body": io.BytesIO(self.answer),
            "ContentType": self.content_type,
            "InvokedProductionVariant": kwargs.get("TargetVariant", "champion"),
        }


class SageMaker:
    """The describes behind an endpoint; ``metadata`` is the package's CustomerMetadataProperties."""

    def __init__(self, metadata: dict[str, str] | None = None, *, denied: bool = False) -> None:
        self.metadata = metadata
        self.denied = denied

    def describe_endpoint(self, EndpointName: str) -> dict[str, Any]:
        return {"EndpointName": EndpointName, "EndpointConfigName": f"{EndpointName}-config-1"}

    def describe_endpoint_config(self, EndpointConfigName: str) -> dict[str, Any]:
        return {
            "ProductionVariants": [{"VariantName": "champion", "ModelName": "model-champion"}],
            "ShadowProductionVariants": [{"VariantName": "challenger", "ModelName": "model-challenger"}],
        }

    def describe_model(self, ModelName: str) -> dict[str, Any]:
        if ModelName == "model-challenger":
            return {"Containers": [{"ModelPackageName": PACKAGE.replace("/3", "/4")}]}
        return {"Containers": [{"ModelPackageName": PACKAGE}]}

    def describe_model_package(self, ModelPackageName: str) -> dict[str, Any]:
        if self.denied:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DescribeModelPackage")
        out: dict[str, Any] = {"ModelPackageArn": ModelPackageName}
        if self.metadata is not None:
            out["CustomerMetadataProperties"] = self.metadata
        return out


@pytest.fixture
def ctx(tmp_path) -> Context:
    return Context(load_config(write_config(tmp_path)))


def call(ctx: Context, sagemaker: Any, runtime: Runtime, **body: Any) -> invoke_mod.Response:
    variant = body.pop("variant", None)
    return invoke_mod.invoke(
        sagemaker, runtime, ctx, "churn", "staging", invoke_mod.request_from(**body), variant=variant
    )


def test_a_csv_row_passes_through(ctx):
    runtime = Runtime()
    response = call(ctx, SageMaker({"mlops:Features": json.dumps(FEATURES)}), runtime, row="12,70.5,846.0,1,0")
    assert runtime.calls == [{"EndpointName": ENDPOINT, "Body": b"12,70.5,846.0,1,0", "ContentType": "text/csv"}]
    assert response.body == b"0.87\n" and response.variant == "champion"


def test_a_json_body_passes_through_to_a_variant(ctx):
    runtime = Runtime(b'{"predictions": [0.1]}', "application/json")
    document = json.dumps({"instances": [[12, 70.5, 846.0, 1, 0]]})
    response = call(ctx, SageMaker({"mlops:Features": ",".join(FEATURES)}), runtime, json_text=document, variant="x")
    assert runtime.calls == [
        {"EndpointName": ENDPOINT, "Body": document.encode(), "ContentType": "application/json", "TargetVariant": "x"}
    ]
    assert response.body == b'{"predictions": [0.1]}'


def test_a_column_count_mismatch_is_refused_before_calling(ctx):
    runtime = Runtime()
    with pytest.raises(CliError) as caught:
        call(ctx, SageMaker({"mlops:Features": json.dumps(FEATURES)}), runtime, row="12,70.5,846.0")
    assert str(caught.value) == (
        "the row has 3 columns; the served model expects 5 (tenure_months, monthly_charges, total_charges, "
        "support_calls, senior_citizen)"
    )
    assert caught.value.exit_code == 2 and runtime.calls == []


def test_a_file_of_rows_is_checked_row_by_row(ctx, tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("12,70.5,846.0,1,0\n3,20.0,60.0\n")
    runtime = Runtime()
    with pytest.raises(CliError, match="^row 2 has 3 columns"):
        call(ctx, SageMaker({"mlops:Features": json.dumps(FEATURES)}), runtime, file=path)
    assert runtime.calls == []


@pytest.mark.parametrize("sagemaker", [SageMaker(None), SageMaker({"other": "x"}), SageMaker(denied=True)])
def test_without_feature_metadata_the_row_is_sent_unchecked(ctx, sagemaker):
    runtime = Runtime()
    call(ctx, sagemaker, runtime, row="1,2,3")
    assert len(runtime.calls) == 1


def test_bad_bodies_are_usage_errors(tmp_path):
    with pytest.raises(CliError, match="--json is not JSON"):
        invoke_mod.request_from(json_text="{nope")
    with pytest.raises(CliError, match="one CSV row"):
        invoke_mod.request_from(row="1,2\n3,4")
    with pytest.raises(CliError, match="missing.csv"):
        invoke_mod.request_from(file=tmp_path / "missing.csv")


def test_cli_prints_the_body_and_refuses_a_mismatch(tmp_path, monkeypatch, capsys):
    config = write_config(tmp_path)
    runtime = Runtime(b"0.87")
    sagemaker = SageMaker({"mlops:Features": json.dumps(FEATURES)})
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setattr(
        app,
        "Clients",
        lambda session: session_mod.Clients(session, sagemaker=sagemaker, sagemaker_runtime=runtime),
    )

    base = ["--config-dir", str(config), "invoke", "churn", "--stage", "staging"]
    assert app.run([*base, "--row", "12,70.5,846.0,1,0"]) == 0
    assert capsys.readouterr().out == "0.87\n"
    assert app.run([*base, "--row", "12,70.5"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("mlops: the row has 2 columns; the served model expects 5 (tenure_months")
    assert len(runtime.calls) == 1
