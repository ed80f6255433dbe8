"""Dev account: the shared training cluster — FSx for Lustre and a SageMaker HyperPod (Slurm) cluster."""

from __future__ import annotations

from typing import cast

from aws_cdk import Annotations, CfnElement, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_fsx as fsx
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3_deployment
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from hyperpod_lifecycle import SCRIPTS_DIR, provisioning_parameters_template
from mlops_platform.config import TrainingCluster
from mlops_platform.nag import acknowledge, acknowledge_deploy_time_function, checkov_skip
from mlops_platform.naming import Naming
from stacks.baseline import BaselineStack
from stacks.components.roles import ServiceRole, vpc_access_statements

# Lustre: 988 for LNet, 1018-1023 for the servers' replies.
LUSTRE_PORTS = (ec2.Port.tcp(988), ec2.Port.tcp_range(1018, 1023))
LIFECYCLE_PREFIX = "lifecycle"


class TrainingClusterStack(Stack):
    """FSx for Lustre linked to S3 and a HyperPod cluster of Trainium workers, in one AZ of the dev VPC.

    Stateful (the file system and the lifecycle bucket are retained; termination
    protection on). The cluster gets its own private subnet, chosen by AZ id, with
    an S3 gateway route; every security group on the cluster admits all traffic
    from itself (EFA needs it). Lustre runs both ways: the file system's group
    admits TCP 988 and 1018-1023 from the nodes, and the nodes admit the same
    ports from the file system (Lustre servers open connections back to their
    clients). Lifecycle scripts are copied to a ``sagemaker-`` bucket, the only
    kind HyperPod reads them from, with provisioning parameters generated from
    config so group names, FSx DNS name and mount name always match.

    With ``cluster.internet == "nat"`` the cluster subnet alone gets a default
    route to a NAT gateway in a public subnet of the same AZ (see
    :class:`~mlops_platform.config.TrainingCluster` for its cost). With
    ``cluster.enabled`` false (and ``keep_file_system``) only the network pieces
    the file system sits in, the file system and the lifecycle bucket remain:
    no HyperPod cluster, node role, script upload or NAT gateway.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cluster: TrainingCluster,
        naming: Naming,
        baseline: BaselineStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, termination_protection=True, **kwargs)
        vpc = baseline.require_network().vpc
        key = baseline.key

        self.subnet = ec2.CfnSubnet(
            self,
            "ClusterSubnet",
            vpc_id=vpc.vpc_id,
            cidr_block=str(cluster.cidr),
            availability_zone_id=cluster.availability_zone_id,
            map_public_ip_on_launch=False,
            tags=[{"key": "Name", "value": f"{naming.prefix}-training-{cluster.availability_zone_id}"}],
        )
        self.route_table = ec2.CfnRouteTable(self, "ClusterRoutes", vpc_id=vpc.vpc_id)
        ec2.CfnSubnetRouteTableAssociation(
            self, "ClusterRoutesAssociation", subnet_id=self.subnet.ref, route_table_id=self.route_table.ref
        )
        ec2.CfnVPCEndpoint(
            self,
            "ClusterS3Endpoint",
            vpc_id=vpc.vpc_id,
            service_name=f"com.amazonaws.{self.region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[self.route_table.ref],
        )

        self.cluster_security_group = ec2.SecurityGroup(
            self, "ClusterSecurityGroup", vpc=vpc, description="HyperPod nodes (EFA)", allow_all_outbound=False
        )
        self.fsx_security_group = ec2.SecurityGroup(
            self, "FsxSecurityGroup", vpc=vpc, description="FSx for Lustre", allow_all_outbound=False
        )
        nodes, storage = self.cluster_security_group, self.fsx_security_group
        # EFA requires all traffic to and from the group itself.
        nodes.add_ingress_rule(nodes, ec2.Port.all_traffic(), "EFA between nodes")
        nodes.add_egress_rule(nodes, ec2.Port.all_traffic(), "EFA between nodes")
        nodes.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS endpoints over HTTPS")
        if cluster.enabled and cluster.internet == "nat":
            # Ubuntu's package mirrors serve over HTTP (the packages are signed); only through the NAT.
            nodes.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "Package mirrors over HTTP, via the NAT")
        acknowledge(
            nodes,
            "NIST.800.53.R5-EC2RestrictedCommonPorts",
            "The only all-traffic rule admits the group itself, which EFA requires; nothing else gets in.",
        )
        for port in LUSTRE_PORTS:
            nodes.add_egress_rule(storage, port, "Lustre client to FSx")
            nodes.add_ingress_rule(storage, port, "Lustre servers back to their clients")
            storage.add_ingress_rule(nodes, port, "Lustre from the cluster")
            storage.add_egress_rule(nodes, port, "Lustre servers back to their clients")
            storage.add_ingress_rule(storage, port, "Lustre between servers")
            storage.add_egress_rule(storage, port, "Lustre between servers")

        self.file_system = self._file_system(cluster, naming, key)
        lifecycle_bucket_name = naming.lifecycle_bucket()
        # Kept while switched off too: it is retained, so dropping it would make turning on again
        # fail on its (fixed) name.
        self.lifecycle_bucket = s3.Bucket(
            self,
            "LifecycleBucket",
            bucket_name=lifecycle_bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=s3.Bucket.from_bucket_name(self, "AccessLogs", naming.access_logs_bucket("dev")),
            server_access_logs_prefix=naming.lifecycle_access_log_prefix(),
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CDK cannot add the log delivery grant to a bucket of another stack; the baseline's
        # access-log bucket policy admits this bucket's logs by name (BaselineStack log_sources).
        Annotations.of(self.lifecycle_bucket).acknowledge_warning(
            "@aws-cdk/aws-s3:accessLogsPolicyNotAdded",
            "The dev baseline's access-log bucket policy admits logs from this bucket (aws:SourceArn by name).",
        )
        acknowledge(
            self.lifecycle_bucket,
            "NIST.800.53.R5-S3BucketReplicationEnabled",
            "Holds lifecycle scripts generated from this repository; the repository is the copy.",
        )
        self.nat_gateway: ec2.CfnNatGateway | None = None
        self.execution_role: ServiceRole | None = None
        self.cluster: sagemaker.CfnCluster | None = None
        if not cluster.enabled:
            return
        if cluster.internet == "nat":
            self.nat_gateway = self._internet(vpc, cluster, naming)

        provisioning = provisioning_parameters_template(
            controller_group=cluster.controller.name,
            worker_groups=[g.name for g in cluster.workers],
            fsx_dns_name=self.file_system.attr_dns_name,
            fsx_mount_name=self.file_system.attr_lustre_mount_name,
            internet_access=cluster.internet == "nat",
            # The job user may write where the S3 links land (imported directories belong to root).
            data_paths=[r.fs_path for r in cluster.fsx.data_repositories],
        )
        upload = s3_deployment.BucketDeployment(
            self,
            "LifecycleScripts",
            destination_bucket=self.lifecycle_bucket,
            destination_key_prefix=LIFECYCLE_PREFIX,
            sources=[
                s3_deployment.Source.asset(str(SCRIPTS_DIR), exclude=["__pycache__", "*.pyc"]),
                s3_deployment.Source.json_data("provisioning_parameters.json", provisioning),
            ],
            server_side_encryption=s3_deployment.ServerSideEncryption.AWS_KMS,
            server_side_encryption_aws_kms_key_id=key.key_id,
            retain_on_delete=True,
            prune=True,
        )

        self._acknowledge_deployment_function(upload)
        self.execution_role = self._execution_role(naming, key, lifecycle_bucket_name)
        lifecycle = sagemaker.CfnCluster.ClusterLifeCycleConfigProperty(
            source_s3_uri=f"s3://{lifecycle_bucket_name}/{LIFECYCLE_PREFIX}/",
            on_create="on_create.sh",
        )
        role_arn = self.execution_role.role.role_arn

        def group(spec, health_checks: list[str]) -> sagemaker.CfnCluster.ClusterInstanceGroupProperty:
            return sagemaker.CfnCluster.ClusterInstanceGroupProperty(
                instance_group_name=spec.name,
                instance_type=spec.instance_type,
                instance_count=spec.count,
                execution_role=role_arn,
                life_cycle_config=lifecycle,
                threads_per_core=spec.threads_per_core,
                instance_storage_configs=[
                    sagemaker.CfnCluster.ClusterInstanceStorageConfigProperty(
                        ebs_volume_config=sagemaker.CfnCluster.ClusterEbsVolumeConfigProperty(
                            volume_size_in_gb=spec.ebs_volume_gb
                        )
                    )
                ],
                on_start_deep_health_checks=health_checks or None,
                training_plan_arn=cluster.training_plan_arn if health_checks else None,
            )

        self.cluster = sagemaker.CfnCluster(
            self,
            "Cluster",
            cluster_name=f"{naming.prefix}-training",
            instance_groups=[
                group(cluster.controller, []),
                *(group(worker, list(cluster.deep_health_checks)) for worker in cluster.workers),
            ],
            node_recovery=cluster.node_recovery,
            vpc_config=sagemaker.CfnCluster.VpcConfigProperty(
                security_group_ids=[nodes.security_group_id], subnets=[self.subnet.ref]
            ),
        )
        self.cluster.node.add_dependency(upload)
        self.cluster.node.add_dependency(self.execution_role)
        if self.nat_gateway is not None:
            # Lifecycle scripts install from the internet on first boot: the route must exist by then.
            self.cluster.node.add_dependency(self.nat_route)

    def _internet(self, vpc: ec2.Vpc, cluster: TrainingCluster, naming: Naming) -> ec2.CfnNatGateway:
        """A NAT gateway in a public /28 of the cluster's AZ and a default route to it from the cluster subnet.

        Only the cluster subnet's route table gets the route; the VPC's own private
        subnets keep none. The VPC's internet gateway is used when it has one (a VPC
        takes only one), else one is created and attached here.
        """
        attachment: ec2.CfnVPCGatewayAttachment | None = None
        gateway_id = vpc.internet_gateway_id
        if gateway_id is None:
            gateway = ec2.CfnInternetGateway(
                self, "InternetGateway", tags=[{"key": "Name", "value": f"{naming.prefix}-training"}]
            )
            attachment = ec2.CfnVPCGatewayAttachment(
                self, "InternetGatewayAttachment", vpc_id=vpc.vpc_id, internet_gateway_id=gateway.ref
            )
            gateway_id = gateway.ref
        public = ec2.CfnSubnet(
            self,
            "NatSubnet",
            vpc_id=vpc.vpc_id,
            cidr_block=str(cluster.nat_cidr),
            availability_zone_id=cluster.availability_zone_id,
            map_public_ip_on_launch=False,  # only the NAT gateway lives here, with its Elastic IP
            tags=[{"key": "Name", "value": f"{naming.prefix}-training-nat-{cluster.availability_zone_id}"}],
        )
        public_routes = ec2.CfnRouteTable(self, "NatRoutes", vpc_id=vpc.vpc_id)
        ec2.CfnSubnetRouteTableAssociation(
            self, "NatRoutesAssociation", subnet_id=public.ref, route_table_id=public_routes.ref
        )
        to_internet = ec2.CfnRoute(
            self,
            "NatSubnetToInternet",
            route_table_id=public_routes.ref,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=gateway_id,
        )
        acknowledge(
            to_internet,
            "NIST.800.53.R5-VPCNoUnrestrictedRouteToIGW",
            "The route of the NAT gateway's own /28 (nothing else runs there); the cluster subnet routes to the "
            "NAT gateway, which admits no inbound connections. Opt-in: training_cluster.internet: nat.",
        )
        address = ec2.CfnEIP(
            self, "NatAddress", domain="vpc", tags=[{"key": "Name", "value": f"{naming.prefix}-training-nat"}]
        )
        nat = ec2.CfnNatGateway(
            self,
            "NatGateway",
            subnet_id=public.ref,
            allocation_id=address.attr_allocation_id,
            connectivity_type="public",
            tags=[{"key": "Name", "value": f"{naming.prefix}-training"}],
        )
        if attachment is not None:
            to_internet.add_dependency(attachment)
            nat.add_dependency(attachment)
        self.nat_route = ec2.CfnRoute(
            self,
            "ClusterToNat",
            route_table_id=self.route_table.ref,
            destination_cidr_block="0.0.0.0/0",
            nat_gateway_id=nat.ref,
        )
        return nat

    def _file_system(self, cluster: TrainingCluster, naming: Naming, key) -> fsx.CfnFileSystem:
        spec = cluster.fsx
        persistent = spec.deployment_type == "PERSISTENT_2"
        file_system = fsx.CfnFileSystem(
            self,
            "FileSystem",
            file_system_type="LUSTRE",
            file_system_type_version="2.15",
            storage_capacity=spec.storage_capacity_gib,
            subnet_ids=[self.subnet.ref],
            security_group_ids=[self.fsx_security_group.security_group_id],
            kms_key_id=key.key_id if persistent else None,
            lustre_configuration=fsx.CfnFileSystem.LustreConfigurationProperty(
                deployment_type=spec.deployment_type,
                per_unit_storage_throughput=spec.throughput_per_unit if persistent else None,
                data_compression_type="LZ4",
                metadata_configuration=fsx.CfnFileSystem.MetadataConfigurationProperty(mode="AUTOMATIC")
                if persistent
                else None,
            ),
            tags=[{"key": "Name", "value": f"{naming.prefix}-training"}],
        )
        file_system.apply_removal_policy(RemovalPolicy.RETAIN)
        # Both offered deployment types take associations on Lustre 2.15 (config refuses any that does not).
        for i, repository in enumerate(spec.data_repositories):
            fsx.CfnDataRepositoryAssociation(
                self,
                f"DataRepository{i}",
                file_system_id=file_system.ref,
                file_system_path=repository.fs_path,
                data_repository_path=f"s3://{naming.artifacts_bucket('dev')}/{repository.s3_prefix}",
                batch_import_meta_data_on_create=True,
                s3=fsx.CfnDataRepositoryAssociation.S3Property(
                    auto_import_policy=fsx.CfnDataRepositoryAssociation.AutoImportPolicyProperty(
                        events=list(repository.auto_import)
                    ),
                    auto_export_policy=fsx.CfnDataRepositoryAssociation.AutoExportPolicyProperty(
                        events=list(repository.auto_export)
                    ),
                ),
            )
        return file_system

    def _acknowledge_deployment_function(self, upload: s3_deployment.BucketDeployment) -> None:
        """CDK's bucket-deployment function runs only inside CloudFormation deployments."""
        function = self.node.find_child("Custom::CDKBucketDeployment8693BB64968944B69AAFB0CC9EB8756C")
        role = upload.handler_role
        why = "CDK-managed BucketDeployment function, invoked synchronously by CloudFormation at deploy time only"
        acknowledge(function, "AwsSolutions-L1", f"{why}; CDK pins its runtime.")
        acknowledge_deploy_time_function(
            function, why, invoked="one invocation per deployment", reaches="it only copies objects between S3 buckets"
        )
        checkov_skip(
            function, "CKV_AWS_173", f"{why}; its one variable, set by CDK, is AWS_CA_BUNDLE: a public file path."
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            f"{why}; the basic policy only lets it write its logs.",
        )
        acknowledge(role, "NIST.800.53.R5-IAMNoInlinePolicy", f"{why}; CDK writes its grants inline.")
        for grant in (
            "Action::kms:GenerateDataKey*",
            "Action::kms:ReEncrypt*",
            "Action::s3:Abort*",
            "Action::s3:DeleteObject*",
            "Action::s3:GetBucket*",
            "Action::s3:GetObject*",
            "Action::s3:List*",
            f"Resource::<{self.get_logical_id(cast(CfnElement, self.lifecycle_bucket.node.default_child))}.Arn>/*",
            f"Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-{self.account}-{self.region}/*",
        ):
            acknowledge(
                role,
                f"AwsSolutions-IAM5[{grant}]",
                "CDK's read grant on its asset bucket and write grant on the lifecycle bucket, nothing else.",
            )

    def _execution_role(self, naming: Naming, key, lifecycle_bucket_name: str) -> ServiceRole:
        arn = f"arn:aws:ec2:{self.region}:{self.account}"
        role = ServiceRole(
            self,
            "NodeRole",
            service="sagemaker.amazonaws.com",
            role_name=f"{naming.prefix}-training-cluster-node",
            description="HyperPod nodes: lifecycle scripts, FSx, VPC network interfaces",
            key=key,
            statements=[
                iam.PolicyStatement(
                    sid="ReadLifecycleScripts",
                    actions=["s3:GetObject", "s3:ListBucket"],
                    resources=[f"arn:aws:s3:::{lifecycle_bucket_name}", f"arn:aws:s3:::{lifecycle_bucket_name}/*"],
                ),
                *vpc_access_statements(
                    self.region, self.account, self.subnet.ref, self.cluster_security_group.security_group_id
                ),
                # The rest of what the HyperPod guide lists for clusters in your own VPC
                # ("IAM role for SageMaker HyperPod", Amazon VPC permissions).
                iam.PolicyStatement(
                    sid="DetachNetworkInterfaces",
                    actions=["ec2:DetachNetworkInterface"],
                    resources=["*"],  # the instances are HyperPod's, in its own account
                ),
                iam.PolicyStatement(
                    sid="TagNewNetworkInterfaces",
                    actions=["ec2:CreateTags"],
                    resources=[f"{arn}:network-interface/*"],
                    conditions={"StringEquals": {"ec2:CreateAction": "CreateNetworkInterface"}},
                ),
            ],
        )
        role.role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSageMakerClusterInstanceRolePolicy")
        )
        acknowledge(
            role.role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSageMakerClusterInstanceRolePolicy]",
            "The AWS-maintained policy HyperPod nodes need for the cluster agent, logs and health reporting.",
        )
        role.acknowledge(
            "AwsSolutions-IAM5[Resource::*]",
            "EC2 and FSx Describe* actions have no resource-level permissions; DetachNetworkInterface acts on "
            "instances HyperPod runs in its own account.",
        )
        role.acknowledge(
            f"AwsSolutions-IAM5[Resource::{arn}:network-interface/*]",
            "Interfaces HyperPod creates for the nodes; their ids are not known in advance.",
        )
        role.acknowledge(
            f"AwsSolutions-IAM5[Resource::arn:aws:s3:::{lifecycle_bucket_name}/*]",
            "Objects of the cluster's own lifecycle-script bucket.",
        )
        return role
