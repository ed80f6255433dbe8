"""The dev build stack: the project's SageMaker Pipeline, its role and its retraining triggers."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from mlops_platform.config import load_config
from tests.synth import EXAMPLE_CONFIG, Synthesized

STACK = "mlops-dev-churn-build"


def _pipeline(synth: Synthesized, stack: str = STACK) -> dict:
    return next(iter(synth.resources(stack, "AWS::SageMaker::Pipeline").values()))


@pytest.fixture(scope="module")
def definition(example) -> dict:
    """The pipeline definition exactly as deployed, with its ``${...}`` placeholders."""
    definition, _ = _inline_definition(example, STACK)
    return definition


def _steps(definition: dict) -> dict[str, dict]:
    steps = {}
    for step in definition["Steps"]:
        steps[step["Name"]] = step
        for nested in step.get("Arguments", {}).get("IfSteps", []) + step.get("Arguments", {}).get("ElseSteps", []):
            steps[nested["Name"]] = nested
    return steps


def test_pipeline_definition_is_inline_with_the_dev_key_substituted(example):
    Template.from_json(example.template(STACK)).has_resource_properties(
        "AWS::SageMaker::Pipeline",
        {
            "PipelineName": "mlops-churn",
            "RoleArn": {"Fn::GetAtt": [Match.string_like_regexp("^PipelineRole"), "Arn"]},
            "PipelineDefinition": {"PipelineDefinitionBody": {"Fn::Sub": [Match.any_value(), Match.any_value()]}},
        },
    )
    _, variables = _inline_definition(example, STACK)
    assert list(variables) == ["KeyArn"]
    assert variables["KeyArn"]["Fn::ImportValue"].startswith("mlops-dev-baseline:ExportsOutputFnGetAttKey")


def test_job_volumes_and_outputs_use_the_key_arn_never_an_alias(definition):
    """VolumeKmsKeyId takes key ids and key ARNs only: an alias fails the job at start."""
    steps = _steps(definition)
    train = steps["Train"]["Arguments"]
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == "${KeyArn}"
    assert train["OutputDataConfig"]["KmsKeyId"] == "${KeyArn}"
    for name in ("Preprocess", "Evaluate"):
        arguments = steps[name]["Arguments"]
        assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${KeyArn}"
        assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == "${KeyArn}"
    assert "alias/" not in json.dumps(definition)


def test_registered_versions_support_every_serving_instance_type(definition, example):
    """Derived from both stages' variants, so CreateEndpointConfig accepts every configured variant."""
    register = _steps(definition)["Register"]["Arguments"]
    supported = register["InferenceSpecification"]["SupportedRealtimeInferenceInstanceTypes"]
    project = load_config(EXAMPLE_CONFIG).projects["churn"]
    used = {v.instance_type for stage in ("staging", "prod") for v in getattr(project.serving, stage).variants}
    assert used == {"ml.m5.large", "ml.m5.xlarge"} and set(supported) == used


def test_definition_has_its_steps_and_the_condition(definition):
    steps = _steps(definition)
    assert {name: step["Type"] for name, step in steps.items()} == {
        "Ingest": "Processing",
        "Query": "Processing",
        "Preprocess": "Processing",
        "Train": "Training",
        "Evaluate": "Processing",
        "CheckMetric": "Condition",
        "Register": "RegisterModel",
        "MetricBelowThreshold": "Fail",
    }
    condition = steps["CheckMetric"]["Arguments"]["Conditions"][0]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "binary_classification_metrics.auc.value"
    parameters = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert parameters["MetricThreshold"] == 0.75  # the approval policy's primary metric threshold
    assert parameters["ModelApprovalStatus"] == "PendingManualApproval"
    assert parameters["IngestDataUrl"] == "" and parameters["Cutoff"] == ""
    query = steps["Query"]["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert query[query.index("--feature-group-name") + 1] == "mlops-churn-customers"
    assert query[query.index("--workgroup") + 1] == "mlops-churn"
    assert query[query.index("--columns") + 1].endswith(",internet_service,churn")


def test_registration_goes_to_the_governance_group_with_evidence(definition):
    register = _steps(definition)["Register"]["Arguments"]
    assert register["ModelPackageGroupName"] == (
        "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/mlops-churn"
    )
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    metrics = register["ModelMetrics"]
    assert "evaluation.json" in json.dumps(metrics["ModelQuality"]["Statistics"])
    baseline = register["DriftCheckBaselines"]["ModelDataQuality"]
    assert "statistics.json" in json.dumps(baseline["Statistics"])
    assert "constraints.json" in json.dumps(baseline["Constraints"])


def test_definition_uses_only_deployed_literals(example, definition):
    text = json.dumps(definition)
    for leftover in ("${Token", "Token[", "PLACEHOLDER", "<", "sagemaker-eu-west-1-"):
        assert leftover not in text, leftover
    assert "arn:aws:iam::222222222222:role/mlops-churn-dev-pipeline" in text
    # every step-code URI in the definition is an asset of this synth
    for uri in {
        v for v in _walk_strings(definition) if v.startswith("s3://cdk-hnb659fds-assets-222222222222-eu-west-1/")
    }:
        key = uri.rsplit("/", 1)[1]
        staged = list(example.outdir.glob(f"asset.{key.split('.')[0]}*"))
        assert staged, uri


def test_pipeline_role_is_scoped(example):
    policy = next(iter(example.resources(STACK, "AWS::IAM::ManagedPolicy").values()))
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"] if "Sid" in s}
    assert statements["RunPipelineJobs"]["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:222222222222:processing-job/pipelines-*",
        "arn:aws:sagemaker:eu-west-1:222222222222:training-job/pipelines-*",
    ]
    assert statements["PassRoleToJobs"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}
    }
    assert statements["PullStepImages"]["Resource"] == (
        "arn:aws:ecr:eu-west-1:141502667606:repository/sagemaker-scikit-learn"
    )
    code = statements["StepCode"]["Resource"]
    assert len(code) == 5 and all(r.startswith("arn:aws:s3:::cdk-hnb659fds-assets-222222222222-") for r in code)
    assert statements["SourceFeatureGroup"]["Resource"] == (
        "arn:aws:sagemaker:eu-west-1:222222222222:feature-group/mlops-churn-customers"
    )
    assert (
        statements["OfflineStoreQueries"]["Resource"] == "arn:aws:athena:eu-west-1:222222222222:workgroup/mlops-churn"
    )
    assert (
        "arn:aws:glue:eu-west-1:222222222222:table/sagemaker_featurestore/mlops_churn_customers_??????????"
        in (statements["OfflineStoreTable"]["Resource"])
    )
    # The jobs' own log groups, never /aws/sagemaker/* (which holds endpoint logs of every project too).
    groups = [
        f"arn:aws:logs:eu-west-1:222222222222:log-group:/aws/sagemaker/{k}" for k in ("ProcessingJobs", "TrainingJobs")
    ]
    assert sorted(statements["JobLogs"]["Resource"]) == sorted([*groups, *(f"{g}:log-stream:*" for g in groups)])
    for statement in statements.values():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(a.endswith(":*") or a == "*" for a in actions), statement


def test_retraining_can_be_requested_by_event(example):
    Template.from_json(example.template(STACK)).has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["mlops.monitoring"],
                "detail-type": ["Retraining Requested"],
                "detail": {"project": ["churn"]},
            },
            "Targets": [
                {
                    "Arn": "arn:aws:sagemaker:eu-west-1:222222222222:pipeline/mlops-churn",
                    "Id": "Pipeline",
                    "RoleArn": Match.any_value(),
                }
            ],
        },
    )
    # no retraining schedule unless the project asks for one (the offline-store compaction rules have their own)
    assert not any(
        "ScheduleExpression" in r["Properties"] and "compact" not in r["Properties"].get("Description", "")
        for r in example.resources(STACK, "AWS::Events::Rule").values()
    )


def _inline_definition(synth: Synthesized, stack: str) -> tuple[dict, dict]:
    """The inline definition (with ${...} placeholders) and its Fn::Sub variables."""
    body = _pipeline(synth, stack)["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    text, variables = body["Fn::Sub"]
    return json.loads(text), variables


def test_schedule_and_spot_switches(single_account):
    rules = single_account.resources("mlops-dev-churn-build", "AWS::Events::Rule").values()
    assert [
        r["Properties"]["ScheduleExpression"]
        for r in rules
        if "ScheduleExpression" in r["Properties"] and "compact" not in r["Properties"].get("Description", "")
    ] == ["rate(7 days)"]
    definition, _ = _inline_definition(single_account, "mlops-dev-churn-build")
    train = _steps(definition)["Train"]["Arguments"]
    assert train["EnableManagedSpotTraining"] is True
    assert train["StoppingCondition"]["MaxWaitTimeInSeconds"] == 7200
    assert "CheckpointConfig" in train


def test_the_query_runs_in_an_enforced_workgroup_with_encrypted_results(example):
    template = Template.from_json(example.template(STACK))
    template.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "Name": "mlops-churn",
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": 100 * 1024**3,
                "ResultConfiguration": {
                    "OutputLocation": "s3://mlops-dev-artifacts-222222222222-eu-west-1/projects/churn/athena/",
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": Match.any_value()},
                },
            },
        },
    )


def test_pipeline_switched_off_leaves_only_the_role(single_account):
    template = single_account.template("mlops-dev-fraud-build")
    # The offline-store compaction (its functions, queue and the workgroup) stays: see test_compaction_stack.
    types = sorted(
        r["Type"]
        for key, r in template["Resources"].items()
        if not key.startswith(("Compact", "Queries")) and r["Type"] != "AWS::Athena::WorkGroup"
    )
    assert types == ["AWS::IAM::ManagedPolicy", "AWS::IAM::Role"]


def _walk_strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_strings(value)
    elif isinstance(node, str):
        yield node
