"""``mlops invoke``: one request to a stage's endpoint, the response body printed as it comes.

``--row`` sends one raw CSV row (``text/csv``, the features in the model's
order, no header, no label), ``--json`` a JSON document
(``application/json``), ``--file`` a file's bytes (``.json``: JSON, else CSV,
one or more rows). Before a CSV request the column count of every row is
checked against the feature order the served model package records in its
customer metadata property ``mlops:Features`` (a JSON list or a
comma-separated string), found through DescribeEndpoint -> endpoint config ->
model -> ModelPackageName -> DescribeModelPackage. When that metadata cannot be
read (absent, not a model package, access denied across accounts), the request
is sent unchecked.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mlops_platform.cli.core import CliError, Context
from mlops_platform.cli.endpoints import served_variants

FEATURES_PROPERTY = "mlops:Features"
CSV, JSON = "text/csv", "application/json"
MAX_BODY_BYTES = 6 * 1024 * 1024  # InvokeEndpoint's payload limit


@dataclass(frozen=True)
class Request:
    body: bytes
    content_type: str


@dataclass(frozen=True)
class Response:
    endpoint: str
    body: bytes
    content_type: str
    variant: str | None


def request_from(*, row: str | None = None, json_text: str | None = None, file: Path | None = None) -> Request:
    """The request body of exactly one of ``--row`` / ``--json`` / ``--file``; CliError (exit 2) when unusable."""
    if sum(x is not None for x in (row, json_text, file)) != 1:
        raise CliError("give exactly one of --row, --json or --file")
    if row is not None:
        text = row.strip()
        if not text:
            raise CliError("--row is empty: give one CSV row of feature values")
        if len(text.splitlines()) != 1:
            raise CliError("--row takes one CSV row; send several with --file")
        return Request(text.encode(), CSV)
    if json_text is not None:
        try:
            json.loads(json_text)
        except json.JSONDecodeError as err:
            raise CliError(f"--json is not JSON: {err}") from None
        return Request(json_text.encode(), JSON)
    if file is None:  # unreachable: exactly one was given
        raise CliError("give one of --row, --json or --file")
    try:
        body = file.read_bytes()
    except OSError as err:
        raise CliError(f"{file}: {err.strerror or err}") from None
    if not body.strip():
        raise CliError(f"{file} is empty")
    if len(body) > MAX_BODY_BYTES:
        raise CliError(f"{file} is {len(body)} bytes; InvokeEndpoint takes at most {MAX_BODY_BYTES}")
    if file.suffix.lower() == ".json":
        try:
            json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise CliError(f"{file} is not JSON: {err}") from None
        return Request(body, JSON)
    return Request(body, CSV)


def parse_features(value: str) -> list[str] | None:
    """The feature names of an ``mlops:Features`` value (JSON list or comma-separated); None when unusable."""
    text = value.strip()
    if not text:
        return None
    if text.startswith("["):
        try:
            names = json.loads(text)
        except json.JSONDecodeError:
            return None
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return None
        return names or None
    return [n.strip() for n in text.split(",") if n.strip()] or None


def served_features(sagemaker: Any, endpoint: str, variant: str | None = None) -> list[list[str]]:
    """The distinct feature orders of the endpoint's production variants (or of ``variant``); [] when unknown."""
    try:
        description = sagemaker.describe_endpoint(EndpointName=endpoint)
        variants = [v for v in served_variants(sagemaker, description["EndpointConfigName"]) if not v.shadow]
        if variant is not None:
            variants = [v for v in variants if v.name == variant]
        orders: list[list[str]] = []
        packages: dict[str, list[str] | None] = {}
        for served in variants:
            for arn in served.package_arns:
                if arn not in packages:
                    package = sagemaker.describe_model_package(ModelPackageName=arn)
                    value = (package.get("CustomerMetadataProperties") or {}).get(FEATURES_PROPERTY)
                    packages[arn] = parse_features(value) if isinstance(value, str) else None
                names = packages[arn]
                if names is not None and names not in orders:
                    orders.append(names)
        return orders
    except (ClientError, BotoCoreError, KeyError):
        # The lookup is a courtesy: the endpoint (or InvokeEndpoint) reports the real problem.
        return []


def check_columns(request: Request, orders: list[list[str]]) -> None:
    """CliError (exit 2) when a CSV row's column count fits none of the served feature orders."""
    if request.content_type != CSV or not orders:
        return
    try:
        rows = [r for r in csv.reader(io.StringIO(request.body.decode())) if r]
    except (UnicodeDecodeError, csv.Error) as err:
        raise CliError(f"the CSV request is not readable: {err}") from None
    counts = {len(o) for o in orders}
    for number, row in enumerate(rows, start=1):
        if len(row) not in counts:
            expected = " or ".join(f"{len(o)} ({', '.join(o)})" for o in orders)
            where = "the row" if len(rows) == 1 else f"row {number}"
            raise CliError(f"{where} has {len(row)} columns; the served model expects {expected}")


def invoke(
    sagemaker: Any,
    sagemaker_runtime: Any,
    ctx: Context,
    project: str,
    stage: str,
    request: Request,
    *,
    variant: str | None = None,
) -> Response:
    """Check the CSV columns against the served feature order, then InvokeEndpoint; the response body."""
    ctx.projects(project)
    endpoint = ctx.naming.endpoint_name(project, stage)
    check_columns(request, served_features(sagemaker, endpoint, variant))
    kwargs: dict[str, Any] = {
        "EndpointName": endpoint,
        "Body": request.body,
        "ContentType": request.content_type,
    }
    if variant:
        kwargs["TargetVariant"] = variant
    answer = sagemaker_runtime.invoke_endpoint(**kwargs)
    body = answer["Body"]
    data = body.read() if hasattr(body, "read") else bytes(body)
    return Response(
        endpoint=endpoint,
        body=data,
        content_type=str(answer.get("ContentType", "")),
        variant=answer.get("InvokedProductionVariant"),
    )
