"""Governance account: the central model registry and the approval workflow, per project."""

from __future__ import annotations

import hashlib

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlops_platform.config import SERVING_STAGES, ProjectSettings
from mlops_platform.naming import Naming


def registry_policy(naming: Naming, project: str) -> dict:
    """Resource policy of a project's model package group.

    The dev pipeline role registers versions; the dev lead approves them; the
    staging/prod model roles and CloudFormation deploy roles read them to create
    models. Each is named by ``aws:PrincipalArn`` on its account root, so the
    policy is valid before those roles exist in their accounts.
    """
    group = naming.model_package_group_arn(project)
    versions = naming.model_package_arns(project)
    readers = [naming.model_role_arn(project, stage) for stage in SERVING_STAGES] + [
        naming.cdk_deploy_role_arn(stage) for stage in SERVING_STAGES
    ]

    def statement(sid: str, role_arns: list[str], actions: list[str]) -> dict:
        accounts = sorted({arn.split(":")[4] for arn in role_arns})
        return {
            "Sid": sid,
            "Effect": "Allow",
            "Principal": {"AWS": [f"arn:aws:iam::{a}:root" for a in accounts]},
            "Action": actions,
            "Resource": [group, versions],
            "Condition": {"ArnEquals": {"aws:PrincipalArn": sorted(set(role_arns))}},
        }

    return {
        "Version": "2012-10-17",
        "Statement": [
            statement(
                "RegisterFromDevPipeline",
                [naming.pipeline_role_arn(project)],
                ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackageGroup"],
            ),
            statement(
                "ReviewByDevLead",
                [naming.role_arn(project, "dev", "lead")],
                [
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:ListModelPackages",
                    "sagemaker:UpdateModelPackage",
                ],
            ),
            statement(
                "DeployToServingStages",
                readers,
                [
                    "sagemaker:DescribeModelPackage",
                    "sagemaker:DescribeModelPackageGroup",
                    "sagemaker:ListModelPackages",
                ],
            ),
        ],
    }


class RegistryStack(Stack):
    """The project's model package group in the central registry; retained, termination-protected."""

    def __init__(self, scope: Construct, id: str, *, project: ProjectSettings, naming: Naming, **kwargs) -> None:
        super().__init__(scope, id, termination_protection=True, **kwargs)
        self.group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=naming.model_package_group(project.name),
            model_package_group_description=project.description or f"Model versions of {project.name}",
            model_package_group_policy=registry_policy(naming, project.name),
        )
        self.group.apply_removal_policy(RemovalPolicy.RETAIN)


class ApprovalStack(Stack):
    """The project's approval workflow; holds the approvers' KMS-encrypted SNS topic."""

    def __init__(
        self, scope: Construct, id: str, *, project: ProjectSettings, naming: Naming, key: kms.IKey, **kwargs
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.topic = sns.Topic(
            self,
            "ApproverTopic",
            display_name=f"Model approvals for {project.name}",
            master_key=key,
            enforce_ssl=True,
        )
        for owner in project.owners:
            sns.Subscription(
                self,
                f"Owner{hashlib.sha256(owner.encode()).hexdigest()[:8]}",
                topic=self.topic,
                protocol=sns.SubscriptionProtocol.EMAIL,
                endpoint=owner,
            )
