"""Monitoring of what one serving stage serves: either engine, the same metrics, alarms and retraining path."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from aws_cdk import Duration, Fn, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlops_platform import catalog
from mlops_platform.config import ProjectSettings
from mlops_platform.naming import Naming
from mlops_platform.release_manifest import Baselines
from stacks.components.roles import ServiceRole

DRIFT_SCRIPT = Path(__file__).resolve().parents[2] / "pipeline_definitions" / "scripts" / "monitoring" / "drift.py"
DATA_METRICS = "aws/sagemaker/Endpoints/data-metrics"
MODEL_METRICS = "aws/sagemaker/Endpoints/model-metrics"
# Clarify's bias monitor publishes bias_metric_<short name> here, one series per facet and stage (documented).
BIAS_METRICS = "aws/sagemaker/Endpoints/bias-metrics"
PROCESSING = "/opt/ml/processing"
MONITORING_INSTANCE = "ml.m5.xlarge"
# The log group every SageMaker processing job of an account writes to.
PROCESSING_JOB_LOGS = "/aws/sagemaker/ProcessingJobs"


def window_hours(schedule: str) -> int:
    """How many hours of captures one run covers: the schedule's period (hourly 1, daily 24, every N hours N)."""
    hours = schedule.removeprefix("cron(0 ").split(" ", 1)[0]
    if hours == "*":
        return 1
    if "/" in hours:
        return int(hours.split("/")[1])
    return 24


def retraining_pattern(naming: Naming, project: ProjectSettings, accounts: list[str]) -> dict:
    """The alarm state changes that ask for retraining (event pattern JSON): the project's alarms entering ALARM.

    Forwarded events keep the account they were raised in, so every hop
    matches the stage accounts.
    """
    prefixes = [{"prefix": naming.monitoring_alarm_prefix(project.name, stage)} for stage in project.monitoring.stages]
    return {
        "source": ["aws.cloudwatch"],
        "detail-type": ["CloudWatch Alarm State Change"],
        "account": sorted(set(accounts)),
        "detail": {"alarmName": prefixes, "state": {"value": ["ALARM"]}},
    }


@dataclass(frozen=True)
class MonitoredVersion:
    """What the stage serves now: the release manifest's challenger and its baselines."""

    version: int
    baselines: Baselines


class ModelMonitoring(Construct):
    """Schedules (``model_monitor``) or the drift-check pipeline (``pipeline``) for one stage's endpoint.

    Both engines compare the stage's captured requests with ``served``'s
    baselines every ``monitoring.schedule``, publish per-feature
    ``feature_baseline_drift_<feature>`` to ``aws/sagemaker/Endpoints/data-metrics``
    (and model quality to ``.../model-metrics``) with the dimensions
    ``Endpoint`` and ``MonitoringSchedule``, and write reports under the stage
    bucket's ``projects/<project>/monitoring/<stage>/``. Alarms on those metrics
    and a rule on failed runs notify ``topic``; alarms entering ALARM are what
    the retraining path forwards (:func:`retraining_pattern`). Jobs run with a
    role of their own, KMS on outputs and volumes; Model Monitor jobs run
    network-isolated, the drift check reads S3 and writes metrics itself.

    With ``model_monitor``, ``monitoring.bias`` adds a ModelBias schedule (the
    Clarify image; the registered analysis config and post-training
    constraints; the ground truth of model quality) with alarms on each facet's
    live DPPL, and ``monitoring.explainability`` a ModelExplainability
    schedule (registered SHAP config and constraints); both only when the
    served version was registered with those baselines (``skipped`` says why
    not), and a rule notifies ``topic`` of their runs that complete with
    violations.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        project: ProjectSettings,
        stage: str,
        naming: Naming,
        endpoint_name: str,
        served: MonitoredVersion,
        features: tuple[str, ...],
        key: kms.IKey,
        topic: sns.ITopic,
        depends_on: Construct | None = None,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.project, self.stage, self.naming = project, stage, naming
        self.settings = project.monitoring
        self.endpoint_name = endpoint_name
        self.served = served
        self.bucket_name = naming.artifacts_bucket(stage)
        self.key = key
        self.output_prefix = naming.monitoring_prefix(project.name, stage)
        self.role = self._role(stack)
        self.alarms: list[cloudwatch.Alarm] = []
        quality = self.settings.model_quality.enabled and served.baselines.model_quality_constraints is not None
        self.model_quality = quality
        baselines = served.baselines
        # What ran, and why a configured kind did not: the synth summary says both.
        self.skipped: list[str] = []
        self.bias = self.settings.bias.enabled and bool(
            baselines.bias_config and baselines.bias_post_training_constraints
        )
        if self.settings.bias.enabled and not self.bias:
            self.skipped.append(f"bias off: version {served.version} was registered without bias baselines")
        self.explainability = self.settings.explainability.enabled and bool(
            baselines.explainability_config and baselines.explainability_constraints
        )
        if self.settings.explainability.enabled and not self.explainability:
            self.skipped.append(
                f"explainability off: version {served.version} was registered without explainability baselines"
            )
        self.clarify_schedules: list[str] = []
        if self.settings.engine == "model_monitor":
            schedules = self._model_monitor(stack, quality, depends_on)
            failed = {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Processing Job State Change"],
                "detail": {"ProcessingJobStatus": ["Failed"], "MonitoringScheduleArn": schedules},
            }
            data_schedule = f"{naming.prefix}-{project.name}-{stage}-data-quality"
            quality_schedule = f"{naming.prefix}-{project.name}-{stage}-model-quality"
        else:
            pipeline_arn = self._drift_pipeline(stack, quality)
            failed = {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Model Building Pipeline Execution Status Change"],
                "detail": {"pipelineArn": [pipeline_arn], "currentPipelineExecutionStatus": ["Failed"]},
            }
            data_schedule = quality_schedule = naming.drift_pipeline_name(project.name, stage)
        self._alarms(features, data_schedule, quality_schedule if quality else None, topic)
        if self.bias:
            self._bias_alarms(f"{naming.prefix}-{project.name}-{stage}-model-bias", topic)
        if self.clarify_schedules:
            self._violation_rule(topic)
        # L1 rule: CDK's SnsTopic target would also write an unscoped grant for EventBridge into the
        # baseline's key policy; the baseline admits EventBridge for this account's resources already.
        self.failed_runs = events.CfnRule(
            self,
            "FailedRuns",
            description=f"{endpoint_name}: a monitoring run failed",
            event_pattern=failed,
            targets=[events.CfnRule.TargetProperty(id="Owners", arn=topic.topic_arn)],
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="FailedMonitoringRuns",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.failed_runs.attr_arn}},
            )
        )

    # ------------------------------------------------------------------ role
    def _role(self, stack: Stack) -> ServiceRole:
        naming, project = self.naming, self.project.name
        # Literal ARNs (not the bucket's tokens): acknowledgements and the pipeline definition need strings.
        bucket_arn = naming.bucket_arn(self.stage)
        capture = f"{bucket_arn}/{naming.data_capture_prefix(project)}/*"
        outputs = f"{bucket_arn}/{self.output_prefix}/*"
        baselines = f"{naming.bucket_arn('dev')}/{naming.project_prefix(project)}/*"
        statements = [
            iam.PolicyStatement(sid="ReadCaptures", actions=["s3:GetObject"], resources=[capture]),
            iam.PolicyStatement(
                sid="ListCaptures",
                actions=["s3:ListBucket"],
                resources=[bucket_arn],
                conditions={
                    "StringLike": {"s3:prefix": [f"{naming.data_capture_prefix(project)}/*", f"{self.output_prefix}/*"]}
                },
            ),
            iam.PolicyStatement(
                sid="WriteReports",
                actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                resources=[outputs],
            ),
            # The baselines were written by the dev pipeline; the dev bucket and key admit this role by name.
            iam.PolicyStatement(sid="ReadBaselinesFromDev", actions=["s3:GetObject"], resources=[baselines]),
            iam.PolicyStatement(
                sid="DecryptWithDevKey",
                actions=["kms:Decrypt", "kms:DescribeKey"],
                resources=[naming.key_arn_pattern("dev")],
                conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": naming.key_alias("dev")}},
            ),
            iam.PolicyStatement(
                sid="MonitoringMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringLike": {"cloudwatch:namespace": "aws/sagemaker/Endpoints/*"}},
            ),
            iam.PolicyStatement(
                sid="JobLogs",
                actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                # Processing jobs (monitoring runs, the drift check) log to this one group, a stream per job;
                # /aws/sagemaker/* would also reach every endpoint's logs, another project's included.
                resources=[
                    f"arn:aws:logs:{stack.region}:{stack.account}:log-group:{PROCESSING_JOB_LOGS}",
                    f"arn:aws:logs:{stack.region}:{stack.account}:log-group:{PROCESSING_JOB_LOGS}:*",
                ],
            ),
            iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
        ]
        ground_truth = self.settings.model_quality.ground_truth_s3_uri
        reads_truth = bool(ground_truth) and (self.settings.model_quality.enabled or self.settings.bias.enabled)
        if reads_truth and ground_truth:
            truth_bucket, _, truth_prefix = ground_truth.removeprefix("s3://").partition("/")
            statements.append(
                iam.PolicyStatement(
                    sid="ReadGroundTruth",
                    actions=["s3:GetObject"],
                    resources=[f"arn:aws:s3:::{truth_bucket}/{truth_prefix.rstrip('/')}/*"],
                )
            )
            statements.append(
                iam.PolicyStatement(
                    sid="ListGroundTruth",
                    actions=["s3:ListBucket"],
                    resources=[f"arn:aws:s3:::{truth_bucket}"],
                    conditions={"StringLike": {"s3:prefix": [f"{truth_prefix.rstrip('/')}/*"]}},
                )
            )
        if self.settings.engine == "model_monitor":
            statements.append(
                iam.PolicyStatement(
                    sid="PullAnalyzer",
                    actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                    resources=[_repository_arn(catalog.model_monitor_image(stack.region))],
                )
            )
            if self.settings.bias.enabled or self.settings.explainability.enabled:
                statements.append(
                    iam.PolicyStatement(
                        sid="PullClarify",
                        actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                        resources=[_repository_arn(catalog.clarify_image(stack.region))],
                    )
                )
        else:
            statements.append(
                iam.PolicyStatement(
                    sid="PullDriftImage",
                    actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                    resources=[_repository_arn(catalog.sklearn_image(stack.region))],
                )
            )
        role = ServiceRole(
            self,
            "Role",
            service="sagemaker.amazonaws.com",
            role_name=naming.role_name(project, self.stage, "monitor"),
            description=f"Monitoring jobs of {project} in {self.stage}",
            statements=statements,
            key=self.key,
        )
        for resource, reason in (
            (capture, "The project's captured requests only."),
            (outputs, "The project's monitoring reports only."),
            (baselines, "The project's prefix of the dev bucket, where its baselines are."),
            (naming.key_arn_pattern("dev"), "Key ids differ per account; kms:ResourceAliases pins the dev key."),
            ("*", "PutMetricData (pinned to SageMaker endpoint namespaces) and ECR login have no resource ARNs."),
            (
                f"arn:aws:logs:{stack.region}:{stack.account}:log-group:{PROCESSING_JOB_LOGS}:*",
                "The processing jobs' log group; its streams are named per job.",
            ),
        ):
            role.acknowledge(f"AwsSolutions-IAM5[Resource::{resource}]", reason)
        if reads_truth and ground_truth:
            truth_bucket, _, truth_prefix = ground_truth.removeprefix("s3://").partition("/")
            role.acknowledge(
                f"AwsSolutions-IAM5[Resource::arn:aws:s3:::{truth_bucket}/{truth_prefix.rstrip('/')}/*]",
                "The configured ground-truth prefix only.",
            )
        return role

    # ------------------------------------------------------------------ Model Monitor
    def _model_monitor(self, stack: Stack, quality: bool, depends_on: Construct | None) -> list[str]:
        baselines = self.served.baselines
        image = catalog.model_monitor_image(stack.region)

        # The same job settings for each kind of job definition (each has its own property classes).
        def network(kind):
            return kind.NetworkConfigProperty(
                enable_network_isolation=True, enable_inter_container_traffic_encryption=True
            )

        def resources(kind):
            return kind.MonitoringResourcesProperty(
                cluster_config=kind.ClusterConfigProperty(
                    instance_count=1,
                    instance_type=MONITORING_INSTANCE,
                    volume_size_in_gb=20,
                    volume_kms_key_id=self.key.key_arn,
                )
            )

        def endpoint_input(kind, **scores):
            """The endpoint's captured requests as the job's input; ``scores`` name the probability column."""
            return kind.EndpointInputProperty(
                endpoint_name=self.endpoint_name,
                local_path=f"{PROCESSING}/input/endpoint",
                s3_input_mode="File",
                s3_data_distribution_type="FullyReplicated",
                **scores,
            )

        def output(kind, name: str):
            return kind.MonitoringOutputConfigProperty(
                kms_key_id=self.key.key_arn,
                monitoring_outputs=[
                    kind.MonitoringOutputProperty(
                        s3_output=kind.S3OutputProperty(
                            local_path=f"{PROCESSING}/output",
                            s3_uri=f"s3://{self.bucket_name}/{self.output_prefix}/{name}",
                            s3_upload_mode="EndOfJob",
                        )
                    )
                ],
            )

        data_kind = sagemaker.CfnDataQualityJobDefinition
        quality_kind = sagemaker.CfnModelQualityJobDefinition

        # Job definition names are never set: an update to a named definition needs a replacement.
        data = sagemaker.CfnDataQualityJobDefinition(
            self,
            "DataQuality",
            data_quality_app_specification=sagemaker.CfnDataQualityJobDefinition.DataQualityAppSpecificationProperty(
                image_uri=image, environment={"publish_cloudwatch_metrics": "Enabled"}
            ),
            data_quality_baseline_config=sagemaker.CfnDataQualityJobDefinition.DataQualityBaselineConfigProperty(
                constraints_resource=sagemaker.CfnDataQualityJobDefinition.ConstraintsResourceProperty(
                    s3_uri=baselines.data_quality_constraints
                ),
                statistics_resource=sagemaker.CfnDataQualityJobDefinition.StatisticsResourceProperty(
                    s3_uri=baselines.data_quality_statistics
                ),
            ),
            data_quality_job_input=sagemaker.CfnDataQualityJobDefinition.DataQualityJobInputProperty(
                endpoint_input=endpoint_input(sagemaker.CfnDataQualityJobDefinition)
            ),
            data_quality_job_output_config=output(data_kind, "data-quality"),
            job_resources=resources(data_kind),
            network_config=network(data_kind),
            role_arn=self.role.role.role_arn,
            stopping_condition=sagemaker.CfnDataQualityJobDefinition.StoppingConditionProperty(
                max_runtime_in_seconds=3600
            ),
        )
        data.node.add_dependency(self.role)
        definitions: list[tuple[str, str, Construct, str]] = [
            ("DataQualitySchedule", "DataQuality", data, _name_of(data.attr_job_definition_arn))
        ]
        if quality:
            truth = self.settings.model_quality
            quality_job = sagemaker.CfnModelQualityJobDefinition(
                self,
                "ModelQuality",
                model_quality_app_specification=quality_kind.ModelQualityAppSpecificationProperty(
                    image_uri=image,
                    problem_type=truth.problem_type,
                    environment={"publish_cloudwatch_metrics": "Enabled"},
                ),
                model_quality_baseline_config=quality_kind.ModelQualityBaselineConfigProperty(
                    constraints_resource=quality_kind.ConstraintsResourceProperty(
                        s3_uri=baselines.model_quality_constraints
                    )
                ),
                model_quality_job_input=quality_kind.ModelQualityJobInputProperty(
                    # The model answers one probability per row (CSV): column 0.
                    endpoint_input=endpoint_input(
                        quality_kind,
                        probability_attribute="0",
                        probability_threshold_attribute=truth.probability_threshold,
                    ),
                    ground_truth_s3_input=quality_kind.MonitoringGroundTruthS3InputProperty(
                        s3_uri=truth.ground_truth_s3_uri or ""
                    ),
                ),
                model_quality_job_output_config=output(quality_kind, "model-quality"),
                job_resources=resources(quality_kind),
                network_config=network(quality_kind),
                role_arn=self.role.role.role_arn,
                stopping_condition=quality_kind.StoppingConditionProperty(max_runtime_in_seconds=3600),
            )
            quality_job.node.add_dependency(self.role)
            definitions.append(
                ("ModelQualitySchedule", "ModelQuality", quality_job, _name_of(quality_job.attr_job_definition_arn))
            )
        clarify = catalog.clarify_image(stack.region) if self.bias or self.explainability else ""
        if self.bias:
            bias_kind = sagemaker.CfnModelBiasJobDefinition
            bias_job = sagemaker.CfnModelBiasJobDefinition(
                self,
                "ModelBias",
                model_bias_app_specification=bias_kind.ModelBiasAppSpecificationProperty(
                    config_uri=baselines.bias_config or "",
                    image_uri=clarify,
                    environment={"publish_cloudwatch_metrics": "Enabled"},
                ),
                # Model Monitor's bias monitor compares post-training metrics (the pre-training ones are evidence).
                model_bias_baseline_config=bias_kind.ModelBiasBaselineConfigProperty(
                    constraints_resource=bias_kind.ConstraintsResourceProperty(
                        s3_uri=baselines.bias_post_training_constraints
                    )
                ),
                model_bias_job_input=bias_kind.ModelBiasJobInputProperty(
                    # One probability per row (CSV column 0); at or above the threshold is the positive label.
                    endpoint_input=endpoint_input(
                        bias_kind,
                        probability_attribute="0",
                        probability_threshold_attribute=self.settings.bias_probability_threshold,
                    ),
                    ground_truth_s3_input=bias_kind.MonitoringGroundTruthS3InputProperty(
                        s3_uri=self.settings.model_quality.ground_truth_s3_uri or ""
                    ),
                ),
                model_bias_job_output_config=output(bias_kind, "model-bias"),
                job_resources=resources(bias_kind),
                network_config=network(bias_kind),
                role_arn=self.role.role.role_arn,
                stopping_condition=bias_kind.StoppingConditionProperty(max_runtime_in_seconds=3600),
            )
            bias_job.node.add_dependency(self.role)
            definitions.append(("ModelBiasSchedule", "ModelBias", bias_job, _name_of(bias_job.attr_job_definition_arn)))
        if self.explainability:
            shap_kind = sagemaker.CfnModelExplainabilityJobDefinition
            shap_job = sagemaker.CfnModelExplainabilityJobDefinition(
                self,
                "ModelExplainability",
                model_explainability_app_specification=shap_kind.ModelExplainabilityAppSpecificationProperty(
                    config_uri=baselines.explainability_config or "",
                    image_uri=clarify,
                    environment={"publish_cloudwatch_metrics": "Enabled"},
                ),
                model_explainability_baseline_config=shap_kind.ModelExplainabilityBaselineConfigProperty(
                    constraints_resource=shap_kind.ConstraintsResourceProperty(
                        s3_uri=baselines.explainability_constraints
                    )
                ),
                model_explainability_job_input=shap_kind.ModelExplainabilityJobInputProperty(
                    endpoint_input=endpoint_input(shap_kind, probability_attribute="0")
                ),
                model_explainability_job_output_config=output(shap_kind, "model-explainability"),
                job_resources=resources(shap_kind),
                network_config=network(shap_kind),
                role_arn=self.role.role.role_arn,
                stopping_condition=shap_kind.StoppingConditionProperty(max_runtime_in_seconds=3600),
            )
            shap_job.node.add_dependency(self.role)
            definitions.append(
                (
                    "ModelExplainabilitySchedule",
                    "ModelExplainability",
                    shap_job,
                    _name_of(shap_job.attr_job_definition_arn),
                )
            )
        arns = []
        for construct_id, kind, definition, name in definitions:
            schedule_name = f"{self.naming.prefix}-{self.project.name}-{self.stage}-{_kebab(kind)}"
            schedule = sagemaker.CfnMonitoringSchedule(
                self,
                construct_id,
                monitoring_schedule_name=schedule_name,
                monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                    monitoring_job_definition_name=name,
                    monitoring_type=kind,
                    schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(
                        schedule_expression=self.settings.schedule
                    ),
                ),
            )
            schedule.node.add_dependency(definition)
            if depends_on is not None:
                schedule.node.add_dependency(depends_on)  # the endpoint must exist first
            arns.append(f"arn:aws:sagemaker:{stack.region}:{stack.account}:monitoring-schedule/{schedule_name}")
            if kind in ("ModelBias", "ModelExplainability"):
                self.clarify_schedules.append(arns[-1])
        return arns

    # ------------------------------------------------------------------ the drift-check pipeline
    def _drift_pipeline(self, stack: Stack, quality: bool) -> str:
        naming, project, stage = self.naming, self.project.name, self.stage
        baselines = self.served.baselines
        code = s3_assets.Asset(self, "DriftCode", path=str(DRIFT_SCRIPT))
        self.role.policy.add_statements(
            iam.PolicyStatement(
                sid="DriftCode",
                actions=["s3:GetObject"],
                resources=[f"arn:aws:s3:::{code.s3_bucket_name}/{code.s3_object_key}"],
            ),
            # A processing input is an S3 prefix: the job lists the code's exact key first.
            iam.PolicyStatement(
                sid="ListDriftCode",
                actions=["s3:ListBucket"],
                resources=[f"arn:aws:s3:::{code.s3_bucket_name}"],
                conditions={"StringEquals": {"s3:prefix": [code.s3_object_key]}},
            ),
        )
        name = naming.drift_pipeline_name(project, stage)
        baseline_dir = str(PurePosixPath(baselines.data_quality_statistics.removeprefix("s3://")).parent)
        inputs = [
            _processing_input("code", code.s3_object_url, f"{PROCESSING}/input/code"),
            _processing_input("baseline", f"s3://{baseline_dir}/", f"{PROCESSING}/baseline"),
        ]
        arguments = [
            "--capture-uri",
            f"s3://{self.bucket_name}/{naming.data_capture_prefix(project)}/{self.endpoint_name}/",
            "--baseline-dir",
            f"{PROCESSING}/baseline",
            "--output-dir",
            f"{PROCESSING}/output",
            "--endpoint",
            self.endpoint_name,
            "--schedule",
            name,
            "--window-hours",
            str(window_hours(self.settings.schedule)),
            # Model Monitor flags any completeness shortfall; two points of sampling noise are not drift.
            "--completeness-tolerance",
            "0.02",
            "--region",
            stack.region,
        ]
        if quality and baselines.model_quality_constraints:
            inputs.append(_processing_input("quality", baselines.model_quality_constraints, f"{PROCESSING}/quality"))
            arguments += [
                "--ground-truth-uri",
                self.settings.model_quality.ground_truth_s3_uri or "",
                "--model-quality-constraints",
                f"{PROCESSING}/quality/{PurePosixPath(baselines.model_quality_constraints).name}",
            ]
        definition = {
            "Version": "2020-12-01",
            "Metadata": {},
            "Parameters": [],
            "Steps": [
                {
                    "Name": "DriftCheck",
                    "Type": "Processing",
                    "Arguments": {
                        "ProcessingResources": {
                            "ClusterConfig": {
                                "InstanceType": MONITORING_INSTANCE,
                                "InstanceCount": 1,
                                "VolumeSizeInGB": 20,
                                "VolumeKmsKeyId": "${KeyArn}",
                            }
                        },
                        "AppSpecification": {
                            "ImageUri": catalog.sklearn_image(stack.region),
                            "ContainerEntrypoint": ["python3", f"{PROCESSING}/input/code/{DRIFT_SCRIPT.name}"],
                            "ContainerArguments": arguments,
                        },
                        "RoleArn": "${RoleArn}",
                        "ProcessingInputs": inputs,
                        "ProcessingOutputConfig": {
                            "KmsKeyId": "${KeyArn}",
                            "Outputs": [
                                {
                                    "OutputName": "report",
                                    "AppManaged": False,
                                    "S3Output": {
                                        "S3Uri": {
                                            "Std:Join": {
                                                "On": "/",
                                                "Values": [
                                                    f"s3://{self.bucket_name}/{self.output_prefix}/drift",
                                                    {"Get": "Execution.PipelineExecutionId"},
                                                ],
                                            }
                                        },
                                        "LocalPath": f"{PROCESSING}/output",
                                        "S3UploadMode": "EndOfJob",
                                    },
                                }
                            ],
                        },
                        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
                        "Environment": {"AWS_DEFAULT_REGION": stack.region},
                    },
                }
            ],
        }
        text = json.dumps(definition, sort_keys=True, separators=(",", ":"))
        pipeline = sagemaker.CfnPipeline(
            self,
            "DriftPipeline",
            pipeline_name=name,
            pipeline_description=f"{self.endpoint_name}: compare captured requests with the served version's baselines",
            role_arn=self.role.role.role_arn,
            pipeline_definition={
                "PipelineDefinitionBody": Fn.sub(text, {"KeyArn": self.key.key_arn, "RoleArn": self.role.role.role_arn})
            },
        )
        pipeline.node.add_dependency(self.role)
        pipeline_arn = f"arn:aws:sagemaker:{stack.region}:{stack.account}:pipeline/{name}"
        self.role.policy.add_statements(
            iam.PolicyStatement(
                sid="RunDriftCheck",
                actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:AddTags"],
                resources=[f"arn:aws:sagemaker:{stack.region}:{stack.account}:processing-job/pipelines-*"],
            ),
            iam.PolicyStatement(
                sid="PassRoleToDriftCheck",
                actions=["iam:PassRole"],
                resources=[self.role.role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
            ),
        )
        self.role.acknowledge(
            f"AwsSolutions-IAM5[Resource::arn:aws:sagemaker:{stack.region}:{stack.account}:processing-job/pipelines-*]",
            "SageMaker Pipelines names its jobs per run.",
        )
        invoker = ServiceRole(
            self,
            "ScheduleRole",
            service="events.amazonaws.com",
            description=f"Start the {name} drift check on its schedule",
            statements=[iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn])],
        )
        schedule = events.CfnRule(
            self,
            "DriftSchedule",
            description=f"Run {name} {self.settings.schedule}",
            schedule_expression=self.settings.schedule,
            targets=[events.CfnRule.TargetProperty(id="DriftCheck", arn=pipeline_arn, role_arn=invoker.role.role_arn)],
        )
        schedule.node.add_dependency(pipeline)
        return pipeline_arn

    # ------------------------------------------------------------------ alarms
    def _alarms(
        self, features: tuple[str, ...], data_schedule: str, quality_schedule: str | None, topic: sns.ITopic
    ) -> None:
        prefix = self.naming.monitoring_alarm_prefix(self.project.name, self.stage)
        tag = f"[project={self.project.name} stage={self.stage} version={self.served.version}]"
        period = Duration.hours(window_hours(self.settings.schedule))

        def alarm(construct_id: str, name: str, metric: cloudwatch.Metric, threshold: float, below: bool, text: str):
            created = cloudwatch.Alarm(
                self,
                construct_id,
                alarm_name=f"{prefix}{name}",
                alarm_description=f"{self.endpoint_name}: {text} {tag}",
                metric=metric,
                threshold=threshold,
                comparison_operator=(
                    cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
                    if below
                    else cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
                ),
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(cloudwatch_actions.SnsAction(topic))
            self.alarms.append(created)

        dimensions = {"Endpoint": self.endpoint_name, "MonitoringSchedule": data_schedule}
        for feature in features:
            alarm(
                f"Drift{_pascal(feature)}",
                f"drift-{feature}",
                cloudwatch.Metric(
                    namespace=DATA_METRICS,
                    metric_name=f"feature_baseline_drift_{feature}",
                    dimensions_map=dimensions,
                    statistic="Maximum",
                    period=period,
                ),
                self.settings.drift_threshold,
                False,
                f"{feature} drifted from the served version's baseline by more than {self.settings.drift_threshold}",
            )
        if self.settings.engine == "pipeline":
            alarm(
                "Violations",
                "violations",
                cloudwatch.Metric(
                    namespace=DATA_METRICS,
                    metric_name="constraint_violations",
                    dimensions_map=dimensions,
                    statistic="Maximum",
                    period=period,
                ),
                self.settings.max_violations,
                False,
                f"more than {self.settings.max_violations} data-quality constraint(s) violated",
            )
        if quality_schedule is not None:
            quality_dimensions = {"Endpoint": self.endpoint_name, "MonitoringSchedule": quality_schedule}
            for metric, threshold in sorted(self.project.approval.metric_thresholds.items()):
                alarm(
                    f"Quality{_pascal(metric)}",
                    f"quality-{metric}",
                    cloudwatch.Metric(
                        namespace=MODEL_METRICS,
                        metric_name=metric,
                        dimensions_map=quality_dimensions,
                        statistic="Minimum",
                        period=period,
                    ),
                    threshold,
                    True,
                    f"live {metric} below the approval threshold {threshold}",
                )

    def _bias_alarms(self, schedule: str, topic: sns.ITopic) -> None:
        """Each facet's live DPPL outside [-max_dppl, max_dppl] alarms (the bias monitor publishes no violation count).

        A Metrics Insights query, so the alarm needs only the dimensions known at
        synth (schedule and facet): the documented ``Label``/``LabelValue``/
        ``FacetValue`` spellings are left to the service.
        """
        prefix = self.naming.monitoring_alarm_prefix(self.project.name, self.stage)
        tag = f"[project={self.project.name} stage={self.stage} version={self.served.version}]"
        limit = self.settings.bias.max_dppl
        for facet in self.settings.bias.facets:
            for direction, aggregate, below in (("high", "MAX", False), ("low", "MIN", True)):
                query = (
                    f'SELECT {aggregate}(bias_metric_DPPL) FROM "{BIAS_METRICS}" '
                    f"WHERE MonitoringSchedule = '{schedule}' AND Facet = '{facet.name}'"
                )
                created = cloudwatch.Alarm(
                    self,
                    f"Bias{_pascal(facet.name)}{direction.capitalize()}",
                    alarm_name=f"{prefix}bias-{facet.name}-dppl-{direction}",
                    alarm_description=(
                        f"{self.endpoint_name}: live DPPL of facet {facet.name} "
                        f"{'below -' if below else 'above '}{limit} {tag}"
                    ),
                    metric=cloudwatch.MathExpression(
                        expression=query, using_metrics={}, period=Duration.hours(1), label=f"DPPL {facet.name}"
                    ),
                    threshold=-limit if below else limit,
                    comparison_operator=(
                        cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD
                        if below
                        else cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD
                    ),
                    evaluation_periods=1,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
                created.add_alarm_action(cloudwatch_actions.SnsAction(topic))
                self.alarms.append(created)

    def _violation_rule(self, topic: sns.ITopic) -> None:
        """Bias and explainability runs that complete with violations notify the owners.

        Neither monitor publishes a violation metric (explainability's check, an
        nDCG of the global SHAP ranking below 0.9, is not published at all), so
        this rule reads the run's processing job instead: its exit message starts
        with ``CompletedWithViolations``. It notifies; it does not ask for retraining.
        """
        self.violations = events.CfnRule(
            self,
            "ClarifyViolations",
            description=f"{self.endpoint_name}: a bias or explainability run found violations",
            event_pattern={
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Processing Job State Change"],
                "detail": {
                    "ProcessingJobStatus": ["Completed"],
                    "ExitMessage": [{"prefix": "CompletedWithViolations"}],
                    "MonitoringScheduleArn": list(self.clarify_schedules),
                },
            },
            targets=[events.CfnRule.TargetProperty(id="Owners", arn=topic.topic_arn)],
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ClarifyViolations",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.violations.attr_arn}},
            )
        )

    def describe(self) -> str:
        """One line for the synth summary: the engine, what it checks on which version, and what it skipped."""
        kinds = ["data and model quality" if self.model_quality else "data quality"]
        kinds += [name for name, on in (("bias", self.bias), ("explainability", self.explainability)) if on]
        text = f"{self.settings.engine}: {', '.join(kinds)} on version {self.served.version}'s baselines, "
        text += self.settings.schedule
        return "; ".join([text, *self.skipped])


def _processing_input(name: str, uri: str, local: str) -> dict:
    """A processing input of a hand-written pipeline definition (an S3 prefix; an object's key is one too)."""
    return {
        "InputName": name,
        "AppManaged": False,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": local,
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
            "S3DataDistributionType": "FullyReplicated",
        },
    }


def _name_of(job_definition_arn: str) -> str:
    """The generated name of a job definition: the part of its ARN after ``/`` (names are never set)."""
    return Fn.select(1, Fn.split("/", job_definition_arn))


def _repository_arn(image: str) -> str:
    registry, _, rest = image.partition("/")
    parts = registry.split(".")
    return f"arn:aws:ecr:{parts[3]}:{parts[0]}:repository/{rest.split(':')[0]}"


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_"))


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
