"""The idle-cost report of every synth (mlops_platform.cost): hand-computed figures, the example, identical projects.

Synthetic templates are priced with a small fixed table, so these figures do not move when the shipped
prices do; the example's figures are computed here from ``config/projects/churn.yaml`` and the numbers
of the shipped ``mlops_platform/prices.json``, read directly.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from mlops_platform import cost, summary
from mlops_platform.cost import SHARED, PriceTable, StackTemplate
from tests.conftest import OVERLAP_WARM_POOL_MINUTES, OVERLAPPING
from tests.synth import EXAMPLE_CONFIG, Synthesized

REGION = "eu-west-1"
PRICES = PriceTable.from_dict(
    {
        "as_of": "2000-01-31",
        "currency": "USD",
        "items": {
            "nat_gateway_hour": {"unit": "h", "source": "test", "prices": {REGION: 0.05}},
            "public_ipv4_hour": {"unit": "h", "source": "test", "prices": {REGION: 0.004}},
            "interface_endpoint_az_hour": {"unit": "h", "source": "test", "prices": {REGION: 0.01}},
            "kms_key_month": {"unit": "month", "source": "test", "prices": {REGION: 1.5}},
            "cloudwatch_alarm_month": {"unit": "month", "source": "test", "prices": {REGION: 0.2}},
            "dynamodb_rcu_hour": {"unit": "h", "source": "test", "prices": {REGION: 0.0002}},
            "dynamodb_wcu_hour": {"unit": "h", "source": "test", "prices": {REGION: 0.001}},
            "fsx_lustre_gb_month": {
                "unit": "GB-month",
                "source": "test",
                "prices": {REGION: {"PERSISTENT_2/250": 0.2}},
            },
            "sagemaker_hosting_hour": {
                "unit": "h",
                "source": "test",
                "prices": {REGION: {"ml.m5.large": 0.1, "ml.m5.xlarge": 0.2}},
            },
            "sagemaker_processing_hour": {"unit": "h", "source": "test", "prices": {REGION: {"ml.m5.xlarge": 0.3}}},
            "sagemaker_training_hour": {"unit": "h", "source": "test", "prices": {REGION: {"ml.m5.xlarge": 0.4}}},
            "sagemaker_hyperpod_hour": {
                "unit": "h",
                "source": "test",
                "prices": {REGION: {"ml.m5.xlarge": 0.25, "ml.trn1.32xlarge": 20.0}},
            },
        },
    }
)
SHIPPED = json.loads((Path(cost.__file__).parent / "prices.json").read_text())


def _stack(name: str, stage: str, project: str | None, resources: dict, region: str = REGION) -> StackTemplate:
    return StackTemplate(name=name, stage=stage, region=region, project=project, template={"Resources": resources})


def _r(type_: str, **properties) -> dict:
    return {"Type": type_, "Properties": properties}


def _network() -> StackTemplate:
    subnets = [{"Ref": "Private1"}, {"Ref": "Private2"}]
    return _stack(
        "mlops-dev-baseline",
        "dev",
        None,
        {
            "Nat": _r("AWS::EC2::NatGateway", SubnetId={"Ref": "Public1"}),
            "NatIp": _r("AWS::EC2::EIP", Domain="vpc"),
            "Sts": _r("AWS::EC2::VPCEndpoint", VpcEndpointType="Interface", SubnetIds=subnets, ServiceName="sts"),
            "Kms": _r("AWS::EC2::VPCEndpoint", VpcEndpointType="Interface", SubnetIds=subnets, ServiceName="kms"),
            "S3": _r("AWS::EC2::VPCEndpoint", VpcEndpointType="Gateway", RouteTableIds=subnets, ServiceName="s3"),
            "Key": _r("AWS::KMS::Key", EnableKeyRotation=True),
            "Table": _r("AWS::DynamoDB::Table", TableName="releases", BillingMode="PAY_PER_REQUEST"),
            "Counts": _r(
                "AWS::DynamoDB::Table",
                TableName="counts",
                ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 2},
            ),
            "Logs": _r("AWS::Logs::LogGroup", RetentionInDays=365),
            "MoreLogs": _r("AWS::Logs::LogGroup", RetentionInDays=30),
        },
    )


def _serving() -> StackTemplate:
    def job(instance_count: int) -> dict:
        return {
            "ClusterConfig": {"InstanceCount": instance_count, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}
        }

    def schedule(definition: str, kind: str, expression: str) -> dict:
        name = {"Fn::Select": [1, {"Fn::Split": ["/", {"Fn::GetAtt": [definition, "JobDefinitionArn"]}]}]}
        return _r(
            "AWS::SageMaker::MonitoringSchedule",
            MonitoringScheduleName=f"churn-{kind}",
            MonitoringScheduleConfig={
                "MonitoringJobDefinitionName": name,
                "MonitoringType": kind,
                "ScheduleConfig": {"ScheduleExpression": expression},
            },
        )

    return _stack(
        "mlops-prod-churn-serving",
        "prod",
        "churn",
        {
            "Config": _r(
                "AWS::SageMaker::EndpointConfig",
                ProductionVariants=[
                    {"VariantName": "champion", "InstanceType": "ml.m5.xlarge", "InitialInstanceCount": 3},
                    {"VariantName": "challenger", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1},
                ],
            ),
            "Endpoint": _r(
                "AWS::SageMaker::Endpoint",
                EndpointName="mlops-churn-prod",
                EndpointConfigName={"Fn::GetAtt": ["Config", "EndpointConfigName"]},
            ),
            # The champion scales between 2 and 6: idle, it runs 2, not its initial 3.
            "ChampionScaling": _r(
                "AWS::ApplicationAutoScaling::ScalableTarget",
                ResourceId="endpoint/mlops-churn-prod/variant/champion",
                ScalableDimension="sagemaker:variant:DesiredInstanceCount",
                ServiceNamespace="sagemaker",
                MinCapacity=2,
                MaxCapacity=6,
            ),
            "DataQuality": _r("AWS::SageMaker::DataQualityJobDefinition", JobResources=job(1)),
            "ModelQuality": _r("AWS::SageMaker::ModelQualityJobDefinition", JobResources=job(2)),
            "Hourly": schedule("DataQuality", "DataQuality", "cron(0 * ? * * *)"),
            "Daily": schedule("ModelQuality", "ModelQuality", "cron(0 6 ? * * *)"),
            "Errors": _r("AWS::CloudWatch::Alarm", Period=60, EvaluationPeriods=1),
        },
    )


def _serverless() -> StackTemplate:
    return _stack(
        "mlops-prod-fraud-serving",
        "prod",
        "fraud",
        {
            "Config": _r(
                "AWS::SageMaker::EndpointConfig",
                ProductionVariants=[
                    {"VariantName": "primary", "ServerlessConfig": {"MemorySizeInMB": 3072, "MaxConcurrency": 10}}
                ],
            ),
            "Endpoint": _r(
                "AWS::SageMaker::Endpoint",
                EndpointName="mlops-fraud-prod",
                EndpointConfigName={"Fn::GetAtt": ["Config", "EndpointConfigName"]},
            ),
        },
    )


def _training() -> StackTemplate:
    return _stack(
        "mlops-dev-training",
        "dev",
        None,
        {
            "FileSystem": _r(
                "AWS::FSx::FileSystem",
                FileSystemType="LUSTRE",
                StorageCapacity=1200,
                LustreConfiguration={"DeploymentType": "PERSISTENT_2", "PerUnitStorageThroughput": 250},
            ),
            "Cluster": _r(
                "AWS::SageMaker::Cluster",
                ClusterName="mlops-training",
                InstanceGroups=[
                    {"InstanceGroupName": "controller", "InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
                    {"InstanceGroupName": "trn1", "InstanceType": "ml.trn1.32xlarge", "InstanceCount": 2},
                ],
            ),
        },
    )


def _drift() -> StackTemplate:
    """The drift-check engine (hourly rule -> ``*-drift`` pipeline) beside a weekly retraining schedule."""
    definition = {
        "Parameters": [{"Name": "TrainingInstanceType", "DefaultValue": "ml.m5.xlarge"}],
        "Steps": [
            {
                "Name": "DriftCheck",
                "Type": "Processing",
                "Arguments": {
                    "ProcessingResources": {
                        "ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeKmsKeyId": "${K}"}
                    }
                },
            }
        ],
    }
    build = {
        "Parameters": [{"Name": "TrainingInstanceType", "DefaultValue": "ml.m5.xlarge"}],
        "Steps": [
            {
                "Name": "Train",
                "Type": "Training",
                "Arguments": {
                    "ResourceConfig": {
                        "InstanceType": {"Get": "Parameters.TrainingInstanceType"},
                        "InstanceCount": 2,
                        "KeepAlivePeriodInSeconds": 1800,
                    }
                },
            }
        ],
    }
    return _stack(
        "mlops-staging-churn-serving",
        "staging",
        "churn",
        {
            "Drift": _r(
                "AWS::SageMaker::Pipeline",
                PipelineName="mlops-churn-staging-drift",
                PipelineDefinition={"PipelineDefinitionBody": {"Fn::Sub": [json.dumps(definition), {"K": "key"}]}},
            ),
            "DriftSchedule": _r(
                "AWS::Events::Rule",
                ScheduleExpression="cron(0 * ? * * *)",
                Targets=[
                    {"Id": "DriftCheck", "Arn": "arn:aws:sagemaker:eu-west-1:3:pipeline/mlops-churn-staging-drift"}
                ],
            ),
            "Build": _r(
                "AWS::SageMaker::Pipeline",
                PipelineName="mlops-churn",
                PipelineDefinition={"PipelineDefinitionBody": json.dumps(build)},
            ),
            "Retrain": _r(
                "AWS::Events::Rule",
                ScheduleExpression="rate(7 days)",
                Targets=[{"Id": "Pipeline", "Arn": "arn:aws:sagemaker:eu-west-1:3:pipeline/mlops-churn"}],
            ),
        },
    )


def _items(stack: StackTemplate, item: str) -> list[cost.LineItem]:
    return [i for i in cost.line_items([stack], PRICES, run_minutes=15) if i.item == item]


def _one(stack: StackTemplate, item: str) -> cost.LineItem:
    found = _items(stack, item)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- hand-computed, synthetic templates


def test_nat_gateway_and_its_address_bill_every_hour():
    assert _one(_network(), "NAT gateways").monthly == pytest.approx(1 * 730 * 0.05)
    assert _one(_network(), "public IPv4 addresses").monthly == pytest.approx(1 * 730 * 0.004)


def test_interface_endpoints_bill_per_az_and_gateway_endpoints_not_at_all():
    line = _one(_network(), "interface VPC endpoints")
    # Two interface endpoints, each in two subnets (AZs); the S3 gateway endpoint is free.
    assert line.monthly == pytest.approx(2 * 2 * 730 * 0.01)
    assert "2 interface endpoint(s) in 4 endpoint-AZ(s)" in line.detail


def test_keys_tables_and_log_groups():
    assert _one(_network(), "KMS keys").monthly == pytest.approx(1 * 1.5)
    on_demand, provisioned = _items(_network(), "DynamoDB table")
    assert on_demand.monthly == 0.0 and "on-demand: 0 idle" in on_demand.detail
    assert provisioned.monthly == pytest.approx(730 * (5 * 0.0002 + 2 * 0.001))
    logs = _one(_network(), "CloudWatch log groups")
    assert logs.monthly == 0.0 and logs.detail.startswith("2 log group(s): 0 idle")


def test_endpoint_variants_run_their_autoscaling_minimum_else_their_initial_count():
    line = _one(_serving(), "endpoint instances")
    # champion: min 2 (not its initial 3) x ml.m5.xlarge; challenger: initial 1 x ml.m5.large.
    assert line.monthly == pytest.approx(2 * 730 * 0.2 + 1 * 730 * 0.1)
    assert "champion 2 x ml.m5.xlarge (autoscaling min 2)" in line.detail
    assert "challenger 1 x ml.m5.large (initial count 1)" in line.detail
    assert not line.unpriced


def test_a_serverless_variant_costs_nothing_idle():
    line = _one(_serverless(), "serverless endpoint")
    assert line.monthly == 0.0
    assert "serverless: 0 idle" in line.detail
    assert _items(_serverless(), "endpoint instances") == []


def test_monitoring_schedules_bill_each_run():
    hourly, daily = _items(_serving(), "monitoring schedule")
    # Hourly: 730 runs a month of 15 minutes on 1 x ml.m5.xlarge; daily: 730/24 runs on 2 of them.
    assert hourly.monthly == pytest.approx(730 * (15 / 60) * 1 * 0.3)
    assert daily.monthly == pytest.approx((730 / 24) * (15 / 60) * 2 * 0.3)
    assert "churn-DataQuality (DataQuality), cron(0 * ? * * *)" in hourly.detail


def test_the_drift_check_engine_bills_its_processing_step_per_run_and_retraining_is_not_idle():
    line = _one(_drift(), "drift check (pipeline)")
    assert line.monthly == pytest.approx(730 * (15 / 60) * 1 * 0.3)
    assert "mlops-churn-staging-drift" in line.detail
    # The weekly retraining schedule starts training jobs: per-run cost, excluded.
    assert [i.item for i in cost.line_items([_drift()], PRICES)] == ["drift check (pipeline)"]


def test_a_longer_assumed_run_scales_monitoring():
    (line,) = cost.line_items([_drift()], PRICES, run_minutes=30)
    assert line.monthly == pytest.approx(730 * (30 / 60) * 1 * 0.3)


def test_fsx_and_hyperpod_bill_their_capacity_and_instances():
    assert _one(_training(), "FSx for Lustre").monthly == pytest.approx(1200 * 0.2)
    assert _one(_training(), "HyperPod instances").monthly == pytest.approx(1 * 730 * 0.25 + 2 * 730 * 20.0)


def test_high_resolution_alarms_are_not_priced_at_the_standard_rate_by_accident():
    # The serving stack's alarm has a 60 s period: standard resolution.
    assert _one(_serving(), "CloudWatch alarms").monthly == pytest.approx(1 * 0.2)


def test_warm_pool_is_per_run_not_idle():
    (pool,) = cost.warm_pools([_drift()], PRICES)
    assert (pool.instance_type, pool.instance_count, pool.minutes) == ("ml.m5.xlarge", 2, 30)
    assert pool.per_run == pytest.approx(2 * 0.4 * 30 / 60)


def test_totals_per_project_and_stage_add_up():
    report = cost.report_of([_network(), _serving(), _serverless(), _training(), _drift()], PRICES, run_minutes=15)
    network = 1 * 730 * 0.05 + 1 * 730 * 0.004 + 2 * 2 * 730 * 0.01 + 1 * 1.5 + 730 * (5 * 0.0002 + 2 * 0.001)
    training = 1200 * 0.2 + 1 * 730 * 0.25 + 2 * 730 * 20.0
    prod = 2 * 730 * 0.2 + 1 * 730 * 0.1 + 730 * (15 / 60) * 1 * 0.3 + (730 / 24) * (15 / 60) * 2 * 0.3 + 0.2
    staging = 730 * (15 / 60) * 1 * 0.3
    assert report.cell(SHARED, "dev") == pytest.approx(network + training)
    assert report.cell("churn", "prod") == pytest.approx(prod)
    assert report.cell("churn", "staging") == pytest.approx(staging)
    assert report.cell("fraud", "prod") == 0.0
    assert report.total == pytest.approx(network + training + prod + staging)
    assert report.projects == ["churn", "fraud", SHARED]
    assert report.stages == ["dev", "staging", "prod"]
    assert report.unpriced == []


@pytest.mark.parametrize(
    ("expression", "runs"),
    [
        ("cron(0 * ? * * *)", 730),
        ("cron(0 6 ? * * *)", 730 / 24),
        ("cron(0 0/6 ? * * *)", 4 * 730 / 24),
        ("cron(0 3 ? * SUN *)", 730 / 24 / 7),
        ("cron(0 9 ? * MON-FRI *)", 730 / 24 * 5 / 7),
        ("cron(30 2 1 * ? *)", 1),
        ("rate(7 days)", 730 / (7 * 24)),
        ("rate(1 hour)", 730),
        ("rate(30 minutes)", 2 * 730),
    ],
)
def test_runs_per_month(expression, runs):
    assert cost.runs_per_month(expression) == pytest.approx(runs)


@pytest.mark.parametrize("expression", ["cron(0 L ? * * *)", "cron(0 * * *)", "at(2026-01-01T00:00:00)", "NOW"])
def test_an_unknown_schedule_is_not_guessed(expression):
    assert cost.runs_per_month(expression) is None


# --------------------------------------------------------------------------- unpriced, never a crash


def test_an_unknown_region_or_instance_type_is_named_not_crashed():
    serving = _serving()
    odd = StackTemplate(
        name=serving.name,
        stage=serving.stage,
        region=REGION,
        project="churn",
        template={
            "Resources": {
                "Config": _r(
                    "AWS::SageMaker::EndpointConfig",
                    ProductionVariants=[
                        {"VariantName": "a", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1},
                        {"VariantName": "b", "InstanceType": "ml.zz9.huge", "InitialInstanceCount": 1},
                    ],
                )
            }
        },
    )
    elsewhere = _stack("mlops-dev-baseline", "dev", None, _network().template["Resources"], region="xx-nowhere-9")
    report = cost.report_of([elsewhere, odd], PRICES)
    endpoint = next(i for i in report.items if i.item == "endpoint instances")
    assert endpoint.monthly == pytest.approx(1 * 730 * 0.1)  # what could be priced
    assert endpoint.unpriced == ("hosting ml.zz9.huge in eu-west-1",)
    nat = next(i for i in report.items if i.item == "NAT gateways")
    assert nat.monthly is None and nat.unpriced == ("NAT gateway price in xx-nowhere-9",)
    assert "hosting ml.zz9.huge in eu-west-1 (churn, prod, endpoint instances)" in report.unpriced
    assert "NAT gateway price in xx-nowhere-9 (platform (shared), dev, NAT gateways)" in report.unpriced
    table = "\n".join(cost.render_table(report))
    assert "unpriced: " in table and "ml.zz9.huge" in table and "xx-nowhere-9" in table
    assert "73.00*" in table  # the churn prod cell: priced part, marked as a lower bound
    markdown = cost.render_markdown(report)
    assert "| NAT gateways | 1 NAT gateway(s) | 1 x 730 h x ? | unpriced |" in markdown
    assert "- hosting ml.zz9.huge in eu-west-1 (churn, prod, endpoint instances)" in markdown


def test_summary_writes_the_report_of_an_assembly_in_an_unpriced_region(tmp_path, capsys):
    """The whole hook, as `make synth` runs it, on a minimal cloud assembly in a region the table lacks."""
    stage_dir = tmp_path / "assembly-Dev"
    stage_dir.mkdir()
    template = {"Resources": {"Nat": _r("AWS::EC2::NatGateway"), "Key": _r("AWS::KMS::Key")}}
    (stage_dir / "Net.template.json").write_text(json.dumps(template))
    stack = {
        "type": "aws:cloudformation:stack",
        "environment": "aws://222222222222/xx-nowhere-9",
        "displayName": "Dev/Net",
        "properties": {
            "templateFile": "Net.template.json",
            "stackName": "mlops-dev-net",
            "tags": {"mlops:stage": "dev"},
        },
    }
    (stage_dir / "manifest.json").write_text(json.dumps({"artifacts": {"Net": stack}}))
    root = {
        "artifacts": {"assembly-Dev": {"type": "cdk:cloud-assembly", "properties": {"directoryName": "assembly-Dev"}}}
    }
    (tmp_path / "manifest.json").write_text(json.dumps(root))

    assert summary.main([str(tmp_path)]) == 0

    out = capsys.readouterr().out
    assert "mlops-dev-net" in out  # the summary itself, then the cost table
    assert "unpriced: NAT gateway price in xx-nowhere-9" in out
    assert "KMS key price in xx-nowhere-9" in out
    report = (tmp_path / "cost-report.md").read_text()
    assert "| platform (shared) | 0.00 + unpriced | 0.00 + unpriced |" in report


# --------------------------------------------------------------------------- the shipped example


def _shipped(item: str, key: str | None = None) -> float:
    value = SHIPPED["items"][item]["prices"][REGION]
    return value[key] if key else value


@pytest.fixture(scope="module")
def example_report(example: Synthesized):
    assert example.error is None
    return cost.build_report(example.outdir)


def test_make_synth_writes_the_report_and_prints_every_stage(example: Synthesized, capsys):
    assert summary.main([str(example.outdir)]) == 0
    out = capsys.readouterr().out
    report = example.outdir / "cost-report.md"
    assert report.exists()
    table = out[out.index("idle cost estimate") :].splitlines()
    assert table[1].split() == ["project", "governance", "dev", "staging", "prod", "total"]
    assert [line.split()[0] for line in table[2:5]] == ["churn", "platform", "total"]
    text = report.read_text()
    assert "| project | governance | dev | staging | prod | total |" in text
    # The only date in the report is the price table's, so two synths of one commit write the same file.
    assert set(re.findall(r"\d{4}-\d{2}-\d{2}", text)) == {SHIPPED["as_of"]}
    assert cost.render_markdown(cost.build_report(example.outdir)) == text


def test_prod_endpoint_is_its_autoscaling_minimums_at_the_shipped_prices(example_report):
    churn = yaml.safe_load((EXAMPLE_CONFIG / "projects" / "churn.yaml").read_text())
    champion, challenger = churn["serving"]["prod"]["variants"]
    assert (champion["instance_type"], champion["autoscaling"]["min_instances"]) == ("ml.m5.xlarge", 2)
    assert (challenger["instance_type"], challenger["autoscaling"]["min_instances"]) == ("ml.m5.large", 1)
    (line,) = [i for i in example_report.items if i.item == "endpoint instances" and i.stage == "prod"]
    expected = 2 * 730 * _shipped("sagemaker_hosting_hour", "ml.m5.xlarge") + 1 * 730 * _shipped(
        "sagemaker_hosting_hour", "ml.m5.large"
    )
    assert line.monthly == pytest.approx(expected)
    assert line.project == "churn" and line.stack == "mlops-prod-churn-serving"


def test_staging_runs_champion_and_its_shadow(example_report):
    (line,) = [i for i in example_report.items if i.item == "endpoint instances" and i.stage == "staging"]
    # champion 1 x ml.m5.large serves; the challenger shadow (default 1 x ml.m5.large) gets half the copies.
    assert line.monthly == pytest.approx(2 * 730 * _shipped("sagemaker_hosting_hour", "ml.m5.large"))
    assert "challenger (shadow) 1 x ml.m5.large" in line.detail


def test_each_prod_monitoring_schedule_is_an_hourly_15_minute_job(example_report):
    schedules = [i for i in example_report.items if i.item == "monitoring schedule"]
    assert schedules and {i.stage for i in schedules} == {"prod"}
    for line in schedules:
        assert line.monthly == pytest.approx(
            730 * (15 / 60) * 1 * _shipped("sagemaker_processing_hour", "ml.m5.xlarge")
        )


def test_each_workload_vpc_pays_for_its_interface_endpoints(example_report):
    lines = [i for i in example_report.items if i.item == "interface VPC endpoints"]
    assert [(i.project, i.stage) for i in lines] == [(SHARED, "dev"), (SHARED, "staging"), (SHARED, "prod")]
    for line in lines:
        zones = int(re.search(r"in (\d+) endpoint-AZ", line.detail).group(1))
        assert zones == 2 * int(re.search(r"^(\d+) interface", line.detail).group(1))  # max_azs: 2
        assert line.monthly == pytest.approx(zones * 730 * _shipped("interface_endpoint_az_hour"))


def test_every_example_item_is_priced(example_report):
    assert example_report.unpriced == []
    assert example_report.stages == ["governance", "dev", "staging", "prod"]


# --------------------------------------------------------------------------- two projects side by side

# The overlap synth (tests/conftest.py): churn and churn-eu, a copy of it, released alike.
PROJECTS = ["churn", OVERLAPPING]


@pytest.fixture(scope="module")
def copies_report(overlap: Synthesized):
    assert overlap.error is None
    return cost.build_report(overlap.outdir)


def test_identical_projects_cost_the_same(copies_report):
    assert [p for p in copies_report.projects if p != SHARED] == PROJECTS
    stages = copies_report.stages
    rows = {p: [copies_report.cell(p, s) for s in stages] for p in PROJECTS}
    assert copies_report.cell("churn", "prod") > 0
    assert rows[OVERLAPPING] == pytest.approx(rows["churn"]), rows
    lines = {
        p: sorted((i.stage, i.item, round(i.monthly, 6)) for i in copies_report.items if i.project == p)
        for p in PROJECTS
    }
    assert lines[OVERLAPPING] == lines["churn"]


def test_the_total_is_the_sum_of_the_rows_and_of_the_columns(copies_report):
    rows = [copies_report.cell(p) for p in copies_report.projects]
    columns = [copies_report.cell(stage=s) for s in copies_report.stages]
    assert copies_report.total == pytest.approx(sum(rows))
    assert copies_report.total == pytest.approx(sum(columns))
    table = cost.render_table(copies_report)
    total_line = next(line for line in table if line.strip().startswith("total"))
    assert total_line.split()[-1] == f"{sum(rows):,.2f}"
    assert len([line for line in table if line.split() and line.split()[0] in PROJECTS]) == len(PROJECTS)


def test_a_warm_pool_is_listed_per_run_for_its_project_only(copies_report):
    pools = {p.project: p for p in copies_report.warm_pools}  # churn keeps none; churn-eu keeps 30 minutes
    assert sorted(pools) == PROJECTS
    assert (pools["churn"].minutes, pools["churn"].per_run, pools["churn"].formula) == (0, 0, "off (no warm pool)")
    pool = pools[OVERLAPPING]
    assert pool.minutes == OVERLAP_WARM_POOL_MINUTES
    assert pool.per_run == pytest.approx(
        1 * _shipped("sagemaker_training_hour", "ml.m5.xlarge") * OVERLAP_WARM_POOL_MINUTES / 60
    )
