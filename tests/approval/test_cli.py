"""``python -m mlops_platform.cli`` as a subprocess against a loopback moto server.

The CLI reaches the server through ``AWS_ENDPOINT_URL`` with dummy
credentials; the tests seed the server through boto3 and read it back. moto
records a fixed fake user for every update, which does not matter here: the
CLI checks metrics and evidence, and that ``--as NAME`` names an approver; it
then approves in the project's approver role with NAME as source identity
(whether that session may approve is the guard's job, see test_end_to_end.py
and test_trust.py).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.approval.conftest import REPO
from tests.approval.lambdas import releases
from tests.approval.support import ACCOUNT, REGION, TABLE, write_config


@pytest.fixture
def cli(server_platform, moto_server, tmp_path):
    """Run the CLI; returns CompletedProcess. ``env`` overrides (None removes) the environment."""
    config = write_config(tmp_path)
    home = tmp_path / "home"
    home.mkdir()

    def run(*args: str, env: dict[str, str | None] | None = None, config_dir=config) -> subprocess.CompletedProcess:
        environ = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "PYTHONPATH": str(REPO),
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": moto_server.url,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(home / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
        }
        for name, value in (env or {}).items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        return subprocess.run(
            [sys.executable, "-m", "mlops_platform.cli", "--config-dir", str(config_dir), *args],
            cwd=REPO,
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


def ok(proc):
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def one_line_error(proc, code, text):
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert text in lines[0], lines[0]
    return lines[0]


def status(platform, arn):
    return platform.describe(arn)["ModelApprovalStatus"], platform.describe(arn).get("ApprovalDescription")


def test_approvals_list_shows_pending_versions_newest_first(server_platform, cli):
    first, second = server_platform.register(), server_platform.register()
    approved = server_platform.register(status="Approved")
    out = ok(cli("approvals", "list"))
    assert "Versions awaiting approval" in out
    assert first in out and second in out and approved not in out
    assert out.index(second) < out.index(first)
    # Global options are accepted after the command too.
    assert second in ok(cli("approvals", "list", "--project", "churn", "--region", REGION))


def test_approvals_list_with_nothing_pending(cli):
    assert "No versions await approval (churn)." in ok(cli("approvals", "list"))


def test_approvals_show_compares_with_what_runs_in_staging(server_platform, cli):
    running = server_platform.register(auc=0.8, accuracy=0.78, status="Approved")
    releases.ReleaseTable(server_platform.dynamodb, TABLE).put_release(
        releases.Release("churn", "staging", 1, running, "released", "2026-05-01T09:00:00Z", "alice", "ok", "evt-1")
    )
    candidate = server_platform.register(auc=0.91, accuracy=0.65, baseline=None)
    out = ok(cli("approvals", "show", candidate))

    assert "Status         PendingManualApproval" in out
    assert "Registered by  Studio user fake-user-profile-name" in out  # moto's fixed CreatedBy
    auc_row = next(line for line in out.splitlines() if "auc (primary)" in line)
    assert all(v in auc_row for v in ("0.75", "0.91", "0.8", "pass"))
    accuracy_row = next(line for line in out.splitlines() if line.strip("│ ").startswith("accuracy"))
    assert all(v in accuracy_row for v in ("0.7", "0.65", "0.78", "FAIL"))
    assert "staging (v1)" in out and "prod (none)" in out
    baseline_row = next(line for line in out.splitlines() if "data_quality_baseline" in line)
    assert "MISSING" in baseline_row
    assert "Policy: an approval would be refused:" in out


def test_approve_updates_the_version(server_platform, cli):
    arn = server_platform.register()
    out = ok(cli("approve", arn, "--as", "alice", "--reason", "evaluation reviewed"))
    assert "Approved mlops-churn version 1 (was PendingManualApproval)." in out
    assert status(server_platform, arn) == ("Approved", "evaluation reviewed")
    assert "already Approved" in ok(cli("approve", arn, "--as", "alice", "--reason", "again"))


def test_approve_needs_to_know_who_approves(server_platform, cli):
    arn = server_platform.register()
    line = one_line_error(cli("approve", arn, "--reason", "ok"), 2, "say who approves: pass --as NAME")
    assert "approvers of churn: alice" in line
    assert status(server_platform, arn)[0] == "PendingManualApproval"


def test_approve_as_someone_who_is_no_approver_is_refused(server_platform, cli):
    arn = server_platform.register()
    line = one_line_error(cli("approve", arn, "--as", "bob", "--reason", "ok"), 3, "refused: 'bob'")
    assert "is not an approver of project churn" in line
    assert status(server_platform, arn)[0] == "PendingManualApproval"


def test_approve_is_refused_when_metrics_fail_the_policy(server_platform, cli):
    arn = server_platform.register(auc=0.7)
    line = one_line_error(
        cli("approve", arn, "--as", "alice", "--reason", "please"), 3, "refused: mlops-churn version 1"
    )
    assert "metric auc = 0.7 is below the threshold 0.75" in line
    assert status(server_platform, arn)[0] == "PendingManualApproval"


def test_approve_is_refused_when_evidence_is_missing(server_platform, cli):
    arn = server_platform.register(evaluation=False)
    line = one_line_error(cli("approve", arn, "--as", "alice", "--reason", "please"), 3, "refused:")
    assert "evidence missing: evaluation report" in line
    assert status(server_platform, arn)[0] == "PendingManualApproval"


def test_reject_updates_the_version(server_platform, cli):
    arn = server_platform.register()
    out = ok(cli("reject", arn, "--reason", "leaks the label"))
    assert "Rejected mlops-churn version 1" in out
    assert status(server_platform, arn) == ("Rejected", "leaks the label")


def test_releases_shows_what_runs_where_and_the_history(server_platform, cli):
    v1, v2 = server_platform.register(), server_platform.register()
    table = releases.ReleaseTable(server_platform.dynamodb, TABLE)
    table.put_release(
        releases.Release("churn", "staging", 1, v1, "released", "2026-05-01T09:00:00Z", "alice", "first", "e1")
    )
    table.put_release(
        releases.Release("churn", "staging", 2, v2, "released", "2026-05-02T09:00:00Z", "alice", "second", "e2")
    )
    table.put_release(
        releases.Release("churn", "prod", 1, v1, "released", "2026-05-03T09:00:00Z", "carol", "promote", "e3")
    )
    out = ok(cli("releases", "--project", "churn"))

    where = out[: out.index("History")]
    staging = next(line for line in where.splitlines() if "staging" in line)
    prod = next(line for line in where.splitlines() if "prod" in line)
    assert v2 in staging and "2026-05-02T09:00:00Z" in staging
    assert v1 in prod and "carol" in prod
    history = out[out.index("History") :]
    assert history.index("2026-05-03") < history.index("2026-05-02") < history.index("2026-05-01")


def test_role_arn_assumes_into_the_governance_account(server_platform, cli):
    arn = server_platform.register()
    out = ok(cli("--role-arn", f"arn:aws:iam::{ACCOUNT}:role/mlops-governance-admin", "approvals", "list"))
    assert arn in out


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (("approvals", "list", "--project", "nope"), "unknown project 'nope' (projects in config: churn)"),
        (
            ("approvals", "show", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/mlops-fraud/1"),
            "unknown project: model package group 'mlops-fraud' is not in config",
        ),
        (
            (
                "approve",
                f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/mlops-churn/99",
                "--as",
                "alice",
                "--reason",
                "x",
            ),
            "unknown model package: arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlops-churn/99",
        ),
        (
            ("reject", f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/mlops-churn/99", "--reason", "x"),
            "unknown model package",
        ),
        (("approve", "mlops-churn/1", "--reason", "x"), "is not a model package version ARN"),
        (
            (
                "approve",
                f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/mlops-churn/1",
                "--as",
                "alice",
                "--reason",
                " ",
            ),
            "--reason must not be empty",
        ),
    ],
)
def test_user_errors_are_one_line_exit_2(cli, args, text):
    one_line_error(cli(*args), 2, text)


def test_missing_credentials_are_one_line_exit_2(cli):
    proc = cli("approvals", "list", env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None})
    one_line_error(proc, 2, "no AWS credentials found")


def test_unknown_profile_is_one_line_exit_2(cli):
    one_line_error(cli("--profile", "nobody", "approvals", "list"), 2, "nobody")


def test_config_error_is_one_line_exit_2(cli, tmp_path):
    broken = tmp_path / "broken"
    (broken / "projects").mkdir(parents=True)
    (broken / "platform.yaml").write_text("prefix: [\n")
    one_line_error(cli("approvals", "list", config_dir=broken), 2, "config error:")


def test_aws_errors_are_one_line_exit_1(server_platform, cli):
    server_platform.dynamodb.delete_table(TableName=TABLE)
    one_line_error(cli("releases"), 1, "AWS error in Query: ResourceNotFoundException")
