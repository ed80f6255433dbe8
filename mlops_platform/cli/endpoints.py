"""What a serving endpoint runs, shared by the serving commands.

Describing an endpoint and the model packages behind its variants, the
variant roles (champion, challenger) and the small time and error helpers
that :mod:`~mlops_platform.cli.shadow`, :mod:`~mlops_platform.cli.promote`,
:mod:`~mlops_platform.cli.verify` and :mod:`~mlops_platform.cli.scaling` use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from mlops_platform.cli.core import Context
from mlops_platform.config import Variant

CHAMPION, CHALLENGER = "champion", "challenger"
POLL_SECONDS = 30
# Endpoint states that end on their own; everything else but InService is a failure.
TRANSITIONAL = ("Creating", "Updating", "SystemUpdating")


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime) -> str:
    """ISO 8601 UTC to the second, as the release records store times."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def client_error(err: ClientError) -> tuple[str, str]:
    """(code, lower-cased message) of an AWS error."""
    error = err.response.get("Error", {})
    return str(error.get("Code", "")), str(error.get("Message", "")).lower()


def stage_variants(ctx: Context, project: str, stage: str) -> list[Variant]:
    """The variants the project's config gives the stage's endpoint."""
    serving = ctx.config.projects[project].serving
    return serving.staging.resolved_variants(stage) if stage == "staging" else serving.prod.resolved_variants(stage)


@dataclass(frozen=True)
class ServedVariant:
    """One variant of an endpoint config and the model package(s) its model was created from."""

    name: str
    shadow: bool
    model_name: str
    package_arns: tuple[str, ...]


def _package_names(model: dict[str, Any]) -> tuple[str, ...]:
    containers = [model.get("PrimaryContainer") or {}, *(model.get("Containers") or [])]
    return tuple(c["ModelPackageName"] for c in containers if c.get("ModelPackageName"))


def served_variants(sagemaker: Any, config_name: str) -> list[ServedVariant]:
    """Production then shadow variants of an endpoint config, with their models' package ARNs."""
    config = sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
    out = []
    models: dict[str, tuple[str, ...]] = {}
    for shadow, key in ((False, "ProductionVariants"), (True, "ShadowProductionVariants")):
        for variant in config.get(key) or []:
            model_name = variant["ModelName"]
            if model_name not in models:
                models[model_name] = _package_names(sagemaker.describe_model(ModelName=model_name))
            out.append(ServedVariant(variant["VariantName"], shadow, model_name, models[model_name]))
    return out


def describe_endpoint(sagemaker: Any, name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when the endpoint does not exist."""
    try:
        return sagemaker.describe_endpoint(EndpointName=name)
    except ClientError as err:
        code, message = client_error(err)
        if code == "ValidationException" and ("could not find" in message or "does not exist" in message):
            return None
        raise
