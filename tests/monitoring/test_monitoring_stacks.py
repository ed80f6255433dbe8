"""Monitoring in the templates: both engines on the served version's baselines, alarms, and the retraining path.

The example watches prod with Model Monitor (prod serves version 2 in the
``example`` synth); the single-account variant watches churn's staging with
the platform's drift-check pipeline (staging serves version 1) and has fraud
with monitoring off.
"""

from __future__ import annotations

import json

from aws_cdk.assertions import Match, Template

from mlops_platform.config import load_config
from tests.synth import EXAMPLE_CONFIG

FEATURES = load_config(EXAMPLE_CONFIG).projects["churn"].pipeline_features()
RUN = "s3://mlops-dev-artifacts-222222222222-eu-west-1/projects/churn/pipeline/mlops-churn/run-{}"
SINGLE_RUN = "s3://mlops-dev-artifacts-555555555555-eu-west-1/projects/churn/pipeline/mlops-churn/run-{}"


def _template(synthesized, name: str) -> Template:
    return Template.from_json(synthesized.template(name))


def _resources(synthesized, name: str, kind: str) -> dict:
    return synthesized.resources(name, kind)


# --------------------------------------------------------------------------- Model Monitor (example prod)


def test_model_monitor_checks_data_quality_on_the_served_versions_baselines(example):
    template = _template(example, "mlops-prod-churn-serving")
    run = RUN.format(2)
    template.has_resource_properties(
        "AWS::SageMaker::DataQualityJobDefinition",
        {
            "JobDefinitionName": Match.absent(),  # a named definition cannot be updated in place
            "DataQualityAppSpecification": {
                "ImageUri": "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer",
                "Environment": {"publish_cloudwatch_metrics": "Enabled"},
            },
            "DataQualityBaselineConfig": {
                "ConstraintsResource": {"S3Uri": f"{run}/Preprocess/baseline/constraints.json"},
                "StatisticsResource": {"S3Uri": f"{run}/Preprocess/baseline/statistics.json"},
            },
            "DataQualityJobInput": {"EndpointInput": Match.object_like({"EndpointName": "mlops-churn-prod"})},
            "DataQualityJobOutputConfig": {
                "KmsKeyId": Match.any_value(),
                "MonitoringOutputs": [
                    {
                        "S3Output": Match.object_like(
                            {
                                "S3Uri": "s3://mlops-prod-artifacts-444444444444-eu-west-1/projects/churn/monitoring/prod/data-quality"
                            }
                        )
                    }
                ],
            },
            "JobResources": {"ClusterConfig": Match.object_like({"VolumeKmsKeyId": Match.any_value()})},
            "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True},
            "RoleArn": Match.any_value(),
        },
    )


def test_model_monitor_checks_model_quality_against_ground_truth(example):
    template = _template(example, "mlops-prod-churn-serving")
    template.has_resource_properties(
        "AWS::SageMaker::ModelQualityJobDefinition",
        {
            "JobDefinitionName": Match.absent(),
            "ModelQualityAppSpecification": Match.object_like({"ProblemType": "BinaryClassification"}),
            "ModelQualityBaselineConfig": {
                "ConstraintsResource": {"S3Uri": f"{RUN.format(2)}/Evaluate/evaluation/model_quality/constraints.json"}
            },
            "ModelQualityJobInput": {
                "EndpointInput": Match.object_like(
                    {
                        "EndpointName": "mlops-churn-prod",
                        "ProbabilityAttribute": "0",
                        "ProbabilityThresholdAttribute": 0.5,
                    }
                ),
                "GroundTruthS3Input": {
                    "S3Uri": "s3://mlops-prod-artifacts-444444444444-eu-west-1/projects/churn/ground-truth/"
                },
            },
        },
    )


def test_schedules_run_on_the_configured_cron_after_the_endpoint_exists(example):
    schedules = _resources(example, "mlops-prod-churn-serving", "AWS::SageMaker::MonitoringSchedule")
    by_name = {s["Properties"]["MonitoringScheduleName"]: s for s in schedules.values()}
    assert sorted(by_name) == [
        "mlops-churn-prod-data-quality",
        "mlops-churn-prod-model-bias",  # bias and explainability: tests/monitoring/test_bias_stacks.py
        "mlops-churn-prod-model-explainability",
        "mlops-churn-prod-model-quality",
    ]
    endpoint = next(iter(_resources(example, "mlops-prod-churn-serving", "AWS::SageMaker::Endpoint")))
    for schedule in by_name.values():
        config = schedule["Properties"]["MonitoringScheduleConfig"]
        assert config["ScheduleConfig"] == {"ScheduleExpression": "cron(0 * ? * * *)"}
        assert endpoint in schedule["DependsOn"]
        # The generated job definition name, read off its ARN.
        assert "Fn::Select" in config["MonitoringJobDefinitionName"]


def test_staging_is_not_monitored_in_the_example(example):
    template = example.template("mlops-staging-churn-serving")
    assert template["Outputs"]["Monitoring"]["Value"] == "off"
    for kind in ("AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::MonitoringSchedule"):
        assert not _resources(example, "mlops-staging-churn-serving", kind)


# --------------------------------------------------------------------------- alarms (both engines)


def _alarms(synthesized, stack: str) -> dict[str, dict]:
    alarms = _resources(synthesized, stack, "AWS::CloudWatch::Alarm")
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in alarms.values() if "AlarmName" in a["Properties"]}


def test_every_feature_and_quality_metric_has_an_alarm_tagged_with_the_served_version(example):
    alarms = _alarms(example, "mlops-prod-churn-serving")
    prefix = "mlops-churn-prod-monitoring-"
    drift = {name: a for name, a in alarms.items() if name.startswith(f"{prefix}drift-")}
    assert sorted(drift) == sorted(f"{prefix}drift-{f}" for f in FEATURES)
    for feature in FEATURES:
        alarm = drift[f"{prefix}drift-{feature}"]
        assert alarm["Namespace"] == "aws/sagemaker/Endpoints/data-metrics"
        assert alarm["MetricName"] == f"feature_baseline_drift_{feature}"
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "Endpoint": "mlops-churn-prod",
            "MonitoringSchedule": "mlops-churn-prod-data-quality",
        }
        assert alarm["Threshold"] == 0.1 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert alarm["AlarmDescription"].endswith("[project=churn stage=prod version=2]")
    quality = alarms[f"{prefix}quality-auc"]
    assert quality["Namespace"] == "aws/sagemaker/Endpoints/model-metrics" and quality["MetricName"] == "auc"
    assert quality["Threshold"] == 0.75 and quality["ComparisonOperator"] == "LessThanThreshold"
    assert f"{prefix}quality-accuracy" in alarms


def test_failed_runs_tell_the_owners(example, single_account):
    template = _template(example, "mlops-prod-churn-serving")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.sagemaker"],
                "detail-type": ["SageMaker Processing Job State Change"],
                "detail": {"ProcessingJobStatus": ["Failed"], "MonitoringScheduleArn": Match.any_value()},
            },
            "Targets": [Match.object_like({"Arn": {"Ref": Match.string_like_regexp("AlarmTopic")}})],
        },
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Sid": "FailedMonitoringRuns", "Principal": {"Service": "events.amazonaws.com"},
            "Condition": {"ArnEquals": {"aws:SourceArn": Match.any_value()}}})])}},
    )  # fmt: skip
    _template(single_account, "mlops-staging-churn-serving").has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {"detail-type": ["SageMaker Model Building Pipeline Execution Status Change"]}
            )
        },
    )


# --------------------------------------------------------------------------- the drift-check engine


def _drift_step(single_account) -> dict:
    (pipeline,) = _resources(single_account, "mlops-staging-churn-serving", "AWS::SageMaker::Pipeline").values()
    assert pipeline["Properties"]["PipelineName"] == "mlops-churn-staging-drift"
    body, variables = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    assert set(variables) == {"KeyArn", "RoleArn"}
    (step,) = json.loads(body)["Steps"]
    return step["Arguments"]


def test_the_drift_check_reads_the_same_baselines_and_captures(single_account):
    args = _drift_step(single_account)
    inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in args["ProcessingInputs"]}
    assert inputs["baseline"] == f"{SINGLE_RUN.format(1)}/Preprocess/baseline/"
    assert inputs["quality"] == f"{SINGLE_RUN.format(1)}/Evaluate/evaluation/model_quality/constraints.json"
    argv = args["AppSpecification"]["ContainerArguments"]
    value = {argv[i]: argv[i + 1] for i in range(0, len(argv) - 1) if argv[i].startswith("--")}
    assert value["--capture-uri"] == (
        "s3://mlops-staging-artifacts-555555555555-eu-west-1/projects/churn/data-capture/mlops-churn-staging/"
    )
    assert value["--schedule"] == "mlops-churn-staging-drift" and value["--window-hours"] == "1"
    assert value["--endpoint"] == "mlops-churn-staging"
    assert "--ground-truth-uri" in value
    assert args["ProcessingOutputConfig"]["KmsKeyId"] == "${KeyArn}"
    assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${KeyArn}"
    assert args["AppSpecification"]["ImageUri"].endswith(
        ".dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )


def test_the_drift_check_runs_on_the_schedule_and_alarms_like_model_monitor(single_account):
    template = _template(single_account, "mlops-staging-churn-serving")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "cron(0 * ? * * *)",
            "Targets": [Match.object_like({"Arn": Match.string_like_regexp(":pipeline/mlops-churn-staging-drift$")})],
        },
    )
    alarms = _alarms(single_account, "mlops-staging-churn-serving")
    prefix = "mlops-churn-staging-monitoring-"
    assert {f"{prefix}drift-{f}" for f in FEATURES} <= set(alarms)
    dims = {d["Name"]: d["Value"] for d in alarms[f"{prefix}drift-contract"]["Dimensions"]}
    assert dims == {"Endpoint": "mlops-churn-staging", "MonitoringSchedule": "mlops-churn-staging-drift"}
    assert alarms[f"{prefix}violations"]["MetricName"] == "constraint_violations"
    assert not _resources(single_account, "mlops-staging-churn-serving", "AWS::SageMaker::MonitoringSchedule")


def test_monitoring_off_synthesizes_none_of_it(single_account):
    for stage in ("staging", "prod"):
        template = single_account.template(f"mlops-{stage}-fraud-serving")
        assert template["Outputs"]["Monitoring"]["Value"] == "off"
        kinds = {r["Type"] for r in template["Resources"].values()}
        assert not kinds & {
            "AWS::SageMaker::DataQualityJobDefinition",
            "AWS::SageMaker::ModelQualityJobDefinition",
            "AWS::SageMaker::MonitoringSchedule",
            "AWS::SageMaker::Pipeline",
        }
    functions = _resources(single_account, "mlops-dev-fraud-build", "AWS::Lambda::Function").values()
    assert not [f for f in functions if f["Properties"].get("FunctionName", "").endswith("-retrain")]


def test_the_summary_says_what_is_monitored(example, single_account):
    assert example.template("mlops-prod-churn-serving")["Outputs"]["Monitoring"]["Value"] == (
        "model_monitor: data and model quality, bias, explainability on version 2's baselines, cron(0 * ? * * *)"
    )
    assert single_account.template("mlops-staging-churn-serving")["Outputs"]["Monitoring"]["Value"].startswith(
        "pipeline: data and model quality on version 1's baselines"
    )
    assert single_account.template("mlops-prod-churn-serving")["Outputs"]["Monitoring"]["Value"] == "off"


# --------------------------------------------------------------------------- the retraining path


def matches(pattern, event) -> bool:
    """EventBridge matching for the pattern features used here: value lists, prefixes, nesting."""
    for key, expected in pattern.items():
        value = event.get(key)
        if isinstance(expected, dict):
            if not isinstance(value, dict) or not matches(expected, value):
                return False
        elif not any(
            (isinstance(option, dict) and isinstance(value, str) and value.startswith(option["prefix"]))
            or option == value
            for option in expected
        ):
            return False
    return True


def _alarm_event(name: str, account: str, state: str = "ALARM") -> dict:
    return {
        "id": "e-1",
        "source": "aws.cloudwatch",
        "detail-type": "CloudWatch Alarm State Change",
        "account": account,
        "detail": {"alarmName": name, "state": {"value": state}},
    }


def _rules(synthesized, stack: str) -> list[dict]:
    """The stack's rules on event patterns (scheduled rules match no event)."""
    rules = [r["Properties"] for r in _resources(synthesized, stack, "AWS::Events::Rule").values()]
    return [r for r in rules if r.get("EventPattern")]


def test_a_prod_drift_alarm_travels_through_governance_and_starts_the_dev_pipeline(example):
    event = _alarm_event("mlops-churn-prod-monitoring-drift-contract", "444444444444")
    # prod: to the governance bus, with a role that may put events there only
    (forward,) = [r for r in _rules(example, "mlops-prod-churn-serving") if matches(r.get("EventPattern", {}), event)]
    (target,) = forward["Targets"]
    assert target["Arn"] == "arn:aws:events:eu-west-1:111111111111:event-bus/default" and "RoleArn" in target
    # governance: admits the stage accounts and relays to dev
    _template(example, "mlops-governance-baseline").has_resource_properties(
        "AWS::Events::EventBusPolicy",
        {
            "Statement": Match.object_like(
                {"Principal": {"AWS": "arn:aws:iam::444444444444:root"}, "Action": "events:PutEvents"}
            )
        },
    )
    (relay,) = [
        r for r in _rules(example, "mlops-governance-churn-approval") if matches(r.get("EventPattern", {}), event)
    ]
    assert relay["Targets"][0]["Arn"] == "arn:aws:events:eu-west-1:222222222222:event-bus/default"
    # dev: admits governance; the trigger's rule matches and its role may start only the project's pipeline
    _template(example, "mlops-dev-baseline").has_resource_properties(
        "AWS::Events::EventBusPolicy",
        {"Statement": Match.object_like({"Principal": {"AWS": "arn:aws:iam::111111111111:root"}})},
    )
    build = "mlops-dev-churn-build"
    (trigger,) = [r for r in _rules(example, build) if matches(r.get("EventPattern", {}), event)]
    function = next(
        f for f in _resources(example, build, "AWS::Lambda::Function").values()
        if f["Properties"].get("FunctionName") == "mlops-churn-retrain"
    )  # fmt: skip
    assert trigger["Targets"][0]["Arn"]["Fn::GetAtt"][0] in _resources(example, build, "AWS::Lambda::Function")
    env = function["Properties"]["Environment"]["Variables"]
    assert env["PIPELINE_NAME"] == "mlops-churn" and env["COOLDOWN_MINUTES"] == "1440"
    assert json.loads(env["ACCOUNTS"]) == {"prod": "444444444444"}
    policies = _resources(example, build, "AWS::IAM::ManagedPolicy").values()
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    start = next(s for s in statements if s.get("Sid") == "StartPipeline")
    assert start["Resource"] == "arn:aws:sagemaker:eu-west-1:222222222222:pipeline/mlops-churn"
    cooldown = next(s for s in statements if s.get("Sid") == "CoolDown")
    assert cooldown["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["retrain#churn"]}}


def test_other_alarms_and_other_transitions_go_nowhere(example):
    for event in (
        _alarm_event("mlops-churn-eu-prod-monitoring-drift-contract", "444444444444"),  # another project
        _alarm_event("mlops-churn-prod-monitoring-drift-contract", "444444444444", state="OK"),
        _alarm_event("mlops-churn-prod-monitoring-drift-contract", "999999999999"),  # not the stage's account
        _alarm_event("mlops-churn-prod-5xx", "444444444444"),  # an endpoint alarm, not monitoring
    ):
        for stack in ("mlops-prod-churn-serving", "mlops-governance-churn-approval", "mlops-dev-churn-build"):
            assert not [r for r in _rules(example, stack) if matches(r.get("EventPattern", {}), event)], (stack, event)


def test_in_one_account_nothing_is_forwarded(single_account):
    for stack in ("mlops-staging-churn-serving", "mlops-governance-churn-approval"):
        targets = [t["Arn"] for r in _rules(single_account, stack) for t in r.get("Targets", [])]
        assert not [t for t in targets if isinstance(t, str) and ":event-bus/" in t], stack
    assert not _resources(single_account, "mlops-governance-baseline", "AWS::Events::EventBusPolicy")
    event = _alarm_event("mlops-churn-staging-monitoring-drift-contract", "555555555555")
    assert [r for r in _rules(single_account, "mlops-dev-churn-build") if matches(r.get("EventPattern", {}), event)]


def test_no_baseline_means_no_schedule_and_the_summary_says_why():
    from stacks.serving import monitoring_plan
    from tests.synth import release

    config = load_config(EXAMPLE_CONFIG)
    churn = config.projects["churn"]
    without = release(config, "churn", "prod", challenger=4, baselines=False)
    assert monitoring_plan(churn, "prod", without) == (
        "none: version 4 was registered without drift-check baselines",
        None,
    )
    assert monitoring_plan(churn, "prod", None)[0] == "none yet: nothing is released to this stage"
    assert monitoring_plan(churn, "staging", without) == ("off", None)
    why, served = monitoring_plan(churn, "prod", release(config, "churn", "prod", challenger=4))
    assert why == "" and served is not None and served.version == 4


def test_the_synth_summary_lists_monitoring(example):
    from mlops_platform.summary import summarize

    (line,) = [line for line in summarize(example.outdir) if "mlops-prod-churn-serving" in line]
    assert line.endswith(
        "; monitoring: model_monitor: data and model quality, bias, explainability on version 2's baselines, "
        "cron(0 * ? * * *)"
    )
