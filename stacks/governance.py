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
from constructs import Construct

from mlops_platform.approval.releases import leading_key_patterns as release_keys
from mlops_platform.config import SERVING_STAGES, ProjectSettings
from mlops_platform.nag import acknowledge
from mlops_platform.naming import Naming
from stacks.components.canvas import CanvasRegisterRole
from stacks.components.event_function import EventFunction, dead_letter_queue
from stacks.components.lambda_asset import bundled_asset
from stacks.components.monitoring import retraining_pattern
from stacks.components.roles import ServiceRole

# Thin handlers; synth bundles the approval core package next to them.
APPROVAL_HANDLERS = Path(__file__).resolve().parent.parent / "lambda" / "approval"
APPROVAL_CORE = "mlops_platform.approval"
# Principal tag (IAM user tag or Identity Center session tag) naming the person behind a session.
APPROVER_TAG = "mlops-person"


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
        # With canvas.enabled (default off): the role Canvas in dev registers pending versions through.
        self.canvas_register = (
            CanvasRegisterRole(self, "CanvasRegister", naming=naming, project=project.name)
            if project.canvas.enabled
            else None
        )


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
        self.dead_letters = dead_letter_queue(
            self, "DeadLetters", key=key, queue_name=naming.approval_dead_letter_queue(project.name)
        )

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
        # Without ListBucket a missing report is AccessDenied (an outage); with it, NoSuchKey (a reason).
        list_reports = iam.PolicyStatement(
            sid="ListEvaluationReports",
            actions=["s3:ListBucket"],
            resources=[naming.bucket_arn("dev")],
            conditions={"StringLike": {"s3:prefix": [f"{naming.project_prefix(project.name)}/*"]}},
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
            """Items of this project only: every key of the releases table starts with ``<kind>#<project>#``."""
            return iam.PolicyStatement(
                sid="Releases",
                actions=[f"dynamodb:{a}" for a in actions],
                resources=[table],
                conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": release_keys(project.name)}},
            )

        def state_change(*statuses: str) -> events.EventPattern:
            return events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [group], "ModelApprovalStatus": list(statuses)},
            )

        # The CloudTrail record of the call that approved: it names the caller, who is the approver.
        approved = {"modelApprovalStatus": ["Approved"]}
        approval_call = events.EventPattern(
            source=["aws.sagemaker"],
            detail_type=["AWS API Call via CloudTrail"],
            detail={
                "eventSource": ["sagemaker.amazonaws.com"],
                "errorCode": [{"exists": False}],
                "$or": [
                    {
                        "eventName": ["UpdateModelPackage"],
                        "requestParameters": {**approved, "modelPackageArn": [{"prefix": versions.removesuffix("*")}]},
                    },
                    {
                        "eventName": ["CreateModelPackage"],
                        "requestParameters": {
                            **approved,
                            "modelPackageGroupName": [group, naming.model_package_group_arn(project.name)],
                        },
                    },
                ],
            },
        )
        handlers = {
            "Notify": (
                "notify",
                state_change("PendingManualApproval"),
                "Tell approvers about a new version",
                [describe, read_report, list_reports, decrypt_dev, publish, records("GetItem", "PutItem")],
            ),
            "Guard": (
                "guard",
                approval_call,
                "Check an approval against the policy; release or revert it",
                [
                    describe,
                    read_report,
                    list_reports,
                    decrypt_dev,
                    publish,
                    deploy,
                    iam.PolicyStatement(
                        sid="RevertApproval", actions=["sagemaker:UpdateModelPackage"], resources=[versions]
                    ),
                    records("Query", "PutItem", "GetItem", "UpdateItem"),
                ],
            ),
            "Rejected": (
                "rejected",
                # Approved -> PendingManualApproval withdraws an approval: a revocation like Rejected.
                state_change("Rejected", "PendingManualApproval"),
                "Revoke a rejected or withdrawn version; roll back what it served",
                [
                    describe,
                    publish,
                    deploy,
                    iam.PolicyStatement(
                        sid="RestoreRejection", actions=["sagemaker:UpdateModelPackage"], resources=[versions]
                    ),
                    records("Query", "GetItem", "PutItem", "UpdateItem"),
                ],
            ),
        }
        code_dir = bundled_asset(APPROVAL_HANDLERS, APPROVAL_CORE)
        self.functions: dict[str, EventFunction] = {}
        for construct_id, (kind, pattern, description, statements) in handlers.items():
            function = EventFunction(
                self,
                construct_id,
                code_dir=code_dir,
                handler=f"{kind}.handler",
                description=f"{project.name}: {description}",
                function_name=f"{naming.prefix}-{project.name}-approval-{kind}",
                role_name=naming.role_name(project.name, "governance", kind),
                event_pattern=pattern,
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

        self._relay_retraining(project, naming)

        named = [a for a in project.approval.approvers if not a.startswith("arn:")]
        self.approver_role = (
            self._approver_role(project.name, naming, named, [describe, read_report, list_reports, decrypt_dev])
            if named
            else None
        )

    def _relay_retraining(self, project: ProjectSettings, naming: Naming) -> None:
        """Monitoring alarms of the project's stages travel on to dev, where the retraining trigger starts the pipeline.

        Only alarms raised outside dev's account: those inside it reach the trigger directly.
        """
        monitoring = project.monitoring
        dev = naming.account("dev")
        accounts = sorted({naming.account(stage) for stage in monitoring.stages} - {dev})
        if not (monitoring.enabled and monitoring.retraining.enabled and accounts) or dev == self.account:
            return
        bus = f"arn:aws:events:{naming.region('dev')}:{dev}:event-bus/default"
        relay = ServiceRole(
            self,
            "RetrainingRelayRole",
            service="events.amazonaws.com",
            description=f"Forward {project.name} monitoring alarms to the dev event bus",
            statements=[iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus])],
        )
        events.CfnRule(
            self,
            "RetrainingRelay",
            description=f"{project.name}: monitoring alarms from its stages to dev (retraining)",
            event_pattern=retraining_pattern(naming, project, accounts),
            targets=[events.CfnRule.TargetProperty(id="Dev", arn=bus, role_arn=relay.role.role_arn)],
        )

    def _approver_role(
        self, project: str, naming: Naming, names: list[str], reads: list[iam.PolicyStatement]
    ) -> iam.Role:
        """The role ``mlops approve --as NAME`` assumes; each session carries the person as STS source identity.

        The trust policy admits principals of this account only, and only when
        the source identity they set is one of ``names`` and equals their own
        ``mlops-person`` principal tag (an IAM user tag, or an IAM Identity
        Center attribute passed as a session tag), so nobody can pass as
        another approver. A source identity cannot be changed later in the
        session chain, and CloudTrail records it on every call.
        """
        person = {
            "StringLike": {"sts:SourceIdentity": sorted(names)},
            "StringEquals": {"sts:SourceIdentity": "${aws:PrincipalTag/" + APPROVER_TAG + "}"},
        }
        role = iam.Role(
            self,
            "ApproverRole",
            role_name=naming.role_name(project, "governance", "approver"),
            description=f"Approvers of {project}: approve or reject versions, as themselves",
            assumed_by=iam.AccountPrincipal(self.account).with_conditions(person),
            max_session_duration=Duration.hours(1),
        )
        role.assume_role_policy.add_statements(  # type: ignore[union-attr]
            iam.PolicyStatement(
                actions=["sts:SetSourceIdentity"], principals=[iam.AccountPrincipal(self.account)], conditions=person
            )
        )
        versions = naming.model_package_arns(project)
        policy = iam.ManagedPolicy(
            self,
            "ApproverPolicy",
            roles=[role],
            statements=[
                *reads,
                iam.PolicyStatement(
                    sid="ApproveOrReject", actions=["sagemaker:UpdateModelPackage"], resources=[versions]
                ),
            ],
        )
        for resource, reason in (
            (versions, "Versions of this project's model package group only."),
            (f"{naming.bucket_arn('dev')}/{naming.project_prefix(project)}/*", "The project's evaluation reports."),
            (naming.key_arn_pattern("dev"), "Key ids differ per account; kms:ResourceAliases pins the dev key."),
        ):
            acknowledge(policy, f"AwsSolutions-IAM5[Resource::{resource}]", reason)
        return role
