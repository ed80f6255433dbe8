"""The offline-store compaction functions in the dev build stack: schedule, environment, least privilege, switch."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from mlops_platform.config import ConfigError, load_config
from mlops_platform.naming import Naming
from stacks.components.compaction import compaction_function_name
from tests.synth import example_platform, example_project, synthesized_once, write_config

STACK = "mlops-dev-churn-build"


def _functions(synth, stack: str = STACK) -> dict[str, dict]:
    return {
        key: value
        for key, value in synth.resources(stack, "AWS::Lambda::Function").items()
        if value["Properties"].get("FunctionName", "").endswith("-compact")
    }


def _policy_of(synth, stack: str, function: dict) -> list[dict]:
    """The statements of the policies attached to the function's role."""
    role_key = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = []
    for type_ in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for policy in synth.resources(stack, type_).values():
            if {"Ref": role_key} in policy["Properties"].get("Roles", []):
                statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def test_one_scheduled_function_per_iceberg_group(example):
    functions = _functions(example)
    assert [f["Properties"]["FunctionName"] for f in functions.values()] == ["mlops-churn-customers-compact"]
    (function,) = functions.values()
    props = function["Properties"]
    assert props["Handler"] == "compact.handler"
    assert props["Timeout"] == 900
    assert props["Environment"]["Variables"] == {
        "PROJECT": "churn",
        "FEATURE_GROUP_NAME": "mlops-churn-customers",
        "WORKGROUP": "mlops-churn",
    }
    Template.from_json(example.template(STACK)).has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "cron(0 3 ? * SUN *)",
            "Targets": [Match.object_like({"Arn": {"Fn::GetAtt": [next(iter(functions)), "Arn"]}})],
        },
    )
    assert not example.findings_in(STACK)


def test_the_role_holds_only_what_optimize_and_vacuum_need(example):
    (function,) = _functions(example).values()
    statements = {s.get("Sid"): s for s in _policy_of(example, STACK, function)}
    text = json.dumps(statements)
    assert set(statements["RunQueries"]["Action"]) == {
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:StopQueryExecution",
    }
    assert "workgroup/mlops-churn" in json.dumps(statements["RunQueries"]["Resource"])
    assert set(statements["OfflineStoreTable"]["Action"]) == {"glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"}
    tables = json.dumps(statements["OfflineStoreTable"]["Resource"])
    assert "table/sagemaker_featurestore/mlops-churn-customers_??????????" in tables
    assert "table/sagemaker_featurestore/mlops_churn_customers_??????????" in tables
    assert set(statements["TableAndResultObjects"]["Action"]) == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    }
    objects = json.dumps(statements["TableAndResultObjects"]["Resource"])
    assert "/offline-store/mlops-churn-customers-*" in objects and "projects/churn/athena/*" in objects
    assert "feature-group/mlops-churn-customers" in json.dumps(statements["DescribeFeatureGroup"]["Resource"])
    assert statements["DescribeFeatureGroup"]["Action"] == "sagemaker:DescribeFeatureGroup"
    assert '"*"' not in text and "s3:*" not in text and "glue:*" not in text


def test_feature_store_stack_holds_no_jobs(example):
    for name, template in example.templates.items():
        if name.endswith("-feature-store"):
            assert not any(r["Type"] == "AWS::Lambda::Function" for r in template["Resources"].values())


def test_a_project_without_pipeline_still_gets_the_workgroup_for_compaction(single_account):
    stack = "mlops-dev-fraud-build"
    assert [f["Properties"]["FunctionName"] for f in _functions(single_account, stack).values()] == [
        "mlops-fraud-customers-compact"
    ]
    assert not single_account.resources(stack, "AWS::SageMaker::Pipeline")
    (workgroup,) = single_account.resources(stack, "AWS::Athena::WorkGroup").values()
    assert workgroup["Properties"]["Name"] == "mlops-fraud"


def _switched_off(tmp):
    churn = example_project()
    group = churn["features"]["feature_groups"][0]
    group["offline_store"] = {"compaction": {"enabled": False}}
    second = {**group, "name": "usage", "offline_store": {"compaction": {"schedule": "cron(30 1 ? * MON-FRI *)"}}}
    churn["features"]["feature_groups"].append(second)
    return load_config(write_config(tmp, example_platform(), {"churn": churn}))


@pytest.fixture(scope="module")
def switched(tmp_path_factory):
    return synthesized_once(tmp_path_factory.mktemp("compaction-switch"), _switched_off, lambda _: {})


def test_compaction_switches_off_per_group_and_takes_its_schedule(switched):
    assert switched.error is None
    functions = _functions(switched)
    assert [f["Properties"]["FunctionName"] for f in functions.values()] == ["mlops-churn-usage-compact"]
    rules = [r["Properties"] for r in switched.resources(STACK, "AWS::Events::Rule").values()]
    assert [
        r["ScheduleExpression"] for r in rules if "ScheduleExpression" in r and "compact" in r.get("Description", "")
    ] == ["cron(30 1 ? * MON-FRI *)"]


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("cron(0 3 * * *)", "has 5 fields; EventBridge cron takes 6"),
        ("rate(7 days)", "is not an EventBridge cron expression"),
        ("cron(0 3 * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(0 25 ? * SUN *)", "hours '25' is not valid"),
        ("cron(0 3 ? * FUNDAY *)", "day-of-week 'FUNDAY' is not valid"),
    ],
)
def test_a_bad_schedule_is_one_config_line(tmp_path, schedule, message):
    churn = example_project()
    churn["features"]["feature_groups"][0]["offline_store"] = {"compaction": {"schedule": schedule}}
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, example_platform(), {"churn": churn}))
    line = str(err.value)
    assert "\n" not in line and message in line and "compaction.schedule" in line


def test_long_function_names_are_shortened_with_a_hash():
    naming = Naming(load_config_for_naming().platform)
    name = compaction_function_name(naming, "a" * 20, "g" * 64)
    assert len(name) <= 64 and name == compaction_function_name(naming, "a" * 20, "g" * 64)
    assert compaction_function_name(naming, "churn", "customers") == "mlops-churn-customers-compact"


def load_config_for_naming():
    from tests.synth import EXAMPLE_CONFIG

    return load_config(EXAMPLE_CONFIG)
