"""Canvas models through the same path: the synthesized settings, roles and policies, canvas on and off.

Canvas is on for ``churn-eu`` in the session's ``overlap`` synth (the example plus churn-eu), off for
churn beside it; the shipped example (``example``, canvas off) must hold none of it. Policies are
decided by the evaluator in ``tests/iam_eval.py``. The other projects are ``churn`` (churn-eu's names
start with its names: the case a name prefix gets wrong) and ``fraud``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker

from mlops_platform.config import ConfigError, load_config
from mlops_platform.naming import Naming
from stacks.components.canvas import settings_digest
from tests.conftest import OVERLAPPING
from tests.iam_eval import Decision, Environment, TemplateResolver, evaluate, role_logical_id, role_policies
from tests.synth import (
    EXAMPLE_CONFIG,
    Synthesized,
    example_platform,
    example_project,
    write_config,
)

NAMING = Naming(load_config(EXAMPLE_CONFIG).platform)
DEV, GOVERNANCE = NAMING.account("dev"), NAMING.account("governance")
REGION = NAMING.region("dev")
PROJECT = OVERLAPPING
WORKSPACE = NAMING.stack_name("dev", "workspace", PROJECT)
STUDIO = NAMING.stack_name("dev", "studio")
BASELINE = NAMING.stack_name("dev", "baseline")
REGISTRY = NAMING.stack_name("governance", "registry", PROJECT)
SERVING = NAMING.stack_name("staging", "serving", PROJECT)
REGISTER_ROLE = NAMING.canvas_register_role_arn(PROJECT)
SCIENTIST, LEAD = (NAMING.role_arn(PROJECT, "dev", p) for p in ("scientist", "lead"))
PROFILES = {f"{PROJECT}-alice": LEAD, f"{PROJECT}-bob": SCIENTIST}
ALLOW_ALL = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@pytest.fixture(scope="session")
def canvas(overlap) -> Synthesized:
    """The example plus churn-eu with Canvas on (``tests/conftest.py``), synthesized once per session."""
    return overlap


@pytest.fixture(scope="module")
def resolver(canvas) -> TemplateResolver:
    environments = {
        stack: Environment(NAMING.account(stage.lower()), NAMING.region(stage.lower()))
        for stack, stage in canvas.stage_of.items()
    }
    return TemplateResolver(canvas.templates, environments)


def _of_type(synth: Synthesized, stack: str, type_: str) -> dict[str, dict]:
    return synth.resources(stack, type_)


def _profiles(canvas) -> dict[str, tuple[str, dict]]:
    """User profiles of the project's workspace by name: (logical id, resource)."""
    return {
        r["Properties"]["UserProfileName"]: (logical, r)
        for logical, r in _of_type(canvas, WORKSPACE, "AWS::SageMaker::UserProfile").items()
    }


def _settings_resources(canvas) -> dict[str, tuple[str, dict]]:
    """The Canvas settings custom resources by the profile they depend on."""
    profiles = {logical: name for name, (logical, _) in _profiles(canvas).items()}
    found: dict[str, tuple[str, dict]] = {}
    for logical, resource in _of_type(canvas, WORKSPACE, "Custom::CanvasUserSettings").items():
        (name,) = [profiles[d] for d in resource["DependsOn"] if d in profiles]
        found[name] = (logical, resource)
    return found


def _call(resolver: TemplateResolver, resource: dict, phase: str) -> dict[str, Any]:
    return json.loads(resolver.resolve(WORKSPACE, resource["Properties"][phase]))


def _kept_settings(resolver: TemplateResolver, profile: dict) -> dict[str, Any]:
    """The profile's own role and security groups, which every call repeats so a replacement keeps them."""
    settings = resolver.resolve(WORKSPACE, profile["Properties"]["UserSettings"])
    return {"ExecutionRole": settings["ExecutionRole"], "SecurityGroups": settings["SecurityGroups"]}


def _expected_canvas_settings(resolver: TemplateResolver, canvas) -> dict[str, Any]:
    (key,) = _of_type(canvas, BASELINE, "AWS::KMS::Key")
    return {
        "ModelRegisterSettings": {"Status": "ENABLED", "CrossAccountModelRegisterRoleArn": REGISTER_ROLE},
        "DirectDeploySettings": {"Status": "DISABLED"},
        "WorkspaceSettings": {
            "S3ArtifactPath": f"s3://{NAMING.artifacts_bucket('dev')}/projects/{PROJECT}/canvas/",
            "S3KmsKeyId": resolver.resolve(BASELINE, {"Fn::GetAtt": [key, "Arn"]}),
        },
    }


# --------------------------------------------------------------------------- the synth itself


def test_canvas_synth_passes_every_nag_pack(canvas):
    assert canvas.error is None, canvas.error
    assert canvas.findings == []


# --------------------------------------------------------------------------- dev: the user profiles' Canvas settings


def test_every_dev_profile_gets_exactly_the_canvas_settings_on_create_and_update(canvas, resolver):
    (domain,) = _of_type(canvas, STUDIO, "AWS::SageMaker::Domain")
    domain_id = resolver.resolve(STUDIO, {"Fn::GetAtt": [domain, "DomainId"]})
    expected = _expected_canvas_settings(resolver, canvas)
    settings = _settings_resources(canvas)
    assert sorted(settings) == sorted(PROFILES)
    for name, (_, resource) in settings.items():
        kept = _kept_settings(resolver, _profiles(canvas)[name][1])
        assert kept["ExecutionRole"] == PROFILES[name] and len(kept["SecurityGroups"]) == 1
        for phase in ("Create", "Update"):
            call = _call(resolver, resource, phase)
            assert call == {
                "service": "SageMaker",
                "action": "updateUserProfile",
                "parameters": {
                    "DomainId": domain_id,
                    "UserProfileName": name,
                    "UserSettings": {**kept, "CanvasAppSettings": expected},
                },
                "physicalResourceId": {"id": f"canvas-settings-{name}"},
            }
        # The handler's bundled SDK, not one installed from npm at deploy time.
        assert resource["Properties"]["InstallLatestAwsSdk"] is False


def test_deleting_switches_registration_off_and_tolerates_a_gone_profile(canvas, resolver):
    for name, (_, resource) in _settings_resources(canvas).items():
        call = _call(resolver, resource, "Delete")
        assert call["action"] == "updateUserProfile" and call["service"] == "SageMaker"
        assert call["parameters"]["UserProfileName"] == name
        assert call["parameters"]["UserSettings"] == {
            **_kept_settings(resolver, _profiles(canvas)[name][1]),
            "CanvasAppSettings": {
                "ModelRegisterSettings": {"Status": "DISABLED"},
                "DirectDeploySettings": {"Status": "DISABLED"},
            },
        }
        assert call["ignoreErrorCodesMatching"] == "ResourceNotFound|ValidationException"


def test_settings_are_reapplied_whenever_the_profile_changes(canvas):
    """A digest of the profile's user settings is a property of the resource, which follows the profile."""
    profiles = _profiles(canvas)
    digests = []
    for name, (_, resource) in _settings_resources(canvas).items():
        profile_logical, _ = profiles[name]
        digest = resource["Properties"]["ProfileSettingsDigest"]
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
        assert profile_logical in resource["DependsOn"]
        digests.append(digest)
    assert len(set(digests)) == len(digests)  # alice and bob run as different roles


def _profile(stack: Stack, id: str, security_group: str) -> sagemaker.CfnUserProfile:
    role = iam.Role(stack, f"{id}Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    return sagemaker.CfnUserProfile(
        stack,
        id,
        domain_id="d-abc123",
        user_profile_name=id.lower(),
        user_settings=sagemaker.CfnUserProfile.UserSettingsProperty(
            execution_role=role.role_arn, security_groups=[security_group]
        ),
    )


def test_the_settings_digest_is_deterministic_and_follows_every_setting():
    def digests() -> list[str]:
        stack = Stack(App(), "Workspace")
        return [settings_digest(_profile(stack, "Bob", "sg-1")), settings_digest(_profile(stack, "Eve", "sg-2"))]

    first, second = digests(), digests()
    assert first == second  # no token numbers, no clock: the same app synthesizes the same digest
    assert first[0] != first[1]


def _handler_policies(canvas, resolver) -> dict[str, dict]:
    """The inline policies CDK attaches to the stack's AwsCustomResource handler role, resolved, by logical id."""
    functions = _of_type(canvas, WORKSPACE, "AWS::Lambda::Function")
    (function,) = [f for logical, f in functions.items() if logical.startswith("AWS679f53fac002430cb0da5b7982bd2287")]
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return {
        logical: resolver.resolve(WORKSPACE, p["Properties"]["PolicyDocument"])
        for logical, p in _of_type(canvas, WORKSPACE, "AWS::IAM::Policy").items()
        if {"Ref": role} in p["Properties"]["Roles"]
    }


def test_the_handler_may_update_exactly_the_project_profiles(canvas, resolver):
    profile_arns = {
        name: resolver.resolve(WORKSPACE, {"Fn::GetAtt": [logical, "UserProfileArn"]})
        for name, (logical, _) in _profiles(canvas).items()
    }
    policies = _handler_policies(canvas, resolver)
    statements = sorted((json.dumps(s["Action"]), s["Resource"]) for doc in policies.values() for s in doc["Statement"])
    assert statements == sorted(
        [(json.dumps("sagemaker:UpdateUserProfile"), arn) for arn in profile_arns.values()]
        + [(json.dumps("iam:PassRole"), role) for role in PROFILES.values()]
    )
    documents = list(policies.values())
    domain = profile_arns[f"{PROJECT}-bob"].rsplit("/", 2)[0].replace(":user-profile", ":domain")
    for arn in profile_arns.values():
        assert evaluate(documents, "sagemaker:UpdateUserProfile", arn).decision is Decision.ALLOWED
        assert evaluate(documents, "sagemaker:DeleteUserProfile", arn).decision is Decision.IMPLICIT_DENY
    other = profile_arns[f"{PROJECT}-bob"].replace(f"/{PROJECT}-bob", "/churn-bob")
    assert evaluate(documents, "sagemaker:UpdateUserProfile", other).decision is Decision.IMPLICIT_DENY
    assert evaluate(documents, "sagemaker:UpdateDomain", domain).decision is Decision.IMPLICIT_DENY
    to_sagemaker = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    for role in PROFILES.values():  # the call repeats each profile's own execution role
        assert evaluate(documents, "iam:PassRole", role, to_sagemaker).decision is Decision.ALLOWED
        assert evaluate(documents, "iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"}).decision is (
            Decision.IMPLICIT_DENY
        )
    pipeline = NAMING.pipeline_role_arn(PROJECT)
    assert evaluate(documents, "iam:PassRole", pipeline, to_sagemaker).decision is Decision.IMPLICIT_DENY


# --------------------------------------------------------------------------- dev: what the personas may do in Canvas


@pytest.fixture(scope="module")
def persona_policies(resolver) -> dict[str, list[dict]]:
    return {
        arn: role_policies(resolver, WORKSPACE, role_logical_id(resolver, WORKSPACE, arn.rsplit("/", 1)[1]))
        for arn in (SCIENTIST, LEAD)
    }


def test_personas_may_assume_only_their_projects_register_role(persona_policies):
    for policies in persona_policies.values():
        assert evaluate(policies, "sts:AssumeRole", REGISTER_ROLE).decision is Decision.ALLOWED
        for other in ("churn", "fraud"):
            other_role = NAMING.canvas_register_role_arn(other)
            assert evaluate(policies, "sts:AssumeRole", other_role).decision is Decision.IMPLICIT_DENY


def test_personas_run_the_canvas_app_of_their_own_profile_only(persona_policies):
    def app(profile: str) -> str:
        return f"arn:aws:sagemaker:{REGION}:{DEV}:app/d-abc123/{profile}/canvas/default"

    for profile, role in PROFILES.items():
        others = [p for p in PROFILES if p != profile] + ["churn-bob", "fraud-bob"]
        for action in ("sagemaker:CreateApp", "sagemaker:DeleteApp"):
            assert evaluate(persona_policies[role], action, app(profile)).decision is Decision.ALLOWED
            for other in others:
                assert evaluate(persona_policies[role], action, app(other)).decision is Decision.IMPLICIT_DENY


def test_canvas_cannot_deploy_around_the_approval_path(persona_policies):
    endpoint = f"arn:aws:sagemaker:{REGION}:{DEV}:endpoint/canvas-churn-model"
    for policies in persona_policies.values():
        for action in ("sagemaker:CreateEndpoint", "sagemaker:CreateEndpointConfig", "sagemaker:UpdateEndpoint"):
            assert evaluate(policies, action, endpoint).decision is Decision.IMPLICIT_DENY
        group = NAMING.model_package_group_arn(PROJECT)
        assert evaluate(policies, "sagemaker:CreateModelPackage", group).decision is Decision.IMPLICIT_DENY


def test_canvas_jobs_run_as_the_persona(persona_policies):
    """Canvas starts its AutoML jobs with the profile's execution role, which the persona may pass to SageMaker."""
    job = f"arn:aws:sagemaker:{REGION}:{DEV}:automl-job/canvas-1733140000-churn"
    passed = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    for role, policies in persona_policies.items():
        assert evaluate(policies, "sagemaker:CreateAutoMLJobV2", job).decision is Decision.ALLOWED
        assert evaluate(policies, "iam:PassRole", role, passed).decision is Decision.ALLOWED
        other = job.replace("canvas-1733140000-churn", "fraud-automl-1")
        assert evaluate(policies, "sagemaker:CreateAutoMLJobV2", other).decision is Decision.IMPLICIT_DENY


# --------------------------------------------------------------------------- governance: the register role


@pytest.fixture(scope="module")
def register(canvas, resolver) -> tuple[dict, list[dict]]:
    """The register role's trust policy and identity policies, resolved."""
    logical = role_logical_id(resolver, REGISTRY, REGISTER_ROLE.rsplit("/", 1)[1])
    role = resolver.resource(REGISTRY, logical)
    trust = resolver.resolve(REGISTRY, role["Properties"]["AssumeRolePolicyDocument"])
    # A trust policy is the role's resource policy with the role as its implied Resource.
    trust = {**trust, "Statement": [{**st, "Resource": REGISTER_ROLE} for st in trust["Statement"]]}
    return trust, role_policies(resolver, REGISTRY, logical)


def _assume(trust: dict, caller: str, action: str = "sts:AssumeRole") -> Decision:
    """Does the trust policy let ``caller`` (whose own policy allows everything) assume the register role?

    IAM needs the trust policy for every caller, also one in the role's own account; the evaluator lets
    an identity policy alone decide within one account, so the role is placed in an account nobody is in.
    """
    return evaluate(
        [ALLOW_ALL],
        action,
        REGISTER_ROLE,
        {"aws:PrincipalArn": caller},
        resource_policy=trust,
        principal_arn=caller,
        resource_account="999999999999",
    ).decision


def test_the_register_role_trusts_exactly_the_projects_dev_personas(register):
    trust, _ = register
    for persona in (SCIENTIST, LEAD):
        assert _assume(trust, persona) is Decision.ALLOWED
        # Studio sessions carry the user profile name as source identity into the chained session.
        assert _assume(trust, persona, "sts:SetSourceIdentity") is Decision.ALLOWED
    strangers = [
        NAMING.role_arn("churn", "dev", "scientist"),
        NAMING.role_arn("fraud", "dev", "lead"),
        NAMING.pipeline_role_arn(PROJECT),
        NAMING.role_arn(PROJECT, "staging", "scientist"),
        NAMING.approver_role_arn(PROJECT),
        f"arn:aws:iam::{DEV}:role/mlops-{PROJECT}-dev-scientist-copy",
    ]
    for caller in strangers:
        assert _assume(trust, caller) is Decision.IMPLICIT_DENY, caller
        assert _assume(trust, caller, "sts:SetSourceIdentity") is Decision.IMPLICIT_DENY, caller
    assert _assume(trust, SCIENTIST, "sts:TagSession") is Decision.IMPLICIT_DENY


def test_the_scientist_may_assume_it_with_its_own_policies(register, persona_policies):
    trust, _ = register
    result = evaluate(
        persona_policies[SCIENTIST],
        "sts:AssumeRole",
        REGISTER_ROLE,
        {"aws:PrincipalArn": SCIENTIST},
        resource_policy=trust,
        principal_arn=SCIENTIST,
        resource_account=GOVERNANCE,
    )
    assert result.decision is Decision.ALLOWED


def test_the_register_role_registers_pending_versions_of_the_project_only(register):
    _, policies = register
    group = NAMING.model_package_group_arn(PROJECT)
    version = NAMING.model_package_arns(PROJECT).replace("*", "7")
    pending = {"sagemaker:ModelApprovalStatus": "PendingManualApproval"}
    for resource in (group, version):
        assert evaluate(policies, "sagemaker:CreateModelPackage", resource, pending).decision is Decision.ALLOWED
        # No status in the request: SageMaker registers a versioned package as PendingManualApproval.
        assert evaluate(policies, "sagemaker:CreateModelPackage", resource).decision is Decision.ALLOWED
        for status in ("Approved", "Rejected"):
            context = {"sagemaker:ModelApprovalStatus": status}
            decision = evaluate(policies, "sagemaker:CreateModelPackage", resource, context).decision
            assert decision is Decision.IMPLICIT_DENY, status
    # The hyphen-prefix trap, the other way round: mlops-churn-eu starts with mlops-churn.
    for other in ("churn", "fraud"):
        for resource in (NAMING.model_package_group_arn(other), NAMING.model_package_arns(other).replace("*", "7")):
            decision = evaluate(policies, "sagemaker:CreateModelPackage", resource, pending).decision
            assert decision is Decision.IMPLICIT_DENY, resource
    tagging = {"sagemaker:TaggingAction": "CreateModelPackage"}
    assert evaluate(policies, "sagemaker:AddTags", version, tagging).decision is Decision.ALLOWED
    assert evaluate(policies, "sagemaker:AddTags", version).decision is Decision.IMPLICIT_DENY
    for action in ("sagemaker:DescribeModelPackageGroup", "sagemaker:ListModelPackages"):
        assert evaluate(policies, action, group).decision is Decision.ALLOWED
    # It can neither approve nor make another group.
    assert evaluate(policies, "sagemaker:UpdateModelPackage", version).decision is Decision.IMPLICIT_DENY
    assert evaluate(policies, "sagemaker:DeleteModelPackage", version).decision is Decision.IMPLICIT_DENY
    canvas_group = group.replace(f"/mlops-{PROJECT}", "/canvas-churn-model")
    assert evaluate(policies, "sagemaker:CreateModelPackageGroup", canvas_group).decision is Decision.IMPLICIT_DENY


def test_the_registry_policy_admits_the_register_role(canvas, resolver, register):
    """Same account as the registry: the role's own policy suffices, and the group's resource policy denies nothing."""
    _, policies = register
    (group,) = _of_type(canvas, REGISTRY, "AWS::SageMaker::ModelPackageGroup").values()
    resource_policy = resolver.resolve(REGISTRY, group["Properties"]["ModelPackageGroupPolicy"])
    result = evaluate(
        policies,
        "sagemaker:CreateModelPackage",
        NAMING.model_package_group_arn(PROJECT),
        {"sagemaker:ModelApprovalStatus": "PendingManualApproval", "aws:PrincipalArn": REGISTER_ROLE},
        resource_policy=resource_policy,
        principal_arn=REGISTER_ROLE,
        resource_account=GOVERNANCE,
    )
    assert result.decision is Decision.ALLOWED


# --------------------------------------------------------------------------- a registered Canvas version can be served


def test_staging_models_can_read_canvas_artifacts(canvas, resolver):
    """A Canvas version's ModelDataUrl lies in the Canvas workspace, under the project's prefix of the dev bucket."""
    baseline = canvas.templates[BASELINE]["Resources"]
    bucket_arn = NAMING.bucket_arn("dev")
    (bucket_policy,) = [
        resolver.resolve(BASELINE, r["Properties"]["PolicyDocument"])
        for r in baseline.values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and resolver.resolve(BASELINE, {"Fn::GetAtt": [r["Properties"]["Bucket"]["Ref"], "Arn"]}) == bucket_arn
    ]
    model_role = NAMING.model_role_arn(PROJECT, "staging")
    policies = role_policies(resolver, SERVING, role_logical_id(resolver, SERVING, model_role.rsplit("/", 1)[1]))
    prefix = NAMING.canvas_artifacts_prefix(PROJECT)
    artifact = f"{bucket_arn}/{prefix}/Canvas/{PROJECT}-bob/Training/output/model.tar.gz"
    result = evaluate(
        policies,
        "s3:GetObject",
        artifact,
        {"aws:SecureTransport": True, "aws:PrincipalArn": model_role},
        resource_policy=bucket_policy,
        principal_arn=model_role,
        resource_account=DEV,
    )
    assert result.decision is Decision.ALLOWED


# --------------------------------------------------------------------------- canvas off, and config


def test_canvas_off_synthesizes_none_of_it(example):
    for stack, template in example.templates.items():
        types = {r["Type"] for r in template["Resources"].values()}
        assert "Custom::CanvasUserSettings" not in types, stack
        names = [
            r["Properties"].get("RoleName") for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Role"
        ]
        assert REGISTER_ROLE.rsplit("/", 1)[1] not in names, stack
        assert not any(logical.startswith("AWS679f53fac002430cb0da5b7982bd2287") for logical in template["Resources"])
        assert not any(logical.startswith("Canvas") for logical in template["Resources"]), stack


def test_canvas_is_off_by_default():
    assert load_config(EXAMPLE_CONFIG).projects["churn"].canvas.enabled is False


def test_canvas_without_a_dev_studio_domain_is_one_config_error(tmp_path):
    platform = example_platform()
    platform["studio"] = {"accounts": ["staging"]}
    churn = example_project()
    churn["canvas"] = {"enabled": True}
    with pytest.raises(ConfigError) as raised:
        load_config(write_config(tmp_path, platform, {"churn": churn}))
    message = str(raised.value)
    assert "\n" not in message
    assert "projects/churn.yaml: canvas.enabled: " in message
    assert "studio.accounts" in message and "dev" in message


def test_canvas_works_with_sso_auth(tmp_path):
    platform = example_platform()
    platform["studio"] = {"accounts": ["dev"], "auth_mode": "SSO"}
    churn = example_project()
    churn["canvas"] = {"enabled": True}
    churn["members"] = [{**m, "sso_user": f"{m['user']}@example.com"} for m in churn["members"]]
    assert load_config(write_config(tmp_path, platform, {"churn": churn})).projects["churn"].canvas.enabled


def test_canvas_section_rejects_unknown_keys(tmp_path):
    churn = example_project()
    churn["canvas"] = {"enabled": True, "direct_deploy": True}
    with pytest.raises(ConfigError, match=r"canvas\.direct_deploy: unknown field; allowed: enabled"):
        load_config(write_config(tmp_path, projects={"churn": churn}))
