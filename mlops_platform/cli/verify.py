"""``mlops verify``: check that a stage's live endpoint serves what its release manifest says.

Runs with the stage's own clients (endpoint, serving stack): the endpoint must
be InService on the config the serving stack deployed, with the configured
variants serving the manifest's versions. Nothing here parses arguments or
prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from mlops_platform.cli.core import CliError, Context
from mlops_platform.cli.endpoints import (
    CHALLENGER,
    CHAMPION,
    POLL_SECONDS,
    TRANSITIONAL,
    client_error,
    describe_endpoint,
    served_variants,
    stage_variants,
)
from mlops_platform.config import ConfigError
from mlops_platform.release_manifest import ReleaseManifest, load_manifest, manifest_path

ENDPOINT_CONFIG_OUTPUT = "EndpointConfigName"


@dataclass(frozen=True)
class Verification:
    project: str
    stage: str
    endpoint: str
    manifest: ReleaseManifest | None
    problems: list[str]
    summary: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def default_manifest_path(project: str, stage: str) -> Path:
    return manifest_path(Path("releases"), project, stage)


def read_manifest(path: Path, ctx: Context, project: str, stage: str) -> ReleaseManifest | None:
    """The manifest at ``path`` (None when there is no file: nothing released); CliError when malformed."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return load_manifest(path, ctx.config, project, stage)
    except ConfigError as err:
        raise CliError(f"manifest error: {err}") from None


def _same_package(served: str, expected: str) -> bool:
    # A model names its package by ARN (always, across accounts) or, in the registry's account, by name.
    if served.startswith("arn:"):
        return served == expected
    return expected.endswith(f"model-package/{served}")


def _stack_output(cloudformation: Any, stack: str, key: str) -> tuple[str | None, str | None]:
    """(output value, problem) of one output of a stack."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as err:
        code, message = client_error(err)
        if code == "ValidationError" and "does not exist" in message:
            return None, f"stack {stack} does not exist"
        raise
    status = stacks[0].get("StackStatus", "")
    if "ROLLBACK" in status or status.endswith("FAILED"):
        return None, f"stack {stack} is {status}: its last deployment did not complete"
    value = next((o.get("OutputValue") for o in stacks[0].get("Outputs") or [] if o.get("OutputKey") == key), None)
    if not value:
        return None, f"stack {stack} has no output {key}"
    return value, None


def verify(
    sagemaker: Any,
    cloudformation: Any,
    ctx: Context,
    project: str,
    stage: str,
    manifest: ReleaseManifest | None,
    *,
    wait_minutes: float = 0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Verification:
    """Check that the stage's endpoint serves what ``manifest`` says (None: that there is no endpoint).

    The endpoint must be InService (waiting up to ``wait_minutes``, default 0,
    polling every 30 s while it is Creating/Updating), run the endpoint config
    the serving stack deployed (a differing one means SageMaker rolled back),
    have exactly the configured variants (no shadow without a champion) and serve
    the manifest's version in each. Returns the problems found, one line each.
    """
    ctx.projects(project)
    naming = ctx.naming
    endpoint = naming.endpoint_name(project, stage)
    problems: list[str] = []
    summary: list[str] = []

    def result() -> Verification:
        return Verification(project, stage, endpoint, manifest, problems, summary)

    description = describe_endpoint(sagemaker, endpoint)
    if manifest is None:
        if description is None:
            summary.append("no release: no endpoint, as expected")
        else:
            problems.append(
                f"no release, but endpoint {endpoint} exists ({description.get('EndpointStatus')}, config "
                f"{description.get('EndpointConfigName')}): the serving stack should have removed it"
            )
        return result()
    if description is None:
        problems.append(
            f"endpoint {endpoint} does not exist, but version {manifest.challenger.version} is released to {stage}"
        )
        return result()

    deadline = clock() + wait_minutes * 60
    status = description.get("EndpointStatus")
    while status in TRANSITIONAL and clock() < deadline:
        sleep(POLL_SECONDS)
        description = describe_endpoint(sagemaker, endpoint)
        if description is None:
            problems.append(f"endpoint {endpoint} disappeared while it was {status}")
            return result()
        status = description.get("EndpointStatus")
    if status != "InService":
        if status in TRANSITIONAL:
            waited = f" after waiting {wait_minutes:g} min" if wait_minutes else " (pass --wait-minutes to wait)"
            problems.append(f"endpoint {endpoint} is still {status}{waited}")
        else:
            why = description.get("FailureReason") or "no failure reason given"
            problems.append(f"endpoint {endpoint} is {status}: {why}")
        return result()

    serving_config = description["EndpointConfigName"]
    stack = naming.stack_name(stage, "serving", project)
    deployed, problem = _stack_output(cloudformation, stack, ENDPOINT_CONFIG_OUTPUT)
    if problem:
        problems.append(problem)
    elif deployed != serving_config:
        problems.append(
            f"SageMaker rolled back: endpoint {endpoint} serves config {serving_config}, the stack deployed {deployed}"
        )
    summary.append(f"endpoint {endpoint} is InService with config {serving_config}")

    configured = {v.name: v for v in stage_variants(ctx, project, stage)}
    # Without a champion there is nothing to shadow: the production variants serve the challenger alone.
    expected = {n for n, v in configured.items() if not (v.shadow and manifest.champion is None)}
    served = served_variants(sagemaker, serving_config)
    for variant in served:
        kind = "shadow" if variant.shadow else "production"
        wanted = configured.get(variant.name)
        if wanted is None:
            problems.append(f"variant {variant.name} ({kind}) is not in the {stage} config of {project}")
            continue
        if variant.shadow and manifest.champion is None:
            problems.append(
                f"shadow variant {variant.name} exists, but the release has no champion "
                f"(version {manifest.challenger.version} only)"
            )
            continue
        if variant.shadow != wanted.shadow:
            problems.append(f"variant {variant.name} is a {kind} variant; the config says otherwise")
        ref = manifest.champion if wanted.model == CHAMPION and manifest.champion else manifest.challenger
        role = CHAMPION if ref is manifest.champion else CHALLENGER
        if not variant.package_arns:
            problems.append(f"variant {variant.name}: model {variant.model_name} is not created from a model package")
            continue
        wrong = [arn for arn in variant.package_arns if not _same_package(arn, ref.model_package_arn)]
        if wrong:
            problems.append(
                f"variant {variant.name} serves {', '.join(wrong)}, but the release names version {ref.version} "
                f"({ref.model_package_arn}) as its {role}"
            )
        else:
            summary.append(f"variant {variant.name} ({kind}) serves version {ref.version} ({role})")
    missing = sorted(expected - {v.name for v in served})
    if missing:
        problems.append(f"endpoint {endpoint} lacks the configured variants {', '.join(missing)}")
    return result()
