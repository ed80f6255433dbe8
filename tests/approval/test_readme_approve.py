"""The README's approval journey, as written: `mlops approve ARN --as alice --reason ...` ends in a release.

The CLI runs as a subprocess against the loopback moto server (it assumes the
project's approver role with ``alice`` as source identity there); moto emits no
CloudTrail records, so the guard gets the record AWS would deliver for that
call, built from the same identity.
"""

from __future__ import annotations

from tests.approval.lambdas import guard
from tests.approval.support import ALICE_CLI, approval_event
from tests.approval.test_cli import cli, ok, one_line_error, status  # noqa: F401 - cli is a fixture

REASON = "AUC 0.91 on the March holdout"


def test_approve_as_a_listed_lead_is_released_by_the_guard(cli, server_platform):  # noqa: F811
    arn = server_platform.register()
    out = ok(cli("approve", arn, "--as", "alice", "--reason", REASON))
    assert "Approved mlops-churn version 1" in out
    assert status(server_platform, arn) == ("Approved", REASON)

    outcome = guard.handle(
        approval_event(arn, ALICE_CLI, description=REASON), server_platform.settings(), server_platform.clients()
    )
    assert outcome["decision"] == "released", outcome
    assert [e["MODEL_PACKAGE_ARN"] for e in server_platform.executions()] == [arn]
    (release,) = [i for i in server_platform.items("release#churn#staging") if i["model_package_arn"] == arn]
    assert release["status"] == "released" and "source identity alice" in release["approved_by"]


def test_approve_without_saying_who_is_refused_before_any_change(cli, server_platform):  # noqa: F811
    arn = server_platform.register()
    one_line_error(cli("approve", arn, "--reason", REASON), 2, "pass --as NAME")
    assert status(server_platform, arn)[0] == "PendingManualApproval"


def test_approve_as_someone_who_is_not_an_approver_is_refused(cli, server_platform):  # noqa: F811
    arn = server_platform.register()
    line = one_line_error(cli("approve", arn, "--as", "bob", "--reason", REASON), 3, "bob")
    assert "not an approver of project churn" in line
    assert status(server_platform, arn)[0] == "PendingManualApproval"
