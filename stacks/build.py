"""Dev account, per project: the model build (pipeline execution role; the pipeline itself)."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from mlops_platform.config import ProjectSettings
from mlops_platform.naming import Naming
from stacks.baseline import BaselineStack
from stacks.components.compaction import add_compaction
from stacks.components.event_function import EventFunction, dead_letter_queue
from stacks.components.lambda_asset import bundled_asset
from stacks.components.model_pipeline import ModelPipeline
from stacks.components.monitoring import retraining_pattern
from stacks.components.roles import ServiceRole
from stacks.feature_store import FEATURE_STORE_DATABASE

RETRAIN_HANDLERS = Path(__file__).resolve().parent.parent / "lambda" / "retrain"
RETRAIN_CORE = "mlops_platform.retraining"


def _l2(pattern: dict) -> dict:
    """Event pattern JSON as the keyword arguments of ``events.EventPattern``."""
    return {key.replace("-", "_"): value for key, value in pattern.items()}


# The log groups SageMaker's processing and training jobs write to (one each per account).
JOB_LOG_GROUPS = ("ProcessingJobs", "TrainingJobs")


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
        definition_cache: Path,
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
        self.queries: athena.CfnWorkGroup | None = None
        self.pipeline = None
        if project.pipeline.enabled:
            self.pipeline = self._add_pipeline(project, naming, baseline, definition_cache)
        # Offline-store compaction: a scheduled OPTIMIZE/VACUUM per Iceberg feature group, in the same workgroup.
        self.compaction = add_compaction(
            self,
            project=project,
            naming=naming,
            baseline=baseline,
            workgroup=naming.athena_workgroup(name),
            database=FEATURE_STORE_DATABASE,
        )
        if self.compaction:
            self._workgroup(project, naming, baseline)
        self.pipeline_role.acknowledge(
            f"AwsSolutions-IAM5[Resource::{project_objects}]",
            "Limited to the project's prefix of the dev artifacts bucket.",
        )
        self.pipeline_role.acknowledge(
            f"AwsSolutions-IAM5[Resource::{naming.model_package_arns(name)}]",
            "Versions of this project's model package group only.",
        )

    def _add_pipeline(
        self,
        project: ProjectSettings,
        naming: Naming,
        baseline: BaselineStack,
        definition_cache: Path,
    ) -> ModelPipeline:
        role = self.pipeline_role
        workgroup = self._workgroup(project, naming, baseline)
        pipeline = ModelPipeline(
            self,
            "Pipeline",
            project=project,
            naming=naming,
            role=role.role,
            key=baseline.key,
            definition_cache=definition_cache,
            workgroup=workgroup.name,
        )
        pipeline.pipeline.node.add_dependency(role)
        self._allow_data_steps(role, project, naming, workgroup.name)
        arn = f"arn:aws:sagemaker:{self.region}:{self.account}"
        # Pipelines name their jobs "pipelines-<execution id>-<step>".
        jobs = [f"{arn}:processing-job/pipelines-*", f"{arn}:training-job/pipelines-*"]
        # The account's job log groups, a stream per job; /aws/sagemaker/* would reach endpoint logs too.
        log_groups = [
            f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/{kind}" for kind in JOB_LOG_GROUPS
        ]
        statements = [
            iam.PolicyStatement(
                sid="RunPipelineJobs",
                actions=[
                    "sagemaker:CreateProcessingJob",
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeProcessingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopProcessingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                resources=jobs,
            ),
            iam.PolicyStatement(
                sid="PassRoleToJobs",
                actions=["iam:PassRole"],
                resources=[role.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
            iam.PolicyStatement(sid="StepCode", actions=["s3:GetObject"], resources=pipeline.code_object_arns()),
            # Processing inputs are S3 prefixes: the job lists the code's exact key first.
            iam.PolicyStatement(
                sid="ListStepCode",
                actions=["s3:ListBucket"],
                resources=[pipeline.code_bucket_arn()],
                conditions={"StringEquals": {"s3:prefix": pipeline.code_object_keys()}},
            ),
            iam.PolicyStatement(
                sid="PullStepImages",
                actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                resources=pipeline.image_repositories(),
            ),
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
            iam.PolicyStatement(
                sid="JobLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[*log_groups, *(f"{group}:log-stream:*" for group in log_groups)],
            ),
            iam.PolicyStatement(
                sid="JobMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
            ),
        ]
        for statement in statements:
            role.policy.add_statements(statement)
        for resource in jobs:
            role.acknowledge(f"AwsSolutions-IAM5[Resource::{resource}]", "SageMaker Pipelines names its jobs per run.")
        role.acknowledge(
            "AwsSolutions-IAM5[Resource::*]",
            "ecr:GetAuthorizationToken and cloudwatch:PutMetricData have no resource ARNs "
            "(the latter is pinned to SageMaker namespaces by condition).",
        )
        for group in log_groups:
            role.acknowledge(
                f"AwsSolutions-IAM5[Resource::{group}:log-stream:*]",
                "The streams of SageMaker's job log group, named per job.",
            )

        # Retraining: on a request event that monitoring (or an operator) puts on the dev
        # account's default bus, and on the configured schedule if any.
        pipeline_arn = f"{arn}:pipeline/{pipeline.inputs.pipeline_name}"
        invoker = ServiceRole(
            self,
            "RetrainInvokerRole",
            service="events.amazonaws.com",
            description=f"Lets EventBridge start the {project.name} pipeline",
            statements=[iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn])],
        )
        target = events.CfnRule.TargetProperty(id="Pipeline", arn=pipeline_arn, role_arn=invoker.role.role_arn)
        self.retrain_rules = [
            events.CfnRule(
                self,
                "RetrainOnRequest",
                description=f"Start the {project.name} pipeline when retraining is requested",
                event_pattern={
                    "source": ["mlops.monitoring"],
                    "detail-type": ["Retraining Requested"],
                    "detail": {"project": [project.name]},
                },
                targets=[target],
            )
        ]
        if project.pipeline.retrain_schedule:
            self.retrain_rules.append(
                events.CfnRule(
                    self,
                    "RetrainOnSchedule",
                    description=f"Retrain {project.name} on its schedule",
                    schedule_expression=project.pipeline.retrain_schedule,
                    targets=[target],
                )
            )
        for rule in self.retrain_rules:
            rule.node.add_dependency(pipeline.pipeline)
        self.retrain_trigger = None
        if project.monitoring.enabled and project.monitoring.retraining.enabled and baseline.retrain_table:
            self.retrain_trigger = self._retrain_trigger(project, naming, baseline, pipeline_arn)
        return pipeline

    def _retrain_trigger(
        self, project: ProjectSettings, naming: Naming, baseline: BaselineStack, pipeline_arn: str
    ) -> EventFunction:
        """A monitoring alarm of the project (forwarded from its stage through governance) starts the pipeline.

        The trigger starts one execution per cool-down (``monitoring.retraining.cooldown_hours``) however often
        the alarm flaps, with parameters saying which alarm, stage and version asked for it.
        """
        stages = project.monitoring.stages
        table = baseline.retrain_table
        if table is None:
            raise ValueError("the dev baseline has no retraining table")
        dead_letters = dead_letter_queue(self, "RetrainDeadLetters", key=baseline.key)
        accounts = [naming.account(stage) for stage in stages]
        function = EventFunction(
            self,
            "RetrainTrigger",
            code_dir=bundled_asset(RETRAIN_HANDLERS, RETRAIN_CORE),
            handler="trigger.handler",
            description=f"{project.name}: start the pipeline when a monitoring alarm asks for retraining",
            function_name=naming.retrain_function(project.name),
            event_pattern=events.EventPattern(**_l2(retraining_pattern(naming, project, accounts))),
            environment={
                "RETRAIN_TABLE": naming.retrain_table(),
                "PIPELINE_NAME": naming.pipeline_name(project.name),
                "PROJECT": project.name,
                "COOLDOWN_MINUTES": str(project.monitoring.retraining.cooldown_hours * 60),
                "ALARM_PREFIXES": json.dumps([naming.monitoring_alarm_prefix(project.name, s) for s in stages]),
                "ACCOUNTS": json.dumps({s: naming.account(s) for s in stages}, sort_keys=True),
            },
            statements=[
                iam.PolicyStatement(
                    sid="CoolDown",
                    actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                    resources=[table.table_arn],
                    conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [f"retrain#{project.name}"]}},
                ),
                iam.PolicyStatement(
                    sid="StartPipeline", actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn]
                ),
            ],
            key=baseline.key,
            dead_letter_queue=dead_letters,
        )
        return function

    def _workgroup(self, project: ProjectSettings, naming: Naming, baseline: BaselineStack) -> athena.CfnWorkGroup:
        """The Athena workgroup of the Query step and compaction: KMS-encrypted results under the project's prefix.

        Created once, by whichever needs it first.
        """
        if self.queries is not None:
            return self.queries
        results = f"s3://{naming.artifacts_bucket('dev')}/{naming.project_prefix(project.name)}/athena/"
        self.queries = athena.CfnWorkGroup(
            self,
            "Queries",
            name=naming.athena_workgroup(project.name),
            description=f"{project.name}: the pipeline's offline-store queries",
            state="ENABLED",
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                # A runaway query stops at 100 GB scanned (about 0.50 USD).
                bytes_scanned_cutoff_per_query=100 * 1024**3,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=results,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=baseline.key.key_arn
                    ),
                ),
            ),
        )
        return self.queries

    def _allow_data_steps(self, role: ServiceRole, project: ProjectSettings, naming: Naming, workgroup: str) -> None:
        """Ingest puts records into the project's source group; Query reads its offline table through Athena.

        The offline store's objects and the query results lie under the
        project's prefix of the dev bucket, which the role reads and writes
        already; the platform key decrypts both.
        """
        group = naming.feature_group_name(project.name, project.pipeline_source().name)
        glue = f"arn:aws:glue:{self.region}:{self.account}"
        tables = [
            f"{glue}:table/{FEATURE_STORE_DATABASE}/{table}"
            for table in naming.offline_store_tables(project.name, project.pipeline_source().name)
        ]
        role.policy.add_statements(
            iam.PolicyStatement(
                sid="SourceFeatureGroup",
                actions=["sagemaker:DescribeFeatureGroup", "sagemaker:PutRecord"],
                resources=[f"arn:aws:sagemaker:{self.region}:{self.account}:feature-group/{group}"],
            ),
            iam.PolicyStatement(
                sid="OfflineStoreQueries",
                actions=[
                    "athena:StartQueryExecution",
                    "athena:GetQueryExecution",
                    "athena:GetQueryResults",
                    "athena:StopQueryExecution",
                ],
                resources=[f"arn:aws:athena:{self.region}:{self.account}:workgroup/{workgroup}"],
            ),
            iam.PolicyStatement(
                sid="OfflineStoreTable",
                actions=["glue:GetTable", "glue:GetDatabase", "glue:GetPartitions"],
                resources=[f"{glue}:catalog", f"{glue}:database/{FEATURE_STORE_DATABASE}", *tables],
            ),
            iam.PolicyStatement(
                sid="QueryResultsBucket", actions=["s3:GetBucketLocation"], resources=[naming.bucket_arn("dev")]
            ),
        )
        for table in tables:
            role.acknowledge(
                f"AwsSolutions-IAM5[Resource::{table}]", "The source group's offline table; its name ends in a time."
            )
