"""The project's SageMaker Pipeline: step code and definition as assets, and a CfnPipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import Fn, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops_platform.config import SERVING_STAGES, ProjectSettings
from mlops_platform.naming import Naming
from pipeline_definitions import PipelineInputs, build_train_source_tarball, definition_for, script_path
from pipeline_definitions.inputs import DEFAULT_HYPERPARAMETERS, bias_settings, explainability_settings

# Stand-ins the SDK accepts as literal ids; replaced by deploy-time references (Fn::Sub) afterwards.
_KEY_STAND_IN = "0f5a0f5a-0f5a-4f5a-8f5a-0f5a0f5a0f5a"
# SageMaker's CreatePipeline accepts a definition of up to 1 MB; a template holds it inline well below that.
MAX_INLINE_DEFINITION_BYTES = 200_000


class ModelPipeline(Construct):
    """Ingest → query → preprocess → train → evaluate → register pipeline of one project (SageMaker SDK).

    The step scripts are uploaded as CDK assets, whose S3 URIs are concrete at
    synth time for a stack with an explicit environment, so the SDK gets only
    literal values and no AWS call. The definition is cached on disk by a hash
    of its inputs (``definition_cache``) and goes inline into the template, so
    CloudFormation substitutes what exists only at deploy time: the ARN of
    ``key``, which encrypts job outputs and volumes (volume keys must be key
    ids or key ARNs, never aliases). The pipeline reads the project's
    ``pipeline`` feature group through the Athena workgroup ``workgroup``. The
    registered model supports real-time inference on every instance type the
    project's serving config uses, in both stages.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        project: ProjectSettings,
        naming: Naming,
        role: iam.IRole,
        key: kms.IKey,
        definition_cache: Path,
        workgroup: str,
    ) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        config = project.pipeline
        preprocess = s3_assets.Asset(self, "PreprocessCode", path=str(script_path("preprocess.py")))
        evaluate = s3_assets.Asset(self, "EvaluateCode", path=str(script_path("evaluate.py")))
        ingest = s3_assets.Asset(self, "IngestCode", path=str(script_path("ingest.py")))
        query = s3_assets.Asset(self, "QueryCode", path=str(script_path("query.py")))
        train = s3_assets.Asset(
            self, "TrainCode", path=str(build_train_source_tarball(definition_cache / "train-source"))
        )
        self.code_assets = (ingest, query, preprocess, train, evaluate)
        source = project.pipeline_source()
        bucket = naming.artifacts_bucket("dev")
        prefix = f"{naming.project_prefix(project.name)}/pipeline"
        threshold = project.approval.metric_thresholds[project.approval.primary_metric]
        clarify = clarify_baselines(project)
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
            ingest_code_uri=ingest.s3_object_url,
            query_code_uri=query.s3_object_url,
            feature_group_name=naming.feature_group_name(project.name, source.name),
            record_identifier=source.record_identifier,
            feature_columns=project.pipeline_features(),
            target_column=config.target_column,
            athena_workgroup=workgroup,
            ingest_data_uri=config.input_data_uri or "",
            processing_instance_type=config.processing_instance_type,
            training_instance_type=config.training_instance_type,
            training_instance_count=config.training_instance_count,
            use_spot=config.spot.enabled,
            warm_pool_seconds=config.warm_pool_minutes * 60,
            max_run_seconds=config.max_runtime_minutes * 60,
            max_wait_seconds=config.spot.max_wait_minutes * 60,
            kms_key_arn=f"arn:aws:kms:{stack.region}:{stack.account}:key/{_KEY_STAND_IN}",
            metric_name=project.approval.primary_metric,
            metric_threshold=threshold,
            quality_thresholds=tuple(sorted(project.approval.metric_thresholds.items())),
            hyperparameters=tuple(sorted((k, str(v)) for k, v in config.hyperparameters.items()))
            or DEFAULT_HYPERPARAMETERS,
            inference_instance_types=serving_instance_types(project) or PipelineInputs.inference_instance_types,
            bias_config=clarify.get("bias_config", ""),
            explainability_config=clarify.get("explainability_config", ""),
        )
        text = definition_for(self.inputs, definition_cache)
        self.definition = json.loads(text)
        if "${" in text:
            raise ValueError("the pipeline definition contains '${', which Fn::Sub would misread")
        if len(text.encode()) > MAX_INLINE_DEFINITION_BYTES:
            raise ValueError(f"the pipeline definition is {len(text.encode())} bytes, over the inline limit")
        variables = {"KeyArn": key.key_arn}
        text = text.replace(self.inputs.kms_key_arn or "", "${KeyArn}")
        definition: dict[str, Any] = {"PipelineDefinitionBody": Fn.sub(text, variables)}
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Resource",
            pipeline_name=self.inputs.pipeline_name,
            pipeline_description=f"{project.name}: ingest, query, preprocess, train, evaluate, register",
            role_arn=role.role_arn,
            pipeline_definition=definition,
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


def clarify_baselines(project: ProjectSettings) -> dict[str, str]:
    """The bias and explainability baselines the pipeline registers: where monitoring asks for them, else none."""
    monitoring = project.monitoring
    settings: dict[str, str] = {}
    if not monitoring.enabled:
        return settings
    if monitoring.bias.enabled:
        settings["bias_config"] = bias_settings(
            [(f.name, f.value_or_threshold) for f in monitoring.bias.facets],
            monitoring.bias.label_values_or_threshold,
            monitoring.bias_probability_threshold,
        )
    if monitoring.explainability.enabled:
        shap = monitoring.explainability
        settings["explainability_config"] = explainability_settings(shap.num_samples, shap.agg_method)
    return settings


def serving_instance_types(project: ProjectSettings) -> tuple[str, ...]:
    """Every instance type a serving variant of the project uses, in either stage, sorted (serverless has none)."""
    types = {
        variant.instance_type
        for stage in SERVING_STAGES
        for variant in getattr(project.serving, stage).resolved_variants(stage)
        if variant.serverless is None
    }
    return tuple(sorted(types))


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
