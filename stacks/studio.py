"""SageMaker Studio: one VPC-only, KMS-encrypted domain per account role, and per-project workspaces."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops_platform.config import PlatformSettings, ProjectSettings
from mlops_platform.naming import Naming
from stacks.baseline import BaselineStack
from stacks.components.canvas import CanvasUserSettings
from stacks.components.personas import PersonaRoles
from stacks.components.roles import allow_source_identity


class StudioStack(Stack):
    """The account's Studio domain; retained on delete because it owns the users' EFS home folders.

    Default user settings run as a role that can only manage its own Studio apps;
    project user profiles override it with their persona role.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        role: str,
        platform: PlatformSettings,
        naming: Naming,
        baseline: BaselineStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, termination_protection=True, **kwargs)
        network = baseline.require_network()
        vpc = network.vpc
        self.security_group = ec2.SecurityGroup(
            self,
            "StudioSecurityGroup",
            vpc=vpc,
            description="Studio apps and their EFS home folders talk to each other only",
            allow_all_outbound=False,
        )
        # Studio apps reach EFS (NFS) and each other inside the group, and AWS through the endpoints.
        self.security_group.add_ingress_rule(self.security_group, ec2.Port.all_tcp(), "Studio apps and EFS")
        self.security_group.add_egress_rule(self.security_group, ec2.Port.all_tcp(), "Studio apps and EFS")
        # The S3 gateway endpoint is reached by public S3 addresses; without NAT the
        # private subnets have no other route out, so HTTPS egress reaches AWS only.
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS endpoints over HTTPS")

        self.default_role = iam.Role(
            self,
            "DefaultExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Studio default: no project access until a project profile assigns a persona role",
        )
        allow_source_identity(self.default_role, "sagemaker.amazonaws.com")
        self.domain = sagemaker.CfnDomain(
            self,
            "Domain",
            domain_name=naming.studio_domain_name(role),
            auth_mode=platform.studio.auth_mode,
            app_network_access_type="VpcOnly",
            vpc_id=vpc.vpc_id,
            subnet_ids=network.private_subnets.subnet_ids,
            kms_key_id=baseline.key.key_arn,
            default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
                execution_role=self.default_role.role_arn,
                security_groups=[self.security_group.security_group_id],
                studio_web_portal="ENABLED",
                default_landing_uri="studio::",
                jupyter_lab_app_settings=sagemaker.CfnDomain.JupyterLabAppSettingsProperty(
                    app_lifecycle_management=sagemaker.CfnDomain.AppLifecycleManagementProperty(
                        idle_settings=sagemaker.CfnDomain.IdleSettingsProperty(
                            lifecycle_management="ENABLED",
                            idle_timeout_in_minutes=platform.studio.idle_timeout_minutes,
                        )
                    )
                ),
            ),
            domain_settings=sagemaker.CfnDomain.DomainSettingsProperty(
                security_group_ids=[self.security_group.security_group_id],
                # Every session carries its user profile name as STS source identity: CloudTrail and the
                # approval guard see which person acted, not only which persona role.
                execution_role_identity_config="USER_PROFILE_NAME",
            ),
        )
        self.domain.apply_removal_policy(RemovalPolicy.RETAIN)
        self.domain_id = self.domain.attr_domain_id
        self.domain_arn = self.domain.attr_domain_arn


class WorkspaceStack(Stack):
    """One project's persona roles and a user profile per member in an account's Studio domain.

    In dev, with ``canvas.enabled`` (default off), every profile also gets the project's Canvas settings
    (:class:`~stacks.components.canvas.CanvasUserSettings`).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        role: str,
        project: ProjectSettings,
        platform: PlatformSettings,
        naming: Naming,
        baseline: BaselineStack,
        studio: StudioStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.personas = PersonaRoles(
            self,
            "Personas",
            naming=naming,
            project=project.name,
            role=role,
            key=baseline.key,
        )
        persona_roles = {"data_scientist": self.personas.data_scientist, "lead": self.personas.lead}
        profiles = []
        for member in project.members:
            sso = (
                {"single_sign_on_user_identifier": "UserName", "single_sign_on_user_value": member.sso_user}
                if platform.studio.auth_mode == "SSO"
                else {}
            )
            profile = sagemaker.CfnUserProfile(
                self,
                f"User{_pascal(member.user)}",
                domain_id=studio.domain_id,
                user_profile_name=naming.user_profile_name(project.name, member.user),
                user_settings=sagemaker.CfnUserProfile.UserSettingsProperty(
                    execution_role=persona_roles[member.persona].role_arn,
                    security_groups=[studio.security_group.security_group_id],
                ),
                tags=[{"key": "mlops:persona", "value": member.persona}],
                **sso,
            )
            # Profiles own the member's home folder; keep it if the project file drops them.
            profile.apply_removal_policy(RemovalPolicy.RETAIN)
            profiles.append(profile)
        self.personas.bind_user_profiles(profiles)
        self.canvas = None
        if role == "dev" and project.canvas.enabled:
            self.canvas = CanvasUserSettings(
                self,
                "Canvas",
                naming=naming,
                project=project.name,
                key=baseline.key,
                profiles=[(p, m.persona) for p, m in zip(profiles, project.members, strict=True)],
                roles=persona_roles,
            )


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))
