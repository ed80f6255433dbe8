"""``mlops data ingest``: a local CSV or Parquet file into one of a project's feature groups (dev account).

The ingest core is the pipeline's ingest step script
(:mod:`pipeline_definitions.scripts.tabular.ingest`): the same validation and
``put_record`` loop, fed from a local file instead of S3. The deployed group
(``DescribeFeatureGroup``) decides what fits, not the config.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from mlops_platform.cli.core import CliError, Context
from mlops_platform.cli.endpoints import client_error
from pipeline_definitions.scripts.tabular import ingest as ingest_mod

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IngestSummary:
    project: str
    group: str  # the name in the project's config
    feature_group: str  # the deployed FeatureGroupName
    path: Path
    total: int
    ingested: int
    rejected: int
    dry_run: bool


def feature_group_name(ctx: Context, project: str, group: str) -> str:
    """The deployed name of the project's group ``group``; CliError (exit 2) naming the known ones."""
    ctx.projects(project)
    groups = [g.name for g in ctx.config.projects[project].features.feature_groups]
    if group not in groups:
        known = ", ".join(groups) or "none (features.feature_groups is empty)"
        raise CliError(f"unknown feature group '{group}' of project {project} (feature groups: {known})")
    return ctx.naming.feature_group_name(project, group)


def read_file(path: Path) -> tuple[Any, str]:
    """The file as a frame and its kind (csv, parquet); CliError (exit 2, one line) when it cannot be read."""
    try:
        kind = ingest_mod.kind_of(str(path))
        if not path.exists():
            raise ingest_mod.IngestError(f"{path}: no such file")
        return ingest_mod.read_table(path, kind, name=str(path)), kind
    except ingest_mod.IngestError as err:
        raise CliError(str(err)) from None


def definitions(sagemaker: Any, name: str) -> ingest_mod.Definitions:
    """DescribeFeatureGroup; CliError (exit 1) when the group is not deployed."""
    try:
        return ingest_mod.feature_definitions(sagemaker, name)
    except ClientError as err:
        code, message = client_error(err)
        if code in ("ResourceNotFound", "ResourceNotFoundException") or "not found" in message:
            raise CliError(
                f"feature group {name} does not exist in the dev account (deploy the project's feature store first)",
                exit_code=1,
            ) from None
        raise


def ingest_file(
    sagemaker: Any,
    featurestore_runtime: Any,
    ctx: Context,
    project: str,
    group: str,
    path: Path,
    *,
    dry_run: bool = False,
    workers: int = ingest_mod.WORKERS,
    progress: Callable[[int], Progress] | None = None,
) -> IngestSummary:
    """Validate the whole file against the deployed group, then put every record (nothing when ``dry_run``).

    ``progress(total)`` gives the ``(done, total)`` callback for the put loop.
    Validation problems: CliError exit 2, nothing written. A put that fails:
    CliError exit 1 saying how many records went in before it stopped.
    """
    name = feature_group_name(ctx, project, group)
    frame, kind = read_file(path)
    described = definitions(sagemaker, name)
    try:
        cleaned = ingest_mod.validate(frame, described, source=str(path), **ingest_mod.row_labels(kind))
    except ingest_mod.ValidationError as err:
        raise CliError(str(err)) from None
    pending = ingest_mod.records(cleaned, described)
    summary = IngestSummary(project, group, name, path, len(pending), 0, 0, dry_run)
    if dry_run:
        return summary
    try:
        result = ingest_mod.ingest(
            featurestore_runtime,
            name,
            pending,
            workers=workers,
            progress=progress(len(pending)) if progress is not None else None,
        )
    except ingest_mod.IngestFailed as err:
        raise CliError(str(err), exit_code=1) from None
    return IngestSummary(project, group, name, path, result.total, result.ingested, result.rejected, dry_run)
