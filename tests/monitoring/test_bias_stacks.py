"""Bias and explainability monitoring in the templates: Model Monitor's Clarify jobs on the served version's baselines.

The example's prod serves version 2 (``example`` synth) with bias (facet
senior_citizen = 1) and explainability on; the single-account variant runs the
pipeline engine (no Clarify checks) and has fraud with monitoring off.
"""

from __future__ import annotations

import json

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template

from mlops_platform import catalog
from mlops_platform.config import load_config
from mlops_platform.naming import Naming
from mlops_platform.release_manifest import Baselines
from stacks.components.monitoring import ModelMonitoring, MonitoredVersion
from tests.synth import EXAMPLE_CONFIG

STACK = "mlops-prod-churn-serving"
RUN = "s3://mlops-dev-artifacts-222222222222-eu-west-1/projects/churn/pipeline/mlops-churn/run-2/Evaluate/evaluation"
OUTPUTS = "s3://mlops-prod-artifacts-444444444444-eu-west-1/projects/churn/monitoring/prod"
CLARIFY = "131013547314.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-clarify-processing:1.0"
GROUND_TRUTH = "s3://mlops-prod-artifacts-444444444444-eu-west-1/projects/churn/ground-truth/"
PREFIX = "mlops-churn-prod-monitoring-"


def _key_ref():
    return {"Fn::GetAtt": [Match.string_like_regexp("Key"), "Arn"]}


def _resources(synthesized, kind: str, stack: str = STACK) -> dict:
    return synthesized.resources(stack, kind)


def test_the_clarify_image_is_the_regions_clarify_processing_image():
    assert catalog.clarify_image("eu-west-1") == CLARIFY
    assert catalog.clarify_image("us-east-1").startswith("205585389593.dkr.ecr.us-east-1.amazonaws.com/")
    assert catalog.clarify_image("cn-north-1").endswith(".amazonaws.com.cn/sagemaker-clarify-processing:1.0")
    assert catalog.clarify_image("eu-west-1") != catalog.model_monitor_image("eu-west-1")


def test_model_bias_job_reads_the_registered_config_and_post_training_constraints(example):
    template = Template.from_json(example.template(STACK))
    template.has_resource_properties(
        "AWS::SageMaker::ModelBiasJobDefinition",
        {
            "JobDefinitionName": Match.absent(),  # every property replaces: a fixed name would block updates
            "ModelBiasAppSpecification": {
                "ConfigUri": f"{RUN}/bias/analysis_config.json",
                "ImageUri": CLARIFY,
                "Environment": {"publish_cloudwatch_metrics": "Enabled"},
            },
            "ModelBiasBaselineConfig": {"ConstraintsResource": {"S3Uri": f"{RUN}/bias/post_training_constraints.json"}},
            "ModelBiasJobInput": {
                "EndpointInput": {
                    "EndpointName": "mlops-churn-prod",
                    "LocalPath": "/opt/ml/processing/input/endpoint",
                    "S3InputMode": "File",
                    "S3DataDistributionType": "FullyReplicated",
                    "ProbabilityAttribute": "0",
                    "ProbabilityThresholdAttribute": 0.5,
                },
                "GroundTruthS3Input": {"S3Uri": GROUND_TRUTH},
            },
            "ModelBiasJobOutputConfig": {
                "KmsKeyId": Match.any_value(),
                "MonitoringOutputs": [
                    {
                        "S3Output": {
                            "LocalPath": "/opt/ml/processing/output",
                            "S3Uri": f"{OUTPUTS}/model-bias",
                            "S3UploadMode": "EndOfJob",
                        }
                    }
                ],
            },
            "JobResources": {
                "ClusterConfig": Match.object_like({"InstanceCount": 1, "VolumeKmsKeyId": Match.any_value()})
            },
            "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True},
            "RoleArn": Match.any_value(),
            "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        },
    )


def test_model_explainability_job_reads_the_registered_shap_config_and_constraints(example):
    template = Template.from_json(example.template(STACK))
    template.has_resource_properties(
        "AWS::SageMaker::ModelExplainabilityJobDefinition",
        {
            "JobDefinitionName": Match.absent(),
            "ModelExplainabilityAppSpecification": {
                "ConfigUri": f"{RUN}/explainability/analysis_config.json",
                "ImageUri": CLARIFY,
                "Environment": {"publish_cloudwatch_metrics": "Enabled"},
            },
            "ModelExplainabilityBaselineConfig": {
                "ConstraintsResource": {"S3Uri": f"{RUN}/explainability/constraints.json"}
            },
            "ModelExplainabilityJobInput": {
                "EndpointInput": Match.object_like({"EndpointName": "mlops-churn-prod", "ProbabilityAttribute": "0"})
            },
            "ModelExplainabilityJobOutputConfig": Match.object_like(
                {"MonitoringOutputs": [{"S3Output": Match.object_like({"S3Uri": f"{OUTPUTS}/model-explainability"})}]}
            ),
            "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True},
        },
    )


def test_outputs_and_volumes_use_the_stage_key_like_the_other_jobs(example):
    key_of = {}
    for kind, prefix in (
        ("AWS::SageMaker::DataQualityJobDefinition", "DataQuality"),
        ("AWS::SageMaker::ModelBiasJobDefinition", "ModelBias"),
        ("AWS::SageMaker::ModelExplainabilityJobDefinition", "ModelExplainability"),
    ):
        [properties] = [r["Properties"] for r in _resources(example, kind).values()]
        key_of[kind] = (
            properties[f"{prefix}JobOutputConfig"]["KmsKeyId"],
            properties["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"],
        )
        assert key_of[kind][0] == key_of[kind][1]
    assert len({str(v) for v in key_of.values()}) == 1


def test_bias_and_explainability_schedules_run_after_the_endpoint(example):
    schedules = {
        s["Properties"]["MonitoringScheduleName"]: s
        for s in _resources(example, "AWS::SageMaker::MonitoringSchedule").values()
    }
    endpoint = next(iter(_resources(example, "AWS::SageMaker::Endpoint")))
    for name, kind, definition in (
        ("mlops-churn-prod-model-bias", "ModelBias", "AWS::SageMaker::ModelBiasJobDefinition"),
        (
            "mlops-churn-prod-model-explainability",
            "ModelExplainability",
            "AWS::SageMaker::ModelExplainabilityJobDefinition",
        ),
    ):
        schedule = schedules[name]
        config = schedule["Properties"]["MonitoringScheduleConfig"]
        assert config["MonitoringType"] == kind
        assert config["ScheduleConfig"] == {"ScheduleExpression": "cron(0 * ? * * *)"}
        [job] = _resources(example, definition)
        assert config["MonitoringJobDefinitionName"] == {
            "Fn::Select": [1, {"Fn::Split": ["/", {"Fn::GetAtt": [job, "JobDefinitionArn"]}]}]
        }
        assert endpoint in schedule["DependsOn"] and job in schedule["DependsOn"]


def test_the_role_pulls_the_clarify_image_and_reads_the_ground_truth(example):
    policies = _resources(example, "AWS::IAM::ManagedPolicy")
    statements = {s.get("Sid"): s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]}
    assert statements["PullClarify"]["Resource"] == (
        "arn:aws:ecr:eu-west-1:131013547314:repository/sagemaker-clarify-processing"
    )
    assert sorted(statements["PullClarify"]["Action"]) == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
    ]
    assert statements["ReadGroundTruth"]["Resource"] == (
        "arn:aws:s3:::mlops-prod-artifacts-444444444444-eu-west-1/projects/churn/ground-truth/*"
    )
    # Every job definition runs with the one monitoring role.
    roles = {
        str(r["Properties"]["RoleArn"])
        for kind in (
            "AWS::SageMaker::DataQualityJobDefinition",
            "AWS::SageMaker::ModelBiasJobDefinition",
            "AWS::SageMaker::ModelExplainabilityJobDefinition",
        )
        for r in _resources(example, kind).values()
    }
    assert len(roles) == 1


def test_each_facet_alarms_on_its_live_dppl_in_both_directions(example):
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in _resources(example, "AWS::CloudWatch::Alarm").values()
        if "AlarmName" in a["Properties"]
    }
    bias = {name: a for name, a in alarms.items() if name.startswith(f"{PREFIX}bias-")}
    assert sorted(bias) == [f"{PREFIX}bias-senior_citizen-dppl-high", f"{PREFIX}bias-senior_citizen-dppl-low"]
    high, low = bias[f"{PREFIX}bias-senior_citizen-dppl-high"], bias[f"{PREFIX}bias-senior_citizen-dppl-low"]
    query = (
        'SELECT {}(bias_metric_DPPL) FROM "aws/sagemaker/Endpoints/bias-metrics" '
        "WHERE MonitoringSchedule = 'mlops-churn-prod-model-bias' AND Facet = 'senior_citizen'"
    )
    assert high["Metrics"] == [
        {
            "Expression": query.format("MAX"),
            "Id": "expr_1",
            "Label": "DPPL senior_citizen",
            "Period": 3600,
            "ReturnData": True,
        }
    ]
    assert low["Metrics"][0]["Expression"] == query.format("MIN")
    assert (high["Threshold"], high["ComparisonOperator"]) == (0.2, "GreaterThanThreshold")
    assert (low["Threshold"], low["ComparisonOperator"]) == (-0.2, "LessThanThreshold")
    for alarm in (high, low):
        assert alarm["TreatMissingData"] == "notBreaching" and alarm["AlarmActions"]
        assert alarm["AlarmDescription"].endswith("[project=churn stage=prod version=2]")


def test_bias_alarms_are_on_the_retraining_path(example):
    """The retraining pattern matches alarm names by the monitoring prefix; the bias alarms carry it."""
    from stacks.components.monitoring import retraining_pattern

    config = load_config(EXAMPLE_CONFIG)
    pattern = retraining_pattern(Naming(config.platform), config.projects["churn"], ["444444444444"])
    assert pattern["detail"]["alarmName"] == [{"prefix": PREFIX}]


def test_runs_with_violations_and_failed_runs_notify_the_owners(example):
    rules = [r["Properties"] for r in _resources(example, "AWS::Events::Rule").values()]
    arn = "arn:aws:sagemaker:eu-west-1:444444444444:monitoring-schedule/mlops-churn-prod-{}"
    [violations] = [r for r in rules if "ExitMessage" in str(r.get("EventPattern"))]
    assert violations["EventPattern"]["detail"] == {
        "ProcessingJobStatus": ["Completed"],
        "ExitMessage": [{"prefix": "CompletedWithViolations"}],
        "MonitoringScheduleArn": [arn.format("model-bias"), arn.format("model-explainability")],
    }
    [failed] = [r for r in rules if r["EventPattern"].get("detail", {}).get("ProcessingJobStatus") == ["Failed"]]
    assert arn.format("model-bias") in failed["EventPattern"]["detail"]["MonitoringScheduleArn"]
    assert arn.format("model-explainability") in failed["EventPattern"]["detail"]["MonitoringScheduleArn"]
    topic_policies = _resources(example, "AWS::SNS::TopicPolicy")
    sids = {s.get("Sid") for p in topic_policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]}
    assert "ClarifyViolations" in sids


def test_no_clarify_resources_where_monitoring_is_off_or_the_engine_is_the_pipeline(example, single_account):
    kinds = ("AWS::SageMaker::ModelBiasJobDefinition", "AWS::SageMaker::ModelExplainabilityJobDefinition")
    for synthesized, stack in (
        (example, "mlops-staging-churn-serving"),  # not a monitored stage
        (single_account, "mlops-staging-fraud-serving"),  # monitoring off
        (single_account, "mlops-prod-fraud-serving"),
        (single_account, "mlops-staging-churn-serving"),  # the pipeline engine
    ):
        for kind in kinds:
            assert not _resources(synthesized, kind, stack), (stack, kind)
        policies = _resources(synthesized, "AWS::IAM::ManagedPolicy", stack)
        assert "sagemaker-clarify-processing" not in str(policies), stack


def test_the_example_pipeline_registers_bias_and_explainability(example):
    """The dev pipeline's inputs carry the bias and SHAP settings (their effect: tests/pipeline)."""
    [pipeline] = _resources(example, "AWS::SageMaker::Pipeline", "mlops-dev-churn-build").values()
    body = str(pipeline["Properties"]["PipelineDefinition"])
    assert "--bias-config" in body and "--explainability-config" in body
    assert "PostTrainingConstraints" in body and "Explainability" in body


# --------------------------------------------------------------------------- a version without those baselines


def _monitoring(baselines: Baselines) -> tuple[ModelMonitoring, Template]:
    config = load_config(EXAMPLE_CONFIG)
    app = App()
    stack = Stack(app, "Serving", env=Environment(account="444444444444", region="eu-west-1"))
    monitoring = ModelMonitoring(
        stack,
        "Monitoring",
        project=config.projects["churn"],
        stage="prod",
        naming=Naming(config.platform),
        endpoint_name="mlops-churn-prod",
        served=MonitoredVersion(7, baselines),
        features=config.projects["churn"].pipeline_features(),
        key=kms.Key(stack, "Key"),
        topic=sns.Topic(stack, "Topic"),
    )
    return monitoring, Template.from_stack(stack)


def test_a_version_registered_without_bias_baselines_gets_no_bias_schedule_and_the_summary_says_why():
    run = "s3://bucket/run-7"
    monitoring, template = _monitoring(
        Baselines(
            data_quality_statistics=f"{run}/statistics.json",
            data_quality_constraints=f"{run}/constraints.json",
            model_quality_constraints=f"{run}/model_quality/constraints.json",
            explainability_config=f"{run}/explainability/analysis_config.json",
            explainability_constraints=f"{run}/explainability/constraints.json",
        )
    )
    template.resource_count_is("AWS::SageMaker::ModelBiasJobDefinition", 0)
    template.resource_count_is("AWS::SageMaker::ModelExplainabilityJobDefinition", 1)
    assert "bias-" not in str(template.find_resources("AWS::CloudWatch::Alarm"))
    assert monitoring.describe() == (
        "model_monitor: data and model quality, explainability on version 7's baselines, cron(0 * ? * * *); "
        "bias off: version 7 was registered without bias baselines"
    )


def test_a_version_without_any_clarify_baseline_runs_the_quality_checks_only():
    run = "s3://bucket/run-7"
    monitoring, template = _monitoring(
        Baselines(data_quality_statistics=f"{run}/statistics.json", data_quality_constraints=f"{run}/constraints.json")
    )
    for kind in ("AWS::SageMaker::ModelBiasJobDefinition", "AWS::SageMaker::ModelExplainabilityJobDefinition"):
        template.resource_count_is(kind, 0)
    assert "ExitMessage" not in str(template.find_resources("AWS::Events::Rule"))
    assert monitoring.describe().endswith(
        "; bias off: version 7 was registered without bias baselines"
        "; explainability off: version 7 was registered without explainability baselines"
    )


# --------------------------------------------------------------------------- the manifest


def test_baselines_read_bias_and_explainability_off_the_package():
    def source(name: str) -> dict:
        return {"S3Uri": f"s3://bucket/run/{name}", "ContentType": "application/json"}

    package = {
        "DriftCheckBaselines": {
            "ModelDataQuality": {"Statistics": source("s.json"), "Constraints": source("c.json")},
            "Bias": {
                "ConfigFile": source("bias/analysis_config.json"),
                "PreTrainingConstraints": source("bias/pre.json"),
                "PostTrainingConstraints": source("bias/post.json"),
            },
            "Explainability": {"ConfigFile": source("shap/config.json"), "Constraints": source("shap/c.json")},
        }
    }
    baselines = Baselines.from_package(package)
    assert baselines is not None
    assert baselines.bias_config == "s3://bucket/run/bias/analysis_config.json"
    assert baselines.bias_pre_training_constraints == "s3://bucket/run/bias/pre.json"
    assert baselines.bias_post_training_constraints == "s3://bucket/run/bias/post.json"
    assert baselines.explainability_config == "s3://bucket/run/shap/config.json"
    assert baselines.explainability_constraints == "s3://bucket/run/shap/c.json"
    older = Baselines.from_package(
        {"DriftCheckBaselines": {"ModelDataQuality": package["DriftCheckBaselines"]["ModelDataQuality"]}}
    )
    assert older is not None and older.bias_config is None and older.explainability_constraints is None


def test_releases_export_carries_them_into_the_manifest(tmp_path):
    """``mlops releases export`` reads the package through ``Baselines.from_package``: no change of its own needed."""
    from mlops_platform.cli.export import _from_registry
    from mlops_platform.release_manifest import ModelVersion, ReleaseManifest, load_manifest, write_manifest

    config = load_config(EXAMPLE_CONFIG)
    arn = f"{Naming(config.platform).model_package_arns('churn').removesuffix('*')}3"
    run = "s3://bucket/run-3/Evaluate/evaluation"

    class Registry:  # the one read export makes of the registry (DescribeModelPackage)
        def describe_model_package(self, ModelPackageName):  # noqa: N803 - boto3's spelling
            assert ModelPackageName == arn
            return {
                "InferenceSpecification": {"SupportedRealtimeInferenceInstanceTypes": ["ml.m5.large"]},
                "DriftCheckBaselines": {
                    "ModelDataQuality": {
                        "Statistics": {"S3Uri": "s3://bucket/run-3/statistics.json"},
                        "Constraints": {"S3Uri": "s3://bucket/run-3/constraints.json"},
                    },
                    "Bias": {
                        "ConfigFile": {"S3Uri": f"{run}/bias/analysis_config.json"},
                        "PreTrainingConstraints": {"S3Uri": f"{run}/bias/pre_training_constraints.json"},
                        "PostTrainingConstraints": {"S3Uri": f"{run}/bias/post_training_constraints.json"},
                    },
                    "Explainability": {
                        "ConfigFile": {"S3Uri": f"{run}/explainability/analysis_config.json"},
                        "Constraints": {"S3Uri": f"{run}/explainability/constraints.json"},
                    },
                },
            }

    released = ReleaseManifest(project="churn", stage="prod", challenger=ModelVersion(version=3, model_package_arn=arn))
    path = write_manifest(tmp_path, "churn", "prod", _from_registry(Registry(), released))
    baselines = load_manifest(path, config, "churn", "prod").challenger.baselines
    assert baselines is not None
    assert baselines.bias_post_training_constraints == f"{run}/bias/post_training_constraints.json"
    assert baselines.explainability_config == f"{run}/explainability/analysis_config.json"
    assert json.loads(path.read_text())["challenger"]["baselines"]["bias_config"] == f"{run}/bias/analysis_config.json"
