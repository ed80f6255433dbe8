"""Synthesize a platform config once and read its templates and nag report back."""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app import committed_context, create_app
from mlops_platform.config import PlatformConfig
from mlops_platform.context import zone_context_key
from mlops_platform.release_manifest import Manifests

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = ROOT / "config"


@dataclass
class Synthesized:
    """Templates by stack name, the stage each stack is in, and the nag findings by construct path."""

    outdir: Path
    templates: dict[str, dict] = field(default_factory=dict)
    stage_of: dict[str, str] = field(default_factory=dict)
    construct_path: dict[str, str] = field(default_factory=dict)
    findings: list[tuple[str, str]] = field(default_factory=list)
    error: str | None = None
    releases: Manifests = field(default_factory=dict)

    def findings_in(self, stack_name: str) -> list[tuple[str, str]]:
        prefix = self.construct_path[stack_name] + "/"
        return [(path, rule) for path, rule in self.findings if path.startswith(prefix)]

    def template(self, stack_name: str) -> dict:
        return self.templates[stack_name]

    def resources(self, stack_name: str, type_: str) -> dict[str, dict]:
        return {k: v for k, v in self.templates[stack_name]["Resources"].items() if v["Type"] == type_}


def synthesize(config: PlatformConfig, outdir: Path, releases: Manifests | None = None) -> Synthesized:
    """Synthesize into ``outdir``; nag failures are recorded, not raised, so tests can name them."""
    shutil.rmtree(outdir, ignore_errors=True)
    error = None
    try:
        create_app(config, outdir=str(outdir), context=_context_for(config), releases=releases).synth()
    except RuntimeError as err:  # cdk-nag findings surface as a jsii ValidationFailed error
        error = str(err)
    (outdir / SYNTH_ERROR).write_text(json.dumps(error))
    return read_back(outdir, releases)


SYNTH_ERROR = "synth-error.json"


def synthesized_once(
    shared_dir: Path,
    build_config: Callable[[Path], PlatformConfig],
    releases_for: Callable[[PlatformConfig], Manifests],
) -> Synthesized:
    """The variant's synth, made by the first test process to ask for it and read back by every other.

    pytest-xdist workers each run session fixtures; ``shared_dir`` is common to
    them, and a file lock lets one synthesize (``build_config`` writes the config
    under the directory it is given) while the others wait and then read.
    """
    shared_dir.mkdir(parents=True, exist_ok=True)
    with open(shared_dir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        config = build_config(shared_dir)
        releases = releases_for(config)
        outdir = shared_dir / "cdk.out"
        if (outdir / SYNTH_ERROR).exists():
            return read_back(outdir, releases)
        return synthesize(config, outdir, releases)


def read_back(outdir: Path, releases: Manifests | None = None) -> Synthesized:
    """A synth's templates, nag findings and error, read from ``outdir``."""
    result = Synthesized(outdir=outdir, releases=dict(releases or {}))
    result.error = json.loads((outdir / SYNTH_ERROR).read_text())
    report = outdir / "validation-report.json"
    if report.exists():
        for plugin in json.loads(report.read_text()).get("pluginReports", []):
            for violation in plugin.get("violations", []):
                for construct in violation.get("violatingConstructs", []):
                    result.findings.append((construct["constructPath"], violation["ruleName"]))
    for stage_dir in sorted(outdir.glob("assembly-*")):
        manifest = json.loads((stage_dir / "manifest.json").read_text())
        for artifact in manifest["artifacts"].values():
            if artifact["type"] == "aws:cloudformation:stack":
                name = artifact["properties"]["stackName"]
                result.templates[name] = json.loads((stage_dir / artifact["properties"]["templateFile"]).read_text())
                result.stage_of[name] = stage_dir.name.removeprefix("assembly-")
                result.construct_path[name] = artifact["displayName"]
    return result


def release(
    config: PlatformConfig,
    project: str,
    stage: str,
    challenger: int,
    champion: int | None = None,
    baselines: bool = True,
):
    """A release manifest naming versions of the project's model package group.

    Each version supports the instance types the project's pipeline registers (its serving config's) and,
    unless ``baselines`` is false, carries the drift-check baselines its pipeline run registered (bias and
    explainability ones where the project's monitoring asks for them, as the pipeline registers them).
    """
    from mlops_platform.naming import Naming
    from mlops_platform.release_manifest import Baselines, ModelVersion, ReleaseManifest
    from stacks.components.model_pipeline import serving_instance_types

    naming = Naming(config.platform)
    group = naming.model_package_arns(project).removesuffix("*")
    types = list(serving_instance_types(config.projects[project]))

    def registered(version: int) -> Baselines | None:
        if not baselines:
            return None
        run = f"s3://{naming.artifacts_bucket('dev')}/{naming.project_prefix(project)}/pipeline/{naming.pipeline_name(project)}/run-{version}"
        monitoring = config.projects[project].monitoring
        clarify: dict[str, str] = {}
        if monitoring.enabled and monitoring.bias.enabled:
            clarify.update(
                bias_config=f"{run}/Evaluate/evaluation/bias/analysis_config.json",
                bias_pre_training_constraints=f"{run}/Evaluate/evaluation/bias/pre_training_constraints.json",
                bias_post_training_constraints=f"{run}/Evaluate/evaluation/bias/post_training_constraints.json",
            )
        if monitoring.enabled and monitoring.explainability.enabled:
            clarify.update(
                explainability_config=f"{run}/Evaluate/evaluation/explainability/analysis_config.json",
                explainability_constraints=f"{run}/Evaluate/evaluation/explainability/constraints.json",
            )
        return Baselines(
            data_quality_statistics=f"{run}/Preprocess/baseline/statistics.json",
            data_quality_constraints=f"{run}/Preprocess/baseline/constraints.json",
            model_quality_statistics=f"{run}/Evaluate/evaluation/model_quality/statistics.json",
            model_quality_constraints=f"{run}/Evaluate/evaluation/model_quality/constraints.json",
            **clarify,
        )

    def ref(version: int | None) -> ModelVersion | None:
        if version is None:
            return None
        return ModelVersion(
            version=version,
            model_package_arn=f"{group}{version}",
            realtime_instance_types=types,
            baselines=registered(version),
        )

    return ReleaseManifest(project=project, stage=stage, challenger=ref(challenger), champion=ref(champion))


def _context_for(config: PlatformConfig) -> dict:
    """The committed context, plus AZ answers for test accounts the example does not use."""
    context = committed_context()
    for role in ("governance", "dev", "staging", "prod"):
        account = config.platform.accounts.of(role)
        key = zone_context_key(account.id, account.region)
        context.setdefault(key, [f"{account.region}{z}" for z in "abc"])
    return context


def write_config(tmp: Path, platform: dict | None = None, projects: dict[str, dict] | None = None) -> Path:
    """Copy the example config into ``tmp``, replacing the platform or project files given."""
    target = tmp / "config"
    shutil.copytree(EXAMPLE_CONFIG, target, dirs_exist_ok=True)
    if platform is not None:
        (target / "platform.yaml").write_text(yaml.safe_dump(platform, sort_keys=False))
    for name, body in (projects or {}).items():
        path = target / "projects" / f"{name}.yaml"
        if body is None:
            path.unlink()
        else:
            path.write_text(yaml.safe_dump(body, sort_keys=False))
    return target


def example_platform() -> dict:
    return yaml.safe_load((EXAMPLE_CONFIG / "platform.yaml").read_text())


def example_project() -> dict:
    return yaml.safe_load((EXAMPLE_CONFIG / "projects" / "churn.yaml").read_text())
