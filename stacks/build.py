"""Dev account, per project: the model build (pipeline execution role; the pipeline itself)."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from mlops_platform.config import ProjectSettings
from mlops_platform.naming import Naming
from stacks.baseline import BaselineStack
from stacks.components.roles import ServiceRole


class BuildStack(Stack):
    """Everything that builds and registers the project's model in dev; stateless, safe to rebuild.

    The pipeline execution role has a fixed name because the governance
    registry policy trusts it by ARN (see ``Naming.pipeline_role_arn``).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        project: ProjectSettings,
        naming: Naming,
        baseline: BaselineStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        name = project.name
        project_objects = f"{naming.bucket_arn('dev')}/{naming.project_prefix(name)}/*"
        self.pipeline_role = ServiceRole(
            self,
            "PipelineRole",
            service="sagemaker.amazonaws.com",
            role_name=naming.role_name(name, "dev", "pipeline"),
            description=f"Runs the {name} pipeline and its jobs; registers versions in governance",
            key=baseline.key,
            statements=[
                iam.PolicyStatement(
                    sid="ProjectArtifacts",
                    actions=["s3:GetObject", "s3:PutObject", "s3:GetObjectVersion", "s3:AbortMultipartUpload"],
                    resources=[project_objects],
                ),
                iam.PolicyStatement(
                    sid="ListProjectPrefix",
                    actions=["s3:ListBucket"],
                    resources=[naming.bucket_arn("dev")],
                    conditions={"StringLike": {"s3:prefix": [f"{naming.project_prefix(name)}/*"]}},
                ),
                iam.PolicyStatement(
                    sid="RegisterInGovernance",
                    actions=["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackageGroup"],
                    resources=[naming.model_package_group_arn(name), naming.model_package_arns(name)],
                ),
            ],
        )
        self.pipeline_role.acknowledge(
            f"AwsSolutions-IAM5[Resource::{project_objects}]",
            "Limited to the project's prefix of the dev artifacts bucket.",
        )
        self.pipeline_role.acknowledge(
            f"AwsSolutions-IAM5[Resource::{naming.model_package_arns(name)}]",
            "Versions of this project's model package group only.",
        )
