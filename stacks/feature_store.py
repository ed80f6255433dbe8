"""Dev account, per project: Feature Store feature groups (online store + Iceberg offline store)."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops_platform.config import FeatureGroup, ProjectSettings
from mlops_platform.naming import Naming
from stacks.baseline import BaselineStack
from stacks.components.roles import ServiceRole

# Glue database SageMaker creates offline-store tables in when none is given.
FEATURE_STORE_DATABASE = "sagemaker_featurestore"


class FeatureStoreStack(Stack):
    """The project's feature groups; stateful (retained, termination-protected).

    Defaults per group: on-demand throughput, online store on (KMS, no TTL),
    offline store on in the dev artifacts bucket under
    ``projects/<project>/feature-store/`` as an Iceberg table in the Glue catalog.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        project: ProjectSettings,
        naming: Naming,
        baseline: BaselineStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, termination_protection=True, **kwargs)
        prefix = f"{naming.project_prefix(project.name)}/feature-store"
        offline_objects = f"{naming.bucket_arn('dev')}/{prefix}/*"
        glue = f"arn:aws:glue:{self.region}:{self.account}"
        # Per group, never "<prefix>-<project>-*": that would also match a project whose name extends this one's.
        tables = [
            f"{glue}:table/{FEATURE_STORE_DATABASE}/{table}"
            for group in project.features.feature_groups
            for table in naming.offline_store_tables(project.name, group.name)
        ]
        self.offline_store_role = ServiceRole(
            self,
            "OfflineStoreRole",
            service="sagemaker.amazonaws.com",
            description=f"Feature Store writes {project.name}'s offline store and its Glue tables",
            key=baseline.key,
            statements=[
                iam.PolicyStatement(
                    sid="OfflineStoreObjects",
                    actions=["s3:PutObject", "s3:GetObject"],
                    resources=[offline_objects],
                ),
                iam.PolicyStatement(
                    sid="OfflineStoreBucket", actions=["s3:GetBucketAcl"], resources=[naming.bucket_arn("dev")]
                ),
                iam.PolicyStatement(
                    sid="OfflineStoreTables",
                    actions=[
                        "glue:GetTable",
                        "glue:CreateTable",
                        "glue:UpdateTable",
                        "glue:GetDatabase",
                        "glue:CreateDatabase",
                    ],
                    resources=[
                        f"{glue}:catalog",
                        f"{glue}:database/{FEATURE_STORE_DATABASE}",
                        *tables,
                    ],
                ),
            ],
        )
        self.offline_store_role.acknowledge(
            f"AwsSolutions-IAM5[Resource::{offline_objects}]",
            "The project's feature-store prefix of the dev artifacts bucket only.",
        )
        for table in tables:
            self.offline_store_role.acknowledge(
                f"AwsSolutions-IAM5[Resource::{table}]", "A feature group's offline table; its name ends in a time."
            )
        self.feature_groups = {
            group.name: self._feature_group(
                group, naming, project.name, baseline, f"s3://{naming.artifacts_bucket('dev')}/{prefix}"
            )
            for group in project.features.feature_groups
        }

    def _feature_group(
        self, group: FeatureGroup, naming: Naming, project: str, baseline: BaselineStack, offline_uri: str
    ) -> sagemaker.CfnFeatureGroup:
        # The online/offline store properties are untyped JSON in CloudFormation's schema,
        # so CDK passes them through as given: they must be PascalCase dicts.
        online = None
        if group.online_store.enabled:
            online = {"EnableOnlineStore": True, "SecurityConfig": {"KmsKeyId": baseline.key.key_arn}}
            if group.online_store.ttl_days:
                online["TtlDuration"] = {"Unit": "Days", "Value": group.online_store.ttl_days}
        offline = None
        if group.offline_store.enabled:
            offline = {
                "S3StorageConfig": {"S3Uri": offline_uri, "KmsKeyId": baseline.key.key_arn},
                "DisableGlueTableCreation": False,
                "TableFormat": "Iceberg",
            }
        throughput = sagemaker.CfnFeatureGroup.ThroughputConfigProperty(
            throughput_mode=group.throughput,
            provisioned_read_capacity_units=group.provisioned_read_units,
            provisioned_write_capacity_units=group.provisioned_write_units,
        )
        resource = sagemaker.CfnFeatureGroup(
            self,
            f"FeatureGroup{''.join(p.capitalize() for p in group.name.replace('_', '-').split('-'))}",
            feature_group_name=naming.feature_group_name(project, group.name),
            description=group.description or None,
            record_identifier_feature_name=group.record_identifier,
            event_time_feature_name=group.event_time,
            feature_definitions=[
                sagemaker.CfnFeatureGroup.FeatureDefinitionProperty(feature_name=f.name, feature_type=f.type)
                for f in group.features
            ],
            online_store_config=online,
            offline_store_config=offline,
            role_arn=self.offline_store_role.role.role_arn if offline else None,
            throughput_config=throughput,
        )
        resource.apply_removal_policy(RemovalPolicy.RETAIN)
        if offline:
            resource.node.add_dependency(self.offline_store_role)
        return resource
