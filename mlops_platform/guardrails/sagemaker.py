"""SageMaker rules: what SageMaker checks when it creates models and endpoint configs.

- ``MLOps-ModelPackageInstanceTypes``: CreateEndpointConfig fails for a
  variant whose instance type is not among its model package's
  ``SupportedRealtimeInferenceInstanceTypes``. A model created from a package
  carries that list in its ``mlops:SupportedRealtimeInferenceInstanceTypes``
  metadata (from the release manifest, which ``mlops releases export`` reads
  off the package); no list means the types cannot be verified, which fails
  too. Source: SageMaker API Reference, ``InferenceSpecification``
  (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_InferenceSpecification.html).
- ``MLOps-StudioSourceIdentityTrust``: a domain with
  ``ExecutionRoleIdentityConfig: USER_PROFILE_NAME`` makes SageMaker set the
  user profile name as STS source identity whenever it assumes an execution
  role of the domain, and AssumeRole fails unless the role's trust policy lets
  ``sagemaker.amazonaws.com`` call ``sts:SetSourceIdentity``: Studio apps then
  do not start. Checked for the domain's default role and every user profile's
  role in the stage. Source: SageMaker Developer Guide, "Monitoring user resource
  access from Amazon SageMaker Studio"
  (https://docs.aws.amazon.com/sagemaker/latest/dg/monitor-user-access.html).
"""

from __future__ import annotations

from collections.abc import Iterator

from mlops_platform.guardrails.core import (
    Finding,
    GuardrailSettings,
    Resource,
    StageTemplates,
    allows_actions,
    as_list,
    service_principals,
)

RULES = {
    "MLOps-ModelPackageInstanceTypes": (
        "Every endpoint variant's instance type must be one its model package supports for real-time inference."
    ),
    "MLOps-StudioSourceIdentityTrust": (
        "A domain that sets the user profile name as source identity needs every execution role to let "
        "sagemaker.amazonaws.com call sts:SetSourceIdentity in its trust policy."
    ),
}
SUPPORTED_TYPES_METADATA = "mlops:SupportedRealtimeInferenceInstanceTypes"


def check(stage: StageTemplates, settings: GuardrailSettings) -> Iterator[Finding]:
    yield from _instance_types(stage)
    yield from _source_identity(stage)


def _source_identity(stage: StageTemplates) -> Iterator[Finding]:
    """Execution roles of domains that pass the user profile name as source identity must admit it."""
    for stack in stage.stacks:
        for domain_id, props in stack.of_type("AWS::SageMaker::Domain"):
            if (props.get("DomainSettings") or {}).get("ExecutionRoleIdentityConfig") != "USER_PROFILE_NAME":
                continue
            domain = Resource(stack, domain_id, stack.resources[domain_id])
            users = [(stack, domain_id, "DefaultUserSettings.ExecutionRole", props.get("DefaultUserSettings"))]
            for other in stage.stacks:
                for profile_id, profile in other.of_type("AWS::SageMaker::UserProfile"):
                    if stage.same(other, profile.get("DomainId"), domain):
                        users.append((other, profile_id, "UserSettings.ExecutionRole", profile.get("UserSettings")))
            for where, logical_id, location, user_settings in users:
                role = stage.resolve(where, (user_settings or {}).get("ExecutionRole"))
                if role is None or role.type != "AWS::IAM::Role":
                    continue  # a role from outside the stage: not verifiable here, and not ours
                if not _admits_source_identity(role):
                    yield Finding(
                        "MLOps-StudioSourceIdentityTrust",
                        logical_id,
                        location,
                        f"role {role.logical_id} does not let sagemaker.amazonaws.com call sts:SetSourceIdentity",
                        where.path,
                    )


def _admits_source_identity(role: Resource) -> bool:
    trust = role.properties.get("AssumeRolePolicyDocument") or {}
    return any(
        allows_actions(statement, ("sts:SetSourceIdentity",))
        and "sagemaker.amazonaws.com" in service_principals(role.stack, statement)
        for statement in as_list(trust.get("Statement"))
    )


def _instance_types(stage: StageTemplates) -> Iterator[Finding]:
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
