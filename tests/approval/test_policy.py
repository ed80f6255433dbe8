"""Unit tests of lambda/approval/policy.py: every rule, each with a passing and a failing case."""

from __future__ import annotations

import math

import pytest

from mlops_platform.config import Approval
from tests.approval.lambdas import policy as P
from tests.approval.support import (
    ACCOUNT,
    ALICE,
    ALICE_CLI,
    APPROVER_CLI,
    APPROVER_ROLE_ARN,
    BOB,
    MALLORY_CLI,
    PIPELINE_ROLE,
    POLICY_DOCUMENT,
    PROJECT_APPROVER_ROLE,
    STUDIO_LEAD_ROLE,
)

ARN = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:model-package/mlops-churn/3"
EVAL_URI = "s3://bucket/projects/churn/evaluation.json"
DQ = {
    "Statistics": {"ContentType": "application/json", "S3Uri": "s3://bucket/statistics.json"},
    "Constraints": {"ContentType": "application/json", "S3Uri": "s3://bucket/constraints.json"},
}


def description(*, evaluation=True, baseline="drift", created_by=PIPELINE_ROLE, last_modified_by=None, **extra):
    d = {
        "ModelPackageGroupName": "mlops-churn",
        "ModelPackageVersion": 3,
        "ModelPackageArn": ARN,
        "ModelApprovalStatus": "Approved",
        **extra,
    }
    metrics = {}
    if evaluation:
        metrics["ModelQuality"] = {"Statistics": {"ContentType": "application/json", "S3Uri": EVAL_URI}}
    if baseline == "drift":
        d["DriftCheckBaselines"] = {"ModelDataQuality": DQ}
    elif baseline == "metrics":
        metrics["ModelDataQuality"] = DQ
    elif baseline == "half":
        d["DriftCheckBaselines"] = {"ModelDataQuality": {"Statistics": DQ["Statistics"]}}
        metrics["ModelDataQuality"] = {"Constraints": DQ["Constraints"]}
    if metrics:
        d["ModelMetrics"] = metrics
    if created_by is not None:
        d["CreatedBy"] = created_by
    if last_modified_by is not None:
        d["LastModifiedBy"] = last_modified_by
    return d


def report(auc=0.82, accuracy=0.8):
    return {"binary_classification_metrics": {"auc": {"value": auc}, "accuracy": {"value": accuracy}}}


def package(report_doc=None, problem=None, **kwargs):
    return P.parse_package(description(**kwargs), report() if report_doc is None else report_doc, problem)


POLICY = P.Policy.from_dict(POLICY_DOCUMENT)
ALICE_ID = P.Identity.from_user_context(ALICE)


# --------------------------------------------------------------------------- policy document


def test_policy_document_round_trips():
    assert P.Policy.from_dict(POLICY.to_dict()) == POLICY
    assert POLICY.ordered_metrics() == ["auc", "accuracy"]


def test_policy_defaults_match_the_config_model():
    """The Lambda-side defaults must not drift from mlops_platform.config.Approval."""
    minimal = P.Policy.from_dict({"project": "p", "model_package_group": "g", "approvers": ["a"]})
    defaults = Approval(approvers=["a"])
    assert minimal.primary_metric == defaults.primary_metric
    assert list(minimal.required_evidence) == list(defaults.required_evidence)
    assert minimal.allow_self_approval == defaults.allow_self_approval
    assert set(P.EVIDENCE_KINDS) == set(Approval.model_fields["required_evidence"].annotation.__args__[0].__args__)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"project": ""}, "project"),
        ({"model_package_group": None}, "model_package_group"),
        ({"approvers": []}, "approvers"),
        ({"approvers": ["arn:aws:iam::123456789012:user/bob"]}, "not an IAM role ARN"),
        ({"metric_thresholds": {"auc": "high"}}, "metric_thresholds"),
        ({"metric_thresholds": {"auc": True}}, "metric_thresholds"),
        ({"primary_metric": "f1"}, "primary_metric"),
        ({"required_evidence": ["model_card"]}, "required_evidence"),
        ({"allow_self_approval": "no"}, "allow_self_approval"),
        ({"approver": ["alice"]}, "unknown keys approver"),
    ],
)
def test_invalid_policy_documents_are_refused(change, message):
    with pytest.raises(P.PolicyError, match=message):
        P.Policy.from_dict({**POLICY_DOCUMENT, **change})


def test_policy_document_must_be_an_object():
    with pytest.raises(P.PolicyError, match="JSON object"):
        P.Policy.from_dict(["alice"])


# --------------------------------------------------------------------------- identities


def test_user_profile_name_mirrors_naming():
    from mlops_platform.config import load_config
    from mlops_platform.naming import Naming
    from tests.approval.conftest import REPO

    naming = Naming(load_config(REPO / "config").platform)
    assert P.user_profile_name("churn", "alice") == naming.user_profile_name("churn", "alice")


@pytest.mark.parametrize(
    ("arn", "principal"),
    [
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-approver/carol", APPROVER_ROLE_ARN),
        (f"arn:aws:iam::{ACCOUNT}:role/teams/ml/mlops-approver", APPROVER_ROLE_ARN),
        (APPROVER_ROLE_ARN, APPROVER_ROLE_ARN),
        (f"arn:aws:iam::{ACCOUNT}:user/ops/bob", f"arn:aws:iam::{ACCOUNT}:user/bob"),
        ("arn:aws-us-gov:sts::123456789012:assumed-role/r/s", "arn:aws-us-gov:iam::123456789012:role/r"),
        ("something-else", "something-else"),
        (None, None),
    ],
)
def test_normalize_principal(arn, principal):
    assert P.normalize_principal(arn) == principal


def test_identity_from_user_context():
    assert P.Identity.from_user_context(None) is None
    assert P.Identity.from_user_context({}) is None
    assert P.Identity.from_user_context({"IamIdentity": {}}) is None
    alice = P.Identity.from_user_context(ALICE)
    assert alice.user_profile_name == "churn-alice"
    assert alice.principal == f"arn:aws:iam::{ACCOUNT}:role/mlops-churn-dev-lead"
    assert "churn-alice" in alice.describe()
    # moto's fixed fake context: a profile name, no IAM identity.
    fake = P.Identity.from_user_context({"UserProfileName": "fake-user-profile-name", "DomainId": "fake-domain-id"})
    assert fake.user_profile_name == "fake-user-profile-name" and fake.iam_arn is None


def ident(**kwargs):
    return P.Identity(**kwargs)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (ident(user_profile_name="churn-bob"), ident(user_profile_name="churn-bob"), True),
        (ident(user_profile_name="churn-bob"), ident(user_profile_name="churn-alice"), False),
        # Same profile name in two Studio domains: two people.
        (
            ident(user_profile_name="churn-bob", domain_id="d-1"),
            ident(user_profile_name="churn-bob", domain_id="d-2"),
            False,
        ),
        # Profiles decide even when both act through the same execution role.
        (
            ident(user_profile_name="churn-bob", iam_arn="arn:aws:sts::1:assumed-role/r/a"),
            ident(user_profile_name="churn-alice", iam_arn="arn:aws:sts::1:assumed-role/r/a"),
            False,
        ),
        (ident(source_identity="bob", iam_arn="x"), ident(source_identity="bob", iam_arn="y"), True),
        (ident(source_identity="bob"), ident(source_identity="alice"), False),
        (
            ident(iam_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/r/one"),
            ident(iam_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/r/two"),
            True,
        ),
        (
            ident(iam_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/r/one"),
            ident(iam_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/other/one"),
            False,
        ),
        (ident(user_profile_name="churn-bob"), ident(iam_arn=APPROVER_ROLE_ARN), False),
        (None, ident(user_profile_name="churn-bob"), None),
    ],
)
def test_same_principal(a, b, same):
    assert P.same_principal(a, b) is same


def role(name, session, source=None, account=ACCOUNT):
    return P.Identity(iam_arn=f"arn:aws:sts::{account}:assumed-role/{name}/{session}", source_identity=source)


@pytest.mark.parametrize(
    ("identity", "person"),
    [
        (role(PROJECT_APPROVER_ROLE, "alice", "alice"), "alice"),
        (role(PROJECT_APPROVER_ROLE, "anything", "alice"), "alice"),  # the session name proves nothing
        (role(PROJECT_APPROVER_ROLE, "alice", "mallory"), "mallory"),
        (role(PROJECT_APPROVER_ROLE, "alice"), None),  # no source identity
        (role(STUDIO_LEAD_ROLE, "SageMaker", "churn-alice"), "alice"),
        (role(STUDIO_LEAD_ROLE, "SageMaker", "alice"), None),  # Studio names are <project>-<user>
        (role(STUDIO_LEAD_ROLE, "SageMaker", "fraud-alice"), None),
        (role("mlops-churn-dev-data-scientist", "SageMaker", "churn-alice"), None),
        (role(PROJECT_APPROVER_ROLE, "alice", "alice", account="210987654321"), None),
        (P.Identity(user_profile_name="churn-alice"), None),
        (P.Identity(source_identity="alice"), None),
        (P.Identity.from_user_context(ALICE), "alice"),
        (P.Identity.from_user_context(ALICE_CLI), "alice"),
        (P.Identity.from_user_context(BOB), None),
        (None, None),
    ],
)
def test_person_of(identity, person):
    assert P.person_of(POLICY, identity) == person


def test_person_of_needs_the_roles_in_the_policy():
    roles = ("approver_role_arn", "studio_role_arn")
    bare = P.Policy.from_dict({k: v for k, v in POLICY_DOCUMENT.items() if k not in roles})
    assert P.person_of(bare, role(PROJECT_APPROVER_ROLE, "alice", "alice")) is None
    assert not P.is_approver(bare, P.Identity.from_user_context(ALICE_CLI))
    assert P.is_approver(bare, P.Identity.from_user_context(APPROVER_CLI))  # role ARN entries need no person


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        # The person both prove decides first: alice from Studio and from the CLI.
        (P.Identity.from_user_context(ALICE), P.Identity.from_user_context(ALICE_CLI), True),
        (P.Identity.from_user_context(ALICE_CLI), P.Identity.from_user_context(MALLORY_CLI), False),
        (P.Identity.from_user_context(ALICE), P.Identity.from_user_context(BOB), False),
        # Without a proven person on both sides, the other fields decide as before.
        (P.Identity.from_user_context(ALICE_CLI), P.Identity.from_user_context(PIPELINE_ROLE), False),
        (P.Identity.from_user_context(ALICE_CLI), P.Identity(source_identity="alice"), True),
    ],
)
def test_same_principal_with_a_policy_compares_persons_first(a, b, same):
    assert P.same_principal(a, b, POLICY) is same


def test_approver_entry_matches():
    alice_cli = P.Identity.from_user_context(ALICE_CLI)
    assert P.approver_entry_matches(POLICY, "alice", alice_cli)
    assert not P.approver_entry_matches(POLICY, "bob", alice_cli)
    assert not P.approver_entry_matches(POLICY, "churn-alice", alice_cli)
    assert P.approver_entry_matches(POLICY, "alice", P.Identity.from_user_context(ALICE))
    carol = P.Identity.from_user_context(APPROVER_CLI)
    assert P.approver_entry_matches(POLICY, APPROVER_ROLE_ARN, carol)
    assert not P.approver_entry_matches(POLICY, APPROVER_ROLE_ARN, alice_cli)
    assert not P.approver_entry_matches(POLICY, "alice", carol)


# --------------------------------------------------------------------------- evidence and metrics


@pytest.mark.parametrize(
    "doc",
    [
        report(0.82, 0.8),
        {"regression_metrics": {"auc": {"value": 0.82}, "accuracy": {"value": 0.8}, "mse": {"value": 3.0}}},
        {"multiclass_classification_metrics": {"auc": {"value": 0.82}, "accuracy": {"value": 0.8}}},
    ],
)
def test_parse_metrics_reads_the_model_quality_shapes(doc):
    metrics = P.parse_metrics(doc)
    assert metrics["auc"] == 0.82 and metrics["accuracy"] == 0.8


def test_parse_metrics_skips_non_numbers():
    doc = {
        "binary_classification_metrics": {
            "auc": {"value": math.nan},
            "f1": {"value": True},
            "accuracy": {"value": "0.9"},
            "recall": {"value": 1},
            "confusion_matrix": {"0": {"0": 1}},
        }
    }
    assert P.parse_metrics(doc) == {"recall": 1.0}


@pytest.mark.parametrize("doc", [[], "auc=0.9", {"auc": 0.9}, {"binary_classification_metrics": [1]}])
def test_parse_metrics_refuses_other_documents(doc):
    with pytest.raises(P.ReportError):
        P.parse_metrics(doc)


@pytest.mark.parametrize(("baseline", "present"), [("drift", True), ("metrics", True), ("half", False), (None, False)])
def test_data_quality_baseline_needs_statistics_and_constraints_from_one_place(baseline, present):
    assert package(baseline=baseline).has_data_quality_baseline is present


def test_parse_package_collects_evidence_and_identities():
    pkg = package(last_modified_by=ALICE, ApprovalDescription="Reverted by approval guard: metric auc low")
    assert pkg.evaluation_report_uri == EVAL_URI
    assert pkg.metrics == {"auc": 0.82, "accuracy": 0.8}
    assert pkg.version == 3 and pkg.group == "mlops-churn" and pkg.status == "Approved"
    assert pkg.registrant.principal.endswith(":role/mlops-churn-dev-pipeline")
    assert pkg.last_modified_by.user_profile_name == "churn-alice"
    assert pkg.reverted_by_guard == "metric auc low"
    # LastModifiedBy is whoever touched the version last, never the approver: the call's caller is.
    assert not hasattr(P, "approver_of")
    assert "approver unknown" in P.evaluate(POLICY, pkg, None).violations[0]


def test_unparseable_report_becomes_a_report_problem():
    pkg = package(report_doc={"unexpected": 1})
    assert pkg.metrics is None and "no '<kind>_metrics' block" in pkg.report_problem


# --------------------------------------------------------------------------- evaluate


def test_valid_approval_is_allowed():
    decision = P.evaluate(POLICY, package(), ALICE_ID)
    assert decision.allowed and decision.violations == () and decision.revert_to is None
    assert [c.passed for c in decision.metric_checks] == [True, True]


def test_metric_equal_to_threshold_passes():
    assert P.evaluate(POLICY, package(report(auc=0.75, accuracy=0.7)), ALICE_ID).allowed


def test_metric_below_threshold_is_rejected():
    decision = P.evaluate(POLICY, package(report(auc=0.74)), ALICE_ID)
    assert not decision.allowed and decision.revert_to == P.REJECTED
    assert decision.violations == ("metric auc = 0.74 is below the threshold 0.75",)


def test_metric_missing_from_the_report_is_rejected():
    decision = P.evaluate(POLICY, package({"binary_classification_metrics": {"auc": {"value": 0.9}}}), ALICE_ID)
    assert decision.revert_to == P.REJECTED
    assert decision.violations == ("metric accuracy: not in the evaluation report",)


def test_unreadable_report_is_rejected():
    pkg = P.parse_package(description(), None, "s3://bucket/projects/churn/evaluation.json does not exist")
    decision = P.evaluate(POLICY, pkg, ALICE_ID)
    assert decision.revert_to == P.REJECTED
    assert all("evaluation report unreadable" in v for v in decision.violations)


def test_missing_evaluation_report_is_rejected():
    pkg = P.parse_package(description(evaluation=False), None, "no evaluation report attached")
    decision = P.evaluate(POLICY, pkg, ALICE_ID)
    assert decision.revert_to == P.REJECTED
    assert decision.violations[0].startswith("evidence missing: evaluation report")
    assert "metric auc: no evaluation report attached to read it from" in decision.violations


def test_missing_data_quality_baseline_is_rejected():
    decision = P.evaluate(POLICY, package(baseline=None), ALICE_ID)
    assert decision.revert_to == P.REJECTED
    assert decision.violations == (f"evidence missing: {P.EVIDENCE_LABELS['data_quality_baseline']}",)


def test_evidence_not_required_is_not_checked():
    lenient = P.Policy.from_dict({**POLICY_DOCUMENT, "required_evidence": ["evaluation_report"]})
    assert P.evaluate(lenient, package(baseline=None), ALICE_ID).allowed


def test_approver_not_listed_goes_back_to_pending():
    carol = P.Identity.from_user_context(BOB)
    decision = P.evaluate(POLICY, package(), carol)
    assert not decision.allowed and decision.revert_to == P.PENDING
    assert "is not an approver of project churn" in decision.violations[0]


def test_approver_role_arn_matches_any_session_of_that_role():
    decision = P.evaluate(POLICY, package(), P.Identity.from_user_context(APPROVER_CLI))
    assert decision.allowed


def test_approver_role_with_a_path_matches_its_assumed_role_sessions():
    with_path = P.Policy.from_dict({**POLICY_DOCUMENT, "approvers": [f"arn:aws:iam::{ACCOUNT}:role/ml/mlops-approver"]})
    assert P.evaluate(with_path, package(), P.Identity.from_user_context(APPROVER_CLI)).allowed


def test_user_entry_does_not_match_another_projects_profile():
    fraud_alice = P.Identity(user_profile_name="fraud-alice")
    assert P.evaluate(POLICY, package(), fraud_alice).revert_to == P.PENDING


def test_a_studio_user_profile_name_alone_is_no_approver():
    """The profile name is not proof: only a session of the lead role with the profile as source identity is."""
    assert not P.is_approver(POLICY, P.Identity(user_profile_name="churn-alice"))
    profile_on_another_role = P.Identity(
        user_profile_name="churn-alice",
        iam_arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/mlops-churn-dev-data-scientist/SageMaker",
        source_identity="churn-alice",
    )
    assert not P.is_approver(POLICY, profile_on_another_role)
    assert P.evaluate(POLICY, package(), profile_on_another_role).revert_to == P.PENDING


def test_alice_through_the_cli_is_an_approver():
    assert P.evaluate(POLICY, package(), P.Identity.from_user_context(ALICE_CLI)).allowed


def test_the_approver_role_with_another_source_identity_is_no_approver():
    decision = P.evaluate(POLICY, package(), P.Identity.from_user_context(MALLORY_CLI))
    assert decision.revert_to == P.PENDING and "is not an approver of project churn" in decision.violations[0]


def test_self_approval_across_studio_and_cli_is_detected():
    """alice registers from Studio (churn-alice) and approves from the CLI (alice): one person."""
    decision = P.evaluate(POLICY, package(created_by=ALICE), P.Identity.from_user_context(ALICE_CLI))
    assert decision.revert_to == P.PENDING
    assert "self-approval is not allowed" in decision.violations[0]


def test_self_approval_goes_back_to_pending():
    decision = P.evaluate(POLICY, package(created_by=ALICE), ALICE_ID)
    assert decision.revert_to == P.PENDING
    assert decision.violations == (f"{ALICE_ID.describe()} registered this version; self-approval is not allowed",)


def test_self_approval_allowed_when_the_policy_says_so():
    relaxed = P.Policy.from_dict({**POLICY_DOCUMENT, "allow_self_approval": True})
    assert P.evaluate(relaxed, package(created_by=ALICE), ALICE_ID).allowed


def test_unknown_approver_goes_back_to_pending():
    decision = P.evaluate(POLICY, package(), None)
    assert decision.revert_to == P.PENDING and "approver unknown" in decision.violations[0]


def test_unknown_registrant_cannot_rule_out_self_approval():
    decision = P.evaluate(POLICY, package(created_by=None), ALICE_ID)
    assert decision.revert_to == P.PENDING and "registrant unknown" in decision.violations[0]


def test_model_violations_win_over_identity_violations():
    decision = P.evaluate(POLICY, package(report(auc=0.5), created_by=ALICE), ALICE_ID)
    assert decision.revert_to == P.REJECTED
    assert len(decision.violations) == 2 and "self-approval" in decision.violations[1]


def test_evaluate_model_ignores_identity():
    assert P.evaluate_model(POLICY, package(created_by=ALICE)).allowed
    refused = P.evaluate_model(POLICY, package(report(accuracy=0.1)))
    assert not refused.allowed and "accuracy" in refused.reason


def test_join_limited_keeps_descriptions_within_the_limit():
    assert P.join_limited(["a", "b"], 10) == "a; b"
    text = P.join_limited(["x" * 50, "y" * 50], 40)
    assert len(text) == 40 and text.endswith("…")


def test_the_example_configs_policy_document_is_a_valid_lambda_policy():
    """APPROVAL_POLICY as the CDK stack builds it (mlops_platform.approval_policy) parses in the Lambda."""
    import json

    from mlops_platform.approval_policy import load_policy, policy_document
    from mlops_platform.config import load_config
    from mlops_platform.naming import Naming
    from tests.approval.conftest import REPO

    config = load_config(REPO / "config")
    for project in config.projects:
        document = json.loads(json.dumps(policy_document(config, project), sort_keys=True))
        parsed = P.Policy.from_dict(document)
        assert parsed.model_package_group == Naming(config.platform).model_package_group(project)
        assert parsed.metric_thresholds == dict(config.projects[project].approval.metric_thresholds)
        assert load_policy(config, project).to_dict() == parsed.to_dict()
