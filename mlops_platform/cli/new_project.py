"""``mlops new-project NAME [--from PROJECT]``: write a team's ``config/projects/NAME.yaml``.

No AWS call: the file is rendered from a :class:`ProjectSettings` (a new team's
defaults, or another project's settings with the project-derived names
changed), checked with :func:`load_config` together with the whole config in a
copy of the config directory, and only then written, atomically and never over
an existing file. Every setting is written out with a comment, so the file shows
all there is to configure.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from mlops_platform import collisions
from mlops_platform.cli.core import CliError
from mlops_platform.config import (
    _HINT_BY_PATTERN,
    SERVING_STAGES,
    Approval,
    ConfigError,
    Feature,
    FeatureGroup,
    Features,
    Member,
    ModelQuality,
    Monitoring,
    Pipeline,
    PlatformConfig,
    PlatformSettings,
    ProjectName,
    ProjectSettings,
    Serving,
    StageServing,
    Variant,
    load_config,
)
from mlops_platform.naming import Naming
from mlops_platform.stack_plan import project_stacks

# Placeholder values a new team must replace; every line holding one is marked EDIT.
PLACEHOLDER = "edit-me"


@dataclass(frozen=True)
class Substitution:
    """A value of the source project that named the source project, rewritten for the new one."""

    field: str
    old: str
    new: str


@dataclass(frozen=True)
class NewProject:
    """What ``new-project`` wrote: the file, its settings, the stacks per role and what --from rewrote."""

    path: Path
    settings: ProjectSettings
    platform: PlatformSettings
    stacks: dict[str, list[str]]
    substitutions: list[Substitution]
    projects: int  # projects in the config, the new one included


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a project name (None if it can), naming what is allowed."""
    try:
        TypeAdapter(ProjectName).validate_python(name)
    except ValidationError:
        pattern = get_args(ProjectName)[1].pattern
        return f"'{name}' is not a valid project name; allowed: {_HINT_BY_PATTERN[pattern]} (pattern {pattern})"
    return None


def create_project(config_dir: Path, name: str, source: str | None = None) -> NewProject:
    """Write ``config_dir/projects/<name>.yaml``; raises :class:`CliError` (exit 2) and writes nothing on a problem.

    Default: a new team's template (one feature group, the pipeline on, one
    variant per serving stage, monitoring off with capture on). With ``source``:
    that project's settings with every value naming it rewritten for ``name``.
    """
    problem = name_problem(name)
    if problem:
        raise CliError(f"new-project: NAME: {problem}")
    try:
        config = load_config(config_dir)
    except ConfigError as err:
        raise CliError(f"new-project: config error (fix it first): {err}") from None
    projects_dir = config_dir / "projects"
    for existing in (projects_dir / f"{name}.yaml", projects_dir / f"{name}.yml"):
        if existing.exists():
            raise CliError(f"new-project: {_rel(existing)} already exists; edit it, or choose another NAME")
    if name in config.projects:
        raise CliError(
            f"new-project: {config.sources[name]}: name: project '{name}' is already defined there; "
            "project names must be unique"
        )
    if source is not None and source not in config.projects:
        raise CliError(
            f"new-project: --from: no project '{source}' in {_rel(projects_dir)} "
            f"(projects: {', '.join(config.projects) or 'none'})"
        )
    substitutions: list[Substitution] = []
    if source is None:
        settings, above = new_team_settings(name, config.platform), TEMPLATE_ABOVE
        header = [f"Project {name}: one ML team's project, written by `mlops new-project {name}`."]
    else:
        settings, substitutions = copied_settings(config.platform, config.projects[source], name)
        above = {}
        header = [
            f"Project {name}: copied from project {source} ({config.sources[source]}) by "
            f"`mlops new-project {name} --from {source}`."
        ]
    clash = collisions.first_collision(config.platform, settings, list(config.projects.values()))
    if clash is not None:
        other, found = clash
        raise CliError(f"new-project: {collisions.describe(found, name, other.name, config.sources[other.name])}")
    text = render(settings, header=header + HEADER, above=above)
    path = projects_dir / f"{name}.yaml"
    checked = _check(config_dir, path, text, settings)
    _write_new(path, text)
    stacks = project_stacks(config.platform, settings)
    return NewProject(path, settings, config.platform, stacks, substitutions, len(checked.projects))


# --------------------------------------------------------------------------- settings


def new_team_settings(name: str, platform: PlatformSettings) -> ProjectSettings:
    """A new team's starting point: valid as written, with placeholder people marked EDIT."""
    sso = platform.studio.auth_mode == "SSO"
    lead, scientist = f"{PLACEHOLDER}-lead", f"{PLACEHOLDER}-scientist"
    naming = Naming(platform)
    ground_truth = f"s3://{naming.artifacts_bucket('prod')}/{naming.project_prefix(name)}/ground-truth/"
    return ProjectSettings(
        name=name,
        description=f"{PLACEHOLDER}: what the model predicts, for whom",
        owners=[f"{PLACEHOLDER}@example.com"],
        members=[
            Member(user=lead, persona="lead", sso_user=f"{lead}@example.com" if sso else None),
            Member(user=scientist, persona="data_scientist", sso_user=f"{scientist}@example.com" if sso else None),
        ],
        approval=Approval(approvers=[lead]),
        features=Features(
            feature_groups=[
                FeatureGroup(
                    name="records",
                    description="One record per entity: identifier, event time, features and the label",
                    record_identifier="record_id",
                    event_time="event_time",
                    features=[
                        Feature(name="record_id", type="String"),
                        Feature(name="event_time", type="Fractional"),
                        Feature(name="feature_1", type="Fractional"),
                        Feature(name="feature_2", type="Integral"),
                        Feature(name="feature_3", type="String"),
                        Feature(name="label", type="Integral"),
                    ],
                )
            ]
        ),
        pipeline=Pipeline(feature_group="records", target_column="label"),
        serving=Serving(
            staging=StageServing(variants=[Variant(name="primary", model="challenger")]),
            prod=StageServing(variants=[Variant(name="primary", model="challenger")]),
        ),
        monitoring=Monitoring(enabled=False, model_quality=ModelQuality(ground_truth_s3_uri=ground_truth)),
    )


def copied_settings(
    platform: PlatformSettings, source: ProjectSettings, name: str
) -> tuple[ProjectSettings, list[Substitution]]:
    """``source``'s settings for project ``name``: its name, and every value naming it, rewritten.

    A value names the source when it holds the source's S3 prefix (``projects/<source>/``)
    or a whole name the source's stacks create (``mlops-<source>-...``, after a ``/`` or
    ``:`` as in an ARN): both are rewritten to the new project's. Everything else,
    people included, is copied as it is.
    """
    naming = Naming(platform)
    old_names = collisions.resource_names(platform, source)
    renamed = source.model_copy(update={"name": name})
    new_names = collisions.resource_names(platform, renamed)
    pairs = [(f"{naming.project_prefix(source.name)}/", f"{naming.project_prefix(name)}/")]
    pairs += sorted(
        {(o.name, n.name) for o, n in zip(old_names, new_names, strict=True) if o.kind != "CDK stack id"},
        key=lambda pair: -len(pair[0]),
    )
    substitutions: list[Substitution] = []

    def rewrite(value: Any, field: str) -> Any:
        if isinstance(value, dict):
            return {k: rewrite(v, f"{field}.{k}" if field else str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [rewrite(v, f"{field}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str) or field == "name":
            return value
        new = value
        for old_part, new_part in pairs:
            new = _replace_token(new, old_part, new_part, whole=not old_part.endswith("/"))
        if new != value:
            substitutions.append(Substitution(field, value, new))
        return new

    # Only what the source sets: defaults name nothing, and a serverless variant must not gain instance fields.
    data = rewrite(source.model_dump(mode="json", exclude_unset=True), "")
    data["name"] = name
    return ProjectSettings.model_validate(data), substitutions


def _replace_token(text: str, old: str, new: str, *, whole: bool) -> str:
    """``text`` with ``old`` replaced by ``new``; ``whole``: only where it stands alone or after ``/`` or ``:``."""
    if not whole:
        return text.replace(old, new)
    out, start = [], 0
    while (i := text.find(old, start)) >= 0:
        end = i + len(old)
        before_ok = i == 0 or text[i - 1] in "/:"
        after_ok = end == len(text) or text[end] in "/:"
        out.append(text[start:i] + (new if before_ok and after_ok else old))
        start = end
    return "".join(out) + text[start:]


# --------------------------------------------------------------------------- checking and writing


def _check(config_dir: Path, path: Path, text: str, settings: ProjectSettings) -> PlatformConfig:
    """Load the whole config with the new file in a copy of ``config_dir``; the file must read back as ``settings``."""
    with tempfile.TemporaryDirectory(prefix="mlops-new-project-") as tmp:
        copy = Path(tmp) / "config"
        shutil.copytree(config_dir, copy)
        (copy / "projects").mkdir(exist_ok=True)
        (copy / "projects" / path.name).write_text(text, encoding="utf-8")
        try:
            checked = load_config(copy)
        except ConfigError as err:
            # Name the real directory, not the copy.
            message = str(err).replace(str(copy.resolve()), str(config_dir)).replace(str(copy), str(config_dir))
            raise CliError(f"new-project: the new file would not pass the config check: {message}") from None
    if checked.projects[settings.name].model_dump() != settings.model_dump():
        raise CliError(f"new-project: {_rel(path)} would not read back as the settings rendered (a bug); wrote nothing")
    return checked


def _write_new(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all, never replacing a file that appeared meanwhile."""
    path.parent.mkdir(exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)  # fails if the path exists: no clobbering
        except FileExistsError:
            raise CliError(f"new-project: {_rel(path)} appeared while writing; left it alone") from None
    finally:
        os.unlink(tmp)


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- rendering

HEADER = [
    "`make synth` picks up every config/projects/*.yaml; `mlops new-project` listed the stacks this",
    "project adds in each account role. Every setting is written out, defaults included, so this",
    "file shows all there is to configure; delete a line to fall back to its default.",
    f"Before the first deploy, replace every value marked EDIT ('{PLACEHOLDER}...').",
]

# Comment lines above a key. Paths are dotted, without list indices; "serving.*" covers both stages.
ABOVE: dict[str, str] = {
    "members": (
        "People on the project; each gets a Studio user profile '<project>-<user>' in every Studio account. "
        "persona: data_scientist (experiments, runs the pipeline) or lead (also approves model versions). "
        "sso_user: the IAM Identity Center user name, required when platform.yaml studio.auth_mode is SSO."
    ),
    "approval": (
        "Who may approve a model version in the governance registry, and what the version must show: "
        "metric_thresholds are fractions in [0, 1] the evaluate step must reach (auc, accuracy, precision, "
        "recall, f1); required_evidence must be attached to the version."
    ),
    "features": (
        "Feature Store groups in dev (mlops-<project>-<group>). The pipeline reads one group's offline store "
        "(Iceberg, compacted weekly); the online store serves low-latency reads. record_identifier and event_time "
        "must be features of the group; event_time is Fractional (epoch seconds) or String (ISO-8601)."
    ),
    "pipeline": (
        "The SageMaker Pipeline in dev: ingest, query the offline store, preprocess, train (scikit-learn), "
        "evaluate, register into the governance registry. target_column is the 0/1 label, an Integral feature "
        "of feature_group. input_data_uri: CSV files the Ingest step loads first (null: none)."
    ),
    "serving": (
        "Endpoints of the approved versions in staging and prod. A variant's model: challenger is the stage's "
        "latest release, champion the version served before it (in staging: what prod serves); a shadow variant "
        "gets a copy of the requests, production variants split traffic by weight. Prod updates are blue/green "
        "with auto-rollback (deployment); serverless variants take neither capture nor guardrails."
    ),
    "serving.promotion": "What the staging test must show before `mlops promote --to prod`.",
    "canvas": (
        "SageMaker Canvas for the members in the dev Studio domain (needs dev in platform.yaml studio.accounts): "
        "Canvas models register into the project's registry as PendingManualApproval and reach an endpoint only "
        "through approval; direct deployment from Canvas is off."
    ),
    "monitoring": (
        "Monitoring compares the captured requests of each stage in stages with the served version's "
        "baselines (data quality) and, as labels arrive, its live quality. engine: pipeline (the platform's "
        "drift check, any account) or model_monitor (SageMaker Model Monitor, closed to new accounts). Alarms "
        "email the owners and, with retraining, start the pipeline in dev (at most once per cooldown_hours). "
        "model_quality needs labels at ground_truth_s3_uri (Model Monitor ground-truth JSON Lines)."
    ),
}

# Comments after a value ("members[]": after each list item).
BESIDE: dict[str, str] = {
    "name": "part of every AWS name (mlops-<name>-...); renaming a deployed project replaces its resources",
    "description": "EDIT",
    "owners": "EDIT: the team's email addresses; alarms and approval notices go there",
    "members[]": "EDIT",
    "approval.approvers": "EDIT: members with persona lead, or IAM role ARNs",
    "approval.allow_self_approval": "false: whoever registered a version cannot approve it",
    "pipeline.feature_group": "null: the first feature group",
    "pipeline.retrain_schedule": "null: retrain only on demand or on a monitoring alarm; e.g. rate(7 days)",
    "pipeline.warm_pool_minutes": "keep training instances this long for the next run (billed); 0: off",
    "pipeline.hyperparameters": "passed to the training script, e.g. {n_estimators: 200}",
    "serving.*.enabled": "false: no serving stack resources for this stage",
    "serving.*.data_capture": "requests and responses to the stage's artifacts bucket, for monitoring",
    "serving.*.deployment": (
        "alarm thresholds of both stages; prod also updates blue/green in these steps and rolls back on the alarms"
    ),
    "serving.promotion.min_agreement_percent": "null: agreement of paired shadow outputs is reported, not gated",
    "monitoring.enabled": "needs serving.<stage>.data_capture on in each of the stages",
    "monitoring.schedule": "hourly at most",
    "monitoring.model_quality": "live quality against labels; needs ground_truth_s3_uri",
    "monitoring.bias": "Clarify bias drift; needs engine: model_monitor and ground_truth_s3_uri",
    "monitoring.bias.facets": "sensitive model inputs, e.g. [{name: feature_2, value_or_threshold: [1]}]",
    "monitoring.bias.probability_threshold": "null: model_quality's",
    "monitoring.explainability": "Clarify SHAP attribution drift; needs engine: model_monitor",
    "cost_center": "the cost-center tag of this project's resources; null: platform.yaml's tags.cost-center",
}
# A variant's fields when it is written as a block (fields the variant does not use are left out).
BESIDE.update(
    {
        "serving.*.variants.weight": "percent of live traffic; production variants sum to 100",
        "serving.*.variants.sampling_percentage": "shadow variants only: percent of requests copied",
        "serving.*.variants.autoscaling": (
            "null: fixed instance_count; or {min_instances: 1, max_instances: 2, invocations_per_instance: 100}"
        ),
        "serving.*.variants.serverless": "null: instances; or {memory_mb: 2048, max_concurrency: 5} (no capture)",
        "features.feature_groups.online_store": "ttl_days null: records never expire",
        "features.feature_groups.throughput": "OnDemand, or Provisioned with provisioned_*_units",
    }
)

FLOW_WIDTH = 100
WRAP = 100

# The new-team template's reasons for its choices, above the sections they concern.
TEMPLATE_ABOVE: dict[str, str] = {
    "serving": (
        "Endpoints of the approved versions. This template starts each stage with one variant serving the "
        "stage's latest release (model: challenger): staging then tests it with real requests before "
        "`mlops promote`. For a shadow test instead, serve the champion in staging and add a second variant "
        "{name: challenger, model: challenger, shadow: true} (see config/projects/churn.yaml); in prod, several "
        "variants split traffic by weight. Prod updates are blue/green with auto-rollback (deployment)."
    ),
    "monitoring": (
        "Off in this template until the first version serves: monitoring compares what a stage serves with "
        "the served version's baselines, which exist only once a version is released, and its alarms would "
        "email the owners about an empty endpoint. Data capture is on in both stages already, so there is "
        "history to check when you switch it on. " + ABOVE["monitoring"]
    ),
}


def render(settings: ProjectSettings, *, header: list[str], above: dict[str, str] | None = None) -> str:
    """``settings`` as commented YAML: every field, defaults included, in the models' field order.

    ``above`` adds or replaces comments above keys (the new-team template explains its choices).
    """
    writer = _Writer({**ABOVE, **(above or {})})
    writer.lines.extend(f"# {line}" for line in header)
    writer.fields(settings, "", 0, item_prefix=None)
    return "\n".join(writer.lines).rstrip() + "\n"


class _Writer:
    """Writes YAML lines; a comment beside a field of list items appears at its first item only."""

    def __init__(self, above: dict[str, str]) -> None:
        self.above = above
        self.lines: list[str] = []
        self.commented: set[str] = set()

    def fields(self, model: BaseModel, path: str, indent: int, *, item_prefix: str | None) -> None:
        pad = " " * indent
        for i, name in enumerate(_written(model)):
            value = getattr(model, name)
            key = f"{path}.{name}" if path else name
            lead = item_prefix if item_prefix is not None and i == 0 else pad
            above = _lookup(self.above, key)
            if above is None and indent == 0 and isinstance(value, BaseModel):
                above = _first_paragraph(type(value).__doc__)  # a section without its own comment: its docstring
            if above and key not in self.commented:
                if indent == 0:
                    self.lines.append("")
                self.lines.extend(f"{pad}# {line}" for line in textwrap.wrap(above, WRAP - indent - 2))
            beside = None if key in self.commented else _lookup(BESIDE, key)
            self.commented.add(key)
            if isinstance(value, BaseModel):
                flow = _flow_model(value)
                if flow is not None and len(lead) + len(name) + len(flow) + 2 <= FLOW_WIDTH:
                    self.line(f"{lead}{name}: {flow}", beside)
                else:
                    self.line(f"{lead}{name}:", beside)
                    self.fields(value, key, len(lead) + 2, item_prefix=None)
            elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
                self.line(f"{lead}{name}:", beside)
                item_note = _lookup(BESIDE, f"{key}[]")
                item_lead = " " * (len(lead) + 2) + "- "
                for item in value:
                    flow = _flow_model(item)
                    if flow is not None and len(item_lead) + len(flow) <= FLOW_WIDTH:
                        self.line(f"{item_lead}{flow}", item_note)
                    else:
                        if item_note:
                            self.lines.append(f"{' ' * (len(lead) + 2)}# {item_note}")
                        self.fields(item, key, len(item_lead), item_prefix=item_lead)
            else:
                self.line(f"{lead}{name}: {_scalar(value)}", beside)

    def line(self, line: str, comment: str | None) -> None:
        """``line   # comment``, or the comment on a line of its own above when both would not fit."""
        if comment and len(line) + len(comment) + 5 > WRAP + 20:
            self.lines.append(f"{' ' * (len(line) - len(line.lstrip(' -')))}# {comment}")
            self.lines.append(line)
        else:
            self.lines.append(f"{line}   # {comment}" if comment else line)


def _written(model: BaseModel) -> list[str]:
    """The fields to write: all of them, but a serverless variant has no instance settings."""
    names = list(type(model).model_fields)
    if isinstance(model, Variant) and model.serverless is not None:
        names = [n for n in names if n not in ("instance_type", "instance_count", "autoscaling")]
    return names


def _flow_model(model: BaseModel) -> str | None:
    """``{a: 1, b: x}`` when every written field is a plain value, else None."""
    values = {}
    for name in _written(model):
        value = getattr(model, name)
        if isinstance(value, BaseModel) or (isinstance(value, list) and any(isinstance(v, BaseModel) for v in value)):
            return None
        values[name] = value
    # Dumped as one mapping so that values are quoted for flow context ('cron(0 3 ? * SUN *)').
    return _scalar(type(model).model_validate(values).model_dump(mode="json", include=set(values)))


def _scalar(value: Any) -> str:
    """One YAML value on one line (flow style for lists and mappings)."""
    if isinstance(value, str) and not value.isprintable():
        return json.dumps(value)  # a double-quoted YAML scalar on one line, newlines escaped
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10**6, allow_unicode=True)
    return text.strip().removesuffix("\n...")


def _lookup(table: dict[str, str], key: str) -> str | None:
    if key in table:
        return table[key]
    for stage in SERVING_STAGES:
        if key.startswith(f"serving.{stage}."):
            return table.get(key.replace(f"serving.{stage}.", "serving.*.", 1))
    return None


def _first_paragraph(doc: str | None) -> str | None:
    if not doc:
        return None
    return " ".join(doc.strip().split("\n\n")[0].split())


# --------------------------------------------------------------------------- output


def placeholders(settings: ProjectSettings) -> list[str]:
    """The fields (lists without indices) whose value is still a placeholder, in file order."""
    found: list[str] = []

    def walk(value: Any, field: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{field}.{key}" if field else str(key))
        elif isinstance(value, list):
            for item in value:
                walk(item, field)
        elif isinstance(value, str) and PLACEHOLDER in value and field not in found:
            found.append(field)

    walk(settings.model_dump(mode="json"), "")
    return found


def report(created: NewProject) -> list[str]:
    """What the command prints: the file, what to edit, the stacks per account role, the next step."""
    count = f"{created.projects} project{'s' if created.projects > 1 else ''}"
    lines = [f"wrote {_rel(created.path)}: project {created.settings.name}, checked with the whole config ({count})"]
    for sub in created.substitutions:
        lines.append(f"  {sub.field}: {sub.old} -> {sub.new}")
    edit = placeholders(created.settings)
    if edit:
        lines.append(f"edit before deploying (marked EDIT): {', '.join(edit)}")
    lines.append("stacks it adds per account role:")
    width = max(len(role) for role in created.stacks)
    for role, stacks in created.stacks.items():
        account = created.platform.accounts.of(role).id
        lines.append(f"  {role:<{width}} ({account}): {', '.join(stacks) if stacks else 'none'}")
    lines.append("next: edit the file, then `make synth`")
    return lines
