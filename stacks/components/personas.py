"""Studio persona roles of one project in one account: data scientist and lead."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlops_platform.naming import Naming
from stacks.components.roles import ServiceRole

# SageMaker resource types a project member creates and works with; each is
# scoped to names that start with "<prefix>-<project>".
PROJECT_RESOURCE_TYPES = (
    "processing-job",
    "training-job",
    "transform-job",
    "hyper-parameter-tuning-job",
    "pipeline",
    "experiment",
    "experiment-trial",
    "experiment-trial-component",
    "feature-group",
    "model",
)


class PersonaRoles(Construct):
    """Execution roles for a project's Studio user profiles.

    The data scientist works on the project's own SageMaker resources, its S3
    prefix in the account's artifacts bucket and the account key. The lead may
    also review and approve versions in the project's model package group in the
    governance account. Neither gets a ``*FullAccess`` managed policy.
    """

    def __init__(self, scope: Construct, id: str, *, naming: Naming, project: str, role: str, key: kms.IKey) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        arn = f"arn:aws:sagemaker:{stack.region}:{stack.account}"
        scoped = f"{naming.prefix}-{project}"
        bucket_arn = naming.bucket_arn(role)
        project_objects = f"{bucket_arn}/{naming.project_prefix(project)}/*"
        own_apps = [f"{arn}:app/*/{project}-*/*", f"{arn}:user-profile/*/{project}-*"]
        common = [
            iam.PolicyStatement(
                sid="ProjectResources",
                actions=[
                    "sagemaker:Create*",
                    "sagemaker:Describe*",
                    "sagemaker:Update*",
                    "sagemaker:Stop*",
                    "sagemaker:StartPipelineExecution",
                    "sagemaker:AddTags",
                ],
                resources=[f"{arn}:{kind}/{scoped}*" for kind in PROJECT_RESOURCE_TYPES],
            ),
            iam.PolicyStatement(
                sid="OwnStudioApps",
                actions=["sagemaker:CreateApp", "sagemaker:DeleteApp", "sagemaker:DescribeApp"],
                resources=own_apps,
            ),
            iam.PolicyStatement(
                sid="ListAndSearch",
                actions=["sagemaker:List*", "sagemaker:Search", "sagemaker:GetSearchSuggestions"],
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="ProjectData",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:GetObjectVersion"],
                resources=[project_objects],
            ),
            iam.PolicyStatement(
                sid="ListProjectPrefix",
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{naming.project_prefix(project)}/*"]}},
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
            "DataScientist": ("scientist", "Studio data scientist", common),
            "Lead": ("lead", "Studio lead (model approver)", [*common, review]),
        }
        self.roles: dict[str, iam.Role] = {}
        for construct_id, (suffix, title, statements) in personas.items():
            persona = ServiceRole(
                self,
                construct_id,
                service="sagemaker.amazonaws.com",
                role_name=naming.role_name(project, role, suffix),
                description=f"{title} of project {project}",
                statements=statements,
                key=key,
            )
            self.roles[construct_id] = persona.role
            persona.acknowledge(
                "AwsSolutions-IAM5[Action::sagemaker:List*]",
                "SageMaker List and Search actions do not support resource-level permissions.",
            )
            persona.acknowledge(
                "AwsSolutions-IAM5[Resource::*]",
                "Only the List/Search statement uses '*': those actions have no resource ARNs.",
            )
            for action in ("Create", "Describe", "Update", "Stop"):
                persona.acknowledge(
                    f"AwsSolutions-IAM5[Action::sagemaker:{action}*]",
                    f"{action}* is limited to resources named '{scoped}*' of the project's own types.",
                )
            for resource in [f"{arn}:{kind}/{scoped}*" for kind in PROJECT_RESOURCE_TYPES]:
                persona.acknowledge(
                    f"AwsSolutions-IAM5[Resource::{resource}]",
                    "Covers the project's own resources, whose names SageMaker completes per run.",
                )
            for resource in own_apps:
                persona.acknowledge(
                    f"AwsSolutions-IAM5[Resource::{resource}]",
                    "Studio apps and profiles of this project's members only (profile names start with the project).",
                )
            persona.acknowledge(
                f"AwsSolutions-IAM5[Resource::{project_objects}]",
                "The project's own prefix of the account's artifacts bucket.",
            )
            if construct_id == "Lead":
                persona.acknowledge(
                    f"AwsSolutions-IAM5[Resource::{naming.model_package_arns(project)}]",
                    "Versions of this project's model package group only.",
                )
        self.data_scientist = self.roles["DataScientist"]
        self.lead = self.roles["Lead"]
