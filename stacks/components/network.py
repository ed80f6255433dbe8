"""Private network for SageMaker in VPC-only mode."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlops_platform.nag import checkov_skip
from stacks.components.roles import ServiceRole

# Interface endpoints SageMaker Studio, jobs and endpoints need when the VPC has no
# internet route: construct id -> service name suffix.
INTERFACE_ENDPOINTS = {
    "SageMakerApi": "sagemaker.api",
    "SageMakerRuntime": "sagemaker.runtime",
    "FeatureStoreRuntime": "sagemaker.featurestore-runtime",
    "Sts": "sts",
    "Logs": "logs",
    "Monitoring": "monitoring",
    "EcrApi": "ecr.api",
    "EcrDocker": "ecr.dkr",
    "Kms": "kms",
}


class PrivateNetwork(Construct):
    """VPC with private subnets, the endpoints SageMaker needs and KMS-encrypted flow logs.

    Defaults: no NAT gateway, so subnets are isolated and AWS is reached through
    the endpoints only; with ``nat_gateways`` > 0 public subnets and NAT are added.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cidr: str,
        max_azs: int,
        nat_gateways: int,
        key: kms.IKey,
        flow_log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        private = ec2.SubnetType.PRIVATE_WITH_EGRESS if nat_gateways else ec2.SubnetType.PRIVATE_ISOLATED
        subnets = [ec2.SubnetConfiguration(name="Private", subnet_type=private, cidr_mask=20)]
        if nat_gateways:
            subnets.append(ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24))
        self.vpc = ec2.Vpc(
            self,
            "Resource",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=max_azs,
            nat_gateways=nat_gateways,
            subnet_configuration=subnets,
            restrict_default_security_group=True,
        )
        self._skip_default_group_handler_checks()
        self.private_subnet_selection = ec2.SubnetSelection(subnet_type=private)
        self.private_subnets = self.vpc.select_subnets(subnet_type=private)

        flow_log_group = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=key,
            retention=flow_log_retention,
            removal_policy=RemovalPolicy.RETAIN,
        )
        flow_log_role = ServiceRole(
            self,
            "FlowLogRole",
            service="vpc-flow-logs.amazonaws.com",
            description="Delivers this VPC's flow logs to its log group",
            statements=[
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    resources=[flow_log_group.log_group_arn],
                )
            ],
        ).role
        # Immutable, so CDK adds no inline grant next to the managed policy above.
        delivery_role = iam.Role.from_role_arn(self, "FlowLogDeliveryRole", flow_log_role.role_arn, mutable=False)
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group, delivery_role),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="HTTPS from inside the VPC to the AWS service endpoints",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), "HTTPS from the VPC")
        self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.private_subnet_selection]
        )
        for endpoint_id, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                endpoint_id,
                service=ec2.InterfaceVpcEndpointAwsService(service),
                subnets=self.private_subnet_selection,
                security_groups=[self.endpoint_security_group],
                private_dns_enabled=True,
                open=False,  # the group above already admits the VPC on 443 only
            )

    def _skip_default_group_handler_checks(self) -> None:
        """Checks that miss the point on CDK's handler for ``restrict_default_security_group`` (one per stack)."""
        provider = Stack.of(self).node.find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        handler = provider.node.find_child("Handler")
        why = "CDK-managed custom-resource handler, invoked synchronously by CloudFormation at deploy time only"
        checkov_skip(handler, "CKV_AWS_115", f"{why}; one invocation per VPC change.")
        checkov_skip(handler, "CKV_AWS_116", f"{why}; a failure fails the deployment, there is no async event to keep.")
        checkov_skip(
            handler,
            "CKV_AWS_117",
            f"{why}; it only revokes the default group's rules through the EC2 API, which has no endpoint in this VPC.",
        )
