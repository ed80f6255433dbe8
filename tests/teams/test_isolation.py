"""Two projects whose names overlap, ``churn`` and ``churn-eu``, cannot touch each other's resources.

Every IAM role a project's stacks create (persona, pipeline, serving, monitoring
and Lambda roles: the roles tagged with its ``mlops:project``) is asked, through
the evaluator in ``tests/iam_eval.py``, for each action that matters on each of
the other project's resources, named as AWS names them: S3 objects under its
prefix in every account's bucket (through the bucket policy), its model package
group and versions (through the group's resource policy), pipeline, endpoints,
feature group, Glue tables, Athena workgroup, retraining function, dead-letter
queue, release records and endpoint logs. Every answer must be a deny. The same
requests for the role's own project are allowed for at least one role each, so
the resources are the real ones. churn-eu is the case a name prefix gets wrong:
``mlops-churn-*`` matches ``mlops-churn-eu-customers``.

Key usage: each account's platform key is shared by its projects; another
account's roles reach it only through key-policy grants that name each role's
full ARN (checked below), and what is encrypted is reached through the S3 and
service policies above.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mlops_platform.config import load_config
from mlops_platform.naming import PROJECT_TAG, Naming
from tests.iam_eval import Decision, Environment, TemplateResolver, evaluate, role_policies
from tests.synth import EXAMPLE_CONFIG, Synthesized

NAMING = Naming(load_config(EXAMPLE_CONFIG).platform)
PROJECTS = ("churn", "churn-eu")
# What a feature group's offline table is called once Feature Store created it (group, then its creation epoch).
CREATED = "1764600000"


@dataclass(frozen=True)
class Principal:
    stack: str
    logical_id: str
    arn: str
    policies: list[dict] = field(compare=False, hash=False)

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]


@dataclass(frozen=True)
class Target:
    """One request on one resource of a project; ``via`` names the resource policy that also decides it."""

    kind: str
    action: str
    resource: str
    account: str
    context: tuple[tuple[str, Any], ...] = ()
    via: str | None = None  # "bucket:<role>", "registry"


def targets(project: str) -> Iterator[Target]:
    """The requests that would touch ``project``'s resources, named as AWS names them."""
    n = NAMING
    tagged = ((f"aws:ResourceTag/{PROJECT_TAG}", project),)

    def sm(role: str, rest: str) -> str:
        return f"arn:aws:sagemaker:{n.region(role)}:{n.account(role)}:{rest}"

    for role in ("governance", "dev", "staging", "prod"):
        objects = f"{n.bucket_arn(role)}/{n.project_prefix(project)}"
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            for key in ("datasets/train.csv", "pipeline/run-1/model.tar.gz", "data-capture/champion/x.jsonl"):
                yield Target(f"s3 object ({role})", action, f"{objects}/{key}", n.account(role), via=f"bucket:{role}")
        yield Target(
            f"s3 listing ({role})",
            "s3:ListBucket",
            n.bucket_arn(role),
            n.account(role),
            (("s3:prefix", f"{n.project_prefix(project)}/"),),
            via=f"bucket:{role}",
        )
    governance = n.account("governance")
    group, version = n.model_package_group_arn(project), n.model_package_arns(project).replace("*", "3")
    for action in (
        "CreateModelPackage",
        "DescribeModelPackageGroup",
        "PutModelPackageGroupPolicy",
        "DeleteModelPackageGroup",
    ):
        yield Target("registry group", f"sagemaker:{action}", group, governance, tagged, "registry")
    for action in ("DescribeModelPackage", "UpdateModelPackage", "DeleteModelPackage"):
        yield Target("registry version", f"sagemaker:{action}", version, governance, tagged, "registry")
    queue = f"arn:aws:sqs:{n.region('governance')}:{governance}:{n.approval_dead_letter_queue(project)}"
    for action in ("sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"):
        yield Target("approval dead letters", action, queue, governance)
    releases = f"arn:aws:dynamodb:{n.region('governance')}:{governance}:table/{n.releases_table()}"
    for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"):
        for key in (f"release#{project}#prod", f"release#{project}#staging"):
            yield Target("release records", action, releases, governance, (("dynamodb:LeadingKeys", (key,)),))

    dev = n.account("dev")
    pipeline = sm("dev", f"pipeline/{n.pipeline_name(project)}")
    for action in ("StartPipelineExecution", "UpdatePipeline", "DeletePipeline", "DescribePipeline"):
        yield Target("pipeline", f"sagemaker:{action}", pipeline, dev, tagged)
    feature_group = sm("dev", f"feature-group/{n.feature_group_name(project, 'customers')}")
    for action in ("PutRecord", "GetRecord", "DeleteRecord", "DescribeFeatureGroup", "UpdateFeatureGroup"):
        yield Target("feature group", f"sagemaker:{action}", feature_group, dev, tagged)
    glue = f"arn:aws:glue:{n.region('dev')}:{dev}:table/sagemaker_featurestore"
    for table in {
        n.feature_group_name(project, "customers"),
        n.feature_group_name(project, "customers").replace("-", "_"),
    }:
        for action in (
            "glue:GetTable",
            "glue:UpdateTable",
            "glue:CreateTable",
            "glue:DeleteTable",
            "glue:GetPartitions",
        ):
            yield Target("glue table", action, f"{glue}/{table}_{CREATED}", dev)
    workgroup = f"arn:aws:athena:{n.region('dev')}:{dev}:workgroup/{n.athena_workgroup(project)}"
    for action in ("athena:StartQueryExecution", "athena:GetQueryResults"):
        yield Target("athena workgroup", action, workgroup, dev)
    function = f"arn:aws:lambda:{n.region('dev')}:{dev}:function:{n.retrain_function(project)}"
    yield Target("retraining function", "lambda:InvokeFunction", function, dev)

    for stage in ("staging", "prod"):
        account = n.account(stage)
        endpoint = sm(stage, f"endpoint/{n.endpoint_name(project, stage)}")
        for action in ("InvokeEndpoint", "UpdateEndpoint", "DeleteEndpoint", "UpdateEndpointWeightsAndCapacities"):
            yield Target(f"endpoint ({stage})", f"sagemaker:{action}", endpoint, account, tagged)
        endpoint_logs = f"/aws/sagemaker/Endpoints/{n.endpoint_name(project, stage)}"
        logs = f"arn:aws:logs:{n.region(stage)}:{account}:log-group:{endpoint_logs}"
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
            yield Target(f"endpoint logs ({stage})", action, f"{logs}:log-stream:champion/i-0abc", account)


# --------------------------------------------------------------------------- the world of the synth


@dataclass
class World:
    resolver: TemplateResolver
    principals: dict[str, list[Principal]]
    resource_policies: dict[str, dict]

    def decide(self, principal: Principal, target: Target) -> Decision:
        context = {
            "aws:SecureTransport": True,
            "aws:PrincipalArn": principal.arn,
            "aws:PrincipalAccount": principal.account,
            **dict(target.context),
        }
        policy = self.resource_policies.get(_policy_key(target))
        extra = (
            {"resource_policy": policy, "principal_arn": principal.arn, "resource_account": target.account}
            if policy is not None
            else {}
        )
        if policy is None and principal.account != target.account:
            return Decision.IMPLICIT_DENY  # no resource policy: nothing admits another account
        return evaluate(principal.policies, target.action, target.resource, context, **extra).decision


def _policy_key(target: Target) -> str:
    if target.via == "registry":
        return f"registry:{target.resource.split('/')[1]}"
    return target.via or ""


def world_of(synth: Synthesized) -> World:
    environments = {
        s: Environment(NAMING.account(r.lower()), NAMING.region(r.lower())) for s, r in synth.stage_of.items()
    }
    resolver = TemplateResolver(synth.templates, environments)
    principals: dict[str, list[Principal]] = {}
    policies: dict[str, dict] = {}
    for stack, template in synth.templates.items():
        role = synth.stage_of[stack].lower()
        for logical, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            if resource["Type"] == "AWS::IAM::Role":
                tags = {t["Key"]: t["Value"] for t in props.get("Tags", [])}
                if tags.get(PROJECT_TAG) in PROJECTS:
                    arn = resolver.resolve(stack, {"Fn::GetAtt": [logical, "Arn"]})
                    documents = role_policies(resolver, stack, logical) if _has_policies(template, logical) else []
                    principals.setdefault(tags[PROJECT_TAG], []).append(Principal(stack, logical, arn, documents))
            elif resource["Type"] == "AWS::S3::BucketPolicy":
                bucket = resolver.resolve(stack, props["Bucket"])
                if bucket == NAMING.artifacts_bucket(role):
                    policies[f"bucket:{role}"] = resolver.resolve(stack, props["PolicyDocument"])
            elif resource["Type"] == "AWS::SageMaker::ModelPackageGroup":
                name = resolver.resolve(stack, props["ModelPackageGroupName"])
                policies[f"registry:{name}"] = resolver.resolve(stack, props["ModelPackageGroupPolicy"])
    return World(resolver, principals, policies)


def _has_policies(template: dict, logical: str) -> bool:
    role = template["Resources"][logical].get("Properties", {})
    attached = any(
        r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
        and {"Ref": logical} in r["Properties"].get("Roles", [])
        for r in template["Resources"].values()
    )
    return bool(role.get("Policies") or role.get("ManagedPolicyArns") or attached)


def reaches(world: World, project: str, other: str) -> list[str]:
    """Every (role, request) by which ``project``'s roles reach ``other``'s resources."""
    found = []
    for principal in world.principals[project]:
        for target in targets(other):
            if world.decide(principal, target) is Decision.ALLOWED:
                found.append(f"{principal.arn} may {target.action} {target.resource}")
    return found


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def world(overlap) -> World:
    assert overlap.error is None, overlap.error
    return world_of(overlap)


def test_every_project_role_is_examined(world):
    """Persona, pipeline, serving, monitoring and Lambda roles of both projects, the same set for each."""
    names = {
        p: sorted(name for x in world.principals[p] if (name := x.arn.split("/")[-1]).startswith(f"mlops-{p}-"))
        for p in PROJECTS
    }
    canvas = "mlops-churn-eu-governance-canvas-register"  # churn-eu alone has Canvas on
    assert [n for n in names["churn-eu"] if n != canvas] == [
        name.replace("mlops-churn-", "mlops-churn-eu-") for name in names["churn"]
    ]
    assert canvas in names["churn-eu"]
    assert len(world.principals["churn"]) >= 18
    for purpose in ("dev-scientist", "dev-lead", "dev-pipeline", "governance-guard", "prod-model", "prod-monitor"):
        assert f"mlops-churn-{purpose}" in names["churn"]


@pytest.mark.parametrize(("project", "other"), [("churn", "churn-eu"), ("churn-eu", "churn")])
def test_no_role_of_a_project_reaches_the_other_projects_resources(world, project, other):
    assert reaches(world, project, other) == []


# Kinds no role of the project itself uses, so no own-project request shows them realistic.
UNUSED_BY_OWN_ROLES = {
    "s3 object (governance)": "the governance bucket holds no project objects; versions live in the registry",
    "s3 listing (governance)": "nothing lists the governance bucket",
    "s3 listing (staging)": "the serving roles read and write keys they know",
    "s3 listing (prod)": "the serving roles read and write keys they know",
    "retraining function": "EventBridge invokes it through the function's resource policy, not a role",
}


@pytest.mark.parametrize("project", PROJECTS)
def test_each_kind_of_resource_is_reached_by_its_own_project(world, project):
    """The requests are realistic: for every other kind, some role of the project itself is allowed one of them."""
    reached = {
        target.kind
        for target in targets(project)
        for principal in world.principals[project]
        if world.decide(principal, target) is Decision.ALLOWED
    }
    assert reached == {t.kind for t in targets(project)} - set(UNUSED_BY_OWN_ROLES)


def test_a_bare_prefix_pattern_is_caught(overlap):
    """The check fails on the patterns the platform had: a Glue table pattern ``mlops-churn-*`` reaches churn-eu."""
    templates = copy.deepcopy(overlap.templates)
    stack = NAMING.stack_name("dev", "features", "churn")
    text = json.dumps(templates[stack])
    old = f"table/sagemaker_featurestore/{NAMING.feature_group_name('churn', 'customers')}_??????????"
    assert old in text
    templates[stack] = json.loads(text.replace(old, "table/sagemaker_featurestore/mlops-churn-*"))
    broken = Synthesized(outdir=overlap.outdir, templates=templates, stage_of=overlap.stage_of)
    found = reaches(world_of(broken), "churn", "churn-eu")
    assert found and all("glue:" in line and "mlops-churn-eu-customers" in line for line in found)


def test_cross_account_key_grants_name_whole_role_arns(overlap):
    """Each key's grants to other accounts name roles one by one, each a role of one configured project."""
    known = {
        NAMING.role_arn(project, role, purpose)
        for project in PROJECTS
        for role in ("governance", "dev", "staging", "prod")
        for purpose in ("approver", "guard", "notify", "rejected", "model", "monitor", "verify", "pipeline", "lead")
    }
    granted = []
    for template in overlap.templates.values():
        for resource in template["Resources"].values():
            if resource["Type"] != "AWS::KMS::Key":
                continue
            for statement in resource["Properties"]["KeyPolicy"]["Statement"]:
                for block in statement.get("Condition", {}).values():
                    arns = block.get("aws:PrincipalArn", [])
                    granted += [arns] if isinstance(arns, str) else arns
    assert granted
    assert all("*" not in arn and "?" not in arn and arn in known for arn in granted), sorted(set(granted) - known)
