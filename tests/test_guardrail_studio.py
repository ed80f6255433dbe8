"""MLOps-StudioSourceIdentityTrust: Studio's USER_PROFILE_NAME source identity needs SetSourceIdentity trust."""

from __future__ import annotations

import pytest
from aws_cdk import App, Environment, Stack, Stage
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker

from mlops_platform.nag import add_rule_packs
from stacks.components.roles import allow_source_identity


def _studio(*, default_trusts: bool, profile_trusts: bool, identity: str = "USER_PROFILE_NAME") -> App:
    app = App()
    stage = Stage(app, "Dev", env=Environment(account="222222222222", region="eu-west-1"))
    studio, workspace = Stack(stage, "Studio"), Stack(stage, "Workspace")

    def role(stack: Stack, id: str, trusts: bool) -> iam.Role:
        made = iam.Role(stack, id, assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
        if trusts:
            allow_source_identity(made, "sagemaker.amazonaws.com")
        return made

    domain = sagemaker.CfnDomain(
        studio,
        "Domain",
        domain_name="mlops-dev",
        auth_mode="IAM",
        vpc_id="vpc-1",
        subnet_ids=["subnet-1"],
        default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
            execution_role=role(studio, "DefaultRole", default_trusts).role_arn
        ),
        domain_settings=sagemaker.CfnDomain.DomainSettingsProperty(execution_role_identity_config=identity),
    )
    sagemaker.CfnUserProfile(  # in another stack: the domain id arrives through an export
        workspace,
        "UserBob",
        domain_id=domain.attr_domain_id,
        user_profile_name="churn-bob",
        user_settings=sagemaker.CfnUserProfile.UserSettingsProperty(
            execution_role=role(workspace, "ScientistRole", profile_trusts).role_arn
        ),
    )
    add_rule_packs(stage, [])  # only the platform's own rules
    return app


@pytest.mark.parametrize(
    ("default_trusts", "profile_trusts", "names"),
    [(False, True, "DefaultRole"), (True, False, "ScientistRole")],
    ids=["domain default role", "user profile role"],
)
def test_a_role_without_set_source_identity_fails_synth(default_trusts, profile_trusts, names):
    app = _studio(default_trusts=default_trusts, profile_trusts=profile_trusts)
    with pytest.raises(RuntimeError, match=rf"role {names}\w* does not let[\s\S]*MLOps-StudioSourceIdentityTrust"):
        app.synth()


def test_its_fix_passes_and_a_domain_without_source_identity_needs_none():
    _studio(default_trusts=True, profile_trusts=True).synth()
    _studio(default_trusts=False, profile_trusts=False, identity="OFF").synth()
