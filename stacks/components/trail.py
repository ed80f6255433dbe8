"""The governance account's CloudTrail trail: the record of who approved, delivered to EventBridge."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops_platform.nag import checkov_skip
from stacks.components.roles import ServiceRole

PREFIX = "cloudtrail"


class ApiCallTrail(Construct):
    """A single-region trail of write management events, KMS-encrypted, validated, retained.

    EventBridge delivers "AWS API Call via CloudTrail" events (the approval
    guard's trigger: the ``UpdateModelPackage`` call that approved a version,
    with its caller) only while a trail records management events in the
    account. Files go to ``bucket`` under ``cloudtrail/``; a copy of the events
    goes to a log group kept for a year. The first trail's copy of management
    events is free; the log group is billed by ingested volume.
    """

    def __init__(self, scope: Construct, id: str, *, trail_name: str, key: kms.IKey, bucket: s3.IBucket) -> None:
        super().__init__(scope, id)
        stack = Stack.of(self)
        trail_arn = f"arn:aws:cloudtrail:{stack.region}:{stack.account}:trail/{trail_name}"
        source = {"StringEquals": {"aws:SourceArn": trail_arn}}
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailAclCheck",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["s3:GetBucketAcl"],
                resources=[bucket.bucket_arn],
                conditions=source,
            )
        )
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailWrite",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[bucket.arn_for_objects(f"{PREFIX}/AWSLogs/{stack.account}/*")],
                conditions={"StringEquals": {"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control"}},
            )
        )
        # CreateTrail fails unless the key lets CloudTrail encrypt for this trail (its encryption context).
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailEncrypt",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:GenerateDataKey*"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceArn": trail_arn},
                    "StringLike": {
                        "kms:EncryptionContext:aws:cloudtrail:arn": f"arn:aws:cloudtrail:*:{stack.account}:trail/*"
                    },
                },
            )
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailDescribeKey",
                principals=[iam.ServicePrincipal("cloudtrail.amazonaws.com")],
                actions=["kms:DescribeKey"],
                resources=["*"],
                conditions=source,
            )
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/cloudtrail/{trail_name}",
            encryption_key=key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN,
        )
        streams = f"arn:aws:logs:{stack.region}:{stack.account}:log-group:/aws/cloudtrail/{trail_name}:log-stream:*"
        delivery = ServiceRole(
            self,
            "LogsRole",
            service="cloudtrail.amazonaws.com",
            description=f"CloudTrail {trail_name}: deliver events to its log group",
            statements=[
                iam.PolicyStatement(
                    sid="DeliverToLogGroup", actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[streams]
                )
            ],
        )
        delivery.acknowledge(f"AwsSolutions-IAM5[Resource::{streams}]", "Streams of this trail's own log group.")
        self.trail = cloudtrail.CfnTrail(
            self,
            "Resource",
            trail_name=trail_name,
            is_logging=True,
            s3_bucket_name=bucket.bucket_name,
            s3_key_prefix=PREFIX,
            kms_key_id=key.key_arn,
            enable_log_file_validation=True,
            is_multi_region_trail=False,
            include_global_service_events=False,
            event_selectors=[
                cloudtrail.CfnTrail.EventSelectorProperty(include_management_events=True, read_write_type="WriteOnly")
            ],
            cloud_watch_logs_log_group_arn=self.log_group.log_group_arn,
            cloud_watch_logs_role_arn=delivery.role.role_arn,
        )
        # CreateTrail checks the bucket policy and the delivery role first.
        self.trail.node.add_dependency(bucket)
        self.trail.node.add_dependency(delivery)
        checkov_skip(
            self.trail,
            "CKV_AWS_67",
            "This trail exists so EventBridge receives the governance account's SageMaker write calls in the "
            "platform's region; an organisation trail, if any, keeps the account's full audit record.",
        )
