"""A SageMaker endpoint serving released model versions: models, config, endpoint, scaling, alarms, dashboard."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from mlops_platform.catalog import BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS, LOCAL_STORAGE_FAMILIES
from mlops_platform.config import StageServing, Variant
from mlops_platform.guardrails.sagemaker import SUPPORTED_TYPES_METADATA
from mlops_platform.nag import acknowledge, checkov_skip
from mlops_platform.release_manifest import ModelVersion, ReleaseManifest

# SageMaker caps a blue/green update's execution timeout (API: BlueGreenUpdatePolicy).
MAX_DEPLOYMENT_SECONDS = BLUE_GREEN_EXECUTION_TIMEOUT_SECONDS[1]
PROVISIONING_ALLOWANCE_SECONDS = 1800


def uses_local_storage(variants: Sequence[Variant]) -> bool:
    """True if a variant's instance type has local NVMe storage: SageMaker then rejects a KmsKeyId."""
    return any(v.serverless is None and v.instance_type.split(".")[1] in LOCAL_STORAGE_FAMILIES for v in variants)


class ServedEndpoint(Construct):
    """The stage's endpoint for one release manifest.

    One ``AWS::SageMaker::Model`` per served version (logical id by version, no
    name, so a version that stays keeps its model); an unnamed endpoint config,
    replaced on every change, and an endpoint with the stable ``endpoint_name``
    that updates in place to it. Variant names come from config and never
    change, which blue/green guardrails need. Champion variants serve the
    challenger until a champion exists; a shadow variant appears only beside a
    champion.

    Per production variant: autoscaling (when configured) and two alarms (5xx
    errors, model latency) that notify ``alarm_topic``. With ``guardrails`` the
    endpoint updates blue/green (canary or linear traffic shifting per
    ``settings.deployment``) and rolls back automatically when an alarm fires;
    serverless endpoints cannot use guardrails and update all at once.

    Instance counts survive an update of an autoscaled endpoint. By default
    UpdateEndpoint resets every variant to the new config's
    ``InitialInstanceCount``, so each release would shrink a scaled-out fleet;
    with ``RetainAllVariantProperties`` a variant of the same name keeps its
    current ``DesiredInstanceCount``, and ``ExcludeRetainedVariantProperties:
    [DesiredWeight]`` takes the weights from the new config again
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint.html,
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_VariantProperty.html).
    Both are set only when

    * a production variant is autoscaled: the property is endpoint-wide, so on a
      mixed endpoint a variant without autoscaling also keeps its live count, and
      a changed ``instance_count`` of it applies only when the variant is new;
    * the release names a champion, i.e. the stage served an earlier release and
      CloudFormation updates the endpoint rather than creating it: its reference
      says to use these properties only when updating. A release without a
      champion (the first, or a rollback to the only remaining one) resets counts.

    SageMaker documents no conflict with ``DeploymentConfig`` (the retained count
    sizes the green fleet), and instance types are not a variant property, so a
    changed type always comes from the config. Such a variant keeps the count of
    its old type; ``mlops scaling detach`` must deregister it first anyway
    (SageMaker refuses the update otherwise), and ``reattach`` registers it with
    the configured min/max, which clamps that count into range.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        endpoint_name: str,
        manifest: ReleaseManifest,
        settings: StageServing,
        variants: Sequence[Variant],
        model_role: iam.IRole,
        key: kms.IKey,
        capture_bucket: s3.IBucket,
        capture_prefix: str,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        alarm_topic: sns.ITopic,
        guardrails: bool,
    ) -> None:
        super().__init__(scope, id)
        self.endpoint_name = endpoint_name
        serverless = any(v.serverless is not None for v in variants)
        self.models = {
            ref.version: self._model(ref, model_role, subnets, security_group, serverless) for ref in manifest.versions
        }
        has_champion = len(manifest.versions) > 1

        def model_of(variant: Variant) -> sagemaker.CfnModel:
            ref = manifest.champion if variant.model == "champion" and has_champion else manifest.challenger
            if ref is None:
                raise ValueError("a release manifest without a challenger cannot be served")
            return self.models[ref.version]

        production = [v for v in variants if not v.shadow]
        shadows = [v for v in variants if v.shadow] if has_champion else []
        self.served_variants = [*production, *shadows]
        shadow_weight = {v.name: production[0].weight * v.shadow_sampling / 100 for v in shadows}

        local_storage = uses_local_storage(variants)
        self.config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[self._variant(v, model_of(v), float(v.weight)) for v in production],
            shadow_production_variants=[self._variant(v, model_of(v), shadow_weight[v.name]) for v in shadows] or None,
            kms_key_id=None if serverless or local_storage else key.key_arn,
            data_capture_config=self._data_capture(settings, key, capture_bucket, capture_prefix),
        )
        if serverless or local_storage:
            for rule in ("AwsSolutions-SM2", "NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured"):
                acknowledge(
                    self.config,
                    rule,
                    "SageMaker rejects a KMS key here: serverless variants have no ML storage volume, and "
                    "instance types with local NVMe storage encrypt it in hardware.",
                )

        self.alarms = [alarm for v in self.served_variants for alarm in self._alarms(v, settings, alarm_topic)]
        # Counts (not weights) survive updates of an autoscaled endpoint that exists; see the class docstring.
        retain_counts = has_champion and any(v.autoscaling is not None for v in production)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Resource",
            endpoint_name=endpoint_name,
            endpoint_config_name=self.config.attr_endpoint_config_name,
            deployment_config=self._deployment(settings, [a for a in self.alarms if a.rollback])
            if guardrails and not serverless
            else None,
            retain_all_variant_properties=True if retain_counts else None,
            exclude_retained_variant_properties=[
                sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DesiredWeight")
            ]
            if retain_counts
            else None,
        )
        for variant in production:
            if variant.autoscaling is not None:
                self._autoscaling(variant)
        self._dashboard()
        CfnOutput(self, "EndpointConfigName", value=self.config.attr_endpoint_config_name, key="EndpointConfigName")

    # ------------------------------------------------------------------ models
    def _model(
        self,
        ref: ModelVersion,
        role: iam.IRole,
        subnets: Sequence[ec2.ISubnet],
        security_group: ec2.ISecurityGroup,
        serverless: bool,
    ) -> sagemaker.CfnModel:
        """A model from a (cross-account) model package version; in the VPC, network-isolated.

        Serverless inference supports neither VPC config nor network isolation.
        The package's supported real-time instance types go into the model's
        metadata, where the ``MLOps-ModelPackageInstanceTypes`` guardrail reads them.
        """
        model = sagemaker.CfnModel(
            self,
            f"ModelV{ref.version}",
            execution_role_arn=role.role_arn,
            containers=[sagemaker.CfnModel.ContainerDefinitionProperty(model_package_name=ref.model_package_arn)],
            enable_network_isolation=not serverless,
            vpc_config=None
            if serverless
            else sagemaker.CfnModel.VpcConfigProperty(
                subnets=[s.subnet_id for s in subnets], security_group_ids=[security_group.security_group_id]
            ),
        )
        if ref.realtime_instance_types:
            model.add_metadata(SUPPORTED_TYPES_METADATA, list(ref.realtime_instance_types))
        if serverless:
            checkov_skip(model, "CKV_AWS_370", "Serverless inference does not support network isolation.")
        return model

    @staticmethod
    def _variant(
        variant: Variant, model: sagemaker.CfnModel, weight: float
    ) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
        if variant.serverless is not None:
            return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=variant.name,
                model_name=model.attr_model_name,
                initial_variant_weight=weight,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=variant.serverless.memory_mb,
                    max_concurrency=variant.serverless.max_concurrency,
                    provisioned_concurrency=variant.serverless.provisioned_concurrency,
                ),
            )
        return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=variant.name,
            model_name=model.attr_model_name,
            initial_variant_weight=weight,
            initial_instance_count=variant.instance_count,
            instance_type=variant.instance_type,
        )

    @staticmethod
    def _data_capture(
        settings: StageServing, key: kms.IKey, bucket: s3.IBucket, prefix: str
    ) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None:
        capture = settings.data_capture
        if not capture.enabled:
            return None
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True,
            initial_sampling_percentage=capture.sampling_percentage,
            destination_s3_uri=bucket.s3_url_for_object(prefix),
            kms_key_id=key.key_arn,
            capture_options=[
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output"),
            ],
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                csv_content_types=["text/csv"], json_content_types=["application/json"]
            ),
        )

    # ------------------------------------------------------------------ deployment guardrails
    def _deployment(
        self, settings: StageServing, alarms: Sequence[_VariantAlarm]
    ) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        deployment = settings.deployment
        wait = deployment.wait_minutes * 60
        size = sagemaker.CfnEndpoint.CapacitySizeProperty(type="CAPACITY_PERCENT", value=deployment.step_percentage)
        if deployment.traffic == "canary":
            routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                type="CANARY", canary_size=size, wait_interval_in_seconds=wait
            )
            steps = 2
        elif deployment.traffic == "linear":
            routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                type="LINEAR", linear_step_size=size, wait_interval_in_seconds=wait
            )
            steps = math.ceil(100 / deployment.step_percentage)
        else:
            routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(type="ALL_AT_ONCE")
            steps = 1
        termination = deployment.termination_wait_minutes * 60
        timeout = min(MAX_DEPLOYMENT_SECONDS, steps * wait + termination + PROVISIONING_ALLOWANCE_SECONDS)
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=routing,
                termination_wait_in_seconds=termination,
                maximum_execution_timeout_in_seconds=timeout,
            ),
            auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=a.alarm.alarm_name) for a in alarms]
            ),
        )

    # ------------------------------------------------------------------ alarms, scaling, dashboard
    def _metric(self, variant: str, name: str, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=name,
            dimensions_map={"EndpointName": self.endpoint_name, "VariantName": variant},
            statistic=statistic,
            period=Duration.minutes(1),
        )

    def _alarms(self, variant: Variant, settings: StageServing, topic: sns.ITopic) -> list[_VariantAlarm]:
        deployment = settings.deployment
        errors = self._metric(variant.name, "Invocation5XXErrors", "Sum").create_alarm(
            self,
            f"{_pascal(variant.name)}Errors",
            alarm_description=f"{self.endpoint_name} {variant.name}: 5xx errors; rolls back a blue/green update",
            threshold=deployment.max_5xx_errors_per_minute,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        latency = self._metric(variant.name, "ModelLatency", "Average").create_alarm(
            self,
            f"{_pascal(variant.name)}Latency",
            alarm_description=(
                f"{self.endpoint_name} {variant.name}: average model latency above "
                f"{deployment.max_model_latency_ms} ms; rolls back a blue/green update"
            ),
            threshold=deployment.max_model_latency_ms * 1000,  # ModelLatency is in microseconds
            evaluation_periods=2,
            datapoints_to_alarm=2,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        for alarm in (errors, latency):
            alarm.add_alarm_action(cw_actions.SnsAction(topic))
            alarm.add_ok_action(cw_actions.SnsAction(topic))
        # A shadow variant answers no client, so its alarms notify but never roll back the update.
        return [_VariantAlarm(errors, not variant.shadow), _VariantAlarm(latency, not variant.shadow)]

    def _autoscaling(self, variant: Variant) -> None:
        scaling = variant.autoscaling
        if scaling is None:
            raise ValueError(f"variant {variant.name} has no autoscaling settings")
        target = autoscaling.CfnScalableTarget(
            self,
            f"{_pascal(variant.name)}Scaling",
            service_namespace="sagemaker",
            resource_id=f"endpoint/{self.endpoint_name}/variant/{variant.name}",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            min_capacity=scaling.min_instances,
            max_capacity=scaling.max_instances,
        )
        target.node.add_dependency(self.endpoint)
        autoscaling.CfnScalingPolicy(
            self,
            f"{_pascal(variant.name)}ScalingPolicy",
            policy_name=f"{self.endpoint_name}-{variant.name}-invocations",
            policy_type="TargetTrackingScaling",
            scaling_target_id=target.ref,
            target_tracking_scaling_policy_configuration=autoscaling.CfnScalingPolicy.TargetTrackingScalingPolicyConfigurationProperty(
                target_value=float(scaling.invocations_per_instance),
                predefined_metric_specification=autoscaling.CfnScalingPolicy.PredefinedMetricSpecificationProperty(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"
                ),
                scale_in_cooldown=scaling.scale_in_cooldown_seconds,
                scale_out_cooldown=scaling.scale_out_cooldown_seconds,
            ),
        )

    def _dashboard(self) -> None:
        """Invocations, errors and latency per variant side by side: the shadow comparison at a glance."""

        def per_variant(name: str, statistic: str, label: str) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=label,
                width=12,
                left=[
                    self._metric(v.name, name, statistic).with_(label=f"{v.name}{' (shadow)' if v.shadow else ''}")
                    for v in self.served_variants
                ],
            )

        cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=self.endpoint_name,
            widgets=[
                [
                    per_variant("Invocations", "Sum", "Invocations per minute"),
                    per_variant("ModelLatency", "Average", "Model latency (µs, average)"),
                ],
                [
                    per_variant("Invocation5XXErrors", "Sum", "5xx errors"),
                    per_variant("Invocation4XXErrors", "Sum", "4xx errors"),
                ],
            ],
        )


@dataclass(frozen=True)
class _VariantAlarm:
    """An alarm and whether it may roll back a blue/green update."""

    alarm: cloudwatch.Alarm
    rollback: bool


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("-"))
