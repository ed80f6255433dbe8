"""Governance account: the central model registry and the approval workflow, per project."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from mlops_platform.config import SERVING_STAGES, ProjectSettings
from mlops_platform.nag import acknowledge
from mlops_platform.naming import Naming
from stacks.components.event_function import EventFunction
from stacks.components.lambda_asset import bundled_asset

# Thin handlers; synth bundles the approval core package next to them.
APPROVAL_HANDLERS = Path(__file__).resolve().parent.parent / "lambda" / "approval"
APPROVAL_CORE = "mlops_platform.approval"


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
    """The project's approval workflow on the governance account's default event bus.

    Three handlers from ``lambda/approval`` (notify on ``PendingManualApproval``,
    guard on ``Approved``, rejected on ``Rejected``), each behind a rule that
    matches only this project's model package group, with one dead-letter queue,
    and the approvers' KMS-encrypted SNS topic (the owners subscribe by email).
    ``reserved_concurrency``: per handler; default none (see :class:`EventFunction`).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        project: ProjectSettings,
        naming: Naming,
        policy: dict,
        key: kms.IKey,
        releases: dynamodb.ITableV2,
        reserved_concurrency: int | None = None,
        **kwargs,
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
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(self.dead_letters, "AwsSolutions-SQS3", "This queue is the dead-letter queue itself.")

        group = naming.model_package_group(project.name)
        versions = naming.model_package_arns(project.name)
        evaluation_reports = f"{naming.bucket_arn('dev')}/{naming.project_prefix(project.name)}/*"
        deploy_pipeline = f"arn:aws:codepipeline:{self.region}:{self.account}:{naming.deploy_pipeline()}"
        environment = {
            "TOPIC_ARN": self.topic.topic_arn,
            "RELEASES_TABLE": naming.releases_table(),
            "DEPLOY_PIPELINE_NAME": naming.deploy_pipeline(),
            "APPROVAL_POLICY": json.dumps(policy, sort_keys=True),
        }
        table = releases.table_arn
        publish = iam.PolicyStatement(sid="Notify", actions=["sns:Publish"], resources=[self.topic.topic_arn])
        describe = iam.PolicyStatement(
            sid="ReadVersions", actions=["sagemaker:DescribeModelPackage"], resources=[versions]
        )
        read_report = iam.PolicyStatement(
            sid="ReadEvaluationReport", actions=["s3:GetObject"], resources=[evaluation_reports]
        )
        decrypt_dev = iam.PolicyStatement(
            sid="DecryptDevArtifacts",
            actions=["kms:Decrypt"],
            resources=[naming.key_arn_pattern("dev")],
            conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": naming.key_alias("dev")}},
        )
        deploy = iam.PolicyStatement(
            sid="StartDeployment", actions=["codepipeline:StartPipelineExecution"], resources=[deploy_pipeline]
        )

        def records(*actions: str) -> iam.PolicyStatement:
            return iam.PolicyStatement(sid="Releases", actions=[f"dynamodb:{a}" for a in actions], resources=[table])

        handlers = {
            "Notify": (
                "notify",
                "PendingManualApproval",
                "Tell approvers about a new version",
                [describe, read_report, decrypt_dev, publish, records("PutItem", "DeleteItem")],
            ),
            "Guard": (
                "guard",
                "Approved",
                "Check an approval against the policy; release or revert it",
                [
                    describe,
                    read_report,
                    decrypt_dev,
                    publish,
                    deploy,
                    iam.PolicyStatement(
                        sid="RevertApproval", actions=["sagemaker:UpdateModelPackage"], resources=[versions]
                    ),
                    records("PutItem", "GetItem", "UpdateItem"),
                ],
            ),
            "Rejected": (
                "rejected",
                "Rejected",
                "Report a rejection; roll back a released version",
                [describe, publish, deploy, records("Query", "GetItem", "PutItem", "UpdateItem", "DeleteItem")],
            ),
        }
        code_dir = bundled_asset(APPROVAL_HANDLERS, APPROVAL_CORE)
        self.functions: dict[str, EventFunction] = {}
        for construct_id, (kind, status, description, statements) in handlers.items():
            function = EventFunction(
                self,
                construct_id,
                code_dir=code_dir,
                handler=f"{kind}.handler",
                description=f"{project.name}: {description}",
                function_name=f"{naming.prefix}-{project.name}-approval-{kind}",
                role_name=naming.role_name(project.name, "governance", kind),
                event_pattern=events.EventPattern(
                    source=["aws.sagemaker"],
                    detail_type=["SageMaker Model Package State Change"],
                    detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": [status]},
                ),
                environment=environment,
                statements=statements,
                key=key,
                dead_letter_queue=self.dead_letters,
                reserved_concurrency=reserved_concurrency,
            )
            function.role.acknowledge(
                f"AwsSolutions-IAM5[Resource::{versions}]", "Versions of this project's model package group only."
            )
            if kind != "rejected":
                function.role.acknowledge(
                    f"AwsSolutions-IAM5[Resource::{evaluation_reports}]",
                    "Evaluation reports under the project's prefix of the dev artifacts bucket.",
                )
                function.role.acknowledge(
                    f"AwsSolutions-IAM5[Resource::{naming.key_arn_pattern('dev')}]",
                    "Key ids differ per account; kms:ResourceAliases pins the dev platform key.",
                )
            self.functions[construct_id] = function

        # Dead letters are seen: any visible message in the DLQ tells the project's owners (the topic they
        # subscribe to); `mlops dlq list` shows them.
        self.dead_letter_alarm = cloudwatch.Alarm(
            self,
            "DeadLettersAlarm",
            alarm_description=f"{project.name}: approval events the handlers could not process are waiting in the "
            "dead-letter queue (mlops dlq list)",
            metric=self.dead_letters.metric_approximate_number_of_messages_visible(
                period=Duration.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.dead_letter_alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))
