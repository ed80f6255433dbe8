"""A data scientist's (and a lead's) day in Studio is allowed for their project and denied for any other.

The persona policies are read from the synthesized workspace template and decided
by the evaluator in ``tests/iam_eval.py``; the S3 steps also go through the
artifacts bucket policy and the KMS steps through the key policy. Another project
is named ``churn-eu`` (its names start with ``churn``'s: the case a name prefix
gets wrong) or ``fraud``; its resources carry its own ``mlops:project`` tag.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from mlops_platform.config import load_config
from mlops_platform.naming import Naming
from tests.iam_eval import Decision, Environment, TemplateResolver, evaluate, role_logical_id, role_policies
from tests.synth import EXAMPLE_CONFIG

NAMING = Naming(load_config(EXAMPLE_CONFIG).platform)
ACCOUNT, REGION = NAMING.account("dev"), NAMING.region("dev")
WORKSPACE, STUDIO, BASELINE, FEATURES, BUILD = (
    NAMING.stack_name("dev", "workspace", "churn"),
    NAMING.stack_name("dev", "studio"),
    NAMING.stack_name("dev", "baseline"),
    NAMING.stack_name("dev", "features", "churn"),
    NAMING.stack_name("dev", "build", "churn"),
)
OTHERS = ("churn-eu", "fraud")
TAG = "mlops:project"


@dataclass(frozen=True)
class Persona:
    user: str
    purpose: str  # the role name's last part

    @property
    def role_name(self) -> str:
        return NAMING.role_name("churn", "dev", self.purpose)

    @property
    def role_arn(self) -> str:
        return NAMING.role_arn("churn", "dev", self.purpose)


SCIENTIST, LEAD = Persona("bob", "scientist"), Persona("alice", "lead")


@dataclass(frozen=True)
class World:
    """Names and ARNs of the dev account, for any project (the churn ones come from the templates)."""

    domain: str
    key_arn: str
    bucket_policy: dict
    key_policy: dict

    def sagemaker(self, rest: str) -> str:
        return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{rest}"

    def profile(self, project: str, user: str) -> str:
        return self.sagemaker(f"user-profile/{self.domain}/{NAMING.user_profile_name(project, user)}")

    def space(self, project: str, user: str) -> str:
        return self.sagemaker(f"space/{self.domain}/{NAMING.user_profile_name(project, user)}-analysis")

    def space_app(self, project: str, user: str) -> str:
        space = f"{NAMING.user_profile_name(project, user)}-analysis"
        return self.sagemaker(f"app/{self.domain}/{space}/JupyterLab/default")

    def job(self, project: str, kind: str) -> str:
        return self.sagemaker(f"{kind}/{NAMING.prefix}-{project}-prep-20260102-0930")

    def feature_group(self, project: str) -> str:
        return self.sagemaker(f"feature-group/{NAMING.feature_group_name(project, 'customers')}")

    def pipeline(self, project: str) -> str:
        return self.sagemaker(f"pipeline/{NAMING.pipeline_name(project)}")

    def execution(self, project: str) -> str:
        return f"{self.pipeline(project)}/execution/7x2k9q4m1abc"

    def object(self, project: str, key: str) -> str:
        return f"{NAMING.bucket_arn('dev')}/{NAMING.project_prefix(project)}/{key}"


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: dict[str, Any]
    via: str | None = None  # "bucket" or "key": also decided by that resource policy


def owned_private(w: World, project: str, me: Persona) -> dict[str, Any]:
    return {"sagemaker:OwnerUserProfileArn": w.profile(project, me.user), "sagemaker:SpaceSharingType": "Private"}


def tagged(project: str, kind: str = "ResourceTag") -> dict[str, Any]:
    return {f"aws:{kind}/{TAG}": project}


# Each step of the day, for project ``p`` as persona ``me``: the request that step makes.
Step = Callable[[World, str, Persona], Request]
DAY: dict[str, Step] = {
    "describe own user profile": lambda w, p, me: Request("sagemaker:DescribeUserProfile", w.profile(p, me.user), {}),
    "create private space": lambda w, p, me: Request(
        "sagemaker:CreateSpace", w.space(p, me.user), owned_private(w, p, me)
    ),
    "update own space": lambda w, p, me: Request("sagemaker:UpdateSpace", w.space(p, me.user), owned_private(w, p, me)),
    "create JupyterLab app in it": lambda w, p, me: Request(
        "sagemaker:CreateApp", w.space_app(p, me.user), owned_private(w, p, me)
    ),
    "delete the app": lambda w, p, me: Request("sagemaker:DeleteApp", w.space_app(p, me.user), owned_private(w, p, me)),
    "delete the space": lambda w, p, me: Request("sagemaker:DeleteSpace", w.space(p, me.user), owned_private(w, p, me)),
    "pass pipeline role to a job": lambda w, p, me: Request(
        "iam:PassRole", NAMING.pipeline_role_arn(p), {"iam:PassedToService": "sagemaker.amazonaws.com"}
    ),
    "pass own role to a job": lambda w, p, me: Request(
        "iam:PassRole", NAMING.role_arn(p, "dev", me.purpose), {"iam:PassedToService": "sagemaker.amazonaws.com"}
    ),
    "create processing job": lambda w, p, me: Request(
        "sagemaker:CreateProcessingJob", w.job(p, "processing-job"), {**tagged(p, "RequestTag"), "aws:TagKeys": [TAG]}
    ),
    "tag it while creating": lambda w, p, me: Request(
        "sagemaker:AddTags",
        w.job(p, "processing-job"),
        {**tagged(p, "RequestTag"), "aws:TagKeys": [TAG], "sagemaker:TaggingAction": "CreateProcessingJob"},
    ),
    "create training job": lambda w, p, me: Request(
        "sagemaker:CreateTrainingJob", w.job(p, "training-job"), {**tagged(p, "RequestTag"), "aws:TagKeys": [TAG]}
    ),
    "describe the job": lambda w, p, me: Request(
        "sagemaker:DescribeProcessingJob", w.job(p, "processing-job"), tagged(p)
    ),
    "stop the job": lambda w, p, me: Request("sagemaker:StopTrainingJob", w.job(p, "training-job"), tagged(p)),
    "read training data": lambda w, p, me: Request("s3:GetObject", w.object(p, "datasets/train.csv"), {}, via="bucket"),
    "write a model": lambda w, p, me: Request("s3:PutObject", w.object(p, "models/model.tar.gz"), {}, via="bucket"),
    "delete a scratch file": lambda w, p, me: Request(
        "s3:DeleteObject", w.object(p, "scratch/tmp.parquet"), {}, via="bucket"
    ),
    "list the project prefix": lambda w, p, me: Request(
        "s3:ListBucket", NAMING.bucket_arn("dev"), {"s3:prefix": f"{NAMING.project_prefix(p)}/datasets/"}, via="bucket"
    ),
    "put a feature record": lambda w, p, me: Request("sagemaker:PutRecord", w.feature_group(p), tagged(p)),
    "get a feature record": lambda w, p, me: Request("sagemaker:GetRecord", w.feature_group(p), tagged(p)),
    "batch-get feature records": lambda w, p, me: Request("sagemaker:BatchGetRecord", w.feature_group(p), tagged(p)),
    "delete a feature record": lambda w, p, me: Request("sagemaker:DeleteRecord", w.feature_group(p), tagged(p)),
    "start the pipeline": lambda w, p, me: Request("sagemaker:StartPipelineExecution", w.pipeline(p), {}),
    "list its executions": lambda w, p, me: Request("sagemaker:ListPipelineExecutions", w.pipeline(p), {}),
    "describe an execution": lambda w, p, me: Request("sagemaker:DescribePipelineExecution", w.execution(p), {}),
    "list the execution's steps": lambda w, p, me: Request("sagemaker:ListPipelineExecutionSteps", w.execution(p), {}),
}
# Steps on resources no project owns: allowed, with no other-project variant.
SHARED: dict[str, Callable[[World], Request]] = {
    "describe the domain": lambda w: Request("sagemaker:DescribeDomain", w.sagemaker(f"domain/{w.domain}"), {}),
    "list apps": lambda w: Request("sagemaker:ListApps", "*", {}),
    "list spaces": lambda w: Request("sagemaker:ListSpaces", "*", {}),
    "tag a space while creating it": lambda w: Request(
        "sagemaker:AddTags", w.space("churn", "bob"), {"sagemaker:TaggingAction": "CreateSpace"}
    ),
    "encrypt with the account key": lambda w: Request("kms:GenerateDataKey", w.key_arn, {}, via="key"),
    "decrypt with the account key": lambda w: Request("kms:Decrypt", w.key_arn, {}, via="key"),
}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def resolver(example) -> TemplateResolver:
    environments = {
        stack: Environment(NAMING.account(stage.lower()), NAMING.region(stage.lower()))
        for stack, stage in example.stage_of.items()
    }
    return TemplateResolver(example.templates, environments)


def only(resources: dict[str, dict], type_: str) -> str:
    found = [logical for logical, resource in resources.items() if resource["Type"] == type_]
    assert len(found) == 1, (type_, found)
    return found[0]


@pytest.fixture(scope="module")
def world(example, resolver) -> World:
    baseline = example.templates[BASELINE]["Resources"]
    key = only(baseline, "AWS::KMS::Key")
    bucket_arn = NAMING.bucket_arn("dev")
    (bucket_policy,) = [
        resolver.resolve(BASELINE, r["Properties"]["PolicyDocument"])
        for r in baseline.values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and resolver.resolve(BASELINE, {"Fn::GetAtt": [r["Properties"]["Bucket"]["Ref"], "Arn"]}) == bucket_arn
    ]
    domain = only(example.templates[STUDIO]["Resources"], "AWS::SageMaker::Domain")
    return World(
        domain=resolver.resolve(STUDIO, {"Fn::GetAtt": [domain, "DomainId"]}),
        key_arn=resolver.resolve(BASELINE, {"Fn::GetAtt": [key, "Arn"]}),
        bucket_policy=bucket_policy,
        key_policy=resolver.resolve(BASELINE, baseline[key]["Properties"]["KeyPolicy"]),
    )


@pytest.fixture(scope="module")
def policies(resolver) -> dict[Persona, list[dict]]:
    return {
        p: role_policies(resolver, WORKSPACE, role_logical_id(resolver, WORKSPACE, p.role_name))
        for p in (SCIENTIST, LEAD)
    }


def decide(policies: dict[Persona, list[dict]], world: World, me: Persona, request: Request) -> Decision:
    resource_policy = {"bucket": world.bucket_policy, "key": world.key_policy}.get(request.via or "")
    extra = {"resource_policy": resource_policy, "principal_arn": me.role_arn, "resource_account": ACCOUNT}
    result = evaluate(
        policies[me],
        request.action,
        request.resource,
        {"aws:SecureTransport": True, **request.context},
        **(extra if resource_policy is not None else {}),
    )
    return result.decision


# --------------------------------------------------------------------------- the day


@pytest.mark.parametrize("me", [SCIENTIST, LEAD], ids=["data_scientist", "lead"])
@pytest.mark.parametrize("step", sorted(DAY))
def test_each_step_of_the_day_is_allowed_for_the_project(policies, world, me, step):
    request = DAY[step](world, "churn", me)
    assert decide(policies, world, me, request) is Decision.ALLOWED, request


@pytest.mark.parametrize("me", [SCIENTIST, LEAD], ids=["data_scientist", "lead"])
@pytest.mark.parametrize("step", sorted(SHARED))
def test_shared_steps_are_allowed(policies, world, me, step):
    request = SHARED[step](world)
    assert decide(policies, world, me, request) is Decision.ALLOWED, request


@pytest.mark.parametrize("me", [SCIENTIST, LEAD], ids=["data_scientist", "lead"])
@pytest.mark.parametrize("other", OTHERS)
@pytest.mark.parametrize("step", sorted(DAY))
def test_the_same_step_for_another_project_is_denied(policies, world, me, other, step):
    request = DAY[step](world, other, me)
    assert decide(policies, world, me, request) is Decision.IMPLICIT_DENY, request


# --------------------------------------------------------------------------- the world matches the templates


def test_persona_permissions_are_one_managed_policy_each(example, resolver):
    resources = example.templates[WORKSPACE]["Resources"]
    for persona in (SCIENTIST, LEAD):
        logical = role_logical_id(resolver, WORKSPACE, persona.role_name)
        role = resources[logical]["Properties"]
        assert "Policies" not in role and "ManagedPolicyArns" not in role
        attached = [
            r
            for r in resources.values()
            if r["Type"] == "AWS::IAM::ManagedPolicy" and {"Ref": logical} in r["Properties"]["Roles"]
        ]
        assert len(attached) == 1


def test_the_days_names_are_the_synthesized_ones(example, resolver, world):
    """The ARNs and tags the day uses for churn are what the templates create."""
    profiles = {
        r["Properties"]["UserProfileName"]: resolver.resolve(WORKSPACE, {"Fn::GetAtt": [logical, "UserProfileArn"]})
        for logical, r in example.templates[WORKSPACE]["Resources"].items()
        if r["Type"] == "AWS::SageMaker::UserProfile"
    }
    assert profiles == {
        "churn-bob": world.profile("churn", "bob"),
        "churn-alice": world.profile("churn", "alice"),
    }
    (group,) = [
        r for r in example.templates[FEATURES]["Resources"].values() if r["Type"] == "AWS::SageMaker::FeatureGroup"
    ]
    assert world.feature_group("churn").endswith(f"/{group['Properties']['FeatureGroupName']}")
    assert {"Key": TAG, "Value": "churn"} in group["Properties"]["Tags"]
    (pipeline,) = [r for r in example.templates[BUILD]["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"]
    assert world.pipeline("churn").endswith(f"/{pipeline['Properties']['PipelineName']}")
    assert {"Key": TAG, "Value": "churn"} in pipeline["Properties"]["Tags"]


# --------------------------------------------------------------------------- inside the project


@pytest.mark.parametrize(
    ("me", "request_of", "why"),
    [
        (
            SCIENTIST,
            lambda w: Request("sagemaker:CreateSpace", w.space("churn", "alice"), owned_private(w, "churn", LEAD)),
            "a private space owned by another member's profile",
        ),
        (
            SCIENTIST,
            lambda w: Request(
                "sagemaker:CreateSpace",
                w.space("churn", "bob"),
                {**owned_private(w, "churn", SCIENTIST), "sagemaker:SpaceSharingType": "Shared"},
            ),
            "a shared space",
        ),
        (
            SCIENTIST,
            lambda w: Request("sagemaker:CreateApp", w.space_app("churn", "bob"), {}),
            "an app outside an owned private space",
        ),
        (
            SCIENTIST,
            lambda w: Request("sagemaker:DescribeUserProfile", w.profile("churn", "alice"), {}),
            "another member's profile",
        ),
        (
            SCIENTIST,
            lambda w: Request("iam:PassRole", LEAD.role_arn, {"iam:PassedToService": "sagemaker.amazonaws.com"}),
            "the lead's role",
        ),
        (
            SCIENTIST,
            lambda w: Request(
                "iam:PassRole", NAMING.pipeline_role_arn("churn"), {"iam:PassedToService": "glue.amazonaws.com"}
            ),
            "the pipeline role to another service",
        ),
        (
            SCIENTIST,
            lambda w: Request("sagemaker:CreateProcessingJob", w.job("churn", "processing-job"), {}),
            "a job without the project tag",
        ),
        (
            SCIENTIST,
            lambda w: Request("sagemaker:AddTags", w.job("churn", "processing-job"), tagged("churn", "RequestTag")),
            "retagging an existing job",
        ),
        (
            SCIENTIST,
            lambda w: Request("sagemaker:PutRecord", w.feature_group("churn"), {}),
            "a feature group without the project tag",
        ),
        (
            SCIENTIST,
            lambda w: Request("sagemaker:DeletePipeline", w.pipeline("churn"), {}),
            "deleting the pipeline",
        ),
        (
            SCIENTIST,
            lambda w: Request("sagemaker:UpdateModelPackage", NAMING.model_package_arns("churn").replace("*", "3"), {}),
            "approving a model version",
        ),
        (
            LEAD,
            lambda w: Request("sagemaker:CreateSpace", w.space("churn", "bob"), owned_private(w, "churn", SCIENTIST)),
            "a private space owned by the data scientist",
        ),
    ],
)
def test_inside_the_project_each_persona_keeps_to_its_own(policies, world, me, request_of, why):
    assert decide(policies, world, me, request_of(world)) is not Decision.ALLOWED, why


def test_the_lead_can_approve_versions_of_its_project_only(policies, world):
    version = NAMING.model_package_arns("churn").replace("*", "3")
    other = NAMING.model_package_arns("churn-eu").replace("*", "3")
    assert decide(policies, world, LEAD, Request("sagemaker:UpdateModelPackage", version, {})) is Decision.ALLOWED
    assert decide(policies, world, LEAD, Request("sagemaker:UpdateModelPackage", other, {})) is Decision.IMPLICIT_DENY


def test_plain_http_to_the_bucket_is_denied(policies, world):
    request = Request(
        "s3:GetObject", world.object("churn", "datasets/train.csv"), {"aws:SecureTransport": False}, "bucket"
    )
    assert decide(policies, world, SCIENTIST, request) is Decision.EXPLICIT_DENY


def test_describing_studio_spaces_and_apps_is_domain_wide(policies, world):
    """A known limit: SageMaker offers no owner key for DescribeSpace/DescribeApp, so they name any space.

    Only metadata: creating, changing, deleting and running apps in another's space stays denied above.
    """
    for action, resource in (
        ("sagemaker:DescribeSpace", world.space("churn-eu", "alice")),
        ("sagemaker:DescribeApp", world.space_app("fraud", "alice")),
    ):
        assert decide(policies, world, SCIENTIST, Request(action, resource, {})) is Decision.ALLOWED
