"""The project's SageMaker Pipeline: step code and definition as assets, and a CfnPipeline."""

from __future__ import annotations

import json
from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops_platform.config import ProjectSettings
from mlops_platform.naming import Naming
from pipeline_definitions import PipelineInputs, build_train_source_tarball, definition_for, script_path
from pipeline_definitions.cache import cache_path
from pipeline_definitions.inputs import DEFAULT_HYPERPARAMETERS


class ModelPipeline(Construct):
    """Build → train → evaluate → register pipeline of one project, defined with the SageMaker SDK.

    The step scripts are uploaded as CDK assets, whose S3 URIs are concrete at
    synth time for a stack with an explicit environment, so the SDK gets only
    literal values and no AWS call. The definition is cached on disk by a hash
    of its inputs (``definition_cache``) and deployed from an S3 asset.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        project: ProjectSettings,
        naming: Naming,
        role: iam.IRole,
        definition_cache: Path,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        config = project.pipeline
        preprocess = s3_assets.Asset(self, "PreprocessCode", path=str(script_path("preprocess.py")))
        evaluate = s3_assets.Asset(self, "EvaluateCode", path=str(script_path("evaluate.py")))
        train = s3_assets.Asset(
            self, "TrainCode", path=str(build_train_source_tarball(definition_cache / "train-source"))
        )
        self.code_assets = (preprocess, train, evaluate)
        bucket = naming.artifacts_bucket("dev")
        prefix = f"{naming.project_prefix(project.name)}/pipeline"
        threshold = project.approval.metric_thresholds[project.approval.primary_metric]
        self.inputs = PipelineInputs(
            pipeline_name=naming.pipeline_name(project.name),
            region=stack.region,
            role_arn=naming.pipeline_role_arn(project.name),
            bucket=bucket,
            s3_prefix=prefix,
            model_package_group_arn=naming.model_package_group_arn(project.name),
            preprocess_code_uri=preprocess.s3_object_url,
            train_code_uri=train.s3_object_url,
            evaluate_code_uri=evaluate.s3_object_url,
            input_data_uri=config.input_data_uri or f"s3://{bucket}/{naming.project_prefix(project.name)}/raw/",
            processing_instance_type=config.processing_instance_type,
            training_instance_type=config.training_instance_type,
            training_instance_count=config.training_instance_count,
            use_spot=config.spot.enabled,
            max_run_seconds=config.max_runtime_minutes * 60,
            max_wait_seconds=config.spot.max_wait_minutes * 60,
            kms_key_arn=f"arn:aws:kms:{stack.region}:{stack.account}:{naming.key_alias('dev')}",
            metric_name=project.approval.primary_metric,
            metric_threshold=threshold,
            hyperparameters=tuple(sorted((k, str(v)) for k, v in config.hyperparameters.items()))
            or DEFAULT_HYPERPARAMETERS,
        )
        self.definition = json.loads(definition_for(self.inputs, definition_cache))
        definition_asset = s3_assets.Asset(self, "Definition", path=str(cache_path(self.inputs, definition_cache)))
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=self.inputs.pipeline_name,
            pipeline_description=f"{project.name}: preprocess, train, evaluate, register",
            role_arn=role.role_arn,
            pipeline_definition={
                "PipelineDefinitionS3Location": {
                    "Bucket": definition_asset.s3_bucket_name,
                    "Key": definition_asset.s3_object_key,
                }
            },
        )

    def image_repositories(self) -> list[str]:
        """ECR repository ARNs of the images the definition's steps run (for pull permissions)."""
        arns = set()
        for uri in _image_uris(self.definition):
            registry, _, rest = uri.partition("/")
            account, region = registry.split(".")[0], registry.split(".")[3]
            arns.add(f"arn:aws:ecr:{region}:{account}:repository/{rest.split(':')[0].split('@')[0]}")
        return sorted(arns)

    def code_object_arns(self) -> list[str]:
        """The step code objects in the CDK assets bucket."""
        return sorted(f"arn:aws:s3:::{a.s3_bucket_name}/{a.s3_object_key}" for a in self.code_assets)

    def code_bucket_arn(self) -> str:
        return f"arn:aws:s3:::{self.code_assets[0].s3_bucket_name}"

    def code_object_keys(self) -> list[str]:
        return sorted(a.s3_object_key for a in self.code_assets)


def _image_uris(node) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("ImageUri", "TrainingImage", "Image") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_image_uris(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_image_uris(value))
    return found
