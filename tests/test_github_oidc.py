"""GitHub OIDC stacks: only the configured repository's branch (prod: environment) may deploy, and only through CDK."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlops_platform.config import ROLES, PlatformConfig, load_config
from mlops_platform.naming import Naming
from stacks.github_oidc import account_roles_here
from tests.iam_eval import Decision, Environment, TemplateResolver, evaluate, role_logical_id, role_policies
from tests.synth import Synthesized, example_platform, synthesized_once, write_config

REPOSITORY = "example-org/mlops-platform"
ISSUER = "token.actions.githubusercontent.com"
PROVIDER_TYPE = "AWS::IAM::OIDCProvider"
SINGLE_ACCOUNT = "555555555555"


def _shared(tmp_path_factory, name: str) -> Path:
    base = tmp_path_factory.getbasetemp()
    return (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / f"synth-{name}"


def _with_github(single: bool):
    def build(tmp: Path) -> PlatformConfig:
        platform = example_platform()
        if single:
            for role in platform["accounts"]:
                platform["accounts"][role]["id"] = SINGLE_ACCOUNT
        platform["github"] = {"repository": REPOSITORY, "branch": "release/main", "prod_environment": "prod-approved"}
        return load_config(write_config(tmp, platform))

    return build


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> tuple[Synthesized, PlatformConfig]:
    """The example's four accounts with ``github`` set (branch and environment not the defaults)."""
    shared = _shared(tmp_path_factory, "github-multi")
    synth = synthesized_once(shared, _with_github(single=False), lambda _: {})
    return synth, load_config(shared / "config")


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> tuple[Synthesized, PlatformConfig]:
    """Every role in one account, with ``github`` set."""
    shared = _shared(tmp_path_factory, "github-single")
    synth = synthesized_once(shared, _with_github(single=True), lambda _: {})
    return synth, load_config(shared / "config")


def _oidc_stacks(synth: Synthesized) -> list[str]:
    return sorted(name for name in synth.templates if name.endswith("-github-oidc"))


def _subject(role: str) -> str:
    if role == "prod":
        return f"repo:{REPOSITORY}:environment:prod-approved"
    return f"repo:{REPOSITORY}:ref:refs/heads/release/main"


def _resolver(synth: Synthesized, config: PlatformConfig) -> TemplateResolver:
    environments = {}
    for name, stage in synth.stage_of.items():
        account = config.platform.accounts.of(stage.lower())
        environments[name] = Environment(account=account.id, region=account.region)
    return TemplateResolver(synth.templates, environments)


def _termination_protected(synth: Synthesized, stack_name: str) -> bool:
    manifest = json.loads((synth.outdir / f"assembly-{synth.stage_of[stack_name]}" / "manifest.json").read_text())
    for artifact in manifest["artifacts"].values():
        if artifact["type"] == "aws:cloudformation:stack" and artifact["properties"]["stackName"] == stack_name:
            return artifact["properties"].get("terminationProtection") is True
    raise AssertionError(f"{stack_name} not in its stage's manifest")


# ------------------------------------------------------------------ layout


def test_one_stack_per_account_in_multi_account_mode(multi):
    synth, _ = multi
    assert _oidc_stacks(synth) == sorted(f"mlops-{role}-github-oidc" for role in ROLES)
    for role in ROLES:
        name = f"mlops-{role}-github-oidc"
        assert synth.stage_of[name] == role.capitalize()
        assert synth.construct_path[name] == f"{role.capitalize()}/GitHubOidc"
        assert _termination_protected(synth, name)


def test_single_account_has_one_provider_and_all_four_roles_in_governance(single):
    synth, config = single
    assert _oidc_stacks(synth) == ["mlops-governance-github-oidc"]
    stack = "mlops-governance-github-oidc"
    assert synth.stage_of[stack] == "Governance" and _termination_protected(synth, stack)
    assert len(synth.resources(stack, PROVIDER_TYPE)) == 1
    names = sorted(r["Properties"]["RoleName"] for r in synth.resources(stack, "AWS::IAM::Role").values())
    assert names == sorted(Naming(config.platform).github_deploy_role(role) for role in ROLES)


@pytest.mark.parametrize("variant", ["example", "single_account"])
def test_no_stack_without_github(variant, request):
    synth = request.getfixturevalue(variant)
    assert _oidc_stacks(synth) == []
    assert not any(synth.resources(name, PROVIDER_TYPE) for name in synth.templates)


def test_roles_sharing_an_account_get_one_stack():
    """Dev and staging in one account: dev's stack holds both deploy roles, staging's stage none."""
    platform = example_platform()
    platform["accounts"]["staging"]["id"] = platform["accounts"]["dev"]["id"]
    platform["github"] = {"repository": REPOSITORY}
    from mlops_platform.config import PlatformSettings

    settings = PlatformSettings.model_validate(platform)
    assert account_roles_here(settings, "governance") == ("governance",)
    assert account_roles_here(settings, "dev") == ("dev", "staging")
    assert account_roles_here(settings, "staging") == ()
    assert account_roles_here(settings, "prod") == ("prod",)
    assert settings.github is not None and settings.github.branch == "main"
    assert settings.github.prod_environment == "production"


# ------------------------------------------------------------------ provider and trust


@pytest.mark.parametrize("variant", ["multi", "single"])
def test_provider_is_githubs_issuer_for_sts_only(variant, request):
    synth, _ = request.getfixturevalue(variant)
    for stack in _oidc_stacks(synth):
        (provider,) = synth.resources(stack, PROVIDER_TYPE).values()
        assert provider["Properties"]["Url"] == f"https://{ISSUER}"
        assert provider["Properties"]["ClientIdList"] == ["sts.amazonaws.com"]
        # No custom resource (the L2 provider's Lambda), nothing but the provider, roles and their policies.
        types = {r["Type"] for r in synth.templates[stack]["Resources"].values()}
        assert types == {PROVIDER_TYPE, "AWS::IAM::Role", "AWS::IAM::ManagedPolicy"}


@pytest.mark.parametrize("variant", ["multi", "single"])
def test_trust_names_exactly_the_repository_and_branch_or_environment(variant, request):
    synth, config = request.getfixturevalue(variant)
    naming = Naming(config.platform)
    seen = set()
    for stack in _oidc_stacks(synth):
        (provider_id,) = synth.resources(stack, PROVIDER_TYPE)
        resolver = _resolver(synth, config)
        for role in ROLES:
            try:
                logical = role_logical_id(resolver, stack, naming.github_deploy_role(role))
            except ValueError:
                continue
            seen.add(role)
            trust = synth.templates[stack]["Resources"][logical]["Properties"]["AssumeRolePolicyDocument"]
            assert trust["Statement"] == [
                {
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com", f"{ISSUER}:sub": _subject(role)}
                    },
                    "Effect": "Allow",
                    "Principal": {"Federated": {"Fn::GetAtt": [provider_id, "Arn"]}},
                }
            ]
            assert "StringLike" not in json.dumps(trust) and "*" not in json.dumps(trust)
    assert seen == set(ROLES)


# ------------------------------------------------------------------ permissions


def _bootstrap_roles(account: str, region: str) -> list[str]:
    return [
        f"arn:aws:iam::{account}:role/cdk-hnb659fds-{kind}-role-{account}-{region}"
        for kind in ("deploy", "file-publishing", "image-publishing", "lookup")
    ]


def _deploy_role_policies(synth, config, role):
    naming = Naming(config.platform)
    stacks = [s for s in _oidc_stacks(synth) if naming.github_deploy_role(role) in json.dumps(synth.templates[s])]
    (stack,) = stacks
    resolver = _resolver(synth, config)
    return stack, role_policies(resolver, stack, role_logical_id(resolver, stack, naming.github_deploy_role(role)))


@pytest.mark.parametrize("variant", ["multi", "single"])
@pytest.mark.parametrize("role", ROLES)
def test_deploy_role_only_assumes_its_accounts_bootstrap_roles(variant, role, request):
    synth, config = request.getfixturevalue(variant)
    account = config.platform.accounts.of(role)
    _, policies = _deploy_role_policies(synth, config, role)
    statements = [s for p in policies for s in p["Statement"]]
    assert all(s["Effect"] == "Allow" for s in statements)
    assume = [s for s in statements if s["Sid"] == "AssumeCdkBootstrapRoles"]
    assert assume == [
        {
            "Sid": "AssumeCdkBootstrapRoles",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Resource": _bootstrap_roles(account.id, account.region),
        }
    ]
    others = [s for s in statements if s["Sid"] != "AssumeCdkBootstrapRoles"]
    assert not others
    # Probes through the evaluator: the bootstrap roles yes, any other role or action no.
    for arn in _bootstrap_roles(account.id, account.region):
        assert evaluate(policies, "sts:AssumeRole", arn).allowed
    denied = [
        ("sts:AssumeRole", f"arn:aws:iam::{account.id}:role/cdk-hnb659fds-cfn-exec-role-{account.id}-{account.region}"),
        ("sts:AssumeRole", f"arn:aws:iam::{account.id}:role/mlops-{role}-github-deploy"),
        ("iam:PassRole", _bootstrap_roles(account.id, account.region)[0]),
        ("cloudformation:CreateStack", f"arn:aws:cloudformation:{account.region}:{account.id}:stack/x/1"),
        (
            "s3:GetObject",
            f"arn:aws:s3:::mlops-governance-artifacts-{account.id}-{account.region}/platform-source/source.zip",
        ),
        ("s3:PutObject", f"arn:aws:s3:::mlops-governance-artifacts-{account.id}-{account.region}/projects/churn/x"),
    ]
    for action, resource in denied:
        assert evaluate(policies, action, resource).decision is Decision.IMPLICIT_DENY, (action, resource)


@pytest.mark.parametrize("variant", ["multi", "single"])
def test_the_governance_role_uploads_the_source_only_through_the_file_publishing_role(variant, request):
    """It may do nothing but assume bootstrap roles: the upload goes through file-publishing (CDK's assets bucket)."""
    synth, config = request.getfixturevalue(variant)
    naming = Naming(config.platform)
    _, policies = _deploy_role_policies(synth, config, "governance")
    bundle = f"arn:aws:s3:::{naming.platform_source_bucket()}/{naming.platform_source_key()}"
    assert evaluate(policies, "s3:PutObject", bundle).decision is Decision.IMPLICIT_DENY
    assert evaluate(policies, "sts:AssumeRole", naming.file_publishing_role_arn("governance")).allowed


# ------------------------------------------------------------------ nag


@pytest.mark.parametrize("variant", ["multi", "single"])
def test_nag_passes_with_github(variant, request):
    synth, _ = request.getfixturevalue(variant)
    assert synth.error is None, synth.error
    assert synth.findings == []
    for stack in _oidc_stacks(synth):
        assert synth.findings_in(stack) == []


def test_ci_deploys_never_include_the_oidc_stack_and_the_admin_deploys_only_it(multi):
    """CI cannot change its own deploy roles: ``make deploy`` leaves the stack out, ``make deploy-oidc`` is it."""
    from scripts import deploy_platform

    synth, _ = multi
    config_dir = synth.outdir.parent / "config"
    ran: list[list[str]] = []
    for flags, expected in (([], False), (["--oidc"], True)):
        ran.clear()
        code = deploy_platform.main(
            ["--assembly", str(synth.outdir), "--config-dir", str(config_dir), *flags],
            env={"ROLE": "dev"},
            run=lambda command: ran.append(command) or 0,
        )
        assert code == 0
        (command,) = ran
        selected = [c for c in command if c.startswith("Dev/")]
        assert ("Dev/GitHubOidc" in selected) is expected
        if expected:
            assert selected == ["Dev/GitHubOidc"]
