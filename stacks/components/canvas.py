"""SageMaker Canvas of one project: its dev user profiles' Canvas settings and its governance register role.

Canvas models take the pipeline's path to an endpoint: Canvas registers a
version into the project's model package group in governance (as
``PendingManualApproval``), and notify, approve, the approval guard, the shadow
test and promotion handle it like any other version. Canvas itself deploys
nothing (``DirectDeploySettings`` off).

CloudFormation's ``AWS::SageMaker::UserProfile`` (and ``Domain``) have no
``CanvasAppSettings``, so :class:`CanvasUserSettings` sets them with one
``UpdateUserProfile`` call per profile, from an ``AwsCustomResource``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import custom_resources as cr
from constructs import Construct

from mlops_platform.approval.policy import PENDING
from mlops_platform.nag import acknowledge, acknowledge_deploy_time_function
from mlops_platform.naming import Naming

# The register role trusts the project's dev persona roles, named by these purposes (components/personas.py).
PERSONA_PURPOSES = ("scientist", "lead")
# SageMaker's own "profile or domain no longer there" answers: deleting settings of a gone profile is done.
GONE = "ResourceNotFound|ValidationException"
# What a profile keeps when its Canvas settings resource is deleted: no registration, no deployment.
WITHDRAWN = {"ModelRegisterSettings": {"Status": "DISABLED"}, "DirectDeploySettings": {"Status": "DISABLED"}}
# Canvas names the jobs and models it creates after itself (the AmazonSageMakerCanvasFullAccess
# managed policy scopes them the same way); it adds no project tag, so these are account-wide in dev.
CANVAS_NAMES = ("*canvas*", "*Canvas*")
CANVAS_KINDS = {"automl-job": "AutoMLJob", "transform-job": "TransformJob", "model": "Model"}


def canvas_app_settings(naming: Naming, project: str, key_arn: str) -> dict[str, Any]:
    """``UserSettings.CanvasAppSettings`` of every dev user profile of ``project`` (UpdateUserProfile shape)."""
    bucket = naming.artifacts_bucket("dev")
    return {
        "ModelRegisterSettings": {
            "Status": "ENABLED",
            "CrossAccountModelRegisterRoleArn": naming.canvas_register_role_arn(project),
        },
        # Versions reach endpoints only through approval, the guard and the deploy pipeline.
        "DirectDeploySettings": {"Status": "DISABLED"},
        # Under the project's prefix, which the serving stages' model roles may read (with the dev key):
        # a registered Canvas version's ModelDataUrl points here.
        "WorkspaceSettings": {
            "S3ArtifactPath": f"s3://{bucket}/{naming.canvas_artifacts_prefix(project)}/",
            "S3KmsKeyId": key_arn,
        },
    }


def settings_digest(profile: sagemaker.CfnUserProfile) -> str:
    """SHA-256 of the profile's user settings as synthesized (CloudFormation intrinsics, not deploy-time values)."""
    resolved = Stack.of(profile).resolve(profile.user_settings)
    return hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()


class CanvasUserSettings(Construct):
    """Canvas settings of a project's dev user profiles, and the Canvas permissions of the roles they run as.

    ``profiles``: each user profile with the key in ``roles`` of its execution
    role (a persona role of :class:`~stacks.components.personas.PersonaRoles`). Per profile, one
    ``UpdateUserProfile`` on create and update sets
    :func:`canvas_app_settings`; on delete it switches model registration off
    (direct deployment stays off) and tolerates a profile that is gone (the
    profiles are retained). Each role
    gets one extra managed policy: assume the governance register role, run the
    Canvas app of its own profiles, and run the AutoML and batch-transform jobs
    Canvas starts (names containing ``canvas``).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        naming: Naming,
        project: str,
        key: kms.IKey,
        profiles: Sequence[tuple[sagemaker.CfnUserProfile, str]],
        roles: Mapping[str, iam.IRole],
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        arn = f"arn:aws:sagemaker:{stack.region}:{stack.account}"
        settings = canvas_app_settings(naming, project, key.key_arn)
        for profile, _ in sorted(profiles, key=lambda pair: pair[0].user_profile_name):
            name = profile.user_profile_name
            target = {"DomainId": profile.domain_id, "UserProfileName": name}
            profile_settings = profile.user_settings
            if not isinstance(profile_settings, sagemaker.CfnUserProfile.UserSettingsProperty):
                raise TypeError(f"{profile.node.path}: user settings must be a UserSettingsProperty")
            execution_role = profile_settings.execution_role
            if execution_role is None:
                raise ValueError(f"{profile.node.path}: a Canvas user needs the execution role of its persona")
            # The call repeats the profile's role and security groups: whether UpdateUserProfile merges
            # UserSettings or replaces them is not documented, and a replacement must not clear them.
            kept = {"ExecutionRole": execution_role, "SecurityGroups": list(profile_settings.security_groups or [])}
            apply = cr.AwsSdkCall(
                service="SageMaker",
                action="updateUserProfile",
                parameters={**target, "UserSettings": {**kept, "CanvasAppSettings": settings}},
                physical_resource_id=cr.PhysicalResourceId.of(f"canvas-settings-{name}"),
            )
            resource = cr.AwsCustomResource(
                self,
                _pascal(name),
                resource_type="Custom::CanvasUserSettings",
                on_create=apply,
                on_update=apply,
                on_delete=cr.AwsSdkCall(
                    service="SageMaker",
                    action="updateUserProfile",
                    # Direct deployment stays off: whether SageMaker merges or replaces CanvasAppSettings is
                    # not documented, and a replaced one must not fall back to a default that deploys.
                    parameters={**target, "UserSettings": {**kept, "CanvasAppSettings": WITHDRAWN}},
                    ignore_error_codes_matching=GONE,
                ),
                policy=cr.AwsCustomResourcePolicy.from_statements(
                    [
                        iam.PolicyStatement(
                            actions=["sagemaker:UpdateUserProfile"], resources=[profile.attr_user_profile_arn]
                        ),
                        # Naming the profile's execution role in the call passes it to SageMaker again.
                        iam.PolicyStatement(
                            actions=["iam:PassRole"],
                            resources=[execution_role],
                            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
                        ),
                    ]
                ),
                # The Lambda runtime's SDK (assumed to know CanvasAppSettings, in the API since 2023); installing
                # the latest needs npm and the internet at deploy time.
                install_latest_aws_sdk=False,
            )
            resource.node.add_dependency(profile)
            # Unproven assumption: a CloudFormation update of the profile may reset user settings its template
            # does not know (CanvasAppSettings). The digest of the profile's synthesized settings changes with
            # every such update, which makes CloudFormation update this resource too, after the profile, and
            # re-apply the Canvas settings. It is a resource property the handler ignores, not an SDK parameter.
            cfn = resource.node.find_child("Resource").node.default_child
            if not isinstance(cfn, CfnResource):
                raise TypeError(f"{resource.node.path}: no CloudFormation resource to carry the settings digest")
            cfn.add_property_override("ProfileSettingsDigest", settings_digest(profile))
            self._acknowledge_handler_policy(resource)
        self._acknowledge_handler(stack)

        self.policies: list[iam.ManagedPolicy] = []
        for persona in sorted({persona for _, persona in profiles}):
            role = roles[persona]
            own = [profile for profile, runs_as in profiles if runs_as == persona]
            # Any domain id (a deploy-time value cannot name a nag acknowledgement); dev has one domain.
            apps = [f"{arn}:app/*/{name}/*" for name in sorted(p.user_profile_name for p in own)]
            jobs = [f"{arn}:{kind}/{pattern}" for kind in CANVAS_KINDS for pattern in CANVAS_NAMES]
            automl = [f"{arn}:automl-job/{pattern}" for pattern in CANVAS_NAMES]
            policy = iam.ManagedPolicy(
                self,
                f"{_pascal(persona)}Policy",
                description=f"SageMaker Canvas of project {project} for its Studio profiles that run as this role",
                roles=[role],
                statements=[
                    iam.PolicyStatement(
                        sid="RegisterThroughGovernance",
                        actions=["sts:AssumeRole"],
                        resources=[naming.canvas_register_role_arn(project)],
                    ),
                    # Canvas is an app of the user profile itself, not of a space: the space-owner keys
                    # of the persona policy do not apply to it.
                    iam.PolicyStatement(
                        sid="OwnCanvasApps", actions=["sagemaker:CreateApp", "sagemaker:DeleteApp"], resources=apps
                    ),
                    iam.PolicyStatement(
                        sid="CanvasJobs",
                        actions=[
                            "sagemaker:CreateAutoMLJob",
                            "sagemaker:CreateAutoMLJobV2",
                            "sagemaker:DescribeAutoMLJob",
                            "sagemaker:DescribeAutoMLJobV2",
                            "sagemaker:ListCandidatesForAutoMLJob",
                            "sagemaker:StopAutoMLJob",
                        ],
                        resources=automl,
                    ),
                    iam.PolicyStatement(
                        sid="CanvasBatchPredictions",
                        actions=[
                            "sagemaker:CreateModel",
                            "sagemaker:DescribeModel",
                            "sagemaker:DeleteModel",
                            "sagemaker:CreateTransformJob",
                            "sagemaker:DescribeTransformJob",
                            "sagemaker:StopTransformJob",
                        ],
                        resources=[r for r in jobs if ":automl-job/" not in r],
                    ),
                    iam.PolicyStatement(
                        sid="TagCanvasJobsOnCreate",
                        actions=["sagemaker:AddTags"],
                        resources=jobs,
                        conditions={
                            "StringEquals": {
                                "sagemaker:TaggingAction": [
                                    "CreateAutoMLJob",
                                    "CreateAutoMLJobV2",
                                    "CreateModel",
                                    "CreateTransformJob",
                                ]
                            }
                        },
                    ),
                    iam.PolicyStatement(
                        sid="ListCanvasJobs",
                        actions=["sagemaker:ListAutoMLJobs", "sagemaker:ListTransformJobs", "sagemaker:ListModels"],
                        resources=["*"],
                    ),
                ],
            )
            acknowledge(
                policy,
                "AwsSolutions-IAM5[Resource::*]",
                "SageMaker ListAutoMLJobs, ListTransformJobs and ListModels have no resource-level permissions.",
            )
            for app in apps:
                acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::{app}]",
                    "Apps of this role's own user profiles (Canvas is a user-profile app; SageMaker names apps).",
                )
            for job in jobs:
                acknowledge(
                    policy,
                    f"AwsSolutions-IAM5[Resource::{job}]",
                    "Canvas names its AutoML jobs, models and transform jobs after itself and tags them with no "
                    "project; CreateEndpoint is not granted, so nothing here serves.",
                )
            self.policies.append(policy)

    def _acknowledge_handler_policy(self, resource: cr.AwsCustomResource) -> None:
        policy = resource.node.find_child("CustomResourcePolicy")
        acknowledge(
            policy.node.default_child or policy,
            "NIST.800.53.R5-IAMNoInlinePolicy",
            f"{HANDLER_WHY}; CDK writes each call's grant inline: sagemaker:UpdateUserProfile on one user profile.",
        )

    def _acknowledge_handler(self, stack: Stack) -> None:
        """The stack's one AwsCustomResource handler (a CDK singleton): the findings and why they are acceptable."""
        function = stack.node.find_child(HANDLER_ID)
        acknowledge_deploy_time_function(
            function,
            HANDLER_WHY,
            invoked="one invocation per profile and deployment",
            reaches="it only calls the SageMaker API",
        )
        acknowledge(
            function.node.find_child("ServiceRole"),
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            f"{HANDLER_WHY}; the basic policy only lets it write its logs.",
        )


# The id CDK gives the AwsCustomResource handler (a SingletonFunction, one per stack).
HANDLER_ID = "AWS679f53fac002430cb0da5b7982bd2287"
HANDLER_WHY = "CDK's AwsCustomResource function, invoked synchronously by CloudFormation at deploy time only"


class CanvasRegisterRole(Construct):
    """The governance role (purpose ``canvas-register``) that Canvas assumes to register a project's versions.

    Trusted by exactly the project's dev persona roles (the execution roles of
    its dev user profiles), by ``aws:PrincipalArn`` on the dev account so that
    the trust is valid before those roles exist; they may also carry their STS
    source identity (the Studio user profile name) into the session. It may
    create versions in the project's model package group only, and only as
    ``PendingManualApproval`` (or without a status, which SageMaker registers as
    pending), so approval stays with the approvers and the guard.
    """

    def __init__(self, scope: Construct, id: str, *, naming: Naming, project: str) -> None:
        super().__init__(scope, id)
        personas = sorted(naming.role_arn(project, "dev", purpose) for purpose in PERSONA_PURPOSES)
        trusted = iam.AccountPrincipal(naming.account("dev")).with_conditions(
            {"ArnEquals": {"aws:PrincipalArn": personas}}
        )
        self.role = iam.Role(
            self,
            "Resource",
            role_name=naming.role_name(project, "governance", "canvas-register"),
            description=f"SageMaker Canvas in dev registers {project} versions (pending approval) into its group",
            assumed_by=trusted,
        )
        # Studio sessions carry the user profile name as source identity; assuming on keeps it (role chaining).
        self.role.assume_role_policy.add_statements(  # type: ignore[union-attr]
            iam.PolicyStatement(actions=["sts:SetSourceIdentity"], principals=[trusted])
        )
        group = naming.model_package_group_arn(project)
        versions = naming.model_package_arns(project)
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"Register pending versions of {project} from SageMaker Canvas",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="RegisterPendingVersions",
                    actions=["sagemaker:CreateModelPackage"],
                    resources=[group, versions],
                    # Absent, SageMaker registers a versioned package as PendingManualApproval.
                    conditions={"StringEqualsIfExists": {"sagemaker:ModelApprovalStatus": PENDING}},
                ),
                iam.PolicyStatement(
                    sid="TagVersionsOnRegister",
                    actions=["sagemaker:AddTags"],
                    resources=[versions],
                    conditions={"StringEquals": {"sagemaker:TaggingAction": "CreateModelPackage"}},
                ),
                iam.PolicyStatement(
                    sid="ReadProjectGroup",
                    actions=[
                        "sagemaker:DescribeModelPackageGroup",
                        "sagemaker:DescribeModelPackage",
                        "sagemaker:ListModelPackages",
                    ],
                    resources=[group, versions],
                ),
            ],
        )
        acknowledge(
            self.policy,
            f"AwsSolutions-IAM5[Resource::{versions}]",
            "Versions of this project's model package group only.",
        )


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))
