"""scripts/bootstrap.py: the cdk bootstrap commands per account and the execution policy they name."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mlops_platform.config import load_config
from tests.synth import EXAMPLE_CONFIG, ROOT, example_platform, write_config

spec = importlib.util.spec_from_file_location("bootstrap", ROOT / "scripts" / "bootstrap.py")
assert spec is not None and spec.loader is not None
bootstrap = importlib.util.module_from_spec(spec)
sys.modules["bootstrap"] = bootstrap  # its dataclasses look their module up
spec.loader.exec_module(bootstrap)

POLICY = "mlops-cfn-execution"
GOVERNANCE, DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333", "444444444444"
SINGLE = "555555555555"
# CloudFormation namespaces whose IAM service prefix is not the lower-cased namespace.
IAM_PREFIX = {"ApplicationAutoScaling": "application-autoscaling"}


def _single_account_dir(tmp_path: Path) -> Path:
    platform = example_platform()
    for role in platform["accounts"]:
        platform["accounts"][role]["id"] = SINGLE
    return write_config(tmp_path, platform)


def _printed(capsys, *argv: str) -> list[str]:
    assert bootstrap.main(list(argv)) == 0
    return capsys.readouterr().out.splitlines()


def _commands(lines: list[str]) -> list[str]:
    return [line for line in lines if line and not line.startswith("#")]


# --------------------------------------------------------------------------- printed commands


def test_every_account_gets_the_policy_then_bootstrap_trusting_governance(tmp_path, capsys):
    out = tmp_path / "bootstrap"
    lines = _printed(capsys, "--config-dir", str(EXAMPLE_CONFIG), "--out", str(out))
    expected = []
    for role, account in (("governance", GOVERNANCE), ("dev", DEV), ("staging", STAGING), ("prod", PROD)):
        arn = f"arn:aws:iam::{account}:policy/{POLICY}"
        trust = "" if role == "governance" else f" --trust {GOVERNANCE}"
        expected += [
            f"aws iam create-policy --policy-name {POLICY} --policy-document file://{out}/{account}.json"
            f" --profile {role}",
            f"npx cdk bootstrap aws://{account}/eu-west-1 --cloudformation-execution-policies {arn}{trust}"
            f" --profile {role}",
        ]
    assert _commands(lines) == expected
    assert sorted(p.name for p in out.iterdir()) == [f"{a}.json" for a in (GOVERNANCE, DEV, STAGING, PROD)]
    update = [line for line in lines if "create-policy-version" in line]
    assert update[0] == (
        f"#   exists already: aws iam create-policy-version --policy-arn arn:aws:iam::{GOVERNANCE}:policy/{POLICY}"
        f" --policy-document file://{out}/{GOVERNANCE}.json --set-as-default --profile governance"
    )
    assert not any("--trust-for-lookup" in line for line in lines)


def test_single_account_mode_bootstraps_one_account_trusting_nobody(tmp_path, capsys):
    config = _single_account_dir(tmp_path)
    out = tmp_path / "bootstrap"
    lines = _printed(capsys, "--config-dir", str(config), "--out", str(out), "--profile-governance", "admin")
    assert _commands(lines) == [
        f"aws iam create-policy --policy-name {POLICY} --policy-document file://{out}/{SINGLE}.json --profile admin",
        f"npx cdk bootstrap aws://{SINGLE}/eu-west-1 --cloudformation-execution-policies "
        f"arn:aws:iam::{SINGLE}:policy/{POLICY} --profile admin",
    ]
    assert lines[0] == f"# governance, dev, staging, prod: account {SINGLE} (eu-west-1)"


def test_an_empty_profile_uses_the_default_credentials(tmp_path, capsys):
    lines = _printed(capsys, "--config-dir", str(_single_account_dir(tmp_path)), "--out", str(tmp_path / "o"),
                     "--profile-governance", "")  # fmt: skip
    assert not any("--profile" in line for line in _commands(lines))


def test_a_policy_over_the_iam_limit_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bootstrap, "POLICY_SIZE_LIMIT", 100)
    assert bootstrap.main(["--config-dir", str(EXAMPLE_CONFIG), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "characters without whitespace; IAM allows 100 for a managed policy" in err


# --------------------------------------------------------------------------- the policy document


def _services(synth) -> set[str]:
    """IAM service prefixes of the resource types in a synthesized assembly (custom resources run on Lambda)."""
    services = set()
    for template in synth.templates.values():
        for resource in template["Resources"].values():
            kind = resource["Type"]
            if kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
                services.add("lambda")
            else:
                namespace = kind.split("::")[1]
                services.add(IAM_PREFIX.get(namespace, namespace.lower()))
        for parameter in template.get("Parameters", {}).values():
            if parameter["Type"].startswith("AWS::SSM::Parameter"):
                services.add("ssm")  # the CDK bootstrap version every stack checks
    return services


def _policy(config, account: str) -> dict:
    return bootstrap.execution_policy(config, account)


def _allows(doc: dict) -> list[dict]:
    return [s for s in doc["Statement"] if s["Effect"] == "Allow"]


def _listed(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _action_services(doc: dict) -> set[str]:
    return {action.split(":")[0] for s in _allows(doc) for action in _listed(s["Action"])}


@pytest.fixture(scope="module")
def variants(example, single_account):
    """Each fixture's config and templates, with the account its policy is made for."""
    return [
        (load_config(EXAMPLE_CONFIG), example, DEV),
        (load_config(single_account.outdir.parent / "config"), single_account, SINGLE),
    ]


def test_no_statement_allows_every_action_on_every_resource(variants):
    for config, _, account in variants:
        for statement in _policy(config, account)["Statement"]:
            actions, resources = _listed(statement["Action"]), _listed(statement["Resource"])
            assert "*" not in actions, statement
            assert all(action.split(":")[1] != "*" for action in actions) or "*" not in resources, statement


def test_every_service_acted_on_is_one_the_app_deploys(variants):
    # Autoscaling appears in the templates only once an autoscaled endpoint is released, FSx only with
    # the training cluster: the union of both variants is what the platform deploys.
    deployed = set().union(*(_services(synth) for _, synth, _ in variants))
    for config, synth, account in variants:
        acted_on = _action_services(_policy(config, account))
        assert acted_on <= deployed, acted_on - deployed
        assert _services(synth) <= acted_on, _services(synth) - acted_on


def test_features_the_config_leaves_off_get_no_permissions(variants):
    (example_config, example, _), (single_config, single, _) = variants
    assert "fsx" not in _services(example) and "fsx" not in _action_services(_policy(example_config, DEV))
    assert "fsx" in _services(single) and "fsx" in _action_services(_policy(single_config, SINGLE))


def test_it_fits_the_managed_policy_size_limit(variants):
    for config, _, account in variants:
        assert bootstrap.policy_size(_policy(config, account)) <= bootstrap.POLICY_SIZE_LIMIT


def test_resources_stay_in_the_account_region_and_platform_names(variants):
    for config, _, account in variants:
        for statement in _allows(_policy(config, account)):
            for resource in _listed(statement["Resource"]):
                if resource == "*":
                    # reads, key creation (keys have no ARN yet) and autoscaling (no resource-level permissions)
                    assert all(
                        re.fullmatch(r"[a-z0-9-]+:(Describe|List)\w*\*?|kms:CreateKey|application-autoscaling:.*", a)
                        for a in _listed(statement["Action"])
                    ), statement
                    continue
                arn = resource.split(":")
                assert arn[:2] == ["arn", "aws"], resource
                assert arn[3] in ("", "eu-west-1"), resource
                # Only the registry's model packages are read from governance; S3 ARNs carry no account.
                assert arn[4] in ("", account) or (arn[2] == "sagemaker" and arn[4] == GOVERNANCE), resource


def test_iam_reaches_only_platform_roles_and_policies(variants):
    for config, synth, account in variants:
        doc = _policy(config, account)
        for statement in doc["Statement"]:
            if any(a.startswith("iam:") for a in _listed(statement["Action"])):
                for resource in _listed(statement["Resource"]):
                    assert re.fullmatch(rf"arn:aws:iam::{account}:(role|policy)/(mlops-|aws-service-role/).*", resource)
        # Every role the app names is a platform role.
        for template in synth.templates.values():
            for resource in template["Resources"].values():
                if resource["Type"] == "AWS::IAM::Role" and "RoleName" in resource["Properties"]:
                    assert resource["Properties"]["RoleName"].startswith("mlops-")


def test_roles_are_passed_to_the_services_they_trust_and_attach_the_policies_they_use(variants):
    for config, synth, account in variants:
        statements = {s["Sid"]: s for s in _policy(config, account)["Statement"]}
        passed = statements["PassRoles"]["Condition"]["StringEquals"]["iam:PassedToService"]
        attachable = statements["AttachKnownPolicies"]["Condition"]["ArnLike"]["iam:PolicyARN"]
        for template in synth.templates.values():
            for resource in template["Resources"].values():
                if resource["Type"] != "AWS::IAM::Role":
                    continue
                for trust in resource["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
                    for service in _listed(trust["Principal"].get("Service", [])):
                        assert service in passed, service
                for managed in resource["Properties"].get("ManagedPolicyArns", []):
                    text = json.dumps(managed)
                    if ":iam::aws:policy/" in text:
                        name = text.split(":iam::aws:policy/")[1].split('"')[0]
                        assert any(fnmatch.fnmatch(f"arn:aws:iam::aws:policy/{name}", a) for a in attachable), name


def test_it_may_not_change_itself(variants):
    for config, _, account in variants:
        (deny,) = [s for s in _policy(config, account)["Statement"] if s["Effect"] == "Deny"]
        assert deny["Resource"] == f"arn:aws:iam::{account}:policy/{POLICY}"
        assert "iam:CreatePolicyVersion" in deny["Action"] and "iam:SetDefaultPolicyVersion" in deny["Action"]


# --------------------------------------------------------------------------- --execute


class FakeCdk:
    def __init__(self, returncode: int = 0) -> None:
        self.calls: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, command, **kwargs):
        self.calls.append(list(command))
        return subprocess.CompletedProcess(command, self.returncode)


@pytest.fixture
def aws(monkeypatch):
    """moto; each profile's session is in the account that profile names (``accounts``)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    accounts: dict[str, str] = {}

    def session(profile_name=None, region_name=None):
        monkeypatch.setenv("MOTO_ACCOUNT_ID", accounts[profile_name])
        return boto3.Session(region_name=region_name)

    with mock_aws():
        yield accounts, session


def _default_document(account: str) -> dict:
    iam = boto3.client("iam", region_name="eu-west-1")
    arn = f"arn:aws:iam::{account}:policy/{POLICY}"
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]


def test_execute_creates_the_policies_and_bootstraps_governance_first(tmp_path, aws, monkeypatch, capsys):
    accounts, session = aws
    accounts.update(governance=GOVERNANCE, dev=DEV, staging=STAGING, prod=PROD)
    cdk = FakeCdk()
    argv = ["--config-dir", str(EXAMPLE_CONFIG), "--out", str(tmp_path), "--execute"]
    assert bootstrap.main(argv, runner=cdk, session_factory=session) == 0
    assert [call[3] for call in cdk.calls] == [f"aws://{a}/eu-west-1" for a in (GOVERNANCE, DEV, STAGING, PROD)]
    assert cdk.calls[1] == [
        "npx", "cdk", "bootstrap", f"aws://{DEV}/eu-west-1",
        "--cloudformation-execution-policies", f"arn:aws:iam::{DEV}:policy/{POLICY}",
        "--trust", GOVERNANCE, "--profile", "dev",
    ]  # fmt: skip
    assert "--trust" not in cdk.calls[0]
    for account in (GOVERNANCE, DEV, STAGING, PROD):
        monkeypatch.setenv("MOTO_ACCOUNT_ID", account)
        assert _default_document(account) == json.loads((tmp_path / f"{account}.json").read_text())
    assert f"==> {PROD}: policy arn:aws:iam::{PROD}:policy/{POLICY} created" in capsys.readouterr().out


def test_execute_updates_a_changed_policy_keeping_five_versions(tmp_path, aws, monkeypatch, capsys):
    accounts, session = aws
    accounts["governance"] = SINGLE
    monkeypatch.setenv("MOTO_ACCOUNT_ID", SINGLE)
    config = _single_account_dir(tmp_path)
    arn = f"arn:aws:iam::{SINGLE}:policy/{POLICY}"
    iam = boto3.client("iam", region_name="eu-west-1")
    statement = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}
    old = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    iam.create_policy(PolicyName=POLICY, PolicyDocument=old)
    for _ in range(4):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=old, SetAsDefault=False)
    argv = ["--config-dir", str(config), "--out", str(tmp_path / "out"), "--execute"]

    cdk = FakeCdk()
    assert bootstrap.main(argv, runner=cdk, session_factory=session) == 0
    versions = {v["VersionId"]: v for v in iam.list_policy_versions(PolicyArn=arn)["Versions"]}
    assert len(versions) == 5 and "v2" not in versions  # v1 is the default, v2 the oldest other
    assert _default_document(SINGLE) == json.loads((tmp_path / "out" / f"{SINGLE}.json").read_text())
    assert f"policy {arn} updated" in capsys.readouterr().out
    assert len(cdk.calls) == 1 and "--trust" not in cdk.calls[0]

    assert bootstrap.main(argv, runner=cdk, session_factory=session) == 0  # nothing changed since
    assert f"policy {arn} unchanged" in capsys.readouterr().out
    assert len(iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 5


def test_execute_refuses_credentials_of_another_account(tmp_path, aws, capsys):
    accounts, session = aws
    accounts.update(governance=GOVERNANCE, dev=PROD, staging=STAGING, prod=PROD)
    cdk = FakeCdk()
    argv = ["--config-dir", str(EXAMPLE_CONFIG), "--out", str(tmp_path), "--execute"]
    assert bootstrap.main(argv, runner=cdk, session_factory=session) == 1
    assert f"the credentials for dev (dev) are for account {PROD}, not {DEV}" in capsys.readouterr().err
    assert len(cdk.calls) == 1  # governance only


def test_execute_stops_at_a_failed_bootstrap(tmp_path, aws):
    accounts, session = aws
    accounts.update(governance=GOVERNANCE, dev=DEV, staging=STAGING, prod=PROD)
    cdk = FakeCdk(returncode=3)
    argv = ["--config-dir", str(EXAMPLE_CONFIG), "--out", str(tmp_path), "--execute"]
    assert bootstrap.main(argv, runner=cdk, session_factory=session) == 3
    assert len(cdk.calls) == 1
