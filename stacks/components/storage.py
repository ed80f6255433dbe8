"""Encrypted storage every account role gets: the platform KMS key and the artifacts bucket."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops_platform.nag import acknowledge, checkov_skip


class PlatformKey(Construct):
    """Customer-managed KMS key of one account role: rotation on, retained on delete.

    The key policy always admits CloudWatch Logs for this account's log groups
    (every account role keeps KMS-encrypted logs); :meth:`admit_service` admits
    another service for this account's resources only. ``external_readers`` are
    role ARNs in other accounts that may decrypt with it (model artifacts read
    by staging and prod). They are named through an ``aws:PrincipalArn``
    condition on their account's root, so the key can be created before those
    roles exist and still trusts only them.
    """

    def __init__(
        self, scope: Construct, id: str, *, alias: str, description: str, external_readers: Sequence[str] = ()
    ) -> None:
        super().__init__(scope, id)
        self.key = kms.Key(
            self,
            "Resource",
            alias=alias,
            description=description,
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
            pending_window=Duration.days(30),
        )
        for account, role_arns in _by_account(external_readers).items():
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"DecryptFor{account}",
                    principals=[iam.AccountPrincipal(account)],
                    actions=["kms:Decrypt", "kms:DescribeKey"],
                    resources=["*"],  # in a key policy "*" means this key
                    conditions={"ArnLike": {"aws:PrincipalArn": role_arns}},
                )
            )
        stack = Stack.of(self)
        # CreateLogGroup with a KMS key fails unless the key admits the regional Logs
        # principal; the encryption context limits it to this account's log groups.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{stack.region}:{stack.account}:log-group:*"
                    }
                },
            )
        )

    def admit_fsx_s3_link(self, bucket_name: str) -> None:
        """Let FSx for Lustre's S3-access roles use the key on ``bucket_name`` (lazy load, export).

        A file system linked to S3 reads and writes the bucket as the service-linked
        role ``AWSServiceRoleForFSxS3Access_<file system id>``, which FSx creates with
        the first data repository association; its id is not known here (and a key
        policy may not name a role that does not exist yet), so the role is named by
        an ``aws:PrincipalArn`` pattern of this account. The encryption context is the
        bucket ARN, as the FSx for Lustre guide requires when S3 Bucket Keys are on
        ("Working with server-side encrypted Amazon S3 buckets"), and object ARNs for
        objects written before they were. ``bucket_name`` is a literal: a token would
        tie this stack to the training stack in both directions.
        """
        stack = Stack.of(self)
        bucket_arn = f"arn:aws:s3:::{bucket_name}"
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="FsxS3LinkOfArtifacts",
                principals=[iam.AnyPrincipal()],
                actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "aws:PrincipalArn": f"arn:aws:iam::{stack.account}:role/aws-service-role/"
                        "s3.data-source.lustre.fsx.amazonaws.com/AWSServiceRoleForFSxS3Access_fs-*"
                    },
                    "StringEquals": {
                        "kms:CallerAccount": stack.account,
                        "kms:ViaService": f"s3.{stack.region}.amazonaws.com",
                    },
                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/*"]},
                },
            )
        )

    def admit_service(self, sid: str, service: str) -> None:
        """Let ``service`` encrypt with the key on behalf of this account's resources (``aws:SourceAccount``).

        Enough for services that publish to or deliver into KMS-encrypted topics
        and queues (CloudWatch alarms, EventBridge dead-letter queues).
        """
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=sid,
                principals=[iam.ServicePrincipal(service)],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )


class ArtifactsBucket(Construct):
    """KMS-encrypted, versioned, TLS-only bucket with access logs; retained on delete.

    The access-log bucket uses SSE-S3 because S3 server access logging cannot
    deliver to a KMS-encrypted target. ``external_readers`` maps role ARNs in
    other accounts to the key prefixes they may read.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket_name: str,
        access_logs_bucket_name: str,
        key: kms.IKey,
        external_readers: Sequence[tuple[str, str]] = (),
        log_sources: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__(scope, id)
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=access_logs_bucket_name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(365))],
        )
        self.bucket = s3.Bucket(
            self,
            "Resource",
            bucket_name=bucket_name,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix="artifacts/",
            removal_policy=RemovalPolicy.RETAIN,
        )
        account = Stack.of(self).account
        for i, (source, prefix) in enumerate(sorted(log_sources)):
            self.access_logs.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"LogsFrom{i}",
                    principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                    actions=["s3:PutObject"],
                    resources=[self.access_logs.arn_for_objects(f"{prefix}*")],
                    conditions={
                        "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{source}"},
                        "StringEquals": {"aws:SourceAccount": account},
                    },
                )
            )
        for i, (role_arn, prefix) in enumerate(sorted(external_readers)):
            account = role_arn.split(":")[4]
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"ExternalRead{i}",
                    principals=[iam.AccountPrincipal(account)],
                    actions=["s3:GetObject", "s3:GetObjectVersion"],
                    resources=[self.bucket.arn_for_objects(f"{prefix}/*")],
                    conditions={"ArnEquals": {"aws:PrincipalArn": role_arn}},
                )
            )
            # Listing the prefix makes a missing object NoSuchKey instead of AccessDenied.
            self.bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"ExternalList{i}",
                    principals=[iam.AccountPrincipal(account)],
                    actions=["s3:ListBucket"],
                    resources=[self.bucket.bucket_arn],
                    conditions={
                        "ArnEquals": {"aws:PrincipalArn": role_arn},
                        "StringLike": {"s3:prefix": f"{prefix}/*"},
                    },
                )
            )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log target itself; logging it into itself would loop.",
        )
        acknowledge(
            self.access_logs,
            "NIST.800.53.R5-S3BucketLoggingEnabled",
            "This is the access-log target itself; logging it into itself would loop.",
        )
        checkov_skip(
            self.access_logs,
            "CKV_AWS_18",
            "This is the access-log target itself; logging it into itself would loop.",
        )
        acknowledge(
            self.access_logs,
            "NIST.800.53.R5-S3DefaultEncryptionKMS",
            "S3 server access logging can only deliver to SSE-S3 buckets.",
        )
        for target in (self.bucket, self.access_logs):
            acknowledge(
                target,
                "NIST.800.53.R5-S3BucketReplicationEnabled",
                "Versioned and retained on delete; cross-region replication is a per-organisation "
                "DR choice this platform leaves to the account owner.",
            )


def _by_account(role_arns: Sequence[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for arn in sorted(set(role_arns)):
        grouped.setdefault(arn.split(":")[4], []).append(arn)
    return grouped
