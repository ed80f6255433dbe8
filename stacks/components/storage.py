"""Encrypted storage every account role gets: the platform KMS key and the artifacts bucket."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from mlops_platform.nag import acknowledge


class PlatformKey(Construct):
    """Customer-managed KMS key of one account role: rotation on, retained on delete.

    ``external_readers`` are role ARNs in other accounts that may decrypt with it
    (model artifacts read by staging and prod). They are named through an
    ``aws:PrincipalArn`` condition on their account's root, so the key can be
    created before those roles exist and still trusts only them.
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
