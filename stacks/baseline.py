"""Account baseline: the platform key, the artifacts bucket and (for workload roles) the network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_logs as logs
from constructs import Construct

from mlops_platform.config import PlatformSettings, WorkloadRole
from mlops_platform.nag import acknowledge
from mlops_platform.naming import Naming
from stacks.components.network import PrivateNetwork
from stacks.components.storage import ArtifactsBucket, PlatformKey
from stacks.components.trail import ApiCallTrail


class BaselineStack(Stack):
    """Stateful foundation of one account role; termination protection on, everything retained.

    ``external_readers`` are (role ARN, key prefix) pairs from other accounts that
    may read this account's artifacts (and decrypt them with its key). The
    governance role gets no network: nothing there runs inside a VPC. With
    ``retraining`` (a project retrains on monitoring alarms), the default event
    buses admit the hop before them (governance: the staging and prod accounts;
    dev: governance) and dev keeps the table of retraining starts.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        role: str,
        platform: PlatformSettings,
        naming: Naming,
        external_readers: Sequence[tuple[str, str]] = (),
        retraining: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, termination_protection=True, **kwargs)
        self.role = role
        platform_key = PlatformKey(
            self,
            "Key",
            alias=naming.key_alias(role),
            description=f"{platform.prefix} {role}: artifacts, logs and SageMaker volumes",
            external_readers=[arn for arn, _ in external_readers],
        )
        self.key = platform_key.key
        cluster = platform.training_cluster
        if role == "dev" and cluster.in_app and cluster.fsx.data_repositories:
            platform_key.admit_fsx_s3_link(naming.artifacts_bucket(role))
        self.artifacts = ArtifactsBucket(
            self,
            "Artifacts",
            bucket_name=naming.artifacts_bucket(role),
            access_logs_bucket_name=naming.access_logs_bucket(role),
            key=self.key,
            external_readers=external_readers,
            log_sources=[(naming.lifecycle_bucket(), naming.lifecycle_access_log_prefix())]
            if role == "dev" and cluster.in_app
            else [],
        ).bucket
        self.releases: dynamodb.TableV2 | None = None
        if role == "governance":
            self.releases = self._releases_table(naming)
            # The approval rules deliver undeliverable events to KMS-encrypted dead-letter queues.
            platform_key.admit_service("EventBridgeDeadLetters", "events.amazonaws.com")
            # The guard learns who approved from the CloudTrail record of the call; EventBridge
            # receives those records only while a trail records management events.
            self.trail = ApiCallTrail(
                self, "ApiCalls", trail_name=naming.api_call_trail(), key=self.key, bucket=self.artifacts
            )
        self.network: PrivateNetwork | None = None
        if role != "governance":
            self.network = PrivateNetwork(
                self,
                "Network",
                cidr=str(platform.network.vpc_cidrs[cast(WorkloadRole, role)]),
                max_azs=platform.network.max_azs,
                nat_gateways=platform.network.nat_gateways,
                key=self.key,
                flow_log_retention=_RETENTION[platform.network.flow_log_retention_days],
            )
        if role in ("governance", "staging", "prod"):
            # Endpoint alarms (staging, prod) and the approval dead-letter alarm (governance) publish to topics
            # encrypted with this key.
            platform_key.admit_service("CloudWatchAlarms", "cloudwatch.amazonaws.com")
        if role in ("staging", "prod"):
            # The rule on failed monitoring runs publishes to the stage's alarm topics.
            platform_key.admit_service("EventBridgeToTopics", "events.amazonaws.com")
        self.retrain_table: dynamodb.TableV2 | None = None
        if retraining:
            self._admit_retraining_events(role, naming)
            if role == "dev":
                self.retrain_table = self._retrain_table(naming)
                # The retraining trigger's rule delivers undeliverable events to its KMS-encrypted dead-letter queue.
                platform_key.admit_service("EventBridgeDeadLetters", "events.amazonaws.com")

    def _admit_retraining_events(self, role: str, naming: Naming) -> None:
        """Monitoring alarms travel stage -> governance -> dev; each bus admits the account before it."""
        senders = {"governance": ("staging", "prod"), "dev": ("governance",)}.get(role, ())
        for sender in sorted({naming.account(r) for r in senders} - {naming.account(role)}):
            events.CfnEventBusPolicy(
                self,
                f"RetrainingEventsFrom{sender}",
                statement_id=f"mlops-retraining-from-{sender}",
                event_bus_name="default",
                statement={
                    "Sid": f"mlops-retraining-from-{sender}",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{sender}:root"},
                    "Action": "events:PutEvents",
                    "Resource": f"arn:aws:events:{self.region}:{self.account}:event-bus/default",
                },
            )

    def _retrain_table(self, naming: Naming) -> dynamodb.TableV2:
        """When each project last retrained on an alarm (the cool-down); written by the retraining trigger."""
        table = dynamodb.TableV2(
            self,
            "Retraining",
            table_name=naming.retrain_table(),
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(self.key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            table,
            "NIST.800.53.R5-DynamoDBInBackupPlan",
            "Holds one cool-down record per project; point-in-time recovery covers it.",
        )
        return table

    def require_network(self) -> PrivateNetwork:
        """The account's network; raises for the governance role, which has none."""
        if self.network is None:
            raise ValueError(f"the {self.role} baseline has no network")
        return self.network

    def _releases_table(self, naming: Naming) -> dynamodb.TableV2:
        """Which model version is released to which stage, with history; written by the approval guard."""
        table = dynamodb.TableV2(
            self,
            "Releases",
            table_name=naming.releases_table(),
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing=dynamodb.Billing.on_demand(),
            encryption=dynamodb.TableEncryptionV2.customer_managed_key(self.key),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            table,
            "NIST.800.53.R5-DynamoDBInBackupPlan",
            "Point-in-time recovery (35 days) covers the release history; deletion protection is on.",
        )
        return table


_RETENTION = {
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
