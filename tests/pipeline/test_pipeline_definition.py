"""The pipeline definition JSON: structure, wiring, switches, offline-ness.

All tests here share two builds (base, and "every switch on") made once per
test run by the conftest fixtures.
"""

from __future__ import annotations

import json
import re

import pytest

from pipeline_definitions.tabular import METRIC_REGEX

GOVERNANCE_GROUP_ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/mlops-churn"
KMS_KEY_ARN = "arn:aws:kms:us-east-1:222222222222:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def steps_by_name(definition: dict) -> dict:
    steps = {}
    for step in definition["Steps"]:
        steps[step["Name"]] = step
        if step["Type"] == "Condition":
            for nested in step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"]:
                steps[nested["Name"]] = nested
    return steps


def parameters(definition: dict) -> dict:
    return {p["Name"]: p for p in definition["Parameters"]}


def channel(training: dict, name: str) -> dict:
    (found,) = [c for c in training["Arguments"]["InputDataConfig"] if c["ChannelName"] == name]
    return found


def test_build_made_no_network_or_aws_attempt(base_build, variant_build):
    assert base_build[1] == []
    assert variant_build[1] == []


def test_steps_names_and_types(base_definition):
    top = [(s["Name"], s["Type"]) for s in base_definition["Steps"]]
    assert top == [
        ("Ingest", "Processing"),
        ("Query", "Processing"),
        ("Preprocess", "Processing"),
        ("Train", "Training"),
        ("Evaluate", "Processing"),
        ("CheckMetric", "Condition"),
    ]
    check = base_definition["Steps"][5]["Arguments"]
    assert [(s["Name"], s["Type"]) for s in check["IfSteps"]] == [("Register", "RegisterModel")]
    assert [(s["Name"], s["Type"]) for s in check["ElseSteps"]] == [("MetricBelowThreshold", "Fail")]


def test_parameters_and_defaults(base_definition, base_inputs):
    params = parameters(base_definition)
    assert set(params) == {
        "IngestDataUrl",
        "Cutoff",
        "ProcessingInstanceType",
        "TrainingInstanceType",
        "ModelApprovalStatus",
        "MetricThreshold",
        # Why an execution ran (the retraining trigger sets them).
        "RetrainReason",
        "TriggeredByStage",
        "TriggeredByVersion",
    }
    assert params["ModelApprovalStatus"]["DefaultValue"] == "PendingManualApproval"
    assert params["MetricThreshold"] == {"Name": "MetricThreshold", "Type": "Float", "DefaultValue": 0.7}
    # Nothing to ingest and "now" unless an execution says otherwise.
    assert params["IngestDataUrl"]["DefaultValue"] == "" and params["Cutoff"]["DefaultValue"] == ""
    assert params["TrainingInstanceType"]["DefaultValue"] == base_inputs.training_instance_type


def test_preprocess_step(base_definition, base_inputs):
    args = steps_by_name(base_definition)["Preprocess"]["Arguments"]
    assert "sagemaker-scikit-learn:1.2-1-cpu-py3" in args["AppSpecification"]["ImageUri"]
    assert ".dkr.ecr.eu-west-1.amazonaws.com/" in args["AppSpecification"]["ImageUri"]
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    assert inputs["dataset"]["S3Uri"] == {"Get": "Steps.Query.ProcessingOutputConfig.Outputs['dataset'].S3Output.S3Uri"}
    assert inputs["code"]["S3Uri"] == base_inputs.preprocess_code_uri
    arguments = args["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--features") + 1] == "tenure_months,monthly_charges,contract"
    assert arguments[arguments.index("--id-column") + 1] == "customer_id"
    outputs = [o["OutputName"] for o in args["ProcessingOutputConfig"]["Outputs"]]
    assert outputs == ["train", "validation", "test", "baseline"]
    instance = args["ProcessingResources"]["ClusterConfig"]["InstanceType"]
    assert instance == {"Get": "Parameters.ProcessingInstanceType"}
    assert args["RoleArn"] == base_inputs.role_arn


def test_train_step_reads_preprocess_outputs(base_definition, base_inputs):
    train = steps_by_name(base_definition)["Train"]
    args = train["Arguments"]
    for name in ("train", "validation"):
        source = channel(train, name)["DataSource"]["S3DataSource"]["S3Uri"]
        assert source == {"Get": f"Steps.Preprocess.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"}
    assert args["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    assert "sagemaker-scikit-learn" in args["AlgorithmSpecification"]["TrainingImage"]
    assert args["OutputDataConfig"]["S3OutputPath"] == f"{base_inputs.artifacts_s3_uri}/models"
    hyper = args["HyperParameters"]
    assert hyper["sagemaker_program"] == "train.py"
    assert hyper["sagemaker_submit_directory"] == base_inputs.train_code_uri
    assert hyper["n-estimators"] == "100"
    assert "VpcConfig" not in args


def test_metric_definitions_match_train_output(base_definition):
    args = steps_by_name(base_definition)["Train"]["Arguments"]
    regexes = {m["Name"]: m["Regex"] for m in args["AlgorithmSpecification"]["MetricDefinitions"]}
    assert regexes["validation:auc"] == METRIC_REGEX.format(split="validation", metric="auc")
    assert re.search(regexes["validation:auc"], "validation:auc=0.871234\n").group(1) == "0.871234"


def test_spot_off_by_default(base_definition):
    args = steps_by_name(base_definition)["Train"]["Arguments"]
    assert not args.get("EnableManagedSpotTraining", False)
    assert "MaxWaitTimeInSeconds" not in args["StoppingCondition"]
    assert args["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600
    assert "CheckpointConfig" not in args


def test_spot_on_switches_spot_settings(variant_definition, variant_inputs):
    args = steps_by_name(variant_definition)["Train"]["Arguments"]
    assert args["EnableManagedSpotTraining"] is True
    assert args["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800, "MaxWaitTimeInSeconds": 5400}
    checkpoint = args["CheckpointConfig"]
    assert checkpoint["LocalPath"] == "/opt/ml/checkpoints"
    assert checkpoint["S3Uri"]["Std:Join"]["Values"] == [
        variant_inputs.checkpoint_s3_uri,
        {"Get": "Execution.PipelineExecutionId"},
    ]


def test_ingest_step_loads_the_parameters_data_into_the_source_group(base_definition, variant_definition):
    args = steps_by_name(base_definition)["Ingest"]["Arguments"]
    arguments = args["AppSpecification"]["ContainerArguments"]
    assert arguments[0] == {"Std:Join": {"On": "", "Values": ["--input-uri=", {"Get": "Parameters.IngestDataUrl"}]}}
    assert arguments[arguments.index("--feature-group-name") + 1] == "mlops-churn-customers"
    assert [o["OutputName"] for o in args["ProcessingOutputConfig"]["Outputs"]] == ["ingest"]
    variant = parameters(variant_definition)["IngestDataUrl"]["DefaultValue"]
    assert variant == "s3://mlops-artifacts-222222222222-us-east-1/projects/churn/raw/"


def test_query_step_reads_the_offline_store_after_ingest(base_definition, base_inputs):
    args = steps_by_name(base_definition)["Query"]["Arguments"]
    arguments = args["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--columns") + 1] == "tenure_months,monthly_charges,contract,churn"
    assert arguments[arguments.index("--workgroup") + 1] == "mlops-churn"
    assert {"Std:Join": {"On": "", "Values": ["--cutoff=", {"Get": "Parameters.Cutoff"}]}} in arguments
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    assert inputs["ingest"]["S3Uri"] == {"Get": "Steps.Ingest.ProcessingOutputConfig.Outputs['ingest'].S3Output.S3Uri"}
    assert inputs["code"]["S3Uri"] == base_inputs.query_code_uri
    assert [o["OutputName"] for o in args["ProcessingOutputConfig"]["Outputs"]] == ["dataset"]


def test_vpc_switch_puts_every_job_in_the_network(variant_definition):
    train = steps_by_name(variant_definition)["Train"]
    assert train["Arguments"]["VpcConfig"] == {
        "Subnets": ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"],
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
    }
    for name in ("Ingest", "Query", "Preprocess", "Evaluate"):
        network = steps_by_name(variant_definition)[name]["Arguments"]["NetworkConfig"]
        assert network["VpcConfig"]["SecurityGroupIds"] == ["sg-0123456789abcdef0"]


def test_base_has_no_network(base_definition):
    text = json.dumps(base_definition)
    assert "FileSystemDataSource" not in text
    assert "VpcConfig" not in text


def test_training_uses_the_scikit_learn_image_it_serves_with(variant_definition, base_definition):
    for definition in (base_definition, variant_definition):
        image = steps_by_name(definition)["Train"]["Arguments"]["AlgorithmSpecification"]["TrainingImage"]
        assert "sagemaker-scikit-learn:1.2-1-cpu-py3" in image


def test_the_train_step_gets_the_contract(base_definition):
    hyper = steps_by_name(base_definition)["Train"]["Arguments"]["HyperParameters"]
    assert hyper["features"] == "tenure_months,monthly_charges,contract"
    assert hyper["target-column"] == "churn"


def test_kms_key_encrypts_outputs_and_volumes(variant_definition, base_definition, variant_inputs):
    assert variant_inputs.kms_key_arn == KMS_KEY_ARN
    steps = steps_by_name(variant_definition)
    train = steps["Train"]["Arguments"]
    assert train["OutputDataConfig"]["KmsKeyId"] == KMS_KEY_ARN
    # r5d has local NVMe storage: SageMaker refuses a volume key there.
    assert "VolumeKmsKeyId" not in train["ResourceConfig"]
    for name in ("Ingest", "Query", "Preprocess", "Evaluate"):
        args = steps[name]["Arguments"]
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == KMS_KEY_ARN
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == KMS_KEY_ARN
    assert "KmsKeyId" not in json.dumps(base_definition)
    assert {"Key": "project", "Value": "churn"} in train["Tags"]


def test_evaluate_step_and_property_file(base_definition, base_inputs):
    evaluate = steps_by_name(base_definition)["Evaluate"]
    assert evaluate["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]
    inputs = {i["InputName"]: i["S3Input"] for i in evaluate["Arguments"]["ProcessingInputs"]}
    assert inputs["model"]["S3Uri"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert inputs["model"]["LocalPath"] == "/opt/ml/processing/model"
    assert inputs["code"]["S3Uri"] == base_inputs.evaluate_code_uri


def test_condition_compares_metric_with_threshold(base_definition, variant_definition):
    (condition,) = steps_by_name(base_definition)["CheckMetric"]["Arguments"]["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"] == {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"},
            "Path": "binary_classification_metrics.auc.value",
        }
    }
    assert condition["RightValue"] == {"Get": "Parameters.MetricThreshold"}
    (other,) = steps_by_name(variant_definition)["CheckMetric"]["Arguments"]["Conditions"]
    assert other["LeftValue"]["Std:JsonGet"]["Path"] == "binary_classification_metrics.f1.value"
    assert parameters(variant_definition)["MetricThreshold"]["DefaultValue"] == 0.55


def test_register_targets_cross_account_group(base_definition, base_inputs):
    # The registry lives in the governance account, not the pipeline's (222222222222).
    assert base_inputs.model_package_group_arn == GOVERNANCE_GROUP_ARN
    assert base_inputs.registry_account == "111111111111"
    register = steps_by_name(base_definition)["Register"]["Arguments"]
    assert register["ModelPackageGroupName"] == GOVERNANCE_GROUP_ARN
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    (container,) = register["InferenceSpecification"]["Containers"]
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert "sagemaker-scikit-learn:1.2-1-cpu-py3" in container["Image"]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "train.py"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == "/opt/ml/model/code"
    assert register["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv", "application/json"]
    assert register["CustomerMetadataProperties"] == {
        "pipeline": "mlops-churn",
        "pipeline_execution_arn": {"Get": "Execution.PipelineExecutionArn"},
        "metric": "auc",
        # The inference contract: raw columns in this order.
        "mlops:Features": "tenure_months,monthly_charges,contract",
    }


def _join(step: str, output: str, file_name: str) -> dict:
    return {
        "Std:Join": {
            "On": "/",
            "Values": [
                {"Get": f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri"},
                file_name,
            ],
        }
    }


def test_register_wires_metrics_and_baselines(base_definition):
    register = steps_by_name(base_definition)["Register"]["Arguments"]
    metrics = register["ModelMetrics"]
    assert metrics["ModelQuality"]["Statistics"] == {
        "ContentType": "application/json",
        "S3Uri": _join("Evaluate", "evaluation", "evaluation.json"),
    }
    statistics = {"ContentType": "application/json", "S3Uri": _join("Preprocess", "baseline", "statistics.json")}
    constraints = {"ContentType": "application/json", "S3Uri": _join("Preprocess", "baseline", "constraints.json")}
    assert metrics["ModelDataQuality"] == {"Statistics": statistics, "Constraints": constraints}
    assert register["DriftCheckBaselines"]["ModelDataQuality"] == {
        "Statistics": statistics,
        "Constraints": constraints,
    }


def test_fail_step_message(base_definition):
    fail = steps_by_name(base_definition)["MetricBelowThreshold"]["Arguments"]
    values = fail["ErrorMessage"]["Std:Join"]["Values"]
    assert values[0].startswith("Model not registered: test auc")
    assert {"Get": "Parameters.MetricThreshold"} in values


@pytest.mark.parametrize("which", ["base_build", "variant_build"])
def test_no_placeholders_or_generated_names(which, request):
    text = request.getfixturevalue(which)[0]
    for marker in (
        "${Token[",
        "Unassigned",
        "PipelineVariable",
        " object at 0x",
        "PLACEHOLDER",
        "sagemaker-eu-west-1-",
        "sagemaker-us-east-1-",
    ):
        assert marker not in text, marker
    # "None" is only ever the API's own enum value, never a stringified Python None.
    assert {key for key, value in re.findall(r'"(\w+)":"(None|null)"', text)} <= {
        "S3CompressionType",
        "SkipModelValidation",
    }
    # SDK-generated names carry timestamps (name_from_base) or uuid fragments.
    assert not re.search(r"\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}", text)
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-", text.replace(KMS_KEY_ARN, ""))
    assert not re.search(r"model-[0-9a-f]{8}\b", text)  # ModelBuilder's uuid model name
    assert "TrainingJobName" not in text and "ProcessingJobName" not in text


def test_definition_is_canonical_json(base_build):
    text = base_build[0]
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def test_sdk_session_refuses_aws_calls(base_build, base_inputs):
    from pipeline_definitions.tabular import SynthTimeAwsCallError, _offline_sdk_environment, _session

    with _offline_sdk_environment(base_inputs):
        session = _session(base_inputs)
    assert session.default_bucket() == base_inputs.bucket
    assert session.boto_session.region_name == "eu-west-1"
    with pytest.raises(SynthTimeAwsCallError, match=r"s3\.ListBuckets"):
        session.boto_session.client("s3").list_buckets()


def test_graviton_processing_type_is_refused_not_silently_downgraded(make_inputs):
    from pipeline_definitions.tabular import sklearn_image_uri

    inputs = make_inputs(processing_instance_type="ml.c7g.xlarge")
    assert "1.2-1-cpu-py3" in sklearn_image_uri(inputs, "ml.m5.xlarge", "training")
    with pytest.raises(ValueError, match="only as .*1.0-1-arm64"):
        sklearn_image_uri(inputs, "ml.c7g.xlarge", "training")


def test_a_warm_pool_keeps_the_training_instances(make_inputs):
    from pipeline_definitions.tabular import build_definition

    definition = json.loads(build_definition(make_inputs(warm_pool_seconds=1800)))
    resources = steps_by_name(definition)["Train"]["Arguments"]["ResourceConfig"]
    assert resources["KeepAlivePeriodInSeconds"] == 1800
    with pytest.raises(ValueError, match="0 with spot"):
        make_inputs(warm_pool_seconds=1800, use_spot=True, max_wait_seconds=7200)
