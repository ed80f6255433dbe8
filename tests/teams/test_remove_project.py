"""``mlops remove-project``: the plan's exact order, what stays, --execute, resume, and churn vs churn-eu.

Four real moto accounts (governance is moto's default account, the others are
reached with STS AssumeRole as the CLI does). moto 5.2.5 has endpoints,
endpoint configs, models, pipelines, model package groups and packages,
domains, data-quality job definitions, CloudFormation create/delete and IAM.
It lacks the rest of what the command calls, which :class:`Gaps` keeps in
memory per account, next to the moto client it wraps:

* Studio user profiles, spaces and apps (list/describe/delete; moto has no
  CreateUserProfile) with SageMaker's order rules: a space goes only without
  running apps, a profile only without apps and spaces;
* monitoring schedules (moto has no CreateMonitoringSchedule); an endpoint
  that a schedule monitors cannot be deleted, nor a job definition in use;
* ListFeatureGroups / DeleteFeatureGroup; DeleteModelPackage /
  DeleteModelPackageGroup (a group goes only once empty);
* CloudFormation UpdateTerminationProtection, and DeleteStack refusing a
  protected stack (moto ignores the protection).

Every faked call is checked against botocore's service model first, so a
request the real API would reject fails here too. What no fake proves: real
deletion times and intermediate states (moto deletes at once; only apps pass
through ``Deleting`` here), and whether CloudFormation's delete of a stack
whose SageMaker resources are already gone completes (moto's CloudFormation
skips ``AWS::SageMaker::*``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters
from moto import mock_aws
from moto.cloudformation.models import cloudformation_backends
from moto.sagemaker.models import sagemaker_backends

from mlops_platform.cli import main
from mlops_platform.cli import remove_project as rp
from mlops_platform.cli.core import Context
from mlops_platform.config import load_config
from tests.aws_env import use_dummy_aws
from tests.moto_governance import create_release_table

REGION = "eu-west-1"
ACCOUNTS = {"governance": "123456789012", "dev": "222222222222", "staging": "333333333333", "prod": "444444444444"}
ROLE_ARNS = {role: f"arn:aws:iam::{account}:role/admin" for role, account in ACCOUNTS.items()}
ROLE_OPTIONS = [arg for role in ("dev", "staging", "prod") for arg in (f"--{role}-role-arn", ROLE_ARNS[role])]
REPO = Path(__file__).resolve().parents[2]
FAST = rp.Waiter(limit=60.0, interval=0.0, sleep=lambda _: None)


# --------------------------------------------------------------------------- the fakes


def _error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@dataclass
class AccountState:
    """What moto cannot hold for one account."""

    account: str
    calls: list[str]  # mutating calls of every account, in order (shared)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {DomainId, tags}
    spaces: dict[str, str] = field(default_factory=dict)  # name -> owner profile
    apps: list[dict[str, Any]] = field(default_factory=list)
    schedules: dict[str, dict[str, str]] = field(default_factory=dict)
    feature_groups: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> tags
    deleted_packages: set[str] = field(default_factory=set)
    deleted_groups: set[str] = field(default_factory=set)
    fail: dict[str, ClientError] = field(default_factory=dict)  # operation -> error, raised once
    stuck_apps: bool = False  # apps stay Deleting


class Gaps:
    """A moto SageMaker client with the operations moto lacks (see the module docstring)."""

    def __init__(self, client: Any, state: AccountState) -> None:
        self._client, self._state = client, state
        self._arn = f"arn:aws:sagemaker:{REGION}:{state.account}"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _check(self, operation: str, params: dict[str, Any], *, mutating: bool = False) -> None:
        validate_parameters(params, self._client.meta.service_model.operation_model(operation).input_shape)
        if mutating:
            self._state.calls.append(f"{operation} {json.dumps(params, sort_keys=True)}")
            if operation in self._state.fail:
                raise self._state.fail.pop(operation)

    # Studio
    def list_user_profiles(self, **params: Any) -> dict[str, Any]:
        self._check("ListUserProfiles", params)
        contains = params.get("UserProfileNameContains", "")
        return {
            "UserProfiles": [
                {"DomainId": p["DomainId"], "UserProfileName": n, "Status": "InService"}
                for n, p in self._state.profiles.items()
                if contains in n and p["DomainId"] == params["DomainIdEquals"]
            ]
        }

    def describe_user_profile(self, **params: Any) -> dict[str, Any]:
        self._check("DescribeUserProfile", params)
        name = params["UserProfileName"]
        if name not in self._state.profiles:
            raise _error("ResourceNotFound", f"User profile {name} does not exist", "DescribeUserProfile")
        return {"UserProfileName": name, "UserProfileArn": f"{self._arn}:user-profile/{params['DomainId']}/{name}"}

    def delete_user_profile(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteUserProfile", params, mutating=True)
        name = params["UserProfileName"]
        if name not in self._state.profiles:
            raise _error("ResourceNotFound", f"User profile {name} does not exist", "DeleteUserProfile")
        if name in self._state.spaces.values() or any(a["UserProfileName"] == name for a in self._live_apps()):
            raise _error("ResourceInUse", f"{name} still has apps or spaces", "DeleteUserProfile")
        del self._state.profiles[name]
        return {}

    def list_spaces(self, **params: Any) -> dict[str, Any]:
        self._check("ListSpaces", params)
        return {
            "Spaces": [
                {"SpaceName": n, "Status": "InService", "OwnershipSettingsSummary": {"OwnerUserProfileName": owner}}
                for n, owner in self._state.spaces.items()
            ]
        }

    def describe_space(self, **params: Any) -> dict[str, Any]:
        self._check("DescribeSpace", params)
        if params["SpaceName"] not in self._state.spaces:
            raise _error("ResourceNotFound", "Space does not exist", "DescribeSpace")
        return {"SpaceName": params["SpaceName"], "Status": "InService"}

    def delete_space(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteSpace", params, mutating=True)
        name = params["SpaceName"]
        if name not in self._state.spaces:
            raise _error("ResourceNotFound", f"Space {name} does not exist", "DeleteSpace")
        if any(a["SpaceName"] == name for a in self._live_apps()):
            raise _error("ResourceInUse", f"space {name} has running apps", "DeleteSpace")
        del self._state.spaces[name]
        return {}

    def _live_apps(self) -> list[dict[str, Any]]:
        return [a for a in self._state.apps if a["Status"] != "Deleted"]

    def _find_app(self, params: dict[str, Any]) -> dict[str, Any] | None:
        for app in self._state.apps:
            if (app["AppType"], app["AppName"]) == (params["AppType"], params["AppName"]) and (
                app["UserProfileName"] == params.get("UserProfileName") and app["SpaceName"] == params.get("SpaceName")
            ):
                return app
        return None

    def list_apps(self, **params: Any) -> dict[str, Any]:
        self._check("ListApps", params)
        return {"Apps": [{k: v for k, v in a.items() if v is not None} for a in self._state.apps]}

    def describe_app(self, **params: Any) -> dict[str, Any]:
        self._check("DescribeApp", params)
        app = self._find_app(params)
        if app is None:
            raise _error("ResourceNotFound", "App does not exist", "DescribeApp")
        answer = dict(app)
        if app["Status"] == "Deleting" and not self._state.stuck_apps:
            app["Status"] = "Deleted"  # the next describe sees it gone: the command must poll
        return answer

    def delete_app(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteApp", params, mutating=True)
        app = self._find_app(params)
        if app is None or app["Status"] == "Deleted":
            raise _error("ResourceNotFound", "App does not exist", "DeleteApp")
        app["Status"] = "Deleting"
        return {}

    # monitoring schedules
    def list_monitoring_schedules(self, **params: Any) -> dict[str, Any]:
        self._check("ListMonitoringSchedules", params)
        return {
            "MonitoringScheduleSummaries": [
                {"MonitoringScheduleName": n, "EndpointName": s["EndpointName"]}
                for n, s in self._state.schedules.items()
                if s["EndpointName"] == params.get("EndpointName", s["EndpointName"])
            ]
        }

    def describe_monitoring_schedule(self, **params: Any) -> dict[str, Any]:
        self._check("DescribeMonitoringSchedule", params)
        schedule = self._state.schedules.get(params["MonitoringScheduleName"])
        if schedule is None:
            raise _error("ResourceNotFound", "Monitoring schedule does not exist", "DescribeMonitoringSchedule")
        return {
            "MonitoringScheduleName": params["MonitoringScheduleName"],
            "MonitoringScheduleConfig": {
                "MonitoringJobDefinitionName": schedule["JobDefinitionName"],
                "MonitoringType": schedule["MonitoringType"],
            },
        }

    def delete_monitoring_schedule(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteMonitoringSchedule", params, mutating=True)
        if self._state.schedules.pop(params["MonitoringScheduleName"], None) is None:
            raise _error("ResourceNotFound", "Monitoring schedule does not exist", "DeleteMonitoringSchedule")
        return {}

    def delete_endpoint(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteEndpoint", params, mutating=True)
        if any(s["EndpointName"] == params["EndpointName"] for s in self._state.schedules.values()):
            raise _error("ValidationException", "the endpoint has monitoring schedules", "DeleteEndpoint")
        return dict(self._client.delete_endpoint(**params))

    def delete_data_quality_job_definition(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteDataQualityJobDefinition", params, mutating=True)
        if any(s["JobDefinitionName"] == params["JobDefinitionName"] for s in self._state.schedules.values()):
            raise _error("ValidationException", "a schedule uses the job definition", "DeleteDataQualityJobDefinition")
        return dict(self._client.delete_data_quality_job_definition(**params))

    # feature groups
    def list_feature_groups(self, **params: Any) -> dict[str, Any]:
        self._check("ListFeatureGroups", params)
        return {
            "FeatureGroupSummaries": [
                {
                    "FeatureGroupName": n,
                    "FeatureGroupArn": f"{self._arn}:feature-group/{n}",
                    "FeatureGroupStatus": "Created",
                }
                for n in self._state.feature_groups
                if params.get("NameContains", "") in n
            ]
        }

    def describe_feature_group(self, **params: Any) -> dict[str, Any]:
        self._check("DescribeFeatureGroup", params)
        if params["FeatureGroupName"] not in self._state.feature_groups:
            raise _error("ResourceNotFound", "Resource Not Found: feature group", "DescribeFeatureGroup")
        return {"FeatureGroupName": params["FeatureGroupName"], "FeatureGroupStatus": "Created"}

    def delete_feature_group(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteFeatureGroup", params, mutating=True)
        if self._state.feature_groups.pop(params["FeatureGroupName"], None) is None:
            raise _error("ResourceNotFound", "Resource Not Found: feature group", "DeleteFeatureGroup")
        return {}

    def list_tags(self, **params: Any) -> dict[str, Any]:
        arn = params["ResourceArn"]
        kind, name = arn.split(":")[-1].split("/", 1)
        if kind == "feature-group" and name in self._state.feature_groups:
            return {"Tags": [{"Key": k, "Value": v} for k, v in self._state.feature_groups[name].items()]}
        if kind == "user-profile":
            profile = self._state.profiles.get(name.split("/", 1)[1], {"tags": {}})
            return {"Tags": [{"Key": k, "Value": v} for k, v in profile["tags"].items()]}
        return dict(self._client.list_tags(**params))

    # registry
    def list_model_packages(self, **params: Any) -> dict[str, Any]:
        answer = dict(self._client.list_model_packages(**params))
        answer["ModelPackageSummaryList"] = [
            p for p in answer["ModelPackageSummaryList"] if p["ModelPackageArn"] not in self._state.deleted_packages
        ]
        return answer

    def describe_model_package_group(self, **params: Any) -> dict[str, Any]:
        if params["ModelPackageGroupName"] in self._state.deleted_groups:
            raise _error("ValidationException", "Model package group does not exist", "DescribeModelPackageGroup")
        return dict(self._client.describe_model_package_group(**params))

    def delete_model_package(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteModelPackage", params, mutating=True)
        self._state.deleted_packages.add(params["ModelPackageName"])
        return {}

    def delete_model_package_group(self, **params: Any) -> dict[str, Any]:
        self._check("DeleteModelPackageGroup", params, mutating=True)
        group = params["ModelPackageGroupName"]
        if group in self._state.deleted_groups:
            raise _error("ValidationException", "Model package group does not exist", "DeleteModelPackageGroup")
        if self.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]:
            raise _error("ConflictException", "the group still holds model packages", "DeleteModelPackageGroup")
        self._state.deleted_groups.add(group)
        return {}


class Tagging:
    """GetResources over moto's SageMaker models and endpoint configs (moto's tagging API has no SageMaker)."""

    def __init__(self, client: Any, state: AccountState) -> None:
        self._client, self._state = client, state

    def get_resources(self, **params: Any) -> dict[str, Any]:
        validate_parameters(params, self._client.meta.service_model.operation_model("GetResources").input_shape)
        backend = sagemaker_backends[self._state.account][REGION]
        kinds: dict[str, dict[str, Any]] = {
            "sagemaker:model": backend._models,
            "sagemaker:endpoint-config": backend.endpoint_configs,
        }
        found = []
        for kind in params["ResourceTypeFilters"]:
            for resource in kinds[kind].values():
                arn = resource.arn if isinstance(resource.arn, str) else resource.arn[0]
                tags = {t["Key"]: t["Value"] for t in resource.tags}
                if all(tags.get(f["Key"]) in f["Values"] for f in params["TagFilters"]):
                    found.append({"ResourceARN": arn, "Tags": resource.tags})
        return {"ResourceTagMappingList": found, "PaginationToken": ""}


class StackGaps:
    """moto's CloudFormation with termination protection that can be lifted and that blocks DeleteStack."""

    def __init__(self, client: Any, state: AccountState) -> None:
        self._client, self._state = client, state

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def _stack(self, name: str) -> Any:
        backend = cloudformation_backends[self._state.account][REGION]
        return next((s for s in backend.stacks.values() if s.name == name), None)

    def update_termination_protection(self, **params: Any) -> dict[str, Any]:
        validate_parameters(
            params, self._client.meta.service_model.operation_model("UpdateTerminationProtection").input_shape
        )
        self._state.calls.append(f"UpdateTerminationProtection {params['StackName']}")
        self._stack(params["StackName"]).enable_termination_protection = params["EnableTerminationProtection"]
        return {}

    def delete_stack(self, **params: Any) -> dict[str, Any]:
        self._state.calls.append(f"DeleteStack {params['StackName']}")
        if "DeleteStack" in self._state.fail:
            raise self._state.fail.pop("DeleteStack")
        stack = self._stack(params["StackName"])
        if stack is not None and stack.enable_termination_protection:
            raise _error(
                "ValidationError", "Stack cannot be deleted while TerminationProtection is enabled", "DeleteStack"
            )
        return dict(self._client.delete_stack(**params))


# --------------------------------------------------------------------------- the world


def session_of(role: str) -> boto3.Session:
    if role == "governance":
        return boto3.Session(region_name=REGION)
    credentials = boto3.client("sts", region_name=REGION).assume_role(RoleArn=ROLE_ARNS[role], RoleSessionName="test")[
        "Credentials"
    ]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def tags(project: str, role: str) -> list[dict[str, str]]:
    return [{"Key": "mlops:project", "Value": project}, {"Key": "mlops:platform", "Value": "mlops"}] + [
        {"Key": "mlops:stage", "Value": role}
    ]


TEMPLATE = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})


@dataclass
class World:
    config_dir: Path
    states: dict[str, AccountState]
    sessions: dict[str, boto3.Session]
    _clients: dict[str, rp.AccountClients] = field(default_factory=dict)
    _plain: dict[tuple[str, str], Any] = field(default_factory=dict)

    def clients(self) -> dict[str, rp.AccountClients]:
        """The command's clients per account role (made once: client creation dominates the run time)."""
        if not self._clients:
            self._clients.update({role: wrap(self.sessions[role], self.states) for role in ACCOUNTS})
        return self._clients

    def client(self, role: str, service: str) -> Any:
        """A plain moto client, for setting up and checking."""
        if (role, service) not in self._plain:
            self._plain[role, service] = self.sessions[role].client(service)
        return self._plain[role, service]

    def calls(self) -> list[str]:
        return list(next(iter(self.states.values())).calls)


def wrap(session: Any, states: dict[str, AccountState]) -> rp.AccountClients:
    """The command's clients over ``session``, SageMaker and CloudFormation with the account's :class:`Gaps`."""
    account: list[str] = []

    def make(service: str) -> Any:
        client = session.client(service)
        if service not in ("sagemaker", "cloudformation", "resourcegroupstaggingapi"):
            return client
        if not account:
            account.append(session.client("sts").get_caller_identity()["Account"])
        fake = {"sagemaker": Gaps, "cloudformation": StackGaps, "resourcegroupstaggingapi": Tagging}[service]
        return fake(client, states[account[0]])

    return rp.AccountClients(make)


def write_config(root: Path, projects: dict[str, Any] | None = None) -> Path:
    config = root / "config"
    (config / "projects").mkdir(parents=True, exist_ok=True)
    platform = {
        "prefix": "mlops",
        "accounts": {role: {"id": account, "region": REGION} for role, account in ACCOUNTS.items()},
        "network": {"vpc_cidrs": {"dev": "10.10.0.0/16", "staging": "10.20.0.0/16", "prod": "10.30.0.0/16"}},
        "studio": {"accounts": ["dev"]},
    }
    (config / "platform.yaml").write_text(yaml.safe_dump(platform))
    for name, body in (projects or {}).items():
        (config / "projects" / f"{name}.yaml").write_text(yaml.safe_dump(body))
    return config


def deploy(world: World, project: str) -> None:
    """What a deployed project leaves: every kind of resource the command deletes, tagged as CDK tags them."""
    for stage in ("staging", "prod"):
        sm, cfn = world.client(stage, "sagemaker"), world.client(stage, "cloudformation")
        models = []
        for name in (f"{project}-{stage}-v1", f"{project}-{stage}-v2", f"{project}-{stage}-old"):
            sm.create_model(
                ModelName=name,
                ExecutionRoleArn=f"arn:aws:iam::{ACCOUNTS[stage]}:role/mlops-{project}-{stage}-model",
                PrimaryContainer={"Image": "123.dkr.ecr.eu-west-1.amazonaws.com/sklearn:1"},
                Tags=tags(project, stage),
            )
            models.append(name)
        config = f"{project}-{stage}-config"
        sm.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {"VariantName": v, "ModelName": m, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
                for v, m in (("champion", models[0]), ("challenger", models[1]))
            ],
            Tags=tags(project, stage),
        )
        endpoint = f"mlops-{project}-{stage}"
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=config, Tags=tags(project, stage))
        cfn.create_stack(StackName=f"mlops-{stage}-{project}-serving", TemplateBody=TEMPLATE)
        if stage == "prod":
            definition = sm.create_data_quality_job_definition(
                JobDefinitionName=f"{project}-prod-dq",
                DataQualityAppSpecification={"ImageUri": "123.dkr.ecr.eu-west-1.amazonaws.com/monitor:1"},
                DataQualityJobInput={"EndpointInput": {"EndpointName": endpoint, "LocalPath": "/opt/ml/input"}},
                DataQualityJobOutputConfig={
                    "MonitoringOutputs": [
                        {"S3Output": {"S3Uri": "s3://b/monitoring", "LocalPath": "/opt/ml/processing/output"}}
                    ]
                },
                JobResources={
                    "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 20}
                },
                RoleArn=f"arn:aws:iam::{ACCOUNTS[stage]}:role/mlops-{project}-prod-monitor",
            )
            assert definition["JobDefinitionArn"]
            world.states[ACCOUNTS[stage]].schedules[f"mlops-{project}-prod-data-quality"] = {
                "EndpointName": endpoint,
                "JobDefinitionName": f"{project}-prod-dq",
                "MonitoringType": "DataQuality",
            }

    state = world.states[ACCOUNTS["dev"]]
    world.client("dev", "sagemaker").create_pipeline(
        PipelineName=f"mlops-{project}",
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
        RoleArn=f"arn:aws:iam::{ACCOUNTS['dev']}:role/mlops-{project}-dev-pipeline",
    )
    cfn = world.client("dev", "cloudformation")
    cfn.create_stack(StackName=f"mlops-dev-{project}-build", TemplateBody=TEMPLATE)
    cfn.create_stack(StackName=f"mlops-dev-{project}-features", TemplateBody=TEMPLATE, EnableTerminationProtection=True)
    cfn.create_stack(StackName=f"mlops-dev-{project}-workspace", TemplateBody=TEMPLATE)
    state.feature_groups[f"mlops-{project}-customers"] = {"mlops:project": project, "mlops:platform": "mlops"}
    domain = studio_domain(world)
    for user in ("alice", "bob"):
        state.profiles[f"{project}-{user}"] = {"DomainId": domain, "tags": {"mlops:project": project}}
    state.spaces[f"{project}-alice-space"] = f"{project}-alice"
    state.apps += [
        {"DomainId": domain, "AppType": "JupyterLab", "AppName": "default", "Status": "InService",
         "SpaceName": f"{project}-alice-space", "UserProfileName": None},
        {"DomainId": domain, "AppType": "JupyterServer", "AppName": "default", "Status": "InService",
         "SpaceName": None, "UserProfileName": f"{project}-bob"},
    ]  # fmt: skip

    sm = world.client("governance", "sagemaker")
    sm.create_model_package_group(ModelPackageGroupName=f"mlops-{project}")
    for _ in range(2):
        sm.create_model_package(
            ModelPackageGroupName=f"mlops-{project}",
            InferenceSpecification={
                "Containers": [{"Image": "123.dkr.ecr.eu-west-1.amazonaws.com/sklearn:1"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelApprovalStatus="Approved",
        )
    cfn = world.client("governance", "cloudformation")
    cfn.create_stack(StackName=f"mlops-governance-{project}-approval", TemplateBody=TEMPLATE)
    cfn.create_stack(
        StackName=f"mlops-governance-{project}-registry", TemplateBody=TEMPLATE, EnableTerminationProtection=True
    )
    world.client("governance", "dynamodb").put_item(
        TableName="mlops-releases",
        Item={"pk": {"S": f"release#{project}#prod"}, "sk": {"S": "0000000001"}, "kind": {"S": "release"}},
    )


def studio_domain(world: World) -> str:
    sm = world.client("dev", "sagemaker")
    for domain in sm.list_domains()["Domains"]:
        if domain["DomainName"] == "mlops-dev":
            return str(domain["DomainId"])
    return str(
        sm.create_domain(
            DomainName="mlops-dev",
            AuthMode="IAM",
            DefaultUserSettings={"ExecutionRole": f"arn:aws:iam::{ACCOUNTS['dev']}:role/studio"},
            SubnetIds=["subnet-1"],
            VpcId="vpc-1",
        )["DomainArn"].rsplit("/", 1)[1]
    )


# Each test gets projects of its own in one moto world, built once: building it is most of the run time.
READ_ONLY = ("churn", "churn-eu")  # only planned
EXECUTED = ("fraud", "fraud-eu")  # fraud is executed; fraud-eu must survive it
BY_CLI = "clv"  # executed from the command line, failing once


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Every project above deployed everywhere; none is in config any more (their files were removed)."""
    root = tmp_path_factory.mktemp("remove-project")
    with pytest.MonkeyPatch.context() as patch:
        use_dummy_aws(patch, root, REGION)
        with mock_aws():
            log: list[str] = []
            states = {account: AccountState(account, log) for account in ACCOUNTS.values()}
            sessions = {role: session_of(role) for role in ACCOUNTS}
            created = World(write_config(root), states, sessions)
            create_release_table(created.client("governance", "dynamodb"), "mlops-releases")
            for project in (*READ_ONLY, *EXECUTED, BY_CLI):
                deploy(created, project)
            # Named like churn's but made by hand: not provably churn's, so listed as retained, never deleted.
            states[ACCOUNTS["dev"]].profiles["churn-carol"] = {"DomainId": studio_domain(created), "tags": {}}
            patch.setattr(rp, "account_clients", lambda session: wrap(session, states))
            patch.setattr(rp, "POLL_SECONDS", 0.0)
            yield created


def ctx_of(world: World) -> Context:
    return Context(load_config(world.config_dir))


def plan_of(world: World, project: str = "churn", *, delete_models: bool = False) -> rp.Plan:
    ctx = ctx_of(world)
    return rp.remove_project(world.clients(), ctx, project, execute_plan=True, delete_models=delete_models)


def keys(plan: rp.Plan) -> list[tuple[str, str, str]]:
    return [step.key for step in plan.steps]


def expected(project: str = "churn", *, delete_models: bool = False) -> list[tuple[str, str, str]]:
    steps: list[tuple[str, str, str]] = []
    for stage in ("staging", "prod"):
        if stage == "prod":
            steps.append((stage, rp.DELETE_SCHEDULE, f"mlops-{project}-prod-data-quality"))
        steps += [
            (stage, rp.DELETE_ENDPOINT, f"mlops-{project}-{stage}"),
            (stage, rp.DELETE_ENDPOINT_CONFIG, f"{project}-{stage}-config"),
            (stage, rp.DELETE_MODEL, f"{project}-{stage}-v1"),
            (stage, rp.DELETE_MODEL, f"{project}-{stage}-v2"),
            (stage, rp.DELETE_MODEL, f"{project}-{stage}-old"),  # an earlier release's, found by its tags
        ]
        if stage == "prod":
            steps.append((stage, rp.DELETE_JOB_DEFINITION, f"{project}-prod-dq"))
        steps.append((stage, rp.DELETE_STACK, f"mlops-{stage}-{project}-serving"))
    steps += [
        ("dev", rp.DELETE_PIPELINE, f"mlops-{project}"),
        ("dev", rp.DELETE_STACK, f"mlops-dev-{project}-build"),
        ("dev", rp.DELETE_APP, f"{project}-alice-space/JupyterLab/default"),
        ("dev", rp.DELETE_APP, f"{project}-bob/JupyterServer/default"),
        ("dev", rp.DELETE_SPACE, f"{project}-alice-space"),
        ("dev", rp.DELETE_USER_PROFILE, f"{project}-alice"),
        ("dev", rp.DELETE_USER_PROFILE, f"{project}-bob"),
        ("dev", rp.DELETE_STACK, f"mlops-dev-{project}-workspace"),
        ("dev", rp.DELETE_FEATURE_GROUP, f"mlops-{project}-customers"),
        ("dev", rp.UNPROTECT_STACK, f"mlops-dev-{project}-features"),
        ("dev", rp.DELETE_STACK, f"mlops-dev-{project}-features"),
        ("governance", rp.DELETE_STACK, f"mlops-governance-{project}-approval"),
    ]
    if delete_models:
        group = f"mlops-{project}"
        arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNTS['governance']}:model-package/{group}"
        steps += [
            ("governance", rp.DELETE_MODEL_PACKAGE, f"{arn}/1"),
            ("governance", rp.DELETE_MODEL_PACKAGE, f"{arn}/2"),
            ("governance", rp.DELETE_MODEL_PACKAGE_GROUP, group),
            ("governance", rp.DELETE_RELEASE_RECORDS, "mlops-releases"),
            ("governance", rp.UNPROTECT_STACK, f"mlops-governance-{project}-registry"),
            ("governance", rp.DELETE_STACK, f"mlops-governance-{project}-registry"),
        ]
    return steps


# --------------------------------------------------------------------------- plan


def test_plan_order_keeps_the_registry_without_delete_models(world):
    plan = plan_of(world)
    assert keys(plan) == expected()
    kept = {k.what: k.reason for k in plan.retained}
    assert kept["model package group mlops-churn"] == "model versions are the audit trail; pass --delete-models"
    assert kept["mlops-governance-churn-registry"] == "model versions are the audit trail; pass --delete-models"
    assert "release records of churn in mlops-releases" in kept


def test_plan_order_with_delete_models_ends_with_the_registry(world):
    plan = plan_of(world, delete_models=True)
    assert keys(plan) == expected(delete_models=True)
    assert not [k for k in plan.retained if "model package group" in k.what or "release records" in k.what]


def test_retained_items_say_why(world):
    kept = {(k.role, k.what): k.reason for k in plan_of(world).retained}
    for role in ACCOUNTS:
        bucket = f"s3://mlops-{role}-artifacts-{ACCOUNTS[role]}-{REGION}/projects/churn/"
        assert "shared, versioned bucket" in kept[(role, bucket)]
    offline = f"s3://mlops-dev-artifacts-{ACCOUNTS['dev']}-{REGION}/projects/churn/feature-store/ and its Glue tables"
    assert kept[("dev", offline)].startswith("offline store data: DeleteFeatureGroup removes the online store only")
    assert "shared by every project" in kept[("all", "KMS keys alias/mlops/<role>")]
    assert kept[("governance", "CloudTrail trail mlops-api-calls")] == "audit records never go"
    assert "not tagged mlops:project=churn" in kept[("dev", "user profile churn-carol")]
    assert "re-adding a project of this name" in kept[("all", "log groups /aws/lambda/mlops-churn-*")]


def test_churn_never_plans_anything_of_churn_eu(world):
    """``churn-`` and ``mlops-churn-`` also start churn-eu's profiles, feature groups and more: tags decide."""
    churn = plan_of(world, delete_models=True)
    assert not [s for s in churn.steps if "churn-eu" in s.resource or "churn-eu" in s.reason]
    assert keys(plan_of(world, "churn-eu", delete_models=True)) == expected("churn-eu", delete_models=True)


# --------------------------------------------------------------------------- execute and resume


def test_execute_removes_everything_then_finds_nothing_left(world):
    """fraud's workspace stack was deleted by hand, its lead role kept: the role is deleted directly."""
    clients, naming = world.clients(), ctx_of(world).naming
    world.client("dev", "cloudformation").delete_stack(StackName="mlops-dev-fraud-workspace")
    iam = world.client("dev", "iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    for project in EXECUTED:
        iam.create_role(RoleName=f"mlops-{project}-dev-lead", AssumeRolePolicyDocument=trust, Tags=tags(project, "dev"))
        iam.put_role_policy(RoleName=f"mlops-{project}-dev-lead", PolicyName="p", PolicyDocument=json.dumps(allow))
    want = [
        ("dev", rp.DELETE_ROLE, "mlops-fraud-dev-lead") if key[2] == "mlops-dev-fraud-workspace" else key
        for key in expected("fraud", delete_models=True)
    ]
    plan = plan_of(world, "fraud", delete_models=True)
    assert keys(plan) == want
    # Gone since the plan was made: the step finds nothing and counts as done.
    world.client("staging", "sagemaker").delete_model(ModelName="fraud-staging-old")

    lines: list[str] = []
    done = rp.execute(plan, clients, naming, waiter=FAST, progress=lines.append)
    assert [step.key for step, _ in done] == want
    outcomes = {step.resource: outcome for step, outcome in done}
    assert (outcomes["fraud-staging-old"], outcomes["fraud-staging-v1"]) == (rp.GONE, rp.DELETED)
    assert outcomes["mlops-releases"] == "deleted 1"
    assert lines[:2] == [
        f"[1/{len(want)}] staging delete-endpoint mlops-fraud-staging ...",
        f"[1/{len(want)}] staging delete-endpoint mlops-fraud-staging: deleted",
    ]
    assert plan_of(world, "fraud", delete_models=True).steps == []

    # fraud-eu is untouched: its whole plan is still there.
    assert keys(plan_of(world, "fraud-eu", delete_models=True)) == expected("fraud-eu", delete_models=True)
    dev = world.states[ACCOUNTS["dev"]]
    assert not [p for p in dev.profiles if p.startswith("fraud-") and not p.startswith("fraud-eu-")]
    assert "fraud-eu-alice" in dev.profiles
    assert [n for n in dev.feature_groups if n.startswith("mlops-fraud")] == ["mlops-fraud-eu-customers"]
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert "mlops-fraud-eu-dev-lead" in roles and "mlops-fraud-dev-lead" not in roles
    records = world.client("governance", "dynamodb").scan(TableName="mlops-releases")["Items"]
    assert not [r for r in records if r["pk"]["S"].startswith("release#fraud#")]
    assert [r for r in records if r["pk"]["S"].startswith("release#fraud-eu#")]


def test_a_wait_is_bounded():
    class Stuck:
        """An app that never finishes deleting."""

        def describe_app(self, **_: Any) -> dict[str, str]:
            return {"Status": "Deleting"}

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    step = rp.Step(
        "dev", rp.DELETE_APP, "p-bob/JupyterServer/default", "test",
        (("DomainId", "d-1"), ("AppType", "JupyterServer"), ("AppName", "default"), ("UserProfileName", "p-bob")),
    )  # fmt: skip
    clients = {"dev": rp.AccountClients(lambda _: Stuck())}
    waiter = rp.Waiter(limit=120.0, interval=30.0, sleep=sleep, clock=lambda: now[0])
    with pytest.raises(rp.StepFailed) as failed:
        rp.execute(rp.Plan("p", [step], [], False), clients, None, waiter=waiter)  # type: ignore[arg-type]
    assert str(failed.value) == (
        "step 1/1 failed (dev delete-app p-bob/JupyterServer/default): deleting app p-bob/JupyterServer/default did "
        "not finish within 2 minutes; nothing after it was attempted, run again to resume"
    )
    assert now[0] == 120.0


# --------------------------------------------------------------------------- the command line


def mlops(world: World, capsys, *args: str, config_dir: Path | None = None) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["--config-dir", str(config_dir or world.config_dir), "remove-project", *args, *ROLE_OPTIONS])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_plans_by_default_and_deletes_nothing(world, capsys):
    before = len(world.calls())
    code, out, err = mlops(world, capsys, "churn")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "remove-project churn: plan (nothing is deleted without --execute):"
    assert lines[1] == f"  staging ({ACCOUNTS['staging']}, {REGION}):"
    width = len(rp.UNPROTECT_STACK)  # the longest action in this plan
    reason = "before its configs and models; waits until gone"
    assert lines[2] == f"      1. {rp.DELETE_ENDPOINT:<{width}}  mlops-churn-staging  ({reason})"
    assert len([line for line in lines if line.startswith("    ") and ". " in line[:12]]) == len(expected())
    assert "  retained:" in lines
    assert len(world.calls()) == before


def test_cli_failure_then_resume_then_nothing_left(world, capsys):
    """The first run stops at step 7; the second re-plans from what exists and makes no finished call again."""
    total = len(expected(BY_CLI))
    world.states[ACCOUNTS["prod"]].fail["DeleteMonitoringSchedule"] = _error(
        "ThrottlingException", "Rate exceeded", "DeleteMonitoringSchedule"
    )
    before = len(world.calls())
    code, out, err = mlops(world, capsys, BY_CLI, "--execute")
    first = world.calls()[before:]
    assert code == 1
    assert err == (
        f"mlops: step 7/{total} failed (prod delete-monitoring-schedule mlops-{BY_CLI}-prod-data-quality): AWS error "
        "in DeleteMonitoringSchedule: ThrottlingException: Rate exceeded; nothing after it was attempted, run again "
        "to resume\n"
    )
    assert out.splitlines()[0] == f"remove-project {BY_CLI}: deleting, in this order:"
    assert f"[6/{total}] staging delete-stack mlops-staging-{BY_CLI}-serving: deleted" in out
    assert f"[7/{total}] prod delete-monitoring-schedule mlops-{BY_CLI}-prod-data-quality ..." in out
    assert f"[8/{total}]" not in out
    assert first[-1].startswith("DeleteMonitoringSchedule ")  # nothing after the failed call
    assert len([c for c in first if c.startswith("DeleteEndpoint ")]) == 1  # staging's; prod's comes after

    code, out, err = mlops(world, capsys, BY_CLI, "--execute")
    assert (code, err) == (0, "")
    second = world.calls()[before + len(first) :]
    assert [c for c in second if c in first] == [first[-1]]  # only the failed call is made again
    rest = total - 6
    assert f"[1/{rest}] prod delete-monitoring-schedule mlops-{BY_CLI}-prod-data-quality: deleted" in out
    assert f"[{rest}/{rest}] governance delete-stack mlops-governance-{BY_CLI}-approval: deleted" in out
    assert out.splitlines()[-1] == f"remove-project {BY_CLI}: done, {rest} step(s)"
    # Without --delete-models the registry stays, so only the registry is left for a later --delete-models.
    assert keys(plan_of(world, BY_CLI, delete_models=True)) == expected(BY_CLI, delete_models=True)[-6:]
    assert rp.render_plan(plan_of(world, BY_CLI), ctx_of(world).naming)[1] == (
        "  nothing of it is deployed: nothing to delete"
    )


@pytest.mark.parametrize("name", ["Churn", "churn_eu", "x", "churn-", "churn--eu"])
def test_cli_invalid_name_is_one_line_exit_2(world, capsys, name):
    code, out, err = mlops(world, capsys, name)
    assert (code, out) == (2, "")
    assert err.startswith(f"mlops: invalid project name '{name}': ")
    assert err.count("\n") == 1


def test_cli_refuses_to_execute_a_configured_project(world, capsys, tmp_path):
    shipped = yaml.safe_load((REPO / "config" / "projects" / "churn.yaml").read_text())
    config_dir = write_config(tmp_path, {"churn": shipped})
    before = len(world.calls())
    code, out, err = mlops(world, capsys, "churn", "--execute", config_dir=config_dir)
    assert (code, out) == (2, "")
    assert err.startswith("mlops: project churn is still configured (")
    assert err.endswith("remove that file and deploy first, else the next deploy recreates what this deletes\n")
    assert err.count("\n") == 1
    assert len(world.calls()) == before
    code, out, _ = mlops(world, capsys, "churn", config_dir=config_dir)
    assert code == 0
    assert out.splitlines()[1].startswith("  note: churn is still configured")
