"""Studio persona roles of one project in one account: data scientist and lead."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops_platform.naming import PROJECT_TAG, Naming
from stacks.components.roles import ServiceRole

# Actions without resource-level permissions (Service Authorization Reference,
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonsagemaker.html):
# Studio lists apps, spaces, domains and profiles; the SDK lists jobs and pipelines.
LIST_ACTIONS = (
    "sagemaker:ListApps",
    "sagemaker:ListDomains",
    "sagemaker:ListFeatureGroups",
    "sagemaker:ListPipelines",
    "sagemaker:ListProcessingJobs",
    "sagemaker:ListSpaces",
    "sagemaker:ListTrainingJobs",
    "sagemaker:ListUserProfiles",
    "sagemaker:Search",
)
JOB_KINDS = {"processing-job": "ProcessingJob", "training-job": "TrainingJob"}


class PersonaRoles(Construct):
    """Execution roles for a project's Studio user profiles.

    The data scientist opens Studio, owns private JupyterLab spaces and their apps,
    runs processing and training jobs named ``<prefix>-<project>-*`` and tagged
    ``mlops:project=<project>``, passes only the project's roles to SageMaker,
    reads and writes the project's S3 prefix with the account key and, in dev, the
    records of the project's feature groups and the executions of its pipeline.
    The lead may also review and approve versions in the project's model package
    group in the governance account. Neither gets a ``*FullAccess`` managed policy.

    Domain, user-profile, space and app permissions name the user profiles of this
    stack whose execution role is the persona's role; they are added when the app
    is synthesized, so profiles created after this construct count. A role that no
    profile uses gets none of them.
    """

    def __init__(self, scope: Construct, id: str, *, naming: Naming, project: str, role: str, key: kms.IKey) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self._arn = f"arn:aws:sagemaker:{stack.region}:{stack.account}"
        arn = self._arn
        scoped = f"{naming.prefix}-{project}"
        bucket_arn = naming.bucket_arn(role)
        project_objects = f"{bucket_arn}/{naming.project_prefix(project)}/*"
        studio_resources = [f"{arn}:space/*", f"{arn}:app/*"]
        jobs = [f"{arn}:{kind}/{scoped}-*" for kind in JOB_KINDS]
        feature_groups = f"{arn}:feature-group/{scoped}-*"
        pipeline = f"{arn}:pipeline/{naming.pipeline_name(project)}"
        executions = f"{pipeline}/execution/*"
        tagged_project = {"StringEquals": {f"aws:ResourceTag/{PROJECT_TAG}": project}}
        common = [
            iam.PolicyStatement(sid="StudioAndJobLists", actions=list(LIST_ACTIONS), resources=["*"]),
            # The Describe calls carry no owner key (only Create/Update/DeleteSpace and
            # Create/DeleteApp do), and Studio polls them for every space it lists.
            iam.PolicyStatement(
                sid="DescribeStudioSpacesAndApps",
                actions=["sagemaker:DescribeSpace", "sagemaker:DescribeApp"],
                resources=studio_resources,
            ),
            # Studio tags the spaces and apps it creates; AddTags is then part of the create call.
            iam.PolicyStatement(
                sid="TagStudioResourcesOnCreate",
                actions=["sagemaker:AddTags"],
                resources=studio_resources,
                conditions={"StringEquals": {"sagemaker:TaggingAction": ["CreateApp", "CreateSpace"]}},
            ),
            iam.PolicyStatement(
                sid="StartProjectJobs",
                actions=[f"sagemaker:Create{name}" for name in JOB_KINDS.values()],
                resources=jobs,
                conditions={"StringEquals": {f"aws:RequestTag/{PROJECT_TAG}": project}},
            ),
            iam.PolicyStatement(
                sid="TagProjectJobsOnCreate",
                actions=["sagemaker:AddTags"],
                resources=jobs,
                conditions={
                    "StringEquals": {
                        f"aws:RequestTag/{PROJECT_TAG}": project,
                        "sagemaker:TaggingAction": [f"Create{name}" for name in JOB_KINDS.values()],
                    }
                },
            ),
            iam.PolicyStatement(
                sid="WatchProjectJobs",
                actions=[f"sagemaker:{verb}{name}" for name in JOB_KINDS.values() for verb in ("Describe", "Stop")],
                resources=jobs,
                conditions=tagged_project,
            ),
            iam.PolicyStatement(
                sid="ProjectData",
                actions=[
                    "s3:GetObject",
                    "s3:GetObjectVersion",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                ],
                resources=[project_objects],
            ),
            iam.PolicyStatement(
                sid="ListProjectPrefix",
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{naming.project_prefix(project)}/*"]}},
            ),
        ]
        if role == "dev":  # the project's feature groups and pipeline live in dev only
            common += [
                iam.PolicyStatement(
                    sid="ProjectFeatureRecords",
                    actions=[
                        "sagemaker:DescribeFeatureGroup",
                        "sagemaker:GetRecord",
                        "sagemaker:BatchGetRecord",
                        "sagemaker:PutRecord",
                        "sagemaker:DeleteRecord",
                    ],
                    resources=[feature_groups],
                    conditions=tagged_project,
                ),
                iam.PolicyStatement(
                    sid="StartProjectPipeline",
                    actions=[
                        "sagemaker:DescribePipeline",
                        "sagemaker:ListPipelineExecutions",
                        "sagemaker:StartPipelineExecution",
                    ],
                    resources=[pipeline],
                ),
                iam.PolicyStatement(
                    sid="WatchProjectPipelineExecutions",
                    actions=[
                        "sagemaker:DescribePipelineExecution",
                        "sagemaker:DescribePipelineDefinitionForExecution",
                        "sagemaker:ListPipelineExecutionSteps",
                        "sagemaker:ListPipelineParametersForExecution",
                        "sagemaker:StopPipelineExecution",
                    ],
                    resources=[executions],
                ),
            ]
        review = iam.PolicyStatement(
            sid="ReviewAndApproveInRegistry",
            actions=[
                "sagemaker:DescribeModelPackage",
                "sagemaker:DescribeModelPackageGroup",
                "sagemaker:ListModelPackages",
                "sagemaker:UpdateModelPackage",
            ],
            resources=[naming.model_package_group_arn(project), naming.model_package_arns(project)],
        )
        personas = {
            "DataScientist": ("scientist", "Studio data scientist", []),
            "Lead": ("lead", "Studio lead (model approver)", [review]),
        }
        self.roles: dict[str, iam.Role] = {}
        self._personas: dict[str, tuple[ServiceRole, str]] = {}
        for construct_id, (suffix, title, extra) in personas.items():
            # Jobs run as the persona itself or, in dev, as the project's pipeline role.
            passable = [naming.role_arn(project, role, suffix)]
            if role == "dev":
                passable.append(naming.pipeline_role_arn(project))
            pass_roles = iam.PolicyStatement(
                sid="PassProjectRolesToSageMaker",
                actions=["iam:PassRole"],
                resources=passable,
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            )
            persona = ServiceRole(
                self,
                construct_id,
                service="sagemaker.amazonaws.com",
                role_name=naming.role_name(project, role, suffix),
                description=f"{title} of project {project}",
                statements=[*common, pass_roles, *extra],
                key=key,
                # The Studio domain sets each session's source identity to the user profile name.
                source_identity=True,
            )
            self.roles[construct_id] = persona.role
            self._personas[construct_id] = (persona, naming.role_arn(project, role, suffix))
            persona.acknowledge(
                "AwsSolutions-IAM5[Resource::*]",
                "Only the list statement uses '*': SageMaker List* and Search have no resource-level permissions.",
            )
            for resource in studio_resources:
                persona.acknowledge(
                    f"AwsSolutions-IAM5[Resource::{resource}]",
                    "Studio spaces and apps of this account: Create/Update/Delete are limited to spaces the "
                    "project's own user profiles own (sagemaker:OwnerUserProfileArn, private spaces only); "
                    "Describe has no owner key and AddTags only applies within those create calls.",
                )
            for resource in jobs:
                persona.acknowledge(
                    f"AwsSolutions-IAM5[Resource::{resource}]",
                    f"Jobs named '{scoped}-*' (names are chosen per run) that carry the tag {PROJECT_TAG}={project}.",
                )
            persona.acknowledge(
                f"AwsSolutions-IAM5[Resource::{project_objects}]",
                "The project's own prefix of the account's artifacts bucket.",
            )
            if role == "dev":
                persona.acknowledge(
                    f"AwsSolutions-IAM5[Resource::{feature_groups}]",
                    f"The project's feature groups: named '{scoped}-*' and tagged {PROJECT_TAG}={project}.",
                )
                persona.acknowledge(
                    f"AwsSolutions-IAM5[Resource::{executions}]",
                    "Executions of the project's own pipeline; SageMaker generates their ids.",
                )
            if construct_id == "Lead":
                persona.acknowledge(
                    f"AwsSolutions-IAM5[Resource::{naming.model_package_arns(project)}]",
                    "Versions of this project's model package group only.",
                )
        self.data_scientist = self.roles["DataScientist"]
        self.lead = self.roles["Lead"]

    def bind_user_profiles(self, profiles: Sequence[sagemaker.CfnUserProfile]) -> None:
        """Let each role open Studio and own private spaces as the ``profiles`` that run as it (call once)."""
        for persona, role_arn in self._personas.values():
            own = sorted(
                (p for p in profiles if _execution_role(p) in (persona.role.role_arn, role_arn)),
                key=lambda p: p.user_profile_name,
            )
            if not own:
                continue
            domains = list(dict.fromkeys(p.domain_id for p in own))
            profile_arns = [f"{self._arn}:user-profile/{p.domain_id}/{p.user_profile_name}" for p in own]
            owned_private = {
                "ArnEquals": {"sagemaker:OwnerUserProfileArn": profile_arns},
                "StringEquals": {"sagemaker:SpaceSharingType": "Private"},
            }
            persona.policy.add_statements(
                iam.PolicyStatement(
                    sid="OpenStudio",
                    actions=["sagemaker:DescribeDomain"],
                    resources=[f"{self._arn}:domain/{domain}" for domain in domains],
                ),
                iam.PolicyStatement(
                    sid="OwnUserProfiles", actions=["sagemaker:DescribeUserProfile"], resources=profile_arns
                ),
                # The owner and sharing keys are what SageMaker offers to tie a space and
                # its apps to a profile (AWS example policy "Give your users access to spaces").
                iam.PolicyStatement(
                    sid="OwnPrivateSpaces",
                    actions=["sagemaker:CreateSpace", "sagemaker:UpdateSpace", "sagemaker:DeleteSpace"],
                    resources=[f"{self._arn}:space/*"],
                    conditions=owned_private,
                ),
                iam.PolicyStatement(
                    sid="OwnPrivateSpaceApps",
                    actions=["sagemaker:CreateApp", "sagemaker:DeleteApp"],
                    resources=[f"{self._arn}:app/*"],
                    conditions=owned_private,
                ),
            )


def _execution_role(profile: sagemaker.CfnUserProfile) -> str | None:
    settings = profile.user_settings
    if settings is None:
        return None
    if not isinstance(settings, sagemaker.CfnUserProfile.UserSettingsProperty):
        raise TypeError(f"{profile.node.path}: user_settings must be a UserSettingsProperty to find its role")
    return settings.execution_role
