"""Service roles whose permissions live in one customer-managed policy (no inline policies)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from mlops_platform.nag import acknowledge


class ServiceRole(Construct):
    """An IAM role assumed by one AWS service, with its statements in a managed policy.

    NIST 800-53 forbids inline policies, so the statements go into a customer-managed
    policy named by CloudFormation; ``role_name`` is only set when another account
    must trust the role by ARN. ``source_identity``: the service may also set
    the session's STS source identity (Studio sets the user profile name);
    default off.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        service: str,
        description: str,
        statements: Sequence[iam.PolicyStatement],
        role_name: str | None = None,
        key: kms.IKey | None = None,
        source_identity: bool = False,
    ) -> None:
        super().__init__(scope, id)
        self.role = iam.Role(
            self,
            "Resource",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal(service),
            description=description,
        )
        if source_identity:
            allow_source_identity(self.role, service)
        all_statements = list(statements)
        if key is not None:
            all_statements.append(
                iam.PolicyStatement(
                    sid="PlatformKey",
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey", "kms:CreateGrant"],
                    resources=[key.key_arn],
                )
            )
        self.policy = iam.ManagedPolicy(self, "Policy", statements=all_statements, roles=[self.role])

    def acknowledge(self, rule: str, reason: str) -> None:
        """Acknowledge a finding on this role's policy (where the statements are)."""
        acknowledge(self.policy, rule, reason)


def allow_source_identity(role: iam.Role, service: str) -> None:
    """Let ``service`` set the STS source identity when it assumes ``role`` (else AssumeRole fails)."""
    role.assume_role_policy.add_statements(  # type: ignore[union-attr]
        iam.PolicyStatement(actions=["sts:SetSourceIdentity"], principals=[iam.ServicePrincipal(service)])
    )


def vpc_access_statements(
    region: str, account: str, subnet_ids: str | Sequence[str], security_group_id: str
) -> list[iam.PolicyStatement]:
    """What a SageMaker role needs to place network interfaces in its subnets and group (and find FSx).

    The interfaces' own ids are not known in advance, hence ``network-interface/*``;
    the Describe actions have no resource-level permissions.
    """
    ec2 = f"arn:aws:ec2:{region}:{account}"
    subnets = [subnet_ids] if isinstance(subnet_ids, str) else list(subnet_ids)
    return [
        iam.PolicyStatement(
            sid="VpcNetworkInterfaces",
            actions=[
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            resources=[
                f"{ec2}:network-interface/*",
                *(f"{ec2}:subnet/{subnet}" for subnet in subnets),
                f"{ec2}:security-group/{security_group_id}",
            ],
        ),
        iam.PolicyStatement(
            sid="DescribeNetworkAndFsx",
            actions=[
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeDhcpOptions",
                "fsx:DescribeFileSystems",
            ],
            resources=["*"],
        ),
    ]
