"""``mlops releases export``: write a stage's release manifest from the release table (the deploy's first step).

Runs with governance clients (release table, model registry); like
:mod:`mlops_platform.cli.core`, it takes injected boto3 clients and neither
parses arguments nor prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_platform.approval import releases as releases_mod
from mlops_platform.cli.core import Context
from mlops_platform.release_manifest import Baselines, ModelVersion, ReleaseManifest, manifest_for, write_manifest


@dataclass(frozen=True)
class Export:
    """A written (or removed) manifest; ``superseded`` explains a differing ``--expect-arn``."""

    project: str
    stage: str
    path: Path
    manifest: ReleaseManifest | None
    superseded: str | None = None


def export_manifest(
    dynamodb: Any,
    sagemaker: Any,
    ctx: Context,
    project: str,
    stage: str,
    out_dir: Path,
    expect_arn: str | None = None,
) -> Export:
    """Write ``<out_dir>/<project>/<stage>.json`` from the release table (no release: remove it).

    Staging also reads prod's records: its champion is what prod serves. Each
    version carries the instance types its package supports for real-time
    inference, read from the registry, so synth can refuse a variant that
    SageMaker would, and its drift-check baselines, so monitoring is
    synthesized offline from the served version's own baselines. With
    ``expect_arn`` (the ARN the pipeline execution was started for, ``none``
    for no model) a differing challenger is reported, not refused: the table's
    current release wins.
    """
    ctx.projects(project)
    table = releases_mod.ReleaseTable(dynamodb, ctx.releases_table)
    stage_records = table.releases(project, stage)
    prod_records = table.releases(project, "prod") if stage == "staging" else []
    manifest = manifest_for(project, stage, stage_records, prod_records)
    if manifest is not None:
        manifest = _from_registry(sagemaker, manifest)
    path = write_manifest(Path(out_dir), project, stage, manifest)
    superseded = None
    # The rejected handler deploys "none" when a stage is left without a model.
    current = manifest.challenger.model_package_arn if manifest else releases_mod.NO_MODEL_ARN
    if expect_arn and expect_arn != current:
        # A release or rollback recorded after this execution started changed the stage; deploying the
        # table's state keeps the endpoint consistent with the records (the later execution deploys it too).
        superseded = (
            f"this execution was started for {expect_arn}, but the current {stage} release of {project} is "
            f"{current}: a newer release or a rollback superseded it; deploying the table's current release"
        )
    return Export(project, stage, path, manifest, superseded)


def _from_registry(sagemaker: Any, manifest: ReleaseManifest) -> ReleaseManifest:
    """Each version with the instance types and the monitoring baselines it was registered with."""

    def read(ref: ModelVersion | None) -> ModelVersion | None:
        if ref is None:
            return None
        package = sagemaker.describe_model_package(ModelPackageName=ref.model_package_arn)
        types = package.get("InferenceSpecification", {}).get("SupportedRealtimeInferenceInstanceTypes", [])
        return ref.model_copy(
            update={"realtime_instance_types": sorted(types), "baselines": Baselines.from_package(package)}
        )

    return manifest.model_copy(update={"challenger": read(manifest.challenger), "champion": read(manifest.champion)})
