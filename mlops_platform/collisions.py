"""The AWS (and CDK) names a project's stacks create, and whether two projects would share one.

Every project-scoped name is ``<prefix>-<project>-<rest>`` or, for Studio user
profiles, ``<project>-<user>``, so a project whose name is a hyphen-prefix of
another's can produce the same name from a different rest: project ``churn``
with feature group ``eu-customers`` and project ``churn-eu`` with feature group
``customers`` would both create ``mlops-churn-eu-customers``. Being a prefix is
not a clash by itself (``churn`` and ``churn-eu`` coexist as long as no name
comes out equal), so the check compares the concrete names both projects
produce, per kind of resource.

Kinds are compared without regard to the account: single-account mode puts
every role in one account, and a platform may switch to it later. Names a
switch can bring (monitoring of either stage with either engine, a Studio
workspace in any workload account, the retraining trigger) count whether or
not the switch is on, so turning one on later cannot create a clash.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops_platform.config import SERVING_STAGES, PlatformSettings, ProjectSettings
from mlops_platform.naming import Naming
from mlops_platform.stack_plan import construct_id, project_stacks

# Roles the stacks name (naming.role_name) per account role: governance approval handlers
# (stacks/governance.py) and approver, Studio personas (stacks/components/personas.py),
# the dev pipeline (stacks/build.py), the serving stage's model, verify and monitor roles.
ROLE_PURPOSES: dict[str, tuple[str, ...]] = {
    "governance": ("notify", "guard", "rejected", "approver", "canvas-register"),
    "dev": ("pipeline", "scientist", "lead"),
    "staging": ("model", "verify", "monitor", "scientist", "lead"),
    "prod": ("model", "verify", "monitor", "scientist", "lead"),
}
APPROVAL_HANDLERS = ("notify", "guard", "rejected")
# Model Monitor schedules (stacks/components/monitoring.py), one per monitoring type.
MONITORING_SCHEDULES = ("data-quality", "model-quality", "model-bias", "model-explainability")
STACK_ID_PARTS = ("Registry", "Approval", "Workspace", "Features", "Build", "Serving")


@dataclass(frozen=True)
class ResourceName:
    """One name a project's stacks create.

    ``kind`` is the namespace the name must be unique in; ``source`` is the
    project field it comes from, with its value where that is not the project
    name. ``prefix``: the name is matched as a prefix (an EventBridge or
    retraining filter on alarm names), so a longer name starting with it clashes too.
    """

    kind: str
    name: str
    source: str = "name"
    prefix: bool = False


@dataclass(frozen=True)
class Collision:
    """A name two projects would both create (or that one's prefix filter would catch)."""

    kind: str
    name: str
    other_name: str
    source: str
    other_source: str
    prefix: bool


def resource_names(platform: PlatformSettings, project: ProjectSettings) -> list[ResourceName]:
    """Every name ``project``'s stacks create or may create (see the module docstring), in a fixed order."""
    naming = Naming(platform)
    p, x = project.name, naming.prefix
    names: list[ResourceName] = []

    def add(kind: str, name: str, source: str = "name", prefix: bool = False) -> None:
        names.append(ResourceName(kind, name, source, prefix))

    for stacks in project_stacks(platform, project).values():
        for stack in stacks:
            add("CloudFormation stack", stack)
    for part in STACK_ID_PARTS:
        add("CDK stack id", f"{construct_id(p)}{part}")
    for role, purposes in ROLE_PURPOSES.items():
        for purpose in purposes:
            add("IAM role", naming.role_name(p, role, purpose))
    add("SageMaker model package group", naming.model_package_group(p))
    add("SageMaker pipeline", naming.pipeline_name(p))
    add("Athena workgroup", naming.athena_workgroup(p))
    add("SQS queue", naming.approval_dead_letter_queue(p))
    for kind in APPROVAL_HANDLERS:
        add("Lambda function", f"{x}-{p}-approval-{kind}")
    add("Lambda function", naming.retrain_function(p))
    for stage in SERVING_STAGES:
        add("SageMaker endpoint", naming.endpoint_name(p, stage))
        add("CloudWatch dashboard", naming.endpoint_name(p, stage))  # the endpoint's, named after it
        add("SageMaker pipeline", naming.drift_pipeline_name(p, stage))
        for schedule in MONITORING_SCHEDULES:
            add("SageMaker monitoring schedule", f"{x}-{p}-{stage}-{schedule}")
        add("CloudWatch alarm", naming.monitoring_alarm_prefix(p, stage), prefix=True)
    for i, group in enumerate(project.features.feature_groups):
        source = f"features.feature_groups[{i}].name '{group.name}'"
        add("SageMaker feature group", naming.feature_group_name(p, group.name), source)
        # The compaction Lambda; past 64 characters the stack shortens it with a hash of this
        # full name, so two shortened names are equal exactly when the full ones are.
        add("Lambda function", f"{naming.feature_group_name(p, group.name)}-compact", source)
    for i, member in enumerate(project.members):
        add("Studio user profile", naming.user_profile_name(p, member.user), f"members[{i}].user '{member.user}'")
    return names


def collision(platform: PlatformSettings, a: ProjectSettings, b: ProjectSettings) -> Collision | None:
    """The first name ``a`` and ``b`` would share (None if they share none); ``name``/``source`` are ``a``'s."""
    theirs: dict[str, list[ResourceName]] = {}
    for item in resource_names(platform, b):
        theirs.setdefault(item.kind, []).append(item)
    for mine in resource_names(platform, a):
        for other in theirs.get(mine.kind, ()):
            if mine.prefix or other.prefix:
                clash = mine.name.startswith(other.name) or other.name.startswith(mine.name)
            else:
                clash = mine.name == other.name
            if clash:
                prefix = mine.prefix or other.prefix
                return Collision(mine.kind, mine.name, other.name, mine.source, other.source, prefix)
    return None


def describe(found: Collision, project: str, other: str, other_file: str) -> str:
    """One line: which name ``project`` would share with ``other`` (defined in ``other_file``) and what to do."""
    if found.prefix:
        what = (
            f"the {found.kind} names of project '{project}' (starting '{found.name}') and of project '{other}' "
            f"({other_file}, starting '{found.other_name}') overlap, so one project's alarm filters would "
            "catch the other's alarms"
        )
    else:
        what = (
            f"project '{project}' would create the {found.kind} '{found.name}', which project '{other}' "
            f"({other_file}) creates too"
        )
    where = f"{project}: {_shown(found.source)}; {other}: {_shown(found.other_source)}"
    return f"{what} ({where}); each name must be unique: rename a project or the entry named"


def _shown(source: str) -> str:
    return "its project name" if source == "name" else source


def first_collision(
    platform: PlatformSettings, project: ProjectSettings, others: list[ProjectSettings]
) -> tuple[ProjectSettings, Collision] | None:
    """The first of ``others`` that ``project`` shares a name with, and the name; None if there is none."""
    for other in others:
        if other.name == project.name:
            continue
        found = collision(platform, project, other)
        if found is not None:
            return other, found
    return None
