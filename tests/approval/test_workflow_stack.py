"""What the governance templates must hold for approvals to be trusted in a real account.

Who approved comes from the CloudTrail record of the call (a trail must exist
for EventBridge to deliver it); approvers prove their name as STS source
identity; each handler touches only its project's items; a missing report is
NoSuchKey, not AccessDenied; failures land as replayable records.
"""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Match, Template

from mlops_platform.approval.releases import leading_key_patterns
from mlops_platform.config import load_config
from mlops_platform.naming import Naming
from stacks.governance import APPROVER_TAG
from tests.synth import EXAMPLE_CONFIG


def _stack(example, role, kind):
    name = next(n for n in example.construct_path if n.startswith(f"mlops-{role}") and n.endswith(kind))
    return Template.from_json(example.template(name))


@pytest.fixture(scope="module")
def example_config():
    return load_config(EXAMPLE_CONFIG)


def _naming(example_config):
    return Naming(example_config.platform)


def test_the_guard_listens_to_the_cloudtrail_record_of_approvals_of_its_group_only(example):
    template = _stack(example, "governance", "approval")
    rules = template.find_resources(
        "AWS::Events::Rule", {"Properties": {"Description": Match.string_like_regexp("Check an approval")}}
    )
    (rule,) = rules.values()
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["AWS API Call via CloudTrail"] and pattern["source"] == ["aws.sagemaker"]
    detail = pattern["detail"]
    assert detail["errorCode"] == [{"exists": False}]
    update, create = detail["$or"]
    assert update["eventName"] == ["UpdateModelPackage"] and create["eventName"] == ["CreateModelPackage"]
    assert update["requestParameters"]["modelApprovalStatus"] == ["Approved"]
    (prefix,) = update["requestParameters"]["modelPackageArn"]
    assert prefix["prefix"].endswith(":model-package/mlops-churn/")  # the trailing slash keeps churn-eu out
    assert "mlops-churn" in create["requestParameters"]["modelPackageGroupName"]


def test_a_withdrawn_approval_reaches_the_revocation_handler(example):
    template = _stack(example, "governance", "approval")
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Description": Match.string_like_regexp("Revoke a rejected or withdrawn version"),
            "EventPattern": {
                "detail": {
                    "ModelPackageGroupName": ["mlops-churn"],
                    "ModelApprovalStatus": ["Rejected", "PendingManualApproval"],
                }
            },
        },
    )


def test_the_governance_baseline_keeps_a_trail_of_write_calls_encrypted_with_its_key(example):
    template = _stack(example, "governance", "baseline")
    (key,) = template.find_resources("AWS::KMS::Key")
    template.has_resource_properties(
        "AWS::CloudTrail::Trail",
        {
            "IsLogging": True,
            "KMSKeyId": {"Fn::GetAtt": [key, "Arn"]},
            "EnableLogFileValidation": True,
            "EventSelectors": [{"IncludeManagementEvents": True, "ReadWriteType": "WriteOnly"}],
        },
    )
    # CreateTrail fails unless the key lets CloudTrail encrypt for this account's trails.
    template.has_resource_properties(
        "AWS::KMS::Key",
        {"KeyPolicy": {"Statement": Match.array_with([Match.object_like({
            "Sid": "CloudTrailEncrypt",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceArn": Match.string_like_regexp(":trail/mlops-api-calls$")},
                          "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": Match.any_value()}},
        })])}},
    )  # fmt: skip
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {"PolicyDocument": {"Statement": Match.array_with([Match.object_like({
            "Sid": "CloudTrailWrite",
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control",
                                           "aws:SourceArn": Match.any_value()}},
        })])}},
    )  # fmt: skip


def test_the_approver_role_admits_only_a_listed_name_that_is_the_callers_own(example, example_config):
    template = _stack(example, "governance", "approval")
    governance = example_config.platform.accounts.governance.id
    condition = {
        "StringLike": {"sts:SourceIdentity": ["alice"]},
        "StringEquals": {"sts:SourceIdentity": "${aws:PrincipalTag/" + APPROVER_TAG + "}"},
    }
    roles = template.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": "mlops-churn-governance-approver"}})
    (role,) = roles.values()
    statements = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert sorted(s["Action"] for s in statements) == ["sts:AssumeRole", "sts:SetSourceIdentity"]
    for statement in statements:
        assert statement["Condition"] == condition
        assert governance in str(statement["Principal"]["AWS"])


def test_each_handler_touches_only_its_projects_items(example):
    template = _stack(example, "governance", "approval")
    policies = template.find_resources("AWS::IAM::ManagedPolicy")
    releases = [
        s
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if any(str(a).startswith("dynamodb:") for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    ]
    assert len(releases) == 3
    for statement in releases:
        assert statement["Condition"] == {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": leading_key_patterns("churn")}
        }
        assert "dynamodb:DeleteItem" not in statement["Action"] and "dynamodb:Scan" not in statement["Action"]


def test_a_missing_report_is_no_such_key_for_the_handlers_and_the_approver(example, example_config):
    naming = _naming(example_config)
    template = _stack(example, "governance", "approval")
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {"PolicyDocument": {"Statement": Match.array_with([{
            "Sid": "ListEvaluationReports", "Effect": "Allow", "Action": "s3:ListBucket",
            "Resource": naming.bucket_arn("dev"),
            "Condition": {"StringLike": {"s3:prefix": ["projects/churn/*"]}},
        }])}},
    )  # fmt: skip
    dev = _stack(example, "dev", "baseline")
    for purpose in ("guard", "notify", "approver"):
        dev.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {"PolicyDocument": {"Statement": Match.array_with([Match.object_like({
                "Action": "s3:ListBucket",
                "Condition": {"ArnEquals": {"aws:PrincipalArn": naming.role_arn("churn", "governance", purpose)},
                              "StringLike": {"s3:prefix": "projects/churn/*"}},
            })])}},
        )  # fmt: skip


def test_failures_land_as_records_in_the_named_dead_letter_queue(example, example_config):
    naming = _naming(example_config)
    template = _stack(example, "governance", "approval")
    (queue,) = template.find_resources(
        "AWS::SQS::Queue", {"Properties": {"QueueName": naming.approval_dead_letter_queue("churn")}}
    )
    configs = template.find_resources("AWS::Lambda::EventInvokeConfig")
    assert len(configs) == 3
    for config in configs.values():
        assert config["Properties"]["DestinationConfig"] == {
            "OnFailure": {"Destination": {"Fn::GetAtt": [queue, "Arn"]}}
        }
        assert config["Properties"]["MaximumRetryAttempts"] == 2


def test_studio_sessions_carry_the_user_profile_name_and_their_roles_admit_it(example):
    studio = _stack(example, "dev", "studio")
    studio.has_resource_properties(
        "AWS::SageMaker::Domain",
        {"DomainSettings": Match.object_like({"ExecutionRoleIdentityConfig": "USER_PROFILE_NAME"})},
    )
    # Studio assumes an execution role with a source identity only if its trust policy allows sts:SetSourceIdentity.
    names = [n for n in example.construct_path if n.startswith("mlops-dev") and ("studio" in n or "workspace" in n)]
    roles = {}
    for name in names:
        roles.update(Template.from_json(example.template(name)).find_resources("AWS::IAM::Role"))
    sagemaker_roles = [
        r for r in roles.values() if "sagemaker.amazonaws.com" in str(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    assert sagemaker_roles
    for role in sagemaker_roles:
        actions = []
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]:
            action = statement["Action"]
            actions += [action] if isinstance(action, str) else action
        assert "sts:SetSourceIdentity" in actions, role["Properties"].get("Description")
