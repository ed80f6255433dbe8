"""Staging and prod, per project: serving the model versions the governance account released."""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from mlops_platform.config import ProjectSettings
from mlops_platform.nag import acknowledge
from mlops_platform.naming import Naming
from mlops_platform.release_manifest import ReleaseManifest, describe
from stacks.baseline import BaselineStack
from stacks.components.endpoint import ServedEndpoint
from stacks.components.monitoring import ModelMonitoring, MonitoredVersion, retraining_pattern
from stacks.components.roles import ServiceRole, vpc_access_statements


class ServingStack(Stack):
    """The project's serving resources in one stage (staging or prod); stateless, safe to rebuild.

    Always: the model execution role (fixed name: the dev bucket, the dev key and
    the governance registry trust it by ARN), the models' security group, an
    alarm topic for the owners and a verify role for the deploy pipeline
    (reads the endpoint; re-registers its autoscaling around a deploy). With
    a ``release`` manifest: the endpoint serving it (:class:`ServedEndpoint`);
    without one, no endpoint, and the ``Release`` output says so. Prod
    endpoints update blue/green with auto-rollback.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        project: ProjectSettings,
        naming: Naming,
        baseline: BaselineStack,
        release: ReleaseManifest | None,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        settings = getattr(project.serving, stage)
        variants = settings.resolved_variants(stage)
        network = baseline.require_network()
        endpoint_name = naming.endpoint_name(project.name, stage)
        subnets = network.private_subnets.subnets

        self.security_group = ec2.SecurityGroup(
            self,
            "ModelSecurityGroup",
            vpc=network.vpc,
            description=f"{endpoint_name} models: HTTPS out to the VPC and S3 gateway endpoints only",
            allow_all_outbound=False,
        )
        # The S3 gateway endpoint's prefix list id is only known in the account; the private
        # subnets route nowhere else, and network isolation keeps the container itself offline.
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS endpoints")

        self.model_role = self._model_role(stage, project, naming, baseline, endpoint_name, subnets)
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{endpoint_name} endpoint alarms",
            master_key=baseline.key,
            enforce_ssl=True,
        )
        for owner in project.owners:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(owner))
        self.verify_role = self._verify_role(stage, project, naming, endpoint_name)

        self.release = release
        self.endpoint: ServedEndpoint | None = None
        if release is not None:
            self.endpoint = ServedEndpoint(
                self,
                "Endpoint",
                endpoint_name=endpoint_name,
                manifest=release,
                settings=settings,
                variants=variants,
                model_role=self.model_role.role,
                key=baseline.key,
                capture_bucket=baseline.artifacts,
                capture_prefix=naming.data_capture_prefix(project.name),
                subnets=subnets,
                security_group=self.security_group,
                alarm_topic=self.alarm_topic,
                guardrails=stage == "prod",
            )
            # The role's policy must exist before SageMaker assumes the role to create the models.
            for model in self.endpoint.models.values():
                model.node.add_dependency(self.model_role.policy)
        CfnOutput(self, "EndpointName", value=endpoint_name, key="EndpointName")
        CfnOutput(self, "Release", value=describe(release), key="Release")
        self.monitoring: ModelMonitoring | None = None
        monitoring = self._monitoring(stage, project, naming, baseline, endpoint_name)
        CfnOutput(self, "MonitoringSummary", value=monitoring, key="Monitoring")

    def _monitoring(
        self, stage: str, project: ProjectSettings, naming: Naming, baseline: BaselineStack, endpoint_name: str
    ) -> str:
        """Monitoring of the served version where config asks for it; returns what the synth summary says."""
        settings = project.monitoring
        why, served = monitoring_plan(project, stage, self.release)
        if served is None or self.endpoint is None:
            return why
        self.monitoring = ModelMonitoring(
            self,
            "Monitoring",
            project=project,
            stage=stage,
            naming=naming,
            endpoint_name=endpoint_name,
            served=served,
            features=project.pipeline_features(),
            key=baseline.key,
            topic=self.alarm_topic,
            depends_on=self.endpoint.endpoint,
        )
        governance = naming.account("governance")
        # In dev's own account the retraining trigger sees the alarm directly.
        if settings.retraining.enabled and self.account not in (governance, naming.account("dev")):
            # Alarms that ask for retraining travel to governance, which forwards them to dev.
            bus = events.EventBus.from_event_bus_arn(
                self, "GovernanceBus", f"arn:aws:events:{naming.region('governance')}:{governance}:event-bus/default"
            )
            forwarder = ServiceRole(
                self,
                "ForwardRole",
                service="events.amazonaws.com",
                description=f"Forward {endpoint_name} monitoring alarms to the governance event bus",
                statements=[iam.PolicyStatement(actions=["events:PutEvents"], resources=[bus.event_bus_arn])],
            )
            events.CfnRule(
                self,
                "ForwardAlarms",
                description=f"{endpoint_name}: monitoring alarms to governance (retraining)",
                event_pattern=retraining_pattern(naming, project, [self.account]),
                targets=[
                    events.CfnRule.TargetProperty(
                        id="Governance", arn=bus.event_bus_arn, role_arn=forwarder.role.role_arn
                    )
                ],
            )
        return self.monitoring.describe()

    def _model_role(
        self,
        stage: str,
        project: ProjectSettings,
        naming: Naming,
        baseline: BaselineStack,
        endpoint_name: str,
        subnets: list[ec2.ISubnet],
    ) -> ServiceRole:
        model_artifacts = f"{naming.bucket_arn('dev')}/{naming.project_prefix(project.name)}/*"
        dev_keys = naming.key_arn_pattern("dev")
        capture = f"{naming.bucket_arn(stage)}/{naming.data_capture_prefix(project.name)}/*"
        images = f"arn:aws:ecr:{self.region}:*:repository/*"
        log_groups = f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/Endpoints/{endpoint_name}:*"
        role = ServiceRole(
            self,
            "ModelRole",
            service="sagemaker.amazonaws.com",
            role_name=naming.role_name(project.name, stage, "model"),
            description=f"Execution role of {project.name} models in {stage}",
            key=baseline.key,
            statements=[
                iam.PolicyStatement(
                    sid="ReadModelArtifactsFromDev",
                    actions=["s3:GetObject", "s3:GetObjectVersion"],
                    resources=[model_artifacts],
                ),
                iam.PolicyStatement(
                    sid="DecryptWithDevKey",
                    actions=["kms:Decrypt", "kms:DescribeKey"],
                    resources=[dev_keys],
                    conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": naming.key_alias("dev")}},
                ),
                iam.PolicyStatement(
                    sid="WriteDataCapture",
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[capture],
                ),
                iam.PolicyStatement(sid="EcrLogin", actions=["ecr:GetAuthorizationToken"], resources=["*"]),
                iam.PolicyStatement(
                    sid="PullInferenceImages",
                    actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
                    resources=[images],
                ),
                iam.PolicyStatement(
                    sid="EndpointLogs",
                    actions=[
                        "logs:CreateLogGroup",
                        "logs:CreateLogStream",
                        "logs:PutLogEvents",
                        "logs:DescribeLogStreams",
                    ],
                    resources=[log_groups],
                ),
                iam.PolicyStatement(
                    sid="EndpointMetrics",
                    actions=["cloudwatch:PutMetricData"],
                    resources=["*"],
                    conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/Endpoints*", "AWS/SageMaker"]}},
                ),
                *vpc_access_statements(
                    self.region, self.account, [s.subnet_id for s in subnets], self.security_group.security_group_id
                ),
            ],
        )
        reasons = {
            f"Resource::{model_artifacts}": "Model artifacts of this project only, in the dev artifacts bucket.",
            f"Resource::{dev_keys}": "Key ids differ per account; the kms:ResourceAliases condition pins the dev key.",
            f"Resource::{capture}": "Data capture objects of this project only.",
            "Resource::*": (
                "ecr:GetAuthorizationToken, cloudwatch:PutMetricData (namespace-conditioned) and EC2 Describe* "
                "have no resource-level permissions."
            ),
            f"Resource::{images}": (
                "Inference images live in AWS-owned ECR accounts that differ per framework and region."
            ),
            f"Resource::{log_groups}": "The endpoint's own log groups.",
            f"Resource::arn:aws:ec2:{self.region}:{self.account}:network-interface/*": (
                "SageMaker names the network interfaces it creates for the models."
            ),
        }
        for finding, reason in reasons.items():
            role.acknowledge(f"AwsSolutions-IAM5[{finding}]", reason)
        return role

    def _verify_role(self, stage: str, project: ProjectSettings, naming: Naming, endpoint_name: str) -> iam.Role:
        """The governance deploy pipeline's view of the endpoint: verify, and autoscaling around a deploy.

        Read-only on SageMaker and the stack, except what ``mlops scaling
        detach/reattach`` needs (a deliberate widening): deregister and register
        the endpoint's variants as scalable targets and their policies. Those
        Application Auto Scaling actions have only ``scalable-target/<random id>``
        ARNs and the condition keys ``service-namespace`` and
        ``scalable-dimension`` (no resource id), so the statement is pinned to
        SageMaker variant instance counts in this account and region; the
        Describe* actions have no resource-level permissions at all
        (https://docs.aws.amazon.com/autoscaling/application/userguide/security_iam_service-with-iam.html).
        Registering also needs, per the Application Auto Scaling user guide
        ("Permissions required for API actions on target services and
        CloudWatch"), ``sagemaker:UpdateEndpointWeightsAndCapacities`` (here on
        this endpoint only) and CloudWatch alarm rights (here on the
        target-tracking alarms of this endpoint's variants,
        ``TargetTracking-endpoint/<name>/variant/<variant>-Alarm{High,Low}-<uuid>``).
        No ``iam:CreateServiceLinkedRole``: the role
        ``AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint`` is created
        when a SageMaker variant is first registered, which CloudFormation does
        (through the CDK execution role) before there is anything to detach.
        """
        arn = f"arn:aws:sagemaker:{self.region}:{self.account}"
        stack_arn = f"arn:aws:cloudformation:{self.region}:{self.account}:stack/{self.stack_name}/*"
        targets = f"arn:aws:application-autoscaling:{self.region}:{self.account}:scalable-target/*"
        alarms = (
            f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:TargetTracking-endpoint/{endpoint_name}/variant/*"
        )
        role = iam.Role(
            self,
            "VerifyRole",
            role_name=naming.role_name(project.name, stage, "verify"),
            description=f"Lets the deploy pipeline check which release {endpoint_name} serves",
            assumed_by=iam.AccountPrincipal(naming.account("governance")).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": naming.deploy_role_arn()}}
            ),
        )
        iam.ManagedPolicy(
            self,
            "VerifyPolicy",
            roles=[role],
            statements=[
                iam.PolicyStatement(
                    sid="DescribeEndpoint",
                    actions=["sagemaker:DescribeEndpoint"],
                    resources=[f"{arn}:endpoint/{endpoint_name}"],
                ),
                iam.PolicyStatement(
                    sid="DescribeConfigsAndModels",
                    actions=["sagemaker:DescribeEndpointConfig", "sagemaker:DescribeModel"],
                    resources=[f"{arn}:endpoint-config/*", f"{arn}:model/*"],
                ),
                iam.PolicyStatement(
                    sid="ReadStackOutputs", actions=["cloudformation:DescribeStacks"], resources=[stack_arn]
                ),
                iam.PolicyStatement(
                    sid="DescribeScaling",
                    actions=[
                        "application-autoscaling:DescribeScalableTargets",
                        "application-autoscaling:DescribeScalingPolicies",
                        "application-autoscaling:DescribeScheduledActions",
                    ],
                    resources=["*"],
                ),
                iam.PolicyStatement(
                    sid="ReattachVariantScaling",
                    actions=[
                        "application-autoscaling:DeleteScalingPolicy",
                        "application-autoscaling:DeregisterScalableTarget",
                        "application-autoscaling:PutScalingPolicy",
                        "application-autoscaling:RegisterScalableTarget",
                    ],
                    resources=[targets],
                    conditions={
                        "StringEquals": {
                            "application-autoscaling:service-namespace": "sagemaker",
                            "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
                        }
                    },
                ),
                iam.PolicyStatement(
                    sid="RegisterVariantCapacity",
                    actions=["sagemaker:UpdateEndpointWeightsAndCapacities"],
                    resources=[f"{arn}:endpoint/{endpoint_name}"],
                ),
                iam.PolicyStatement(
                    sid="TargetTrackingAlarms",
                    actions=["cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"],
                    resources=[alarms],
                ),
            ],
        )
        for resource, reason in (
            (f"{arn}:endpoint-config/*", "CloudFormation names the endpoint configs (they must never be named)."),
            (f"{arn}:model/*", "CloudFormation names the models (they must never be named)."),
            (stack_arn, "The serving stack's id suffix is assigned by CloudFormation."),
            ("*", "Application Auto Scaling's Describe* actions have no resource-level permissions."),
            (
                targets,
                "Scalable target ARNs end in an id Application Auto Scaling assigns, and no condition key names the "
                "resource id; the statement is pinned to SageMaker variant instance counts.",
            ),
            (alarms, "The target-tracking alarms Application Auto Scaling creates for this endpoint's variants."),
        ):
            acknowledge(self.node.find_child("VerifyPolicy"), f"AwsSolutions-IAM5[Resource::{resource}]", reason)
        return role


def monitoring_plan(
    project: ProjectSettings, stage: str, release: ReleaseManifest | None
) -> tuple[str, MonitoredVersion | None]:
    """What to monitor in ``stage``: the served version with its baselines, or why nothing (for the summary)."""
    settings = project.monitoring
    if not settings.enabled or stage not in settings.stages:
        return "off", None
    if release is None:
        return "none yet: nothing is released to this stage", None
    served = release.challenger
    if served.baselines is None:
        return f"none: version {served.version} was registered without drift-check baselines", None
    return "", MonitoredVersion(served.version, served.baselines)
