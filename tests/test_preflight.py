"""scripts/preflight.py against stubbed AWS answers (botocore Stubber): never a real session or call."""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import botocore.session
import pytest
import yaml
from botocore.stub import Stubber

from mlops_platform.config import load_config

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("preflight", ROOT / "scripts" / "preflight.py")
preflight = importlib.util.module_from_spec(spec)
sys.modules["preflight"] = preflight  # dataclasses look their module up there
spec.loader.exec_module(preflight)

GOV, DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333", "444444444444"
REGION = "eu-west-1"
ALL_QUOTAS = (
    "ml.m5.large for endpoint usage",
    "ml.m5.xlarge for endpoint usage",
    "ml.m5.xlarge for processing job usage",
    "ml.m5.xlarge for training job usage",
    "ml.m5.xlarge for cluster usage",
    "ml.trn1.32xlarge for cluster usage",
)


@dataclass
class Account:
    """What one stubbed account answers."""

    bootstrap_version: int | None = 33
    trusted: tuple[str, ...] = (GOV,)
    concurrency: int = 1000
    applied: dict[str, float] = field(default_factory=dict)
    defaults: dict[str, float] = field(default_factory=lambda: dict.fromkeys(ALL_QUOTAS, 20.0))
    trn1_zones: tuple[str, ...] = ("euw1-az1", "euw1-az2")
    monitor_error: tuple[str, str] | None = None
    sso_instances: int = 1
    oidc: bool = True
    identity: str | None = None  # the account the credentials reach (default: the configured one)
    identity_error: str | None = None


class FakeAws:
    """A client factory: one stubbed client per (account, service), its answers queued on creation."""

    def __init__(self, accounts: dict[str, Account]) -> None:
        self.accounts = accounts
        self.session = botocore.session.get_session()
        self.stubbers: list[Stubber] = []
        self.created: list[tuple[str, str]] = []

    def __call__(self, target, service: str):
        self.created.append((target.account_id, service))
        client = self.session.create_client(
            service, region_name=target.region, aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        stubber = Stubber(client)
        getattr(self, "_" + service.replace("-", "_"))(stubber, target.account_id, self.accounts[target.account_id])
        stubber.activate()
        self.stubbers.append(stubber)
        return client

    def all_answered(self) -> None:
        for stubber in self.stubbers:
            stubber.assert_no_pending_responses()

    def _sts(self, stub: Stubber, account_id: str, account: Account) -> None:
        if account.identity_error:
            stub.add_client_error("get_caller_identity", account.identity_error, "The security token has expired")
            return
        reached = account.identity or account_id
        arn = f"arn:aws:iam::{reached}:user/admin"
        stub.add_response("get_caller_identity", {"Account": reached, "Arn": arn, "UserId": "AIDA"})

    def _cloudformation(self, stub: Stubber, account_id: str, account: Account) -> None:
        if account.bootstrap_version is None:
            stub.add_client_error("describe_stacks", "ValidationError", "Stack with id CDKToolkit does not exist", 400)
            return
        stack = {
            "StackName": "CDKToolkit",
            "CreationTime": "2026-01-01T00:00:00Z",
            "StackStatus": "UPDATE_COMPLETE",
            "Parameters": [
                {"ParameterKey": "TrustedAccounts", "ParameterValue": ",".join(account.trusted)},
                {"ParameterKey": "Qualifier", "ParameterValue": "hnb659fds"},
            ],
            "Outputs": [
                {"OutputKey": "BootstrapVersion", "OutputValue": str(account.bootstrap_version)},
                {"OutputKey": "BucketName", "OutputValue": f"cdk-hnb659fds-assets-{account_id}-{REGION}"},
            ],
        }
        stub.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "CDKToolkit"})

    def _lambda(self, stub: Stubber, account_id: str, account: Account) -> None:
        limit = {"ConcurrentExecutions": account.concurrency, "UnreservedConcurrentExecutions": account.concurrency}
        stub.add_response("get_account_settings", {"AccountLimit": limit}, {})

    def _service_quotas(self, stub: Stubber, account_id: str, account: Account) -> None:
        def quotas(values: dict[str, float]) -> dict:
            return {"Quotas": [{"QuotaName": name, "Value": value} for name, value in values.items()]}

        stub.add_response("list_service_quotas", quotas(account.applied), {"ServiceCode": "sagemaker"})
        stub.add_response("list_aws_default_service_quotas", quotas(account.defaults), {"ServiceCode": "sagemaker"})

    def _ec2(self, stub: Stubber, account_id: str, account: Account) -> None:
        offerings = [
            {"InstanceType": "trn1.32xlarge", "LocationType": "availability-zone-id", "Location": zone}
            for zone in account.trn1_zones
        ]
        expected = {
            "LocationType": "availability-zone-id",
            "Filters": [{"Name": "instance-type", "Values": ["trn1.32xlarge"]}],
        }
        stub.add_response("describe_instance_type_offerings", {"InstanceTypeOfferings": offerings}, expected)

    def _sagemaker(self, stub: Stubber, account_id: str, account: Account) -> None:
        if account.monitor_error:
            code, message = account.monitor_error
            stub.add_client_error("list_monitoring_schedules", code, message, 400)
        else:
            stub.add_response("list_monitoring_schedules", {"MonitoringScheduleSummaries": []}, {"MaxResults": 1})

    def _sso_admin(self, stub: Stubber, account_id: str, account: Account) -> None:
        instances = [
            {"InstanceArn": f"arn:aws:sso:::instance/ssoins-{i:016d}", "IdentityStoreId": f"d-{i:010d}"}
            for i in range(account.sso_instances)
        ]
        stub.add_response("list_instances", {"Instances": instances}, {})

    def _iam(self, stub: Stubber, account_id: str, account: Account) -> None:
        arns = [f"arn:aws:iam::{account_id}:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"]
        if account.oidc:
            arns.append(f"arn:aws:iam::{account_id}:oidc-provider/token.actions.githubusercontent.com")
        stub.add_response("list_open_id_connect_providers", {"OpenIDConnectProviderList": [{"Arn": a} for a in arns]})


# --------------------------------------------------------------------------- fixtures


def _config_dir(tmp_path: Path, *, single_account: bool = False) -> Path:
    """The example config with every checked feature on: cluster, SSO, reserved concurrency."""
    config_dir = tmp_path / "config"
    shutil.copytree(ROOT / "config", config_dir)
    platform_file = config_dir / "platform.yaml"
    platform = yaml.safe_load(platform_file.read_text())
    platform["studio"]["auth_mode"] = "SSO"
    platform["training_cluster"] = {"enabled": True, "availability_zone_id": "euw1-az1"}
    platform["approval_workflow"] = {"reserved_concurrency": 5}
    if single_account:
        for role in platform["accounts"]:
            platform["accounts"][role]["id"] = GOV
    platform_file.write_text(yaml.safe_dump(platform))
    project_file = config_dir / "projects" / "churn.yaml"
    project = yaml.safe_load(project_file.read_text())
    for member in project["members"]:
        member["sso_user"] = f"{member['user']}@example.com"
    project_file.write_text(yaml.safe_dump(project))
    return config_dir


def _cdk_out(tmp_path: Path) -> Path:
    """A synthesized app whose templates refuse bootstrap versions 1-5 and whose lookup role needs 8."""
    out = tmp_path / "cdk.out" / "assembly-Dev"
    out.mkdir(parents=True)
    rule = {"Fn::Not": [{"Fn::Contains": [["1", "2", "3", "4", "5"], {"Ref": "BootstrapVersion"}]}]}
    template = {"Rules": {"CheckBootstrapVersion": {"Assertions": [{"Assert": rule}]}}, "Resources": {}}
    (out / "DevBaseline.template.json").write_text(json.dumps(template))
    manifest = {"artifacts": {"DevBaseline": {"properties": {"lookupRole": {"requiresBootstrapStackVersion": 8}}}}}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return tmp_path / "cdk.out"


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """(run, config): ``run(accounts)`` calls main with a GitHub section set; returns (exit code, rows, output)."""
    template = tmp_path / "bootstrap-template.yaml"
    template.write_text(
        "Resources:\n  CdkBootstrapVersion:\n    Type: AWS::SSM::Parameter\n    Properties:\n      Value: '33'\n"
    )
    monkeypatch.setattr(preflight, "CLI_BOOTSTRAP_TEMPLATE", template)
    cdk_out = _cdk_out(tmp_path)

    def run(accounts: dict[str, Account], *, single_account: bool = False, argv: tuple[str, ...] = ()):
        config = load_config(
            _config_dir(tmp_path / ("single" if single_account else "multi"), single_account=single_account)
        )
        github = {"repository": "example/mlops", "branch": "main", "prod_environment": "prod"}
        config = config.model_copy(update={"platform": config.platform.model_copy(update={"github": github})})
        monkeypatch.setattr(preflight, "load_config", lambda _dir: config)
        fake = FakeAws(accounts)
        rows: list = []
        original = preflight.run_checks

        def recording(*args, **kwargs):
            rows.extend(original(*args, **kwargs))
            return rows

        monkeypatch.setattr(preflight, "run_checks", recording)
        out = io.StringIO()
        monkeypatch.setattr(preflight.sys, "stdout", out)
        code = preflight.main(["--cdk-out", str(cdk_out), *argv], client_factory=fake)
        fake.all_answered()
        return code, rows, out.getvalue(), fake

    return run


def _passing() -> dict[str, Account]:
    return {GOV: Account(trusted=()), DEV: Account(), STAGING: Account(), PROD: Account()}


def _result(rows, check: str, account_id: str) -> tuple[str, str]:
    found = [(r.result, r.fix) for r in rows if r.check == check and r.account.startswith(account_id)]
    if len(found) != 1:
        raise AssertionError(f"{check} for {account_id}: {len(found)} rows in {[(r.check, r.account) for r in rows]}")
    return found[0]


# --------------------------------------------------------------------------- tests


def test_passing_accounts_exit_zero_with_every_check_ok(setup):
    code, rows, output, fake = setup(_passing())
    assert code == 0, output
    assert {r.result for r in rows} == {"ok"}, [r for r in rows if r.result != "ok"]
    checks = {(r.check, r.account) for r in rows}
    assert ("Lambda concurrency quota", f"{GOV} (governance)") in checks
    assert ("HyperPod AZ offers trn1.32xlarge", f"{DEV} (dev)") in checks
    assert ("Model Monitor available", f"{PROD} (prod)") in checks
    assert ("IAM Identity Center", f"{DEV} (dev)") in checks  # Studio is in dev only
    assert ("quota 'ml.trn1.32xlarge for cluster usage'", f"{DEV} (dev)") in checks
    assert ("quota 'ml.m5.xlarge for endpoint usage'", f"{PROD} (prod)") in checks
    assert ("quota 'ml.m5.large for endpoint usage'", f"{STAGING} (staging)") in checks
    assert not any(r.check == "CDK bootstrap trust" and r.account.startswith(GOV) for r in rows)
    assert sum(r.check == "GitHub OIDC provider" for r in rows) == 4
    # No Model Monitor probe where nothing is monitored with it, no Lambda check outside governance.
    assert (STAGING, "sagemaker") not in fake.created and (DEV, "lambda") not in fake.created
    assert "Pre-flight checks" in output and "0 blocker(s), 0 warning(s) in 4 account(s)" in output


def test_failing_accounts_name_each_blocker_and_exit_one(setup):
    accounts = {
        GOV: Account(trusted=(), concurrency=10, oidc=False),
        DEV: Account(bootstrap_version=5, trn1_zones=("euw1-az2", "euw1-az3"), sso_instances=0),
        STAGING: Account(trusted=("999999999999",)),
        PROD: Account(
            applied={"ml.m5.xlarge for endpoint usage": 2.0},
            monitor_error=("AccessDeniedException", "Amazon SageMaker Model Monitor is not available for this account"),
        ),
    }
    code, rows, output, _ = setup(accounts)
    assert code == 1
    result, fix = _result(rows, "CDK bootstrap version", DEV)
    assert result == "BLOCKER" and "version 5, the app needs >= 8" in fix
    assert f"cdk bootstrap aws://{DEV}/{REGION} --trust {GOV}" in fix
    result, fix = _result(rows, "CDK bootstrap trust", STAGING)
    assert result == "BLOCKER" and "trusts 999999999999, not governance 111111111111" in fix
    result, fix = _result(rows, "Lambda concurrency quota", GOV)
    assert result == "BLOCKER" and "10 < 25 (5 reserved x 3 approval handlers + 10 unreserved)" in fix
    result, fix = _result(rows, "quota 'ml.m5.xlarge for endpoint usage'", PROD)
    assert result == "BLOCKER" and fix.startswith("2 < 6 (churn prod champion)") and ">= 12" in fix
    result, fix = _result(rows, "HyperPod AZ offers trn1.32xlarge", DEV)
    assert result == "BLOCKER" and "euw1-az1 does not offer trn1.32xlarge (offered in: euw1-az2, euw1-az3)" in fix
    result, fix = _result(rows, "GitHub OIDC provider", GOV)
    assert result == "BLOCKER" and "create-open-id-connect-provider" in fix
    result, fix = _result(rows, "Model Monitor available", PROD)
    assert result == "BLOCKER" and "monitoring.engine: pipeline in config/projects/churn.yaml" in fix
    result, fix = _result(rows, "IAM Identity Center", DEV)
    assert result == "BLOCKER" and "studio.auth_mode: IAM" in fix
    assert _result(rows, "GitHub OIDC provider", DEV)[0] == "ok"
    assert "8 blocker(s)" in output and "BLOCKER" in output


def test_quota_warnings_do_not_fail(setup):
    accounts = _passing()
    accounts[PROD] = Account(applied={"ml.m5.xlarge for endpoint usage": 8.0})
    accounts[DEV] = Account(bootstrap_version=21)
    code, rows, _, _ = setup(accounts)
    assert code == 0
    result, fix = _result(rows, "quota 'ml.m5.xlarge for endpoint usage'", PROD)
    assert result == "warning" and "8 serves 6 but a blue/green update runs 12" in fix
    result, fix = _result(rows, "CDK bootstrap version", DEV)
    assert result == "warning" and "the pinned CLI installs 33" in fix


def test_a_missing_bootstrap_stack_and_a_missing_quota_name(setup):
    accounts = _passing()
    accounts[STAGING] = Account(bootstrap_version=None, defaults={})
    code, rows, _, _ = setup(accounts)
    assert code == 1
    result, fix = _result(rows, "CDK bootstrap stack", STAGING)
    assert result == "BLOCKER" and fix.startswith(f"not bootstrapped in {REGION}: npx cdk bootstrap aws://{STAGING}")
    result, fix = _result(rows, "quota 'ml.m5.large for endpoint usage'", STAGING)
    assert result == "warning" and "no quota of that name" in fix


def test_single_account_is_checked_once_naming_every_role(setup):
    code, rows, output, fake = setup({GOV: Account()}, single_account=True, argv=("--profile", "admin"))
    assert code == 0, output
    assert {r.account for r in rows} == {f"{GOV} (governance, dev, staging, prod)"}
    assert sum(r.check == "credentials" for r in rows) == 1
    assert not any(r.check == "CDK bootstrap trust" for r in rows)  # governance deploys into itself
    assert len(fake.created) == len(set(fake.created))
    # Staging and prod endpoints of the same type add up in the one account.
    assert any(
        r.check == "quota 'ml.m5.large for endpoint usage'"
        and "churn staging champion" in r.detail
        and "churn prod challenger" in r.detail
        for r in rows
    )


def test_credentials_of_the_wrong_account_block_its_other_checks(setup):
    accounts = _passing()
    accounts[STAGING] = Account(identity="555555555555")
    code, rows, _, fake = setup(accounts, argv=("--profile", "staging=stage-admin"))
    assert code == 1
    result, fix = _result(rows, "credentials", STAGING)
    assert result == "BLOCKER" and "profile stage-admin reaches account 555555555555, not 333333333333" in fix
    assert [r.check for r in rows if r.account.startswith(STAGING)] == ["credentials"]
    assert (STAGING, "cloudformation") not in fake.created


def test_missing_credentials_print_one_line_and_exit_two(setup, capsys):
    accounts = _passing()
    accounts[DEV] = Account(identity_error="ExpiredToken")
    code, rows, output, fake = setup(accounts)
    assert code == 2 and rows == [] and output == ""
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"no usable AWS credentials for {DEV} (dev)" in err and "nothing was checked" in err
    assert {service for _, service in fake.created} == {"sts"}


def test_the_factory_signals_missing_credentials(capsys):
    def no_credentials(target, service):
        raise preflight.CredentialsMissing(f"{target.label}: no credentials from the default credential chain")

    code = preflight.main(["--config-dir", str(ROOT / "config")], client_factory=no_credentials)
    assert code == 2
    assert "no usable AWS credentials for 111111111111 (governance)" in capsys.readouterr().err


def test_bad_profile_argument_exits_two(capsys):
    assert preflight.main(["--profile", "qa=someone"], client_factory=lambda *_: None) == 2
    assert "unknown role 'qa'" in capsys.readouterr().err


def test_profiles_pick_per_role_then_default():
    config = load_config(ROOT / "config")
    profiles = preflight.parse_profiles(["governance=gov", "fallback"])
    by_role = {t.roles[0]: t.profile for t in preflight.targets(config, profiles)}
    assert by_role == {"governance": "gov", "dev": "fallback", "staging": "fallback", "prod": "fallback"}


def test_bootstrap_minimum_comes_from_the_synthesized_app(tmp_path):
    assert preflight.required_bootstrap_version(_cdk_out(tmp_path))[0] == 8
    version, source = preflight.required_bootstrap_version(tmp_path / "absent")
    assert version == preflight.FALLBACK_BOOTSTRAP_VERSION and "make synth" in source


def test_model_monitor_probe_denied_by_the_callers_policy_is_a_warning(setup):
    accounts = _passing()
    accounts[PROD] = Account(
        monitor_error=(
            "AccessDeniedException",
            "User: arn:aws:iam::444444444444:user/x is not authorized to perform: sagemaker:ListMonitoringSchedules",
        )
    )
    code, rows, _, _ = setup(accounts)
    assert code == 0
    result, fix = _result(rows, "Model Monitor available", PROD)
    assert result == "warning" and "sagemaker:ListMonitoringSchedules" in fix
