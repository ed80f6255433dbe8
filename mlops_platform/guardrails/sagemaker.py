"""SageMaker rules: what SageMaker checks when it creates models and endpoint configs.

- ``MLOps-ModelPackageInstanceTypes``: CreateEndpointConfig fails for a
  variant whose instance type is not among its model package's
  ``SupportedRealtimeInferenceInstanceTypes``. A model created from a package
  carries that list in its ``mlops:SupportedRealtimeInferenceInstanceTypes``
  metadata (from the release manifest, which ``mlops releases export`` reads
  off the package); no list means the types cannot be verified, which fails
  too. Source: SageMaker API Reference, ``InferenceSpecification``
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_InferenceSpecification.html).
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops_platform.guardrails.core import Finding, GuardrailSettings, StageTemplates, as_list

RULES = {
    "MLOps-ModelPackageInstanceTypes": (
        "Every endpoint variant's instance type must be one its model package supports for real-time inference."
    ),
}
SUPPORTED_TYPES_METADATA = "mlops:SupportedRealtimeInferenceInstanceTypes"


def check(stage: StageTemplates, settings: GuardrailSettings) -> Iterator[Finding]:
    for stack in stage.stacks:
        for logical_id, props in stack.of_type("AWS::SageMaker::EndpointConfig"):
            for field in ("ProductionVariants", "ShadowProductionVariants"):
                for i, variant in enumerate(as_list(props.get(field))):
                    instance_type = variant.get("InstanceType")
                    if instance_type is None:  # serverless
                        continue
                    model = stage.resolve(stack, variant.get("ModelName"))
                    if model is None or model.type != "AWS::SageMaker::Model":
                        continue
                    containers = as_list(model.properties.get("Containers"))
                    if not any("ModelPackageName" in c for c in containers):
                        continue
                    supported = model.body.get("Metadata", {}).get(SUPPORTED_TYPES_METADATA)
                    if supported is None:
                        detail = f"model {model.logical_id} does not say which instance types its package supports"
                    elif instance_type not in supported:
                        detail = f"{instance_type} is not among {', '.join(supported)} of model {model.logical_id}"
                    else:
                        continue
                    yield Finding(
                        "MLOps-ModelPackageInstanceTypes", logical_id, f"{field}[{i}].InstanceType", detail, stack.path
                    )
