"""Serving stacks: shadow test in staging, multi-variant blue/green in prod, driven by release manifests."""

from __future__ import annotations

import json

import pytest
from aws_cdk import App, Environment, Stage
from aws_cdk.assertions import Match, Template

from mlops_platform.approval import releases as RELEASES  # noqa: N812
from mlops_platform.config import load_config
from mlops_platform.naming import Naming
from mlops_platform.release_manifest import ReleaseManifest, manifest_for
from stacks.baseline import BaselineStack
from stacks.serving import ServingStack
from tests.synth import EXAMPLE_CONFIG

CONFIG = load_config(EXAMPLE_CONFIG)
NAMING = Naming(CONFIG.platform)
ARN = NAMING.model_package_arns("churn").removesuffix("*")


def t(synth, name) -> Template:
    return Template.from_json(synth.template(name))


def _by_type(template: dict, type_: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def _model_versions(template: dict) -> dict[str, int]:
    """Logical id of each model -> the package version it serves."""
    return {
        k: int(v["Properties"]["Containers"][0]["ModelPackageName"].rsplit("/", 1)[1])
        for k, v in _by_type(template, "AWS::SageMaker::Model").items()
    }


def _variants(template: dict, key: str = "ProductionVariants") -> list[tuple[str, int]]:
    """(variant name, served version) of the endpoint config."""
    (config,) = _by_type(template, "AWS::SageMaker::EndpointConfig").values()
    models = _model_versions(template)
    return [(v["VariantName"], models[v["ModelName"]["Fn::GetAtt"][0]]) for v in config["Properties"].get(key, [])]


# --------------------------------------------------------------------------- the example


def test_staging_shadow_tests_the_challenger_beside_the_champion(example):
    template = example.template("mlops-staging-churn-serving")
    assert _variants(template) == [("champion", 2)]
    assert _variants(template, "ShadowProductionVariants") == [("challenger", 3)]
    t(example, "mlops-staging-churn-serving").has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [Match.object_like({"InitialVariantWeight": 100, "InstanceType": "ml.m5.large"})],
            # a copy of 50 % of the champion's requests
            "ShadowProductionVariants": [Match.object_like({"InitialVariantWeight": 50})],
            "KmsKeyId": Match.any_value(),
            "DataCaptureConfig": {
                "EnableCapture": True,
                "InitialSamplingPercentage": 100,
                "KmsKeyId": Match.any_value(),
                "DestinationS3Uri": Match.any_value(),
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": Match.any_value(),
            },
        },
    )
    endpoint = t(example, "mlops-staging-churn-serving")
    endpoint.has_resource_properties(
        "AWS::SageMaker::Endpoint", {"EndpointName": "mlops-churn-staging", "DeploymentConfig": Match.absent()}
    )
    endpoint.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_models_come_from_the_registry_isolated_in_the_vpc(example):
    for stack in ("mlops-staging-churn-serving", "mlops-prod-churn-serving"):
        models = _by_type(example.template(stack), "AWS::SageMaker::Model")
        assert len(models) == 2
        for model in models.values():
            props = model["Properties"]
            assert props["Containers"][0]["ModelPackageName"].startswith(ARN)
            assert props["EnableNetworkIsolation"] is True
            assert len(props["VpcConfig"]["Subnets"]) == CONFIG.platform.network.max_azs
            role = props["ExecutionRoleArn"]["Fn::GetAtt"][0]
            assert example.template(stack)["Resources"][role]["Properties"]["RoleName"].endswith("-model")


def test_prod_is_multi_variant_autoscaled_and_captured(example):
    template = example.template("mlops-prod-churn-serving")
    assert _variants(template) == [("champion", 1), ("challenger", 2)]
    prod = t(example, "mlops-prod-churn-serving")
    prod.has_resource_properties(
        "AWS::SageMaker::EndpointConfig",
        {
            "ProductionVariants": [
                Match.object_like({"VariantName": "champion", "InitialVariantWeight": 90, "InitialInstanceCount": 2}),
                Match.object_like({"VariantName": "challenger", "InitialVariantWeight": 10, "InitialInstanceCount": 1}),
            ],
            "ShadowProductionVariants": Match.absent(),
            "DataCaptureConfig": Match.object_like({"EnableCapture": True, "InitialSamplingPercentage": 20}),
        },
    )
    for variant, low, high in (("champion", 2, 6), ("challenger", 1, 2)):
        prod.has_resource_properties(
            "AWS::ApplicationAutoScaling::ScalableTarget",
            {
                "ResourceId": f"endpoint/mlops-churn-prod/variant/{variant}",
                "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
                "MinCapacity": low,
                "MaxCapacity": high,
            },
        )
    prod.resource_properties_count_is(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "TargetValue": 200,
                    "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
                }
            ),
        },
        2,
    )


def test_prod_updates_blue_green_with_canary_and_rolls_back_on_alarms(example):
    template = example.template("mlops-prod-churn-serving")
    (endpoint,) = _by_type(template, "AWS::SageMaker::Endpoint").values()
    deployment = endpoint["Properties"]["DeploymentConfig"]
    policy = deployment["BlueGreenUpdatePolicy"]
    assert policy["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
        "WaitIntervalInSeconds": 600,
    }
    assert policy["TerminationWaitInSeconds"] == 300
    assert 1200 < policy["MaximumExecutionTimeoutInSeconds"] <= 14400
    alarms = _by_type(template, "AWS::CloudWatch::Alarm")
    rollback = {a["AlarmName"]["Ref"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]}
    assert rollback and rollback <= set(alarms)
    watched = {(alarms[a]["Properties"]["MetricName"], _dimension(alarms[a], "VariantName")) for a in rollback}
    assert watched == {
        (metric, variant)
        for metric in ("Invocation5XXErrors", "ModelLatency")
        for variant in ("champion", "challenger")
    }
    latency = next(a for a in rollback if alarms[a]["Properties"]["MetricName"] == "ModelLatency")
    assert alarms[latency]["Properties"]["Threshold"] == 300_000  # 300 ms in microseconds
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"], "every alarm notifies the owners"


def _endpoint(template: dict) -> dict:
    (endpoint,) = _by_type(template, "AWS::SageMaker::Endpoint").values()
    return endpoint["Properties"]


RETAIN_COUNTS = {
    "RetainAllVariantProperties": True,
    "ExcludeRetainedVariantProperties": [{"VariantPropertyType": "DesiredWeight"}],
}


def test_autoscaled_prod_keeps_its_instance_counts_but_takes_the_configured_weights(example):
    props = _endpoint(example.template("mlops-prod-churn-serving"))
    assert {k: props.get(k) for k in RETAIN_COUNTS} == RETAIN_COUNTS
    assert "DeploymentConfig" in props, "together with the blue/green guardrails"


def test_counts_reset_without_autoscaling_or_on_the_endpoints_first_release(example, single_account, journey):
    for props in (
        _endpoint(example.template("mlops-staging-churn-serving")),  # a champion, but no autoscaled variant
        _endpoint(single_account.template("mlops-prod-fraud-serving")),  # serverless, first release
        _endpoint(journey["prod_before"]),  # autoscaled, first prod release: CloudFormation creates the endpoint
    ):
        assert not set(RETAIN_COUNTS) & set(props), props
    assert {k: _endpoint(journey["promoted"]).get(k) for k in RETAIN_COUNTS} == RETAIN_COUNTS
    assert {k: _endpoint(journey["rolled_back"]).get(k) for k in RETAIN_COUNTS} == {k: None for k in RETAIN_COUNTS}


def _dimension(alarm: dict, name: str) -> str:
    return next(d["Value"] for d in alarm["Properties"]["Dimensions"] if d["Name"] == name)


def test_no_endpoint_config_or_model_has_a_fixed_name(example, single_account):
    checked = 0
    for synth in (example, single_account):
        for name, template in synth.templates.items():
            for resource in template["Resources"].values():
                if resource["Type"] == "AWS::SageMaker::EndpointConfig":
                    assert "EndpointConfigName" not in resource["Properties"], name
                    checked += 1
                if resource["Type"] == "AWS::SageMaker::Model":
                    assert "ModelName" not in resource["Properties"], name
                    checked += 1
    assert checked >= 8


def test_serving_stack_outputs_what_it_serves(example):
    outputs = example.template("mlops-staging-churn-serving")["Outputs"]
    assert outputs["EndpointName"]["Value"] == "mlops-churn-staging"
    assert outputs["Release"]["Value"] == "challenger version 3, champion version 2"
    assert "EndpointConfigName" in outputs  # what `mlops verify` compares the live endpoint with


def test_model_role_reads_dev_artifacts_and_writes_capture(example):
    prod = t(example, "mlops-prod-churn-serving")
    prod.has_resource_properties("AWS::IAM::Role", {"RoleName": "mlops-churn-prod-model"})
    policy = json.dumps(_by_type(example.template("mlops-prod-churn-serving"), "AWS::IAM::ManagedPolicy"))
    assert "arn:aws:s3:::mlops-dev-artifacts-222222222222-eu-west-1/projects/churn/*" in policy
    assert "arn:aws:s3:::mlops-prod-artifacts-444444444444-eu-west-1/projects/churn/data-capture/*" in policy


def test_verify_role_trusts_only_the_governance_deploy_role(example):
    prod = t(example, "mlops-prod-churn-serving")
    prod.has_resource_properties(
        "AWS::IAM::Role",
        {
            "RoleName": "mlops-churn-prod-verify",
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Condition": {"ArnEquals": {"aws:PrincipalArn": NAMING.deploy_role_arn()}},
                            "Principal": {"AWS": Match.any_value()},
                        }
                    )
                ]
            },
        },
    )
    roles = _by_type(example.template("mlops-prod-churn-serving"), "AWS::IAM::Role")
    (verify,) = (r for r in roles.values() if r["Properties"].get("RoleName") == "mlops-churn-prod-verify")
    assert ":iam::111111111111:root" in json.dumps(verify["Properties"]["AssumeRolePolicyDocument"])


def _verify_statements(template: dict) -> dict[str, dict]:
    (policy,) = (
        p
        for p in _by_type(template, "AWS::IAM::ManagedPolicy").values()
        if any(s.get("Sid") == "DescribeEndpoint" for s in p["Properties"]["PolicyDocument"]["Statement"])
    )
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_verify_role_may_reattach_only_sagemaker_variant_scaling(example):
    statements = _verify_statements(example.template("mlops-prod-churn-serving"))
    scale = statements["ReattachVariantScaling"]
    assert sorted(scale["Action"]) == [
        "application-autoscaling:DeleteScalingPolicy",
        "application-autoscaling:DeregisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:RegisterScalableTarget",
    ]
    assert scale["Resource"] == "arn:aws:application-autoscaling:eu-west-1:444444444444:scalable-target/*"
    assert scale["Condition"] == {
        "StringEquals": {
            "application-autoscaling:service-namespace": "sagemaker",
            "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
        }
    }
    assert statements["RegisterVariantCapacity"]["Resource"] == (
        "arn:aws:sagemaker:eu-west-1:444444444444:endpoint/mlops-churn-prod"
    )
    assert statements["TargetTrackingAlarms"]["Resource"] == (
        "arn:aws:cloudwatch:eu-west-1:444444444444:alarm:TargetTracking-endpoint/mlops-churn-prod/variant/*"
    )
    describe = statements["DescribeScaling"]
    assert describe["Resource"] == "*" and all(":Describe" in a for a in describe["Action"])
    actions = [
        a for s in statements.values() for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    ]
    assert not any(a.startswith("iam:") or a.endswith("*") for a in actions)
    assert "sagemaker:UpdateEndpoint" not in actions, "CloudFormation updates the endpoint, not the verify role"


# --------------------------------------------------------------------------- deploy pipeline


def test_deploy_pipeline_takes_the_release_variables_and_queues(example):
    deploy = t(example, "mlops-governance-deploy")
    deploy.has_resource_properties(
        "AWS::CodePipeline::Pipeline",
        {
            "Name": "mlops-deploy",
            "PipelineType": "V2",
            "ExecutionMode": "QUEUED",
            "Variables": [
                Match.object_like({"Name": "PROJECT"}),
                Match.object_like({"Name": "STAGE"}),
                Match.object_like({"Name": "MODEL_PACKAGE_ARN"}),
            ],
            "ArtifactStore": Match.object_like({"EncryptionKey": Match.object_like({"Type": "KMS"})}),
        },
    )
    (pipeline,) = _by_type(example.template("mlops-governance-deploy"), "AWS::CodePipeline::Pipeline").values()
    source, build = (stage["Actions"][0] for stage in pipeline["Properties"]["Stages"])
    assert source["Configuration"]["PollForSourceChanges"] is False
    env = json.loads(build["Configuration"]["EnvironmentVariables"])
    assert {e["name"]: e["value"] for e in env} == {
        "PROJECT": "#{variables.PROJECT}",
        "STAGE": "#{variables.STAGE}",
        "MODEL_PACKAGE_ARN": "#{variables.MODEL_PACKAGE_ARN}",
        "PIPELINE_EXECUTION_ID": "#{codepipeline.PipelineExecutionId}",
    }
    (project,) = _by_type(example.template("mlops-governance-deploy"), "AWS::CodeBuild::Project").values()
    assert "make deploy-release" in project["Properties"]["Source"]["BuildSpec"]
    assert project["Properties"]["EncryptionKey"]


def test_deploy_build_role_assumes_only_bootstrap_and_verify_roles(example):
    template = example.template("mlops-governance-deploy")
    deploy = t(example, "mlops-governance-deploy")
    deploy.has_resource_properties("AWS::IAM::Role", {"RoleName": "mlops-governance-deploy"})
    assumed = set()
    for policy in _by_type(template, "AWS::IAM::ManagedPolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert "*" not in actions and all(not a.endswith(":*") for a in actions)
            if "sts:AssumeRole" in actions:
                resources = statement["Resource"]
                assumed.update(resources if isinstance(resources, list) else [resources])
    assert assumed == {
        *(arn for stage in ("staging", "prod") for arn in NAMING.cdk_bootstrap_role_arns(stage)),
        NAMING.verify_role_arn("churn", "staging"),
        NAMING.verify_role_arn("churn", "prod"),
    }


# --------------------------------------------------------------------------- single account: none, first, serverless


def test_no_release_means_no_endpoint_and_the_stack_says_so(single_account):
    for stage in ("prod",):
        template = single_account.template(f"mlops-{stage}-churn-serving")
        assert not _by_type(template, "AWS::SageMaker::Endpoint")
        assert not _by_type(template, "AWS::SageMaker::Model")
        assert template["Outputs"]["Release"]["Value"].startswith("no release yet")
        assert _by_type(template, "AWS::IAM::Role"), "the model and verify roles exist before any release"


def test_first_release_serves_the_challenger_without_a_shadow(single_account):
    template = single_account.template("mlops-staging-fraud-serving")
    assert _variants(template) == [("primary", 1)]
    assert _variants(template, "ShadowProductionVariants") == []


def test_serverless_prod_falls_back_to_an_all_at_once_update(single_account):
    template = single_account.template("mlops-prod-fraud-serving")
    (config,) = _by_type(template, "AWS::SageMaker::EndpointConfig").values()
    (variant,) = config["Properties"]["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 10}
    assert "InstanceType" not in variant and "KmsKeyId" not in config["Properties"]
    assert "DataCaptureConfig" not in config["Properties"]
    (endpoint,) = _by_type(template, "AWS::SageMaker::Endpoint").values()
    assert "DeploymentConfig" not in endpoint["Properties"], "guardrails do not support serverless endpoints"
    (model,) = _by_type(template, "AWS::SageMaker::Model").values()
    assert "VpcConfig" not in model["Properties"] and model["Properties"]["EnableNetworkIsolation"] is False
    assert not _by_type(template, "AWS::ApplicationAutoScaling::ScalableTarget")


# --------------------------------------------------------------------------- the model's journey, record by record


def _record(version: int, stage: str, recorded_at: str, status: str = "released"):
    return RELEASES.Release(
        project="churn",
        stage=stage,
        version=version,
        model_package_arn=f"{ARN}{version}",
        status=status,
        recorded_at=recorded_at,
    )


def _serving_template(stage: str, manifest: ReleaseManifest | None) -> dict:
    """Only the baseline and serving stack of one stage, for quick release-by-release comparisons."""
    app = App(context={"aws:cdk:enable-path-metadata": False})
    account = CONFIG.platform.accounts.of(stage)
    scope = Stage(app, stage.capitalize(), env=Environment(account=account.id, region=account.region))
    baseline = BaselineStack(scope, "Baseline", role=stage, platform=CONFIG.platform, naming=NAMING)
    stack = ServingStack(
        scope,
        "Serving",
        stage=stage,
        project=CONFIG.projects["churn"],
        naming=NAMING,
        baseline=baseline,
        release=manifest,
    )
    return Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def journey() -> dict[str, dict]:
    """Templates after each step: first release, challenger release, promotion, rollback of the promotion."""
    staging = [_record(1, "staging", "2026-01-01T00:00:00Z")]
    prod: list = []
    steps = {"first": _serving_template("staging", manifest_for("churn", "staging", staging, prod))}
    prod = [_record(1, "prod", "2026-01-02T00:00:00Z")]
    staging.append(_record(2, "staging", "2026-01-03T00:00:00Z"))
    steps["challenger"] = _serving_template("staging", manifest_for("churn", "staging", staging, prod))
    steps["prod_before"] = _serving_template("prod", manifest_for("churn", "prod", prod))
    prod.append(_record(2, "prod", "2026-01-04T00:00:00Z"))
    steps["promoted"] = _serving_template("prod", manifest_for("churn", "prod", prod))
    steps["staging_after_promotion"] = _serving_template("staging", manifest_for("churn", "staging", staging, prod))
    prod[-1] = _record(2, "prod", "2026-01-04T00:00:00Z", status="revoked")
    steps["rolled_back"] = _serving_template("prod", manifest_for("churn", "prod", prod))
    return steps


def test_first_release_deploys_the_challenger_directly(journey):
    assert _variants(journey["first"]) == [("champion", 1)]
    assert _variants(journey["first"], "ShadowProductionVariants") == []


def test_challenger_release_shadows_the_prod_champion(journey):
    assert _variants(journey["challenger"]) == [("champion", 1)]
    assert _variants(journey["challenger"], "ShadowProductionVariants") == [("challenger", 2)]
    # the champion keeps its model resource (same logical id), so only the challenger's model is new
    assert set(_model_versions(journey["first"])) < set(_model_versions(journey["challenger"]))


def test_promotion_changes_prod_weights_not_variant_names(journey):
    assert _variants(journey["prod_before"]) == [("champion", 1), ("challenger", 1)]
    assert _variants(journey["promoted"]) == [("champion", 1), ("challenger", 2)]
    # staging no longer shadows: prod serves what staging serves
    assert _variants(journey["staging_after_promotion"]) == [("champion", 2)]
    assert _variants(journey["staging_after_promotion"], "ShadowProductionVariants") == []


def test_rollback_returns_prod_to_the_previous_release(journey):
    assert _variants(journey["rolled_back"]) == [("champion", 1), ("challenger", 1)]
    assert journey["rolled_back"]["Outputs"]["Release"]["Value"].startswith("version 1")
    endpoint = next(iter(_by_type(journey["rolled_back"], "AWS::SageMaker::Endpoint").values()))
    assert endpoint["Properties"]["DeploymentConfig"]["BlueGreenUpdatePolicy"], "a rollback deploys blue/green too"


def test_release_changes_replace_the_config_but_keep_the_endpoint_name(journey):
    names = {
        next(iter(_by_type(journey[step], "AWS::SageMaker::Endpoint").values()))["Properties"]["EndpointName"]
        for step in ("prod_before", "promoted", "rolled_back")
    }
    assert names == {"mlops-churn-prod"}
    configs = [
        next(iter(_by_type(journey[step], "AWS::SageMaker::EndpointConfig").values()))["Properties"]
        for step in ("prod_before", "promoted")
    ]
    assert configs[0] != configs[1]


# --------------------------------------------------------------------------- make deploy-release


def test_deploy_release_targets_the_synthesized_serving_stack(example, capsys):
    import importlib.util

    from tests.synth import ROOT

    spec = importlib.util.spec_from_file_location("deploy_release", ROOT / "scripts" / "deploy_release.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.stack_selector("prod", "churn") == example.construct_path["mlops-prod-churn-serving"]
    assert script.main(["churn", "prod", "--expect-arn", f"{ARN}2", "--dry-run"]) == 0
    steps = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in steps] == [
        "[1/5] export release",
        "[2/5] detach autoscaling",
        "[3/5] deploy",
        "[4/5] reattach autoscaling",
        "[5/5] verify",
    ]  # the scaling steps themselves: tests/serving_cli/test_scaling.py
    assert "releases export --project churn --stage prod" in steps[0] and f"--expect-arn {ARN}2" in steps[0]
    assert "deploy Prod/ChurnServing --exclusively --require-approval never" in steps[2]
    assert f"--role-arn {NAMING.verify_role_arn('churn', 'prod')} verify churn --stage prod" in steps[4]
    assert script.main(["fraud", "prod", "--dry-run"]) == 2


def test_synth_summary_says_what_each_serving_stack_serves(example, single_account):
    from mlops_platform.summary import summarize

    lines = summarize(example.outdir)
    assert any("mlops-staging-churn-serving" in line and "serves: challenger version 3" in line for line in lines)
    lines = summarize(single_account.outdir)
    assert any("mlops-prod-churn-serving" in line and "serves: no release yet" in line for line in lines)
