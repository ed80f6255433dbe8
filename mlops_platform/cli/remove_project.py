"""``mlops remove-project NAME``: what a removed project left deployed, deleted in the order AWS requires.

Three parts, so each can be tested alone:

* :func:`discover` makes read-only calls in every account role and returns an
  :class:`Inventory` of what exists. It needs only the platform config (account
  ids, Studio accounts, prefix): the project's own file may be gone. Names come
  from :class:`~mlops_platform.naming.Naming`; whatever is found by listing
  (user profiles, feature groups, leftover endpoint configs and models) counts
  only when its tags say ``mlops:project`` = NAME (and ``mlops:platform`` =
  prefix, and for serving resources ``mlops:stage`` = the stage), because a
  name prefix cannot tell project ``churn`` from ``churn-eu``.
* :func:`plan` turns an inventory into an ordered list of :class:`Step` and a
  list of :class:`Retained` things; it is pure.
* :func:`execute` walks the steps, waits where AWS requires it and stops at the
  first failure (:class:`StepFailed`). Every step is idempotent: what is gone
  already counts as done, so running again re-plans from what exists and
  carries on where the last run stopped.

Order (account roles staging, prod, dev, governance):

1. per serving stage: monitoring schedules (SageMaker refuses to delete an
   endpoint that schedules still monitor), the endpoint, then its endpoint
   configs and models, the schedules' job definitions, the drift pipeline,
   then the serving stack;
2. dev: the build pipeline (its running executions stopped first), the build stack;
3. each Studio account: apps (before their spaces), spaces, the project's user
   profiles (RETAIN in CloudFormation), then the workspace stack, which
   deletes the persona roles (a persona role whose stack is gone is deleted directly);
4. dev: feature groups (RETAIN; their offline data stays), then the features
   stack (termination protection lifted first);
5. governance: the approval stack; with ``delete_models`` the model packages,
   their group (RETAIN), the project's release records and the registry stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import TypeAdapter, ValidationError

from mlops_platform.approval.aws import error_code
from mlops_platform.approval.releases import STAGES as RELEASE_STAGES
from mlops_platform.approval.releases import release_pk, rollback_pk
from mlops_platform.cli.core import CliError, Context
from mlops_platform.config import SERVING_STAGES, ProjectName
from mlops_platform.naming import PROJECT_TAG, STAGE_TAG, Naming

# The order account roles are emptied in: serving first (it uses the registry's versions), governance last.
ROLE_ORDER = ("staging", "prod", "dev", "governance")
PERSONA_PURPOSES = ("scientist", "lead")  # stacks/components/personas.py
SCHEDULE_KINDS = ("data-quality", "model-quality")  # stacks/components/monitoring.py
PLATFORM_TAG, ROLE_TAG = "mlops:platform", STAGE_TAG
POLL_SECONDS = 15.0
DEFAULT_WAIT_MINUTES = 60
CLIENT_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)

DELETE_SCHEDULE = "delete-monitoring-schedule"
DELETE_ENDPOINT = "delete-endpoint"
DELETE_ENDPOINT_CONFIG = "delete-endpoint-config"
DELETE_MODEL = "delete-model"
DELETE_JOB_DEFINITION = "delete-job-definition"
DELETE_PIPELINE = "delete-pipeline"
DELETE_APP = "delete-app"
DELETE_SPACE = "delete-space"
DELETE_USER_PROFILE = "delete-user-profile"
DELETE_ROLE = "delete-role"
DELETE_FEATURE_GROUP = "delete-feature-group"
UNPROTECT_STACK = "disable-termination-protection"
DELETE_STACK = "delete-stack"
DELETE_MODEL_PACKAGE = "delete-model-package"
DELETE_MODEL_PACKAGE_GROUP = "delete-model-package-group"
DELETE_RELEASE_RECORDS = "delete-release-records"

DELETED, GONE = "deleted", "already gone"
_MISSING_CODES = {"ResourceNotFound", "ResourceNotFoundException", "NoSuchEntity", "NotFoundException"}
_JOB_DEFINITION_DELETES = {
    "DataQuality": "delete_data_quality_job_definition",
    "ModelQuality": "delete_model_quality_job_definition",
    "ModelBias": "delete_model_bias_job_definition",
    "ModelExplainability": "delete_model_explainability_job_definition",
}
_STOPPABLE = ("Executing",)
_RUNNING = ("Executing", "Stopping")
_PROJECT_NAME = TypeAdapter(ProjectName)


# --------------------------------------------------------------------------- clients


class AccountClients:
    """The clients of one account role, each made by ``make(service)`` on first use.

    ``dynamodb`` is used in governance only (the release table), ``iam`` in
    Studio accounts only.
    """

    def __init__(self, make: Callable[[str], Any]) -> None:
        self._make = make
        self._made: dict[str, Any] = {}

    def _get(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self._make(service)
        return self._made[service]

    sagemaker = property(lambda self: self._get("sagemaker"))
    cloudformation = property(lambda self: self._get("cloudformation"))
    iam = property(lambda self: self._get("iam"))
    dynamodb = property(lambda self: self._get("dynamodb"))
    tagging = property(lambda self: self._get("resourcegroupstaggingapi"), doc="Resource Groups Tagging API")


def account_clients(session: Any) -> AccountClients:
    """Clients over a boto3 session, with the CLI's retry settings."""
    return AccountClients(lambda service: session.client(service, config=CLIENT_CONFIG))


# --------------------------------------------------------------------------- plan model


@dataclass(frozen=True)
class Step:
    """One deletion in one account role; ``args`` are what the call needs besides ``resource``."""

    role: str
    action: str
    resource: str
    reason: str
    args: tuple[tuple[str, str], ...] = ()

    def arg(self, name: str) -> str:
        return dict(self.args)[name]

    @property
    def key(self) -> tuple[str, str, str]:
        """What the step deletes, independent of the reason text (resume compares these)."""
        return (self.role, self.action, self.resource)


@dataclass(frozen=True)
class Retained:
    """Something that stays, and why."""

    role: str
    what: str
    reason: str


@dataclass(frozen=True)
class Plan:
    project: str
    steps: list[Step]
    retained: list[Retained]
    delete_models: bool
    configured: str | None = None  # the project's config file, when it is still configured


@dataclass(frozen=True)
class StackState:
    name: str
    status: str
    protected: bool


@dataclass(frozen=True)
class Schedule:
    name: str
    job_definition: str | None
    monitoring_type: str | None


@dataclass(frozen=True)
class Serving:
    """What one serving stage runs for the project."""

    schedules: tuple[Schedule, ...] = ()
    endpoint: str | None = None
    endpoint_configs: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    drift_pipeline: str | None = None


@dataclass(frozen=True)
class App:
    app_type: str
    app_name: str
    owner_kind: str  # "UserProfileName" or "SpaceName"
    owner: str


@dataclass(frozen=True)
class Studio:
    """The project's share of one account's Studio domain."""

    domain_id: str
    apps: tuple[App, ...] = ()
    spaces: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    foreign_profiles: tuple[str, ...] = ()  # named like the project's, not tagged as its


@dataclass(frozen=True)
class Inventory:
    """What exists of one project, per account role."""

    project: str
    stacks: dict[str, StackState] = field(default_factory=dict)  # by stack name
    serving: dict[str, Serving] = field(default_factory=dict)  # by stage
    build_pipeline: str | None = None
    studio: dict[str, Studio] = field(default_factory=dict)  # by account role with a domain
    persona_roles: dict[str, tuple[str, ...]] = field(default_factory=dict)  # existing, tagged, by account role
    feature_groups: tuple[str, ...] = ()
    model_packages: tuple[str, ...] = ()
    model_package_group: str | None = None
    release_records: int = 0


def stack_parts(naming: Naming, role: str) -> tuple[str, ...]:
    """The project's stack parts in ``role``, in deletion order (stacks/platform.py creates them the other way)."""
    parts: list[str] = []
    if role in SERVING_STAGES:
        parts.append("serving")
    if role == "dev":
        parts += ["build", "features"]
    if role in naming.platform.studio.accounts:
        parts.append("workspace")
    if role == "governance":
        parts += ["approval", "registry"]
    return tuple(parts)


def check_name(project: str) -> str:
    """``project`` if it is a valid project name, else CliError (exit 2)."""
    try:
        return str(_PROJECT_NAME.validate_python(project))
    except ValidationError:
        raise CliError(
            f"invalid project name '{project}': 2-20 characters, lowercase letters and digits in hyphen-separated "
            "words, starting with a letter"
        ) from None


# --------------------------------------------------------------------------- discovery


def _missing(err: ClientError) -> bool:
    """NotFound / ResourceNotFound / NoSuchEntity, or a ValidationException saying it does not exist."""
    code = error_code(err)
    if code in _MISSING_CODES:
        return True
    message = str(err.response.get("Error", {}).get("Message", "")).lower()
    return code in ("ValidationException", "ValidationError") and any(
        words in message for words in ("does not exist", "not found", "could not find", "cannot find")
    )


def _get(call: Callable[..., Any], **kwargs: Any) -> Any:
    """The call's answer, or None when what it asks for does not exist."""
    try:
        return call(**kwargs)
    except ClientError as err:
        if _missing(err):
            return None
        raise


def _pages(call: Callable[..., Any], key: str, **kwargs: Any) -> Iterator[Any]:
    while True:
        page = call(**kwargs)
        yield from page.get(key, [])
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def _tags(sagemaker: Any, arn: str) -> dict[str, str]:
    answer = _get(sagemaker.list_tags, ResourceArn=arn)
    return {t["Key"]: t["Value"] for t in (answer or {}).get("Tags", [])}


def _ours(tags: Mapping[str, str], naming: Naming, project: str, role: str | None = None) -> bool:
    """Tagged as this platform's ``project`` (and account role): names alone cannot tell churn from churn-eu."""
    if tags.get(PROJECT_TAG) != project or tags.get(PLATFORM_TAG, naming.prefix) != naming.prefix:
        return False
    return role is None or tags.get(ROLE_TAG, role) == role


def discover(clients: Mapping[str, AccountClients], naming: Naming, project: str) -> Inventory:
    """Everything of ``project`` that exists, per account role (read-only calls only)."""
    check_name(project)
    stacks: dict[str, StackState] = {}
    for role in ROLE_ORDER:
        for part in stack_parts(naming, role):
            state = _stack(clients[role].cloudformation, naming.stack_name(role, part, project))
            if state is not None:
                stacks[state.name] = state
    serving = {stage: _serving(clients[stage], naming, project, stage) for stage in SERVING_STAGES}
    studio: dict[str, Studio] = {}
    personas: dict[str, tuple[str, ...]] = {}
    for role in naming.platform.studio.accounts:
        found = _studio(clients[role].sagemaker, naming, project, role)
        if found is not None:
            studio[role] = found
        personas[role] = _persona_roles(clients[role].iam, naming, project, role)
    dev = clients["dev"].sagemaker
    build = naming.pipeline_name(project)
    governance = clients["governance"]
    group = naming.model_package_group(project)
    group_found = _get(governance.sagemaker.describe_model_package_group, ModelPackageGroupName=group)
    packages: tuple[str, ...] = ()
    if group_found is not None:
        packages = tuple(
            p["ModelPackageArn"]
            for p in _pages(
                governance.sagemaker.list_model_packages,
                "ModelPackageSummaryList",
                ModelPackageGroupName=group,
                SortBy="CreationTime",
                SortOrder="Ascending",
            )
        )
    return Inventory(
        project=project,
        stacks=stacks,
        serving=serving,
        build_pipeline=build if _get(dev.describe_pipeline, PipelineName=build) else None,
        studio=studio,
        persona_roles=personas,
        feature_groups=_feature_groups(dev, naming, project),
        model_packages=packages,
        model_package_group=group if group_found is not None else None,
        release_records=len(_release_keys(governance.dynamodb, naming, project)),
    )


def _stack(cloudformation: Any, name: str) -> StackState | None:
    answer = _get(cloudformation.describe_stacks, StackName=name)
    stacks = (answer or {}).get("Stacks", [])
    if not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE":
        return None
    stack = stacks[0]
    return StackState(name, stack["StackStatus"], bool(stack.get("EnableTerminationProtection")))


def _tagged_arns(tagging: Any, naming: Naming, project: str, stage: str, kinds: Iterable[str]) -> set[str]:
    """Lower-cased ARNs of the SageMaker ``kinds`` tagged as the project's in ``stage`` (one paginated query)."""
    filters = [
        {"Key": PROJECT_TAG, "Values": [project]},
        {"Key": PLATFORM_TAG, "Values": [naming.prefix]},
        {"Key": ROLE_TAG, "Values": [stage]},
    ]
    kwargs: dict[str, Any] = {"TagFilters": filters, "ResourceTypeFilters": [f"sagemaker:{k}" for k in kinds]}
    arns: set[str] = set()
    while True:
        page = tagging.get_resources(**kwargs)
        arns.update(str(r["ResourceARN"]).lower() for r in page.get("ResourceTagMappingList", []))
        if not page.get("PaginationToken"):
            return arns
        kwargs["PaginationToken"] = page["PaginationToken"]


def _serving(clients: AccountClients, naming: Naming, project: str, stage: str) -> Serving:
    sagemaker = clients.sagemaker
    endpoint = naming.endpoint_name(project, stage)
    described = _get(sagemaker.describe_endpoint, EndpointName=endpoint)
    configs: list[str] = []
    models: list[str] = []

    def add_config(name: str) -> None:
        config = _get(sagemaker.describe_endpoint_config, EndpointConfigName=name)
        if config is None or name in configs:
            return
        configs.append(name)
        for variant in [*config.get("ProductionVariants", []), *config.get("ShadowProductionVariants", [])]:
            if variant.get("ModelName") and variant["ModelName"] not in models:
                models.append(variant["ModelName"])

    if described is not None:
        add_config(described["EndpointConfigName"])
    # Configs and models of earlier releases, or of a deploy that failed half-way, carry the project's tags.
    # SageMaker ARNs lower-case the name, so the listings give the names to delete.
    tagged = _tagged_arns(clients.tagging, naming, project, stage, ("endpoint-config", "model"))
    if tagged:
        for summary in _pages(sagemaker.list_endpoint_configs, "EndpointConfigs", SortBy="CreationTime"):
            if summary["EndpointConfigArn"].lower() in tagged:
                add_config(summary["EndpointConfigName"])
        for summary in _pages(sagemaker.list_models, "Models", SortBy="CreationTime"):
            if summary["ModelArn"].lower() in tagged and summary["ModelName"] not in models:
                models.append(summary["ModelName"])

    names = [f"{naming.prefix}-{project}-{stage}-{kind}" for kind in SCHEDULE_KINDS]
    if described is not None:
        # Any other schedule on the endpoint would block its deletion just the same.
        listed = _pages(sagemaker.list_monitoring_schedules, "MonitoringScheduleSummaries", EndpointName=endpoint)
        names += [s["MonitoringScheduleName"] for s in listed if s["MonitoringScheduleName"] not in names]
    schedules = []
    for name in names:
        schedule = _get(sagemaker.describe_monitoring_schedule, MonitoringScheduleName=name)
        if schedule is None:
            continue
        config = schedule.get("MonitoringScheduleConfig", {})
        schedules.append(Schedule(name, config.get("MonitoringJobDefinitionName"), config.get("MonitoringType")))
    drift = naming.drift_pipeline_name(project, stage)
    return Serving(
        schedules=tuple(schedules),
        endpoint=endpoint if described is not None else None,
        endpoint_configs=tuple(configs),
        models=tuple(models),
        drift_pipeline=drift if _get(sagemaker.describe_pipeline, PipelineName=drift) else None,
    )


def _studio(sagemaker: Any, naming: Naming, project: str, role: str) -> Studio | None:
    domain_name = naming.studio_domain_name(role)
    domain_id = next(
        (d["DomainId"] for d in _pages(sagemaker.list_domains, "Domains") if d["DomainName"] == domain_name), None
    )
    if domain_id is None:
        return None
    # user_profile_name is "<project>-<user>": "churn-" also starts churn-eu's profiles, so the tag decides.
    start = naming.user_profile_name(project, "")
    profiles, foreign = [], []
    for summary in _pages(
        sagemaker.list_user_profiles, "UserProfiles", DomainIdEquals=domain_id, UserProfileNameContains=start
    ):
        name = summary["UserProfileName"]
        if not name.startswith(start) or summary.get("Status") == "Deleted":
            continue
        described = _get(sagemaker.describe_user_profile, DomainId=domain_id, UserProfileName=name)
        if described is None:
            continue
        tags = _tags(sagemaker, described["UserProfileArn"])
        if _ours(tags, naming, project):
            profiles.append(name)
        elif PROJECT_TAG not in tags:
            foreign.append(name)
    spaces = [
        s["SpaceName"]
        for s in _pages(sagemaker.list_spaces, "Spaces", DomainIdEquals=domain_id)
        if s.get("OwnershipSettingsSummary", {}).get("OwnerUserProfileName") in profiles
        and s.get("Status") != "Deleted"
    ]
    apps = []
    for app in _pages(sagemaker.list_apps, "Apps", DomainIdEquals=domain_id):
        if app.get("Status") == "Deleted":
            continue
        if app.get("SpaceName") in spaces:
            apps.append(App(app["AppType"], app["AppName"], "SpaceName", app["SpaceName"]))
        elif app.get("UserProfileName") in profiles:
            apps.append(App(app["AppType"], app["AppName"], "UserProfileName", app["UserProfileName"]))
    return Studio(domain_id, tuple(apps), tuple(spaces), tuple(profiles), tuple(foreign))


def _persona_roles(iam: Any, naming: Naming, project: str, role: str) -> tuple[str, ...]:
    found = []
    for purpose in PERSONA_PURPOSES:
        name = naming.role_name(project, role, purpose)
        if _get(iam.get_role, RoleName=name) is None:
            continue
        tags = {t["Key"]: t["Value"] for t in _get(iam.list_role_tags, RoleName=name).get("Tags", [])}
        if _ours(tags, naming, project):
            found.append(name)
    return tuple(found)


def _feature_groups(sagemaker: Any, naming: Naming, project: str) -> tuple[str, ...]:
    # feature_group_name is "<prefix>-<project>-<group>": the prefix also matches churn-eu's groups.
    start = naming.feature_group_name(project, "")
    found = []
    for summary in _pages(sagemaker.list_feature_groups, "FeatureGroupSummaries", NameContains=start):
        name = summary["FeatureGroupName"]
        if not name.startswith(start) or summary.get("FeatureGroupStatus") == "Deleted":
            continue
        if _ours(_tags(sagemaker, summary["FeatureGroupArn"]), naming, project):
            found.append(name)
    return tuple(sorted(found))


def _release_keys(dynamodb: Any, naming: Naming, project: str) -> list[dict[str, Any]]:
    keys: list[dict[str, Any]] = []
    for stage in RELEASE_STAGES:
        for pk in (release_pk(project, stage), rollback_pk(project, stage)):
            kwargs: dict[str, Any] = {
                "TableName": naming.releases_table(),
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": pk}},
                "ProjectionExpression": "pk, sk",
            }
            while True:
                answer = _get(dynamodb.query, **kwargs)
                if answer is None:  # no table: nothing recorded
                    return keys
                keys += answer.get("Items", [])
                if not answer.get("LastEvaluatedKey"):
                    break
                kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
    return keys


# --------------------------------------------------------------------------- planning


def plan(naming: Naming, inventory: Inventory, *, delete_models: bool, configured: str | None = None) -> Plan:
    """The ordered steps that delete ``inventory`` and what stays (pure: no AWS calls)."""
    project = inventory.project
    steps: list[Step] = []

    def stack(role: str, part: str, covers: str) -> None:
        state = inventory.stacks.get(naming.stack_name(role, part, project))
        if state is None:
            return
        if state.protected:
            steps.append(Step(role, UNPROTECT_STACK, state.name, "termination protection blocks DeleteStack"))
        steps.append(Step(role, DELETE_STACK, state.name, f"{covers}; waits for DELETE_COMPLETE"))

    for role in ROLE_ORDER:
        if role in SERVING_STAGES:
            _serving_steps(steps, role, inventory.serving.get(role, Serving()))
            stack(role, "serving", "model, verify and monitoring roles, alarms, topic, autoscaling")
        if role == "dev" and inventory.build_pipeline:
            steps.append(
                Step(role, DELETE_PIPELINE, inventory.build_pipeline, "build pipeline; running executions stop first")
            )
        if role == "dev":
            stack(role, "build", "pipeline role, retraining trigger, Athena workgroup, compaction")
        if role in naming.platform.studio.accounts:
            _studio_steps(steps, role, inventory.studio.get(role))
            workspace = naming.stack_name(role, "workspace", project)
            personas = inventory.persona_roles.get(role, ())
            if workspace in inventory.stacks:
                names = ", ".join(personas) or "none left"
                stack(role, "workspace", f"persona roles ({names}); its user profiles are RETAIN, deleted above")
            else:
                for name in personas:
                    steps.append(Step(role, DELETE_ROLE, name, "persona role whose workspace stack is gone"))
        if role == "dev":
            for name in inventory.feature_groups:
                steps.append(
                    Step(role, DELETE_FEATURE_GROUP, name, "RETAIN in its stack; online store goes, offline data stays")
                )
            stack(role, "features", "offline store role; its feature groups are RETAIN, deleted above")
        if role == "governance":
            stack(role, "approval", "approval handlers, rules, dead-letter queue, approver topic and role")
            if delete_models:
                for arn in inventory.model_packages:
                    steps.append(Step(role, DELETE_MODEL_PACKAGE, arn, "a group is deleted only once it is empty"))
                if inventory.model_package_group:
                    steps.append(
                        Step(role, DELETE_MODEL_PACKAGE_GROUP, inventory.model_package_group, "RETAIN in its stack")
                    )
                if inventory.release_records:
                    steps.append(
                        Step(
                            role,
                            DELETE_RELEASE_RECORDS,
                            naming.releases_table(),
                            f"{inventory.release_records} release/rollback records of {project}: they name "
                            "versions a re-created group would number again",
                            (("Project", project),),
                        )
                    )
                stack(role, "registry", "registry policy; the group is RETAIN, deleted above")
    return Plan(project, steps, retained(naming, inventory, delete_models=delete_models), delete_models, configured)


def _serving_steps(steps: list[Step], stage: str, serving: Serving) -> None:
    for schedule in serving.schedules:
        steps.append(Step(stage, DELETE_SCHEDULE, schedule.name, "before the endpoint it monitors; waits until gone"))
    if serving.endpoint:
        steps.append(Step(stage, DELETE_ENDPOINT, serving.endpoint, "before its configs and models; waits until gone"))
    for name in serving.endpoint_configs:
        steps.append(
            Step(stage, DELETE_ENDPOINT_CONFIG, name, "unnamed by CloudFormation: found from the endpoint/tag")
        )
    for name in serving.models:
        steps.append(Step(stage, DELETE_MODEL, name, "unnamed by CloudFormation: found from the configs/tag"))
    for schedule in serving.schedules:
        if schedule.job_definition and schedule.monitoring_type in _JOB_DEFINITION_DELETES:
            steps.append(
                Step(
                    stage,
                    DELETE_JOB_DEFINITION,
                    schedule.job_definition,
                    f"{schedule.monitoring_type} job definition of {schedule.name}",
                    (("MonitoringType", schedule.monitoring_type),),
                )
            )
    if serving.drift_pipeline:
        steps.append(Step(stage, DELETE_PIPELINE, serving.drift_pipeline, "drift pipeline; running executions stop"))


def _studio_steps(steps: list[Step], role: str, studio: Studio | None) -> None:
    if studio is None:
        return
    domain = (("DomainId", studio.domain_id),)
    for app in studio.apps:
        steps.append(
            Step(
                role,
                DELETE_APP,
                f"{app.owner}/{app.app_type}/{app.app_name}",
                "apps go before their space or profile; waits until Deleted",
                (*domain, ("AppType", app.app_type), ("AppName", app.app_name), (app.owner_kind, app.owner)),
            )
        )
    for space in studio.spaces:
        steps.append(Step(role, DELETE_SPACE, space, "owned by a project profile; waits until gone", domain))
    for profile in studio.profiles:
        steps.append(
            Step(role, DELETE_USER_PROFILE, profile, "RETAIN in the workspace stack; waits until gone", domain)
        )


def retained(naming: Naming, inventory: Inventory, *, delete_models: bool) -> list[Retained]:
    """What this command leaves in place, and why (pure)."""
    project = inventory.project
    prefix = naming.project_prefix(project)
    kept: list[Retained] = []
    for role in ROLE_ORDER:
        kept.append(
            Retained(
                role,
                f"s3://{naming.artifacts_bucket(role)}/{prefix}/",
                "artifacts, evaluation reports, data capture, monitoring reports: the account's shared, versioned "
                "bucket; delete the prefix by hand once no audit needs it",
            )
        )
    kept.append(
        Retained(
            "dev",
            f"s3://{naming.artifacts_bucket('dev')}/{prefix}/feature-store/ and its Glue tables",
            "offline store data: DeleteFeatureGroup removes the online store only; it is the training data of "
            "every registered version",
        )
    )
    for role, studio in inventory.studio.items():
        kept.append(
            Retained(role, f"home folders on {naming.studio_domain_name(role)}'s EFS", "the domain owns them (RETAIN)")
        )
        for name in studio.foreign_profiles:
            kept.append(
                Retained(
                    role,
                    f"user profile {name}",
                    f"named like {project}'s but not tagged {PROJECT_TAG}={project}: delete it by hand if it is",
                )
            )
    kept.append(
        Retained(
            "all",
            f"KMS keys {naming.key_alias('<role>')}",
            "shared by every project of the account (baseline stacks)",
        )
    )
    kept.append(
        Retained(
            "all",
            f"log groups /aws/lambda/{naming.prefix}-{project}-*",
            "RETAIN, one-year retention; delete them before re-adding a project of this name "
            "(CloudFormation cannot create a log group that exists)",
        )
    )
    kept.append(Retained("governance", f"CloudTrail trail {naming.api_call_trail()}", "audit records never go"))
    if not delete_models:
        reason = "model versions are the audit trail; pass --delete-models"
        kept.append(Retained("governance", f"model package group {naming.model_package_group(project)}", reason))
        kept.append(Retained("governance", naming.stack_name("governance", "registry", project), reason))
        kept.append(
            Retained(
                "governance",
                f"release records of {project} in {naming.releases_table()}",
                "who released which version where; they stay with the group (--delete-models deletes both)",
            )
        )
    return kept


# --------------------------------------------------------------------------- execution


class StepFailed(CliError):
    """A step failed: nothing after it was attempted (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Waiter:
    """Bounded polling: every ``interval`` seconds (default POLL_SECONDS), at most ``limit`` seconds per wait."""

    limit: float = DEFAULT_WAIT_MINUTES * 60.0
    interval: float | None = None
    sleep: Callable[[float], None] | None = None
    clock: Callable[[], float] = time.monotonic

    def until(self, done: Callable[[], bool], what: str) -> None:
        deadline = self.clock() + self.limit
        sleep = self.sleep or time.sleep
        while not done():
            if self.clock() >= deadline:
                raise TimeoutError(f"{what} did not finish within {self.limit / 60:g} minutes")
            sleep(POLL_SECONDS if self.interval is None else self.interval)


def execute(
    run_plan: Plan,
    clients: Mapping[str, AccountClients],
    naming: Naming,
    *,
    waiter: Waiter | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[tuple[Step, str]]:
    """Carry out the steps in order; ``(step, DELETED or GONE)`` per step. StepFailed stops the run."""
    waiter = waiter or Waiter()
    done: list[tuple[Step, str]] = []
    total = len(run_plan.steps)
    for number, step in enumerate(run_plan.steps, 1):
        label = f"[{number}/{total}] {step.role} {step.action} {step.resource}"
        progress(f"{label} ...")
        try:
            outcome = _ACTIONS[step.action](clients[step.role], step, waiter, naming)
        except ClientError as err:
            operation = getattr(err, "operation_name", "request")
            message = " ".join(str(err.response.get("Error", {}).get("Message", err)).split())
            raise StepFailed(
                f"step {number}/{total} failed ({step.role} {step.action} {step.resource}): AWS error in "
                f"{operation}: {error_code(err) or 'Error'}: {message}; nothing after it was attempted, run again "
                "to resume"
            ) from None
        except (BotoCoreError, TimeoutError) as err:
            raise StepFailed(
                f"step {number}/{total} failed ({step.role} {step.action} {step.resource}): "
                f"{' '.join(str(err).split())}; nothing after it was attempted, run again to resume"
            ) from None
        progress(f"{label}: {outcome}")
        done.append((step, outcome))
    return done


def _delete(call: Callable[..., Any], **kwargs: Any) -> str:
    try:
        call(**kwargs)
    except ClientError as err:
        if _missing(err):
            return GONE
        raise
    return DELETED


def _gone(call: Callable[..., Any], statuses: Iterable[str] = (), status_key: str = "", **kwargs: Any) -> bool:
    """Whether the described resource no longer exists (or reports one of the end ``statuses``)."""
    answer = _get(call, **kwargs)
    return answer is None or (bool(status_key) and answer.get(status_key) in tuple(statuses))


def _delete_and_wait(
    waiter: Waiter,
    what: str,
    describe: Callable[..., Any],
    status_key: str,
    delete: Callable[..., Any],
    keys: Mapping[str, str],
) -> str:
    """Delete unless it is gone or being deleted already, then wait until Describe no longer finds it."""
    described = _get(describe, **keys)
    if described is None:
        return GONE
    outcome = DELETED
    if described.get(status_key) != "Deleting":  # a second delete call would be refused
        outcome = _delete(delete, **keys)
    waiter.until(lambda: _gone(describe, **keys), f"deleting {what}")
    return outcome


def _schedule(c: AccountClients, step: Step, waiter: Waiter, _: Naming) -> str:
    sagemaker = c.sagemaker
    return _delete_and_wait(
        waiter,
        f"monitoring schedule {step.resource}",
        sagemaker.describe_monitoring_schedule,
        "MonitoringScheduleStatus",
        sagemaker.delete_monitoring_schedule,
        {"MonitoringScheduleName": step.resource},
    )


def _endpoint(c: AccountClients, step: Step, waiter: Waiter, _: Naming) -> str:
    sagemaker = c.sagemaker
    return _delete_and_wait(
        waiter,
        f"endpoint {step.resource}",
        sagemaker.describe_endpoint,
        "EndpointStatus",
        sagemaker.delete_endpoint,
        {"EndpointName": step.resource},
    )


def _endpoint_config(c: AccountClients, step: Step, _w: Waiter, _n: Naming) -> str:
    return _delete(c.sagemaker.delete_endpoint_config, EndpointConfigName=step.resource)


def _model(c: AccountClients, step: Step, _w: Waiter, _n: Naming) -> str:
    return _delete(c.sagemaker.delete_model, ModelName=step.resource)


def _job_definition(c: AccountClients, step: Step, _w: Waiter, _n: Naming) -> str:
    call = getattr(c.sagemaker, _JOB_DEFINITION_DELETES[step.arg("MonitoringType")])
    return _delete(call, JobDefinitionName=step.resource)


def _pipeline(c: AccountClients, step: Step, waiter: Waiter, _: Naming) -> str:
    sagemaker = c.sagemaker

    def running() -> list[dict[str, Any]]:
        try:
            listed = _pages(
                sagemaker.list_pipeline_executions, "PipelineExecutionSummaries", PipelineName=step.resource
            )
            return [e for e in listed if e.get("PipelineExecutionStatus") in _RUNNING]
        except ClientError as err:
            if _missing(err):
                return []
            raise

    # SageMaker deletes a pipeline only once none of its executions runs.
    for execution in running():
        if execution.get("PipelineExecutionStatus") in _STOPPABLE:
            _delete(sagemaker.stop_pipeline_execution, PipelineExecutionArn=execution["PipelineExecutionArn"])
    waiter.until(lambda: not running(), f"stopping the executions of pipeline {step.resource}")
    return _delete(sagemaker.delete_pipeline, PipelineName=step.resource)


def _owner(step: Step) -> dict[str, str]:
    return {k: v for k, v in step.args if k in ("UserProfileName", "SpaceName")}


def _app(c: AccountClients, step: Step, waiter: Waiter, _: Naming) -> str:
    keys = {"DomainId": step.arg("DomainId"), "AppType": step.arg("AppType"), "AppName": step.arg("AppName")}
    keys.update(_owner(step))
    described = _get(c.sagemaker.describe_app, **keys)
    if described is None or described.get("Status") == "Deleted":
        return GONE
    outcome = DELETED
    if described.get("Status") != "Deleting":
        outcome = _delete(c.sagemaker.delete_app, **keys)
    waiter.until(
        lambda: _gone(c.sagemaker.describe_app, ("Deleted", "Failed"), "Status", **keys),
        f"deleting app {step.resource}",
    )
    return outcome


def _space(c: AccountClients, step: Step, waiter: Waiter, _: Naming) -> str:
    keys = {"DomainId": step.arg("DomainId"), "SpaceName": step.resource}
    sagemaker = c.sagemaker
    return _delete_and_wait(
        waiter, f"space {step.resource}", sagemaker.describe_space, "Status", sagemaker.delete_space, keys
    )


def _user_profile(c: AccountClients, step: Step, waiter: Waiter, _: Naming) -> str:
    keys = {"DomainId": step.arg("DomainId"), "UserProfileName": step.resource}
    sagemaker = c.sagemaker
    return _delete_and_wait(
        waiter,
        f"user profile {step.resource}",
        sagemaker.describe_user_profile,
        "Status",
        sagemaker.delete_user_profile,
        keys,
    )


def _role(c: AccountClients, step: Step, _w: Waiter, _n: Naming) -> str:
    iam, name = c.iam, step.resource
    if _get(iam.get_role, RoleName=name) is None:
        return GONE
    for policy in iam.list_attached_role_policies(RoleName=name).get("AttachedPolicies", []):
        _delete(iam.detach_role_policy, RoleName=name, PolicyArn=policy["PolicyArn"])
    for policy in iam.list_role_policies(RoleName=name).get("PolicyNames", []):
        _delete(iam.delete_role_policy, RoleName=name, PolicyName=policy)
    for profile in iam.list_instance_profiles_for_role(RoleName=name).get("InstanceProfiles", []):
        _delete(
            iam.remove_role_from_instance_profile, RoleName=name, InstanceProfileName=profile["InstanceProfileName"]
        )
    return _delete(iam.delete_role, RoleName=name)


def _feature_group(c: AccountClients, step: Step, waiter: Waiter, _: Naming) -> str:
    sagemaker = c.sagemaker
    return _delete_and_wait(
        waiter,
        f"feature group {step.resource}",
        sagemaker.describe_feature_group,
        "FeatureGroupStatus",
        sagemaker.delete_feature_group,
        {"FeatureGroupName": step.resource},
    )


def _unprotect(c: AccountClients, step: Step, _w: Waiter, _n: Naming) -> str:
    if _stack(c.cloudformation, step.resource) is None:
        return GONE
    c.cloudformation.update_termination_protection(EnableTerminationProtection=False, StackName=step.resource)
    return "termination protection off"


def _delete_stack(c: AccountClients, step: Step, waiter: Waiter, _: Naming) -> str:
    cloudformation = c.cloudformation
    if _stack(cloudformation, step.resource) is None:
        return GONE
    cloudformation.delete_stack(StackName=step.resource)

    def deleted() -> bool:
        state = _stack(cloudformation, step.resource)
        if state is not None and state.status == "DELETE_FAILED":
            answer = cloudformation.describe_stacks(StackName=step.resource)["Stacks"][0]
            raise TimeoutError(f"stack {step.resource} is DELETE_FAILED: {answer.get('StackStatusReason', '')}")
        return state is None

    waiter.until(deleted, f"deleting stack {step.resource}")
    return DELETED


def _model_package(c: AccountClients, step: Step, _w: Waiter, _n: Naming) -> str:
    return _delete(c.sagemaker.delete_model_package, ModelPackageName=step.resource)


def _model_package_group(c: AccountClients, step: Step, _w: Waiter, _n: Naming) -> str:
    return _delete(c.sagemaker.delete_model_package_group, ModelPackageGroupName=step.resource)


def _release_records(c: AccountClients, step: Step, _w: Waiter, naming: Naming) -> str:
    keys = _release_keys(c.dynamodb, naming, step.arg("Project"))
    for key in keys:
        c.dynamodb.delete_item(TableName=step.resource, Key=key)
    return f"{DELETED} {len(keys)}" if keys else GONE


_ACTIONS: dict[str, Callable[[AccountClients, Step, Waiter, Naming], str]] = {
    DELETE_SCHEDULE: _schedule,
    DELETE_ENDPOINT: _endpoint,
    DELETE_ENDPOINT_CONFIG: _endpoint_config,
    DELETE_MODEL: _model,
    DELETE_JOB_DEFINITION: _job_definition,
    DELETE_PIPELINE: _pipeline,
    DELETE_APP: _app,
    DELETE_SPACE: _space,
    DELETE_USER_PROFILE: _user_profile,
    DELETE_ROLE: _role,
    DELETE_FEATURE_GROUP: _feature_group,
    UNPROTECT_STACK: _unprotect,
    DELETE_STACK: _delete_stack,
    DELETE_MODEL_PACKAGE: _model_package,
    DELETE_MODEL_PACKAGE_GROUP: _model_package_group,
    DELETE_RELEASE_RECORDS: _release_records,
}


# --------------------------------------------------------------------------- the command


def refuse_configured(ctx: Context, project: str) -> None:
    """CliError (exit 2) while ``project`` is still configured: the next deploy would recreate what goes.

    First remove the project's file and deploy, so that the account-level
    stacks drop their grants to the project's roles; then carry out the plan.
    """
    if project in ctx.config.projects:
        where = ctx.config.sources.get(project, "config/projects")
        raise CliError(
            f"project {project} is still configured ({where}): remove that file and deploy first, else the "
            "next deploy recreates what this deletes"
        )


def remove_project(
    clients: Mapping[str, AccountClients], ctx: Context, project: str, *, execute_plan: bool, delete_models: bool
) -> Plan:
    """Discover and plan (a configured project may be planned); ``execute_plan``: refuse a configured one."""
    check_name(project)
    if execute_plan:
        refuse_configured(ctx, project)
    configured = ctx.config.sources.get(project, "config/projects") if project in ctx.config.projects else None
    naming = ctx.naming
    return plan(naming, discover(clients, naming, project), delete_models=delete_models, configured=configured)


def render_plan(current: Plan, naming: Naming, *, executing: bool = False) -> list[str]:
    """The plan as text lines: steps per account role in order, then what stays and why."""
    lines = [
        f"remove-project {current.project}: "
        + ("deleting, in this order:" if executing else "plan (nothing is deleted without --execute):")
    ]
    if current.configured:
        lines.append(
            f"  note: {current.project} is still configured ({current.configured}); the next deploy would recreate "
            "its stacks, and --execute is refused until the file is gone"
        )
    if not current.steps:
        lines.append("  nothing of it is deployed: nothing to delete")
    role = None
    width = max((len(s.action) for s in current.steps), default=0)
    for number, step in enumerate(current.steps, 1):
        if step.role != role:
            role = step.role
            lines.append(f"  {role} ({naming.account(role)}, {naming.region(role)}):")
        lines.append(f"    {number:>3}. {step.action:<{width}}  {step.resource}  ({step.reason})")
    lines.append("  retained:")
    for kept in current.retained:
        lines.append(f"    {kept.role:<10} {kept.what}: {kept.reason}")
    return lines
