"""app.py before and after synth: accounts without zones in cdk.context.json are refused, findings listed plainly."""

from __future__ import annotations

import app
from mlops_platform.config import load_config
from mlops_platform.context import missing_zone_context
from tests.synth import EXAMPLE_CONFIG, example_platform, write_config


def test_the_example_accounts_have_their_zones():
    assert missing_zone_context(load_config(EXAMPLE_CONFIG), app.committed_context()) is None


def test_your_own_account_without_zones_fails_synth_naming_the_entry(tmp_path, monkeypatch, capsys):
    platform = example_platform()
    platform["accounts"]["staging"]["id"] = "999999999999"
    monkeypatch.setenv("MLOPS_CONFIG_DIR", str(write_config(tmp_path, platform)))
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path / "cdk.out"))
    assert app.main() == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(
        "config error: cdk.context.json: availability-zones:account=999999999999:region=eu-west-1: "
        "has no entry for the staging account"
    )
    assert "aws ec2 describe-availability-zones --region eu-west-1" in error
    assert not (tmp_path / "cdk.out").exists()


def test_fewer_zones_than_max_azs_is_refused():
    config = load_config(EXAMPLE_CONFIG)
    context = app.committed_context() | {"availability-zones:account=222222222222:region=eu-west-1": ["eu-west-1a"]}
    message = missing_zone_context(config, context)
    assert message is not None and "has 1 zone(s), network.max_azs needs 2 for the dev account" in message


def test_a_failed_validation_lists_each_finding_on_one_line(tmp_path):
    report = tmp_path / "validation-report.json"
    report.write_text(
        '{"pluginReports": [{"violations": [{"ruleName": "MLOps-KeyAdmitsLogs", "description": "key must admit logs",'
        ' "violatingConstructs": [{"constructPath": "Governance/Deploy/BuildLogs/Resource"}]}]}]}'
    )
    assert app.validation_failures(report).splitlines() == [
        f"synth failed: 1 finding(s); full report: {report}",
        "  MLOps-KeyAdmitsLogs: Governance/Deploy/BuildLogs/Resource: key must admit logs",
    ]
