"""A four-account platform in moto for the serving commands (export, shadow report, promote, verify).

Accounts are real moto accounts: governance is moto's default account (the
tests' plain credentials), staging and prod are reached with STS AssumeRole as
the CLI does (``--role-arn`` / ``--staging-role-arn``), so every resource lives
in the account the command must look in.

moto gaps covered here, each a thin wrapper around a real moto-backed client:

* :class:`KeepsShadowVariants` — moto 5.2.5 accepts ``ShadowProductionVariants``
  in CreateEndpointConfig and drops them. The wrapper remembers them and adds
  them back to DescribeEndpointConfig and DescribeEndpoint, shaped as SageMaker
  returns them. The CLI's own clients get the same wrapper (``world`` fixture).
* moto lacks UpdateEndpoint: a redeployment deletes and recreates the endpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import yaml

from mlops_platform.approval import releases
from mlops_platform.config import load_config
from mlops_platform.naming import Naming
from tests.moto_governance import create_deploy_pipeline, create_release_table, deploy_executions

REGION = "eu-west-1"
GOVERNANCE = "123456789012"  # moto's default account
ACCOUNTS = {"governance": GOVERNANCE, "dev": "222222222222", "staging": "333333333333", "prod": "444444444444"}
PROJECT = "churn"
GROUP = "mlops-churn"
TABLE = "mlops-releases"
PIPELINE = "mlops-deploy"
PIPELINE_BUCKET = "mlops-governance-pipeline-test"
ADMIN_ROLE_ARN = f"arn:aws:iam::{GOVERNANCE}:role/mlops-governance-admin"
STAGING_ROLE_ARN = f"arn:aws:iam::{ACCOUNTS['staging']}:role/mlops-churn-staging-verify"
PROD_ROLE_ARN = f"arn:aws:iam::{ACCOUNTS['prod']}:role/mlops-churn-prod-verify"
STAGE_ROLE_ARN = {"staging": STAGING_ROLE_ARN, "prod": PROD_ROLE_ARN}

SERVING = {
    "staging": {
        "variants": [
            {"name": "champion", "model": "champion", "instance_type": "ml.m5.large"},
            {"name": "challenger", "model": "challenger", "shadow": True, "sampling_percentage": 50},
        ],
        "data_capture": {"sampling_percentage": 100},
    },
    "prod": {
        "variants": [
            {"name": "champion", "model": "champion", "weight": 90, "instance_type": "ml.m5.xlarge"},
            {"name": "challenger", "model": "challenger", "weight": 10, "instance_type": "ml.m5.large"},
        ],
    },
    "promotion": {"min_shadow_invocations": 100, "max_error_rate_percent": 1, "max_latency_increase_percent": 20},
}


def write_config(root: Path) -> Path:
    """Four accounts in one region; project churn with the shipped example's serving section."""
    config = root / "config"
    (config / "projects").mkdir(parents=True)
    (config / "platform.yaml").write_text(
        yaml.safe_dump(
            {
                "prefix": "mlops",
                "accounts": {role: {"id": account, "region": REGION} for role, account in ACCOUNTS.items()},
                "network": {"vpc_cidrs": {"dev": "10.10.0.0/16", "staging": "10.20.0.0/16", "prod": "10.30.0.0/16"}},
            }
        )
    )
    (config / "projects" / "churn.yaml").write_text(
        yaml.safe_dump(
            {
                "name": PROJECT,
                "owners": ["ml-churn@example.com"],
                "members": [{"user": "alice", "persona": "lead"}],
                "approval": {"approvers": ["alice"], "primary_metric": "auc", "metric_thresholds": {"auc": 0.75}},
                "pipeline": {"enabled": False},  # serving needs no build pipeline (nor its feature group)
                "serving": SERVING,
            }
        )
    )
    return config


def assumed_session(role_arn: str) -> boto3.Session:
    credentials = boto3.client("sts", region_name=REGION).assume_role(RoleArn=role_arn, RoleSessionName="tests")[
        "Credentials"
    ]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


# --------------------------------------------------------------------------- moto gap


class KeepsShadowVariants:
    """A moto SageMaker client that keeps the shadow variants moto drops (see module docstring)."""

    def __init__(self, real: Any, store: dict[str, list[dict[str, Any]]]) -> None:
        self._real = real
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def create_endpoint_config(self, **kwargs: Any) -> dict[str, Any]:
        response = self._real.create_endpoint_config(**kwargs)
        if kwargs.get("ShadowProductionVariants"):
            self._store[kwargs["EndpointConfigName"]] = [dict(v) for v in kwargs["ShadowProductionVariants"]]
        return response

    def describe_endpoint_config(self, **kwargs: Any) -> dict[str, Any]:
        response = dict(self._real.describe_endpoint_config(**kwargs))
        shadows = self._store.get(kwargs["EndpointConfigName"])
        if shadows:
            response["ShadowProductionVariants"] = [dict(v) for v in shadows]
        return response

    def describe_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        response = dict(self._real.describe_endpoint(**kwargs))
        shadows = self._store.get(response["EndpointConfigName"])
        if shadows:
            response["ShadowProductionVariants"] = [
                {
                    "VariantName": v["VariantName"],
                    "CurrentWeight": 1.0,
                    "DesiredWeight": 1.0,
                    "CurrentInstanceCount": v.get("InitialInstanceCount", 1),
                    "DesiredInstanceCount": v.get("InitialInstanceCount", 1),
                }
                for v in shadows
            ]
        return response


# --------------------------------------------------------------------------- stages


@dataclass
class Capture:
    event_id: str | None
    input: str
    output: str


class ServingStage:
    """One serving account (staging or prod): endpoint, serving stack output, metrics, data capture."""

    def __init__(self, world: World, stage: str) -> None:
        self.world = world
        self.stage = stage
        session = assumed_session(STAGE_ROLE_ARN[stage])
        self.sagemaker = KeepsShadowVariants(session.client("sagemaker"), world.shadow_store)
        self.cloudformation = session.client("cloudformation")
        self.cloudwatch = session.client("cloudwatch")
        self.s3 = session.client("s3")
        self.endpoint = world.naming.endpoint_name(PROJECT, stage)
        self.stack = world.naming.stack_name(stage, "serving", PROJECT)
        self.bucket = world.naming.artifacts_bucket(stage)
        self.s3.create_bucket(Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self._configs = 0

    def endpoint_config(self, variants: dict[str, str], shadow: tuple[str, ...] = ()) -> str:
        """A new endpoint config: variant name -> model package ARN (a model created from it)."""
        self._configs += 1
        name = f"{self.endpoint}-config-{self._configs}"
        production, shadows = [], []
        for variant, arn in variants.items():
            model = f"{self.endpoint}-{variant}-{self._configs}"
            self.sagemaker.create_model(
                ModelName=model,
                ExecutionRoleArn=self.world.naming.model_role_arn(PROJECT, self.stage),
                PrimaryContainer={"ModelPackageName": arn},
            )
            entry = {
                "VariantName": variant,
                "ModelName": model,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
            if variant in shadow:
                shadows.append(entry)
            else:
                production.append({**entry, "InitialVariantWeight": 1.0})
        kwargs: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": production}
        if shadows:
            kwargs["ShadowProductionVariants"] = shadows
        self.sagemaker.create_endpoint_config(**kwargs)
        return name

    def serve(self, config: str) -> None:
        """Point the endpoint at ``config`` (moto has no UpdateEndpoint: recreate it)."""
        try:
            self.sagemaker.describe_endpoint(EndpointName=self.endpoint)
            self.sagemaker.delete_endpoint(EndpointName=self.endpoint)
        except Exception:  # noqa: BLE001 - no endpoint yet
            pass
        self.sagemaker.create_endpoint(EndpointName=self.endpoint, EndpointConfigName=config)

    def stack_output(self, config: str) -> None:
        """The serving stack, whose template only carries the EndpointConfigName output."""
        template = json.dumps(
            {
                "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"EndpointConfigName": {"Value": config}},
            }
        )
        try:
            self.cloudformation.describe_stacks(StackName=self.stack)
            self.cloudformation.update_stack(StackName=self.stack, TemplateBody=template)
        except self.cloudformation.exceptions.ClientError:
            self.cloudformation.create_stack(StackName=self.stack, TemplateBody=template)

    def deploy(self, variants: dict[str, str], shadow: tuple[str, ...] = ()) -> str:
        """What a successful ``cdk deploy`` leaves: the endpoint on a new config that the stack outputs."""
        config = self.endpoint_config(variants, shadow)
        self.serve(config)
        self.stack_output(config)
        return config

    def metrics(
        self,
        variant: str,
        *,
        invocations: int,
        errors_5xx: int = 0,
        errors_4xx: int = 0,
        latency_ms: float | None = None,
        endpoint: str | None = None,
        when: datetime | None = None,
    ) -> None:
        """What SageMaker publishes to AWS/SageMaker for one variant (ModelLatency in microseconds)."""
        dimensions = [
            {"Name": "EndpointName", "Value": endpoint or self.endpoint},
            {"Name": "VariantName", "Value": variant},
        ]
        when = when or datetime.now(UTC)
        data: list[dict[str, Any]] = [
            {"MetricName": name, "Dimensions": dimensions, "Value": value, "Timestamp": when}
            for name, value in (
                ("Invocations", invocations),
                ("Invocation5XXErrors", errors_5xx),
                ("Invocation4XXErrors", errors_4xx),
            )
        ]
        if latency_ms is not None:
            data.append(
                {
                    "MetricName": "ModelLatency",
                    "Dimensions": dimensions,
                    "Values": [latency_ms * 1000],
                    "Counts": [max(invocations, 1)],
                    "Timestamp": when,
                }
            )
        self.cloudwatch.put_metric_data(Namespace="AWS/SageMaker", MetricData=data)

    def capture(
        self, variant: str, captures: list[Capture], name: str = "capture", when: datetime | None = None
    ) -> str:
        """One data capture object in SageMaker's layout ``<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/``."""
        when = when or datetime.now(UTC)
        prefix = self.world.naming.data_capture_prefix(PROJECT)
        key = f"{prefix}/{self.endpoint}/{variant}/{when:%Y/%m/%d/%H}/{name}.jsonl"
        lines = [
            json.dumps(
                {
                    "captureData": {
                        "endpointInput": {
                            "observedContentType": "text/csv",
                            "mode": "INPUT",
                            "data": c.input,
                            "encoding": "CSV",
                        },
                        "endpointOutput": {
                            "observedContentType": "text/csv",
                            "mode": "OUTPUT",
                            "data": c.output,
                            "encoding": "CSV",
                        },
                    },
                    "eventMetadata": {"eventId": c.event_id, "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%SZ")},
                    "eventVersion": "0",
                }
            )
            for c in captures
        ]
        self.s3.put_object(Bucket=self.bucket, Key=key, Body="\n".join(lines).encode())
        return key


# --------------------------------------------------------------------------- governance


class World:
    """Governance (registry, release table, deploy pipeline) plus the staging and prod accounts."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.config = load_config(config_dir)
        self.naming = Naming(self.config.platform)
        self.shadow_store: dict[str, list[dict[str, Any]]] = {}
        session = boto3.Session(region_name=REGION)
        self.sagemaker = session.client("sagemaker")
        self.dynamodb = session.client("dynamodb")
        self.codepipeline = session.client("codepipeline")
        self.table = releases.ReleaseTable(self.dynamodb, TABLE)
        self._stages: dict[str, ServingStage] = {}

    def create(self) -> World:
        assert self.naming.releases_table() == TABLE and self.naming.deploy_pipeline() == PIPELINE
        self.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        create_release_table(self.dynamodb, TABLE)
        boto3.client("s3", region_name=REGION).create_bucket(
            Bucket=PIPELINE_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        create_deploy_pipeline(
            self.codepipeline, boto3.client("iam", region_name=REGION), name=PIPELINE, bucket=PIPELINE_BUCKET
        )
        return self

    def stage(self, stage: str) -> ServingStage:
        if stage not in self._stages:
            self._stages[stage] = ServingStage(self, stage)
        return self._stages[stage]

    # ------------------------------------------------------------------ registry and releases
    def register(self, status: str = "Approved") -> str:
        return self.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            InferenceSpecification={
                "Containers": [
                    {"Image": f"{GOVERNANCE}.dkr.ecr.{REGION}.amazonaws.com/sklearn:1", "ModelDataUrl": "s3://m/x"}
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
                "SupportedRealtimeInferenceInstanceTypes": ["ml.m5.xlarge", "ml.m5.large"],
            },
            ModelApprovalStatus=status,
        )["ModelPackageArn"]

    def release(self, stage: str, arn: str, recorded_at: str, **fields: Any) -> Any:
        version = int(arn.rsplit("/", 1)[1])
        record = releases.Release(
            project=PROJECT,
            stage=stage,
            version=version,
            model_package_arn=arn,
            status="released",
            recorded_at=recorded_at,
            approved_by="alice",
            reason="tests",
            event_id=f"evt-{stage}-{version}-{recorded_at}",
            **fields,
        )
        assert self.table.put_release(record)
        return record

    def revoke(self, record: Any, at: str) -> None:
        assert self.table.revoke(record, revoked_at=at, reason="rejected", event_id=f"rej-{at}", was_current=True)

    def executions(self) -> list[dict[str, str]]:
        """Variables of every deploy pipeline execution, oldest first."""
        return deploy_executions(self.codepipeline, PIPELINE)
