"""Release manifests: which model versions a serving stack deploys, as files the synth reads.

Synth never calls AWS, so the governance release table reaches a serving stack
through a file: the deploy pipeline exports ``releases/<project>/<stage>.json``
(``mlops releases export``) and then runs ``cdk deploy``. No file means no
release yet: the stack deploys its infrastructure and no endpoint.

A manifest names the **challenger** (the version the stage's latest release
names) and the **champion** (the version served before it; in staging, what prod
serves now). :func:`manifest_for` derives both from release records.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from mlops_platform.approval.releases import Release, current_release, previous_release
from mlops_platform.config import SERVING_STAGES, ConfigError, PlatformConfig, ProjectName, _parse, _show, _Strict
from mlops_platform.naming import Naming

_VERSION_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[\w-]+/(\d+)$")


_S3_URI = r"^s3://[a-z0-9.\-]{3,63}/.+$"


class Baselines(_Strict):
    """What a version was registered with for monitoring (its ``DriftCheckBaselines``), as S3 URIs.

    Data quality (statistics and constraints of the training features) is what
    every monitoring schedule needs; model quality (the validation metrics and
    their constraints) only the model-quality one; bias (Clarify analysis
    config, pre- and post-training constraints: ``DriftCheckBaselines.Bias``)
    only the bias one, explainability (config and SHAP constraints:
    ``DriftCheckBaselines.Explainability``) only the explainability one.
    Versions registered without them have ``None`` there.
    """

    data_quality_statistics: str = Field(pattern=_S3_URI)
    data_quality_constraints: str = Field(pattern=_S3_URI)
    model_quality_statistics: str | None = Field(default=None, pattern=_S3_URI)
    model_quality_constraints: str | None = Field(default=None, pattern=_S3_URI)
    bias_config: str | None = Field(default=None, pattern=_S3_URI)
    bias_pre_training_constraints: str | None = Field(default=None, pattern=_S3_URI)
    bias_post_training_constraints: str | None = Field(default=None, pattern=_S3_URI)
    explainability_config: str | None = Field(default=None, pattern=_S3_URI)
    explainability_constraints: str | None = Field(default=None, pattern=_S3_URI)

    @classmethod
    def from_package(cls, package: Mapping[str, Any]) -> Baselines | None:
        """The baselines of a DescribeModelPackage response; None without a data-quality pair."""
        drift = package.get("DriftCheckBaselines") or {}

        def uri(block: str, kind: str) -> str | None:
            value = ((drift.get(block) or {}).get(kind) or {}).get("S3Uri")
            return value if isinstance(value, str) and value else None

        statistics, constraints = uri("ModelDataQuality", "Statistics"), uri("ModelDataQuality", "Constraints")
        if not (statistics and constraints):
            return None
        return cls(
            data_quality_statistics=statistics,
            data_quality_constraints=constraints,
            model_quality_statistics=uri("ModelQuality", "Statistics"),
            model_quality_constraints=uri("ModelQuality", "Constraints"),
            bias_config=uri("Bias", "ConfigFile"),
            bias_pre_training_constraints=uri("Bias", "PreTrainingConstraints"),
            bias_post_training_constraints=uri("Bias", "PostTrainingConstraints"),
            explainability_config=uri("Explainability", "ConfigFile"),
            explainability_constraints=uri("Explainability", "Constraints"),
        )


class ModelVersion(_Strict):
    """One version of the project's model package group.

    ``realtime_instance_types`` are the package's
    ``SupportedRealtimeInferenceInstanceTypes`` as registered and ``baselines``
    its drift-check baselines (``mlops releases export`` reads both off the
    package): endpoint variants may use no other types, and monitoring compares
    with these baselines (none: no monitoring schedule).
    """

    version: int = Field(ge=1)
    model_package_arn: str
    realtime_instance_types: list[str] = Field(default_factory=list)
    baselines: Baselines | None = None

    @field_validator("model_package_arn")
    @classmethod
    def _arn(cls, arn: str) -> str:
        if not _VERSION_ARN.match(arn):
            raise ValueError(
                f"{arn!r} is not a model package version ARN "
                "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
            )
        return arn


class ReleaseManifest(_Strict):
    """What one stage of one project serves."""

    project: ProjectName
    stage: str
    challenger: ModelVersion
    champion: ModelVersion | None = None

    @field_validator("stage")
    @classmethod
    def _stage(cls, stage: str) -> str:
        if stage not in SERVING_STAGES:
            raise ValueError(f"'{stage}' is not a serving stage; allowed: {', '.join(SERVING_STAGES)}")
        return stage

    @property
    def versions(self) -> list[ModelVersion]:
        """The distinct versions to create models for, champion first."""
        if self.champion is None or self.champion.version == self.challenger.version:
            return [self.challenger]
        return [self.champion, self.challenger]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", exclude_none=True), indent=2, sort_keys=True) + "\n"


Manifests = Mapping[tuple[str, str], ReleaseManifest]


def manifest_path(releases_dir: Path, project: str, stage: str) -> Path:
    return Path(releases_dir) / project / f"{stage}.json"


def load_manifests(releases_dir: Path, config: PlatformConfig) -> dict[tuple[str, str], ReleaseManifest]:
    """Read every ``<project>/<stage>.json`` under ``releases_dir`` (missing dir: no releases).

    Raises :class:`ConfigError` naming the file and field when a manifest is
    malformed, names another project or stage than its path, or points at a
    version outside the project's model package group.
    """
    releases_dir = Path(releases_dir)
    manifests: dict[tuple[str, str], ReleaseManifest] = {}
    if not releases_dir.is_dir():
        return manifests
    for path in sorted(releases_dir.glob("*/*.json")):
        project, stage = path.parent.name, path.stem
        manifests[(project, stage)] = load_manifest(path, config, project, stage)
    return manifests


def load_manifest(path: Path, config: PlatformConfig, project: str, stage: str) -> ReleaseManifest:
    """Read and check the manifest of ``project``/``stage`` at ``path``; :class:`ConfigError` names file and field."""
    where = _show(path)
    if project not in config.projects:
        raise ConfigError(f"{where}: no project '{project}' in the config (projects: {', '.join(config.projects)})")
    if stage not in SERVING_STAGES:
        raise ConfigError(f"{where}: '{stage}' is not a serving stage; allowed file names: staging.json, prod.json")
    manifest: ReleaseManifest = _parse(path, ReleaseManifest)
    if (manifest.project, manifest.stage) != (project, stage):
        says = f"{manifest.project}/{manifest.stage}"
        raise ConfigError(f"{where}: project/stage: is for {says}, not {project}/{stage} (path says {project}/{stage})")
    naming = Naming(config.platform)
    group = naming.model_package_arns(project).removesuffix("*")
    for role in ("challenger", "champion"):
        ref: ModelVersion | None = getattr(manifest, role)
        if ref is None:
            continue
        if not ref.model_package_arn.startswith(group):
            raise ConfigError(
                f"{where}: {role}.model_package_arn: {ref.model_package_arn} is not a version of "
                f"{naming.model_package_group_arn(project)}"
            )
        if not ref.model_package_arn.endswith(f"/{ref.version}"):
            raise ConfigError(f"{where}: {role}.version: {ref.version} does not match {ref.model_package_arn}")
    return manifest


def write_manifest(releases_dir: Path, project: str, stage: str, manifest: ReleaseManifest | None) -> Path:
    """Write (or, for ``None``, remove) a stage's manifest atomically; returns its path."""
    path = manifest_path(releases_dir, project, stage)
    if manifest is None:
        path.unlink(missing_ok=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{stage}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(manifest.to_json())
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------- from release records


def _ref(record: Release) -> ModelVersion:
    return ModelVersion(version=record.version, model_package_arn=record.model_package_arn)


def manifest_for(
    project: str, stage: str, stage_records: Iterable[Release], prod_records: Iterable[Release] = ()
) -> ReleaseManifest | None:
    """The manifest a stage serves given its release records (``None``: nothing released).

    Challenger: the stage's current release. Champion: in prod, the release before
    it; in staging, what prod serves now, else staging's previous release. A
    champion equal to the challenger is dropped (the stage then serves one model).
    """
    stage_records = list(stage_records)
    challenger = current_release(stage_records)
    if challenger is None:
        return None
    champion = previous_release(stage_records, challenger.version)
    if stage == "staging":
        champion = current_release(prod_records) or champion
    if champion is not None and champion.version == challenger.version:
        champion = None
    return ReleaseManifest(
        project=project,
        stage=stage,
        challenger=_ref(challenger),
        champion=_ref(champion) if champion is not None else None,
    )


def describe(manifest: ReleaseManifest | None) -> str:
    """One line for humans and stack outputs."""
    if manifest is None:
        return "no release yet: infrastructure only, no endpoint"
    if manifest.champion is None or manifest.champion.version == manifest.challenger.version:
        return f"version {manifest.challenger.version} ({manifest.challenger.model_package_arn})"
    return f"challenger version {manifest.challenger.version}, champion version {manifest.champion.version}"


def as_dict(manifest: ReleaseManifest) -> dict[str, Any]:
    return manifest.model_dump(mode="json", exclude_none=True)
