"""GitHub Actions OIDC: the identity provider and the deploy roles CI assumes in one account.

An admin deploys this stack once per account (``cdk deploy <stage>/GitHubOidc`` with
admin credentials); from then on GitHub Actions of the configured repository deploy
through it without stored keys. Present only when ``platform.yaml`` has ``github``.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from mlops_platform.config import ROLES, GitHub, PlatformSettings
from mlops_platform.naming import Naming

ISSUER = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
# The default qualifier of ``cdk bootstrap`` and the four roles its template creates that the CLI assumes.
BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_ROLE_KINDS = ("deploy", "file-publishing", "image-publishing", "lookup")


def subject(github: GitHub, role: str) -> str:
    """The token ``sub`` a deploy role accepts: the branch's pushes, for prod the environment's jobs."""
    if role == "prod":
        return f"repo:{github.repository}:environment:{github.prod_environment}"
    return f"repo:{github.repository}:ref:refs/heads/{github.branch}"


def bootstrap_role_arns(naming: Naming, role: str) -> list[str]:
    """The CDK bootstrap roles (default qualifier) of the role's account that ``cdk deploy`` assumes."""
    account, region = naming.account(role), naming.region(role)
    return [
        f"arn:aws:iam::{account}:role/cdk-{BOOTSTRAP_QUALIFIER}-{kind}-role-{account}-{region}"
        for kind in BOOTSTRAP_ROLE_KINDS
    ]


def account_roles_here(platform: PlatformSettings, role: str) -> tuple[str, ...]:
    """The account roles whose deploy roles the ``role`` stage's GitHubOidc stack holds.

    An account has one provider per issuer, so the first role of each account (in
    ``ROLES`` order) holds the provider and a deploy role for every role sharing
    that account; the other stages of that account get no stack (empty result).
    Single-account mode: governance holds all four.
    """
    account = platform.accounts.of(role).id
    sharing = tuple(r for r in ROLES if platform.accounts.of(r).id == account)
    return sharing if sharing[0] == role else ()


class GitHubOidcStack(Stack):
    """GitHub's OIDC provider and one deploy role per account role in ``roles``; termination protection on.

    Each role ``Naming.github_deploy_role(role)`` trusts only tokens with audience
    ``sts.amazonaws.com`` and subject ``repo:<repository>:ref:refs/heads/<branch>``
    (default branch ``main``) for governance, dev and staging, and
    ``repo:<repository>:environment:<prod_environment>`` (default ``production``)
    for prod: limit that environment's deployment branches in GitHub. A deploy
    role may only assume the account's CDK bootstrap roles (default qualifier
    ``hnb659fds``). Nothing else: the governance job uploads the deployed
    commit's source bundle through the file-publishing role, into the CDK
    assets bucket (``Naming.platform_source_bucket``).

    No thumbprints: IAM validates GitHub's issuer through its trusted root CAs and
    ignores thumbprints for it, and ``AWS::IAM::OIDCProvider`` no longer requires
    ``ThumbprintList`` (IAM derives one when it is absent). The L1 provider needs
    no custom-resource Lambda.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        github: GitHub,
        naming: Naming,
        roles: Sequence[str],
        **kwargs,
    ) -> None:
        super().__init__(scope, id, termination_protection=True, **kwargs)
        self.provider = iam.CfnOIDCProvider(
            self,
            "Provider",
            url=f"https://{ISSUER}",
            client_id_list=[AUDIENCE],
        )
        self.deploy_roles: dict[str, iam.Role] = {}
        for role in roles:
            self.deploy_roles[role] = self._deploy_role(github, naming, role)

    def _deploy_role(self, github: GitHub, naming: Naming, role: str) -> iam.Role:
        construct_id = f"{role.capitalize()}Deploy"
        deploy_role = iam.Role(
            self,
            construct_id,
            role_name=naming.github_deploy_role(role),
            description=f"GitHub Actions of {github.repository} deploying the {role} stacks through CDK",
            assumed_by=iam.WebIdentityPrincipal(
                self.provider.attr_arn,
                conditions={
                    "StringEquals": {f"{ISSUER}:aud": AUDIENCE, f"{ISSUER}:sub": subject(github, role)},
                },
            ),
        )
        statements = [
            iam.PolicyStatement(
                sid="AssumeCdkBootstrapRoles",
                actions=["sts:AssumeRole", "sts:TagSession"],
                resources=bootstrap_role_arns(naming, role),
            )
        ]
        iam.ManagedPolicy(self, f"{construct_id}Policy", statements=statements, roles=[deploy_role])
        return deploy_role
