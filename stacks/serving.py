"""Staging and prod, per project: serving the model versions the governance account released."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from mlops_platform.config import ProjectSettings
from mlops_platform.naming import Naming
from stacks.baseline import BaselineStack
from stacks.components.roles import ServiceRole


class ServingStack(Stack):
    """The project's serving resources in one stage; stateless, safe to rebuild.

    The model execution role has a fixed name because the dev artifacts bucket,
    the dev key and the governance registry trust it by ARN.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        project: ProjectSettings,
        naming: Naming,
        baseline: BaselineStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        model_artifacts = f"{naming.bucket_arn('dev')}/{naming.project_prefix(project.name)}/*"
        dev_keys = naming.key_arn_pattern("dev")
        self.model_role = ServiceRole(
            self,
            "ModelRole",
            service="sagemaker.amazonaws.com",
            role_name=naming.role_name(project.name, stage, "model"),
            description=f"Execution role of {project.name} models in {stage}",
            key=baseline.key,
            statements=[
                iam.PolicyStatement(
                    sid="ReadModelArtifactsFromDev",
                    actions=["s3:GetObject", "s3:GetObjectVersion"],
                    resources=[model_artifacts],
                ),
                iam.PolicyStatement(
                    sid="DecryptWithDevKey",
                    actions=["kms:Decrypt", "kms:DescribeKey"],
                    resources=[dev_keys],
                    conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": naming.key_alias("dev")}},
                ),
            ],
        )
        self.model_role.acknowledge(
            f"AwsSolutions-IAM5[Resource::{model_artifacts}]",
            "Model artifacts of this project only, in the dev artifacts bucket.",
        )
        self.model_role.acknowledge(
            f"AwsSolutions-IAM5[Resource::{dev_keys}]",
            "Key ids differ per account; the kms:ResourceAliases condition pins the dev platform key.",
        )
