"""The test IAM evaluator and template resolver decide like IAM, and refuse what they cannot decide."""

from __future__ import annotations

import re

import pytest

from tests.iam_eval import (
    Decision,
    Environment,
    TemplateResolver,
    Unresolvable,
    UnsupportedPolicy,
    evaluate,
    role_logical_id,
    role_policies,
)

ROLE = "arn:aws:iam::222222222222:role/mlops-churn-dev-scientist"
BUCKET = "arn:aws:s3:::artifacts"


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource, condition=None, **extra) -> dict:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource, **extra}
    if condition is not None:
        statement["Condition"] = condition
    return statement


def decide(statements, action, resource, context=None) -> Decision:
    return evaluate([policy(*statements)], action, resource, context).decision


# --------------------------------------------------------------------------- effect


def test_nothing_is_allowed_without_an_allow():
    assert evaluate([], "s3:GetObject", f"{BUCKET}/a").decision is Decision.IMPLICIT_DENY
    assert decide([allow("s3:PutObject", f"{BUCKET}/*")], "s3:GetObject", f"{BUCKET}/a") is Decision.IMPLICIT_DENY


def test_explicit_deny_wins_over_any_allow():
    statements = [
        allow("s3:*", "*"),
        {"Sid": "NoSecrets", "Effect": "Deny", "Action": "s3:GetObject", "Resource": f"{BUCKET}/secret/*"},
    ]
    result = evaluate([policy(*statements)], "s3:GetObject", f"{BUCKET}/secret/key")
    assert result.decision is Decision.EXPLICIT_DENY
    assert result.denied_by == ("NoSecrets",)
    assert decide(statements, "s3:GetObject", f"{BUCKET}/public/key") is Decision.ALLOWED


def test_deny_in_another_policy_document_still_wins():
    documents = [policy(allow("s3:GetObject", "*")), policy({"Effect": "Deny", "Action": "s3:*", "Resource": "*"})]
    assert evaluate(documents, "s3:GetObject", f"{BUCKET}/a").decision is Decision.EXPLICIT_DENY


def test_a_result_is_not_a_truth_value():
    result = evaluate([], "s3:GetObject", f"{BUCKET}/a")
    with pytest.raises(TypeError):
        bool(result)
    assert result.allowed is False


# --------------------------------------------------------------------------- actions and resources


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("sagemaker:CreateSpace", "sagemaker:CreateSpace", True),
        ("SageMaker:createspace", "sagemaker:CreateSpace", True),  # actions ignore case
        ("sagemaker:List*", "sagemaker:ListSpaces", True),
        ("sagemaker:List*", "sagemaker:DescribeSpace", False),
        ("sagemaker:*Record", "sagemaker:BatchGetRecord", True),
        ("sagemaker:?etRecord", "sagemaker:GetRecord", True),
        ("sagemaker:?etRecord", "sagemaker:BatchGetRecord", False),  # ? is exactly one character
        ("s3:*", "sagemaker:GetRecord", False),
        ("*", "kms:Decrypt", True),
    ],
)
def test_action_patterns(pattern, action, matches):
    expected = Decision.ALLOWED if matches else Decision.IMPLICIT_DENY
    assert decide([allow(pattern, "*")], action, "arn:aws:sagemaker:eu-west-1:1:x/y") is expected


@pytest.mark.parametrize(
    ("pattern", "resource", "matches"),
    [
        (f"{BUCKET}/projects/churn/*", f"{BUCKET}/projects/churn/a/b.csv", True),  # * crosses '/'
        (f"{BUCKET}/projects/churn/*", f"{BUCKET}/projects/churn-eu/a.csv", False),
        (f"{BUCKET}/projects/churn/*", f"{BUCKET}/Projects/churn/a.csv", False),  # resources keep case
        (f"{BUCKET}/projects/churn*", f"{BUCKET}/projects/churn-eu/a.csv", True),  # the trap of a prefix
        ("arn:aws:sagemaker:*:222222222222:pipeline/p", "arn:aws:sagemaker:eu-west-1:222222222222:pipeline/p", True),
        ("arn:aws:sagemaker:*:222222222222:pipeline/p", "arn:aws:sagemaker:eu-west-1:333333333333:pipeline/p", False),
        # A name pattern ending in '-*' still covers a project whose name continues with '-eu'.
        (
            "arn:aws:sagemaker:eu-west-1:2:feature-group/mlops-churn-*",
            "arn:aws:sagemaker:eu-west-1:2:feature-group/mlops-churn-eu-customers",
            True,
        ),
        (
            "arn:aws:sagemaker:eu-west-1:2:pipeline/mlops-churn",
            "arn:aws:sagemaker:eu-west-1:2:pipeline/mlops-churn-eu",
            False,
        ),
        ("arn:aws:sagemaker:eu-west-1:2:app/d-?/*", "arn:aws:sagemaker:eu-west-1:2:app/d-1/s/JupyterLab/default", True),
        (
            "arn:aws:sagemaker:eu-west-1:2:app/d-?/*",
            "arn:aws:sagemaker:eu-west-1:2:app/d-12/s/JupyterLab/default",
            False,
        ),
        ("*", "arn:aws:iam::2:role/anything", True),
    ],
)
def test_resource_patterns(pattern, resource, matches):
    expected = Decision.ALLOWED if matches else Decision.IMPLICIT_DENY
    assert decide([allow("s3:GetObject", pattern)], "s3:GetObject", resource) is expected


def test_arn_segments_are_matched_one_by_one():
    # '*' in the region segment must not swallow the account: the account differs.
    statements = [allow("iam:PassRole", "arn:aws:iam:*:222222222222:role/*")]
    assert decide(statements, "iam:PassRole", "arn:aws:iam::222222222222:role/x") is Decision.ALLOWED
    assert decide(statements, "iam:PassRole", "arn:aws:iam::222222222223:role/x:222222222222:role/y") is (
        Decision.IMPLICIT_DENY
    )


def test_not_action_and_not_resource():
    statements = [
        {"Effect": "Allow", "NotAction": "s3:DeleteObject", "Resource": f"{BUCKET}/*"},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": f"{BUCKET}/*"},
    ]
    assert decide(statements, "s3:GetObject", f"{BUCKET}/a") is Decision.ALLOWED
    assert decide(statements, "s3:DeleteObject", f"{BUCKET}/a") is Decision.IMPLICIT_DENY
    assert decide(statements, "s3:GetObject", "arn:aws:s3:::other/a") is Decision.EXPLICIT_DENY


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:GetObject"},  # neither Resource nor NotResource
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "NotResource": "*"},
        {"Effect": "Permit", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::GetAtt": ["Bucket", "Arn"]}},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::${aws:username}/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3"},  # not six ARN parts
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "bucket/*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Principal": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*", "Unknown": 1},
    ],
)
def test_malformed_or_unsupported_statements_raise(statement):
    with pytest.raises(UnsupportedPolicy):
        evaluate([policy(statement)], "s3:GetObject", f"{BUCKET}/a")


# --------------------------------------------------------------------------- conditions

OWNER = "arn:aws:sagemaker:eu-west-1:2:user-profile/d-1/churn-bob"


@pytest.mark.parametrize(
    ("condition", "context", "holds"),
    [
        ({"StringEquals": {"k": ["a", "b"]}}, {"k": "b"}, True),  # values: OR
        ({"StringEquals": {"k": "a"}}, {"k": "A"}, False),
        ({"StringEquals": {"k": "a"}}, {"K": "a"}, True),  # keys ignore case
        ({"StringEquals": {"k": "a"}}, {}, False),  # a missing key fails a positive operator
        ({"StringEquals": {"k": "a", "j": "b"}}, {"k": "a"}, False),  # keys: AND
        ({"StringEquals": {"k": "a"}, "StringLike": {"j": "b*"}}, {"k": "a", "j": "bc"}, True),
        ({"StringEquals": {"k": "a"}, "StringLike": {"j": "b*"}}, {"k": "a", "j": "cb"}, False),  # operators: AND
        ({"StringNotEquals": {"k": ["a", "b"]}}, {"k": "c"}, True),  # negated values: NOR
        ({"StringNotEquals": {"k": ["a", "b"]}}, {"k": "b"}, False),
        ({"StringNotEquals": {"k": "a"}}, {}, True),  # ... and a missing key satisfies them
        ({"StringEqualsIgnoreCase": {"k": "abc"}}, {"k": "ABC"}, True),
        ({"StringLike": {"s3:prefix": "projects/churn/*"}}, {"s3:prefix": "projects/churn/"}, True),
        ({"StringLike": {"s3:prefix": "projects/churn/*"}}, {"s3:prefix": "projects/churn-eu/"}, False),
        ({"StringNotLike": {"k": "a*"}}, {"k": "ba"}, True),
        ({"StringEqualsIfExists": {"k": "a"}}, {}, True),
        ({"StringEqualsIfExists": {"k": "a"}}, {"k": "b"}, False),
        ({"ArnEquals": {"o": OWNER}}, {"o": OWNER}, True),
        ({"ArnEquals": {"o": OWNER}}, {"o": OWNER.replace("bob", "eu-bob")}, False),
        ({"ArnLike": {"o": "arn:aws:sagemaker:*:2:user-profile/*/churn-*"}}, {"o": OWNER}, True),
        ({"ArnLike": {"o": "arn:aws:sagemaker:*:3:user-profile/*/churn-*"}}, {"o": OWNER}, False),
        ({"ArnLike": {"o": "arn:aws:sagemaker:*:2:user-profile/*"}}, {"o": "not-an-arn"}, False),
        ({"ArnNotEquals": {"o": OWNER}}, {"o": OWNER}, False),
        ({"ArnNotLike": {"o": "arn:aws:sagemaker:*:*:user-profile/*/fraud-*"}}, {"o": OWNER}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": False}, True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
        ({"Bool": {"aws:SecureTransport": "false"}}, {}, False),
        ({"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}, {}, True),
        ({"Null": {"sagemaker:OwnerUserProfileArn": "true"}}, {}, True),
        ({"Null": {"sagemaker:OwnerUserProfileArn": "true"}}, {"sagemaker:OwnerUserProfileArn": OWNER}, False),
        ({"Null": {"sagemaker:OwnerUserProfileArn": "false"}}, {"sagemaker:OwnerUserProfileArn": OWNER}, True),
        ({"NumericLessThan": {"n": "10"}}, {"n": 9}, True),
        ({"NumericLessThan": {"n": "10"}}, {"n": "10"}, False),
        ({"NumericLessThanEquals": {"n": 10}}, {"n": "10"}, True),
        ({"NumericGreaterThan": {"n": "10"}}, {"n": 10.5}, True),
        ({"NumericGreaterThanEquals": {"n": "10"}}, {"n": 9}, False),
        ({"NumericEquals": {"n": "3"}}, {"n": 3}, True),
        ({"NumericNotEquals": {"n": "3"}}, {"n": 3}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["x", "b"]}, True),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["x", "y"]}, False),
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": "a"}}, {}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["a", "b"]}, True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["a", "c"]}, False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": "a"}}, {}, True),  # vacuously true: a known trap
        ({"ForAllValues:StringNotLike": {"aws:TagKeys": "mlops:*"}}, {"aws:TagKeys": ["x", "mlops:p"]}, False),
    ],
)
def test_condition_operators(condition, context, holds):
    expected = Decision.ALLOWED if holds else Decision.IMPLICIT_DENY
    assert decide([allow("s3:GetObject", "*", condition)], "s3:GetObject", f"{BUCKET}/a", context) is expected


def test_a_failed_condition_on_a_deny_does_not_deny():
    statements = [
        allow("s3:GetObject", "*"),
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    assert decide(statements, "s3:GetObject", f"{BUCKET}/a", {"aws:SecureTransport": True}) is Decision.ALLOWED
    assert decide(statements, "s3:GetObject", f"{BUCKET}/a", {"aws:SecureTransport": False}) is (Decision.EXPLICIT_DENY)


@pytest.mark.parametrize(
    ("condition", "context"),
    [
        ({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}, {"aws:CurrentTime": "2029-01-01T00:00:00Z"}),
        ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"}),
        ({"ForSomeValues:StringEquals": {"k": "a"}}, {"k": ["a"]}),
        ({"StringEquals": {"k": "a"}}, {"k": ["a", "b"]}),  # a multivalued key needs a set operator
        ({"StringEquals": {"k": "${aws:username}"}}, {"k": "a"}),
        ({"StringEquals": {"k": {"Ref": "AWS::Region"}}}, {"k": "a"}),
        ({"Null": {"k": ["true", "false"]}}, {}),
        ({"Bool": {"k": "yes"}}, {"k": True}),
        ({"NumericLessThan": {"n": "ten"}}, {"n": 1}),
        ({"ArnLike": {"o": "user-profile/*"}}, {"o": OWNER}),
    ],
)
def test_conditions_it_cannot_decide_raise(condition, context):
    with pytest.raises(UnsupportedPolicy):
        evaluate([policy(allow("s3:GetObject", "*", condition))], "s3:GetObject", f"{BUCKET}/a", context)


# --------------------------------------------------------------------------- resource policies


def test_resource_policy_naming_the_role_allows_in_the_same_account():
    grant = {"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject", "Resource": f"{BUCKET}/*"}
    result = evaluate(
        [],
        "s3:GetObject",
        f"{BUCKET}/a",
        resource_policy=policy(grant),
        principal_arn=ROLE,
        resource_account="222222222222",
    )
    assert result.decision is Decision.ALLOWED


def test_a_grant_to_the_own_account_only_delegates_to_iam():
    grant = {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
        "Action": "s3:*",
        "Resource": "*",
    }
    kwargs = {"resource_policy": policy(grant), "principal_arn": ROLE, "resource_account": "222222222222"}
    assert evaluate([], "s3:GetObject", f"{BUCKET}/a", **kwargs).decision is Decision.IMPLICIT_DENY
    identity = [policy(allow("s3:GetObject", "*"))]
    assert evaluate(identity, "s3:GetObject", f"{BUCKET}/a", **kwargs).decision is Decision.ALLOWED


def test_across_accounts_both_sides_must_allow():
    identity = [policy(allow("s3:GetObject", "*"))]
    grant = {"Effect": "Allow", "Principal": {"AWS": "222222222222"}, "Action": "s3:GetObject", "Resource": "*"}
    kwargs = {"principal_arn": ROLE, "resource_account": "333333333333"}
    assert evaluate(identity, "s3:GetObject", f"{BUCKET}/a", resource_policy=policy(), **kwargs).decision is (
        Decision.IMPLICIT_DENY
    )
    assert evaluate(identity, "s3:GetObject", f"{BUCKET}/a", resource_policy=policy(grant), **kwargs).decision is (
        Decision.ALLOWED
    )
    assert evaluate([], "s3:GetObject", f"{BUCKET}/a", resource_policy=policy(grant), **kwargs).decision is (
        Decision.IMPLICIT_DENY
    )


def test_deny_in_the_resource_policy_wins():
    deny_plain_http = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Resource": [BUCKET, f"{BUCKET}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    identity = [policy(allow("s3:GetObject", "*"))]
    kwargs = {"resource_policy": policy(deny_plain_http), "principal_arn": ROLE, "resource_account": "222222222222"}
    assert evaluate(identity, "s3:GetObject", f"{BUCKET}/a", {"aws:SecureTransport": False}, **kwargs).decision is (
        Decision.EXPLICIT_DENY
    )
    assert evaluate(identity, "s3:GetObject", f"{BUCKET}/a", {"aws:SecureTransport": True}, **kwargs).decision is (
        Decision.ALLOWED
    )


def test_resource_policy_needs_the_caller():
    with pytest.raises(UnsupportedPolicy):
        evaluate([], "s3:GetObject", f"{BUCKET}/a", resource_policy=policy())
    with pytest.raises(UnsupportedPolicy):
        evaluate(
            [],
            "s3:GetObject",
            f"{BUCKET}/a",
            resource_policy=policy({"Effect": "Allow", "NotPrincipal": {"AWS": ROLE}, "Action": "*", "Resource": "*"}),
            principal_arn=ROLE,
            resource_account="222222222222",
        )


# --------------------------------------------------------------------------- templates

DEV = Environment(account="222222222222", region="eu-west-1")
GOV = Environment(account="111111111111", region="eu-central-1")


def templates() -> dict:
    baseline = {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "mlops-dev-artifacts"}},
            "Unnamed": {"Type": "AWS::S3::Bucket", "Properties": {}},
            "Queue": {"Type": "AWS::SQS::QueuePolicy", "Properties": {}},
        },
        "Outputs": {
            "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}, "Export": {"Name": "baseline:KeyArn"}},
            "Region": {"Value": {"Ref": "AWS::Region"}, "Export": {"Name": {"Fn::Sub": "${AWS::StackName}:Region"}}},
        },
        "Parameters": {"BootstrapVersion": {"Type": "String"}},
        "Mappings": {"Zones": {"eu-west-1": {"Count": "3"}}},
    }
    workspace = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {"RoleName": {"Fn::Join": ["-", ["mlops", "churn", "dev"]]}, "Path": "/teams/"},
            },
            "Default": {"Type": "AWS::IAM::Role", "Properties": {}},
            "Policy": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "Roles": [{"Ref": "Role"}],
                    "PolicyDocument": policy(
                        allow("kms:Decrypt", {"Fn::ImportValue": "baseline:KeyArn"}),
                        allow("iam:PassRole", {"Fn::GetAtt": ["Role", "Arn"]}),
                    ),
                },
            },
        }
    }
    return {"baseline": baseline, "workspace": workspace}


def resolver(**kwargs) -> TemplateResolver:
    return TemplateResolver(templates(), {"baseline": GOV, "workspace": DEV}, **kwargs)


def test_pseudo_parameters_come_from_each_stacks_environment():
    r = resolver()
    value = {"Fn::Join": [":", [{"Ref": "AWS::Partition"}, {"Ref": "AWS::AccountId"}, {"Ref": "AWS::Region"}]]}
    assert r.resolve("workspace", value) == "aws:222222222222:eu-west-1"
    assert r.resolve("baseline", value) == "aws:111111111111:eu-central-1"
    assert r.resolve("workspace", {"Ref": "AWS::URLSuffix"}) == "amazonaws.com"


def test_refs_and_attributes_become_realistic_arns():
    r = resolver()
    assert r.resolve("workspace", {"Ref": "Role"}) == "mlops-churn-dev"
    assert (
        r.resolve("workspace", {"Fn::GetAtt": ["Role", "Arn"]})
        == "arn:aws:iam::222222222222:role/teams/mlops-churn-dev"
    )
    assert r.resolve("workspace", {"Fn::GetAtt": "Role.Arn"}) == "arn:aws:iam::222222222222:role/teams/mlops-churn-dev"
    generated = r.resolve("workspace", {"Fn::GetAtt": ["Default", "Arn"]})
    assert re.fullmatch(r"arn:aws:iam::222222222222:role/workspace-Default-[0-9A-Z]{12}", generated)
    assert r.resolve("baseline", {"Fn::GetAtt": ["Bucket", "Arn"]}) == "arn:aws:s3:::mlops-dev-artifacts"
    assert re.fullmatch(r"baseline-unnamed-[0-9a-z]{12}", r.resolve("baseline", {"Ref": "Unnamed"}))
    key = r.resolve("baseline", {"Fn::GetAtt": ["Key", "Arn"]})
    assert re.fullmatch(r"arn:aws:kms:eu-central-1:111111111111:key/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", key)
    assert r.resolve("baseline", {"Ref": "Key"}) == key.rsplit("/", 1)[1]
    assert resolver().resolve("baseline", {"Fn::GetAtt": ["Key", "Arn"]}) == key  # stable


def test_import_value_resolves_in_the_exporting_stack():
    r = resolver()
    assert r.resolve("workspace", {"Fn::ImportValue": "baseline:KeyArn"}) == r.resolve(
        "baseline", {"Fn::GetAtt": ["Key", "Arn"]}
    )
    # The export name is itself an intrinsic, and the value is the exporter's region, not the importer's.
    assert r.resolve("workspace", {"Fn::ImportValue": "baseline:Region"}) == "eu-central-1"


def test_sub_select_and_split():
    r = resolver()
    assert r.resolve("baseline", {"Fn::Sub": "${Bucket.Arn}/projects/${AWS::Region}/${!Literal}"}) == (
        "arn:aws:s3:::mlops-dev-artifacts/projects/eu-central-1/${Literal}"
    )
    assert r.resolve("baseline", {"Fn::Sub": ["${Name}-x", {"Name": {"Ref": "Bucket"}}]}) == "mlops-dev-artifacts-x"
    arn = {"Fn::GetAtt": ["Key", "Arn"]}
    key_id = r.resolve("baseline", {"Fn::Select": [1, {"Fn::Split": ["/", arn]}]})
    assert key_id == r.resolve("baseline", {"Ref": "Key"})


def test_find_in_map_looks_up_the_mapping():
    r = TemplateResolver(templates(), {"baseline": DEV, "workspace": DEV})
    assert r.resolve("baseline", {"Fn::FindInMap": ["Zones", {"Ref": "AWS::Region"}, "Count"]}) == "3"
    with pytest.raises(Unresolvable, match="no mapping"):
        resolver().resolve("baseline", {"Fn::FindInMap": ["Zones", {"Ref": "AWS::Region"}, "Count"]})


@pytest.mark.parametrize(
    ("stack", "value", "message"),
    [
        ("workspace", {"Ref": "Missing"}, "no resource 'Missing'"),
        ("baseline", {"Fn::GetAtt": ["Queue", "Arn"]}, "AWS::SQS::QueuePolicy"),
        ("baseline", {"Fn::GetAtt": ["Bucket", "WebsiteURL"]}, "WebsiteURL"),
        ("baseline", {"Fn::If": ["IsProd", "a", "b"]}, "Fn::If is not supported"),
        ("baseline", {"Fn::GetAZs": ""}, "Fn::GetAZs is not supported"),
        ("baseline", {"Ref": "AWS::NoValue"}, "AWS::NoValue"),
        ("baseline", {"Ref": "BootstrapVersion"}, "no value given for parameter"),
        ("workspace", {"Fn::ImportValue": "baseline:Nothing"}, "defined 0 times"),
        ("workspace", {"Fn::Join": [",", [{"Fn::Split": [",", "a,b"]}]]}, "needs strings"),
        ("workspace", {"Fn::Select": [5, ["a"]]}, "out of"),
        ("nowhere", {"Ref": "AWS::Region"}, "unknown stack"),
    ],
)
def test_what_cannot_be_resolved_raises(stack, value, message):
    with pytest.raises(Unresolvable, match=re.escape(message)):
        resolver().resolve(stack, value)


def test_parameters_can_be_given():
    r = resolver(parameters={"baseline": {"BootstrapVersion": "/cdk-bootstrap/hnb659fds/version"}})
    assert r.resolve("baseline", {"Ref": "BootstrapVersion"}) == "/cdk-bootstrap/hnb659fds/version"


def test_a_stack_without_an_environment_raises():
    r = TemplateResolver(templates(), {"workspace": DEV})
    with pytest.raises(Unresolvable, match="no environment"):
        r.resolve("workspace", {"Fn::ImportValue": "baseline:KeyArn"})


def test_duplicate_exports_raise():
    both = templates()
    both["copy"] = both["baseline"]
    r = TemplateResolver(both, {"baseline": GOV, "workspace": DEV, "copy": GOV})
    with pytest.raises(Unresolvable, match="defined 2 times"):
        r.resolve("workspace", {"Fn::ImportValue": "baseline:KeyArn"})


def test_role_policies_are_found_resolved_and_evaluated():
    r = resolver()
    documents = role_policies(r, "workspace", role_logical_id(r, "workspace", "mlops-churn-dev"))
    key = r.resolve("baseline", {"Fn::GetAtt": ["Key", "Arn"]})
    assert evaluate(documents, "kms:Decrypt", key).decision is Decision.ALLOWED
    assert evaluate(documents, "kms:Decrypt", key.replace("111111111111", "999999999999")).decision is (
        Decision.IMPLICIT_DENY
    )
    assert evaluate(documents, "iam:PassRole", "arn:aws:iam::222222222222:role/teams/mlops-churn-dev").decision is (
        Decision.ALLOWED
    )


def test_role_policies_refuse_managed_policies_of_unknown_content():
    broken = templates()
    broken["workspace"]["Resources"]["Role"]["Properties"]["ManagedPolicyArns"] = [
        "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
    ]
    r = TemplateResolver(broken, {"baseline": GOV, "workspace": DEV})
    with pytest.raises(Unresolvable, match="document is unknown"):
        role_policies(r, "workspace", "Role")
    with pytest.raises(Unresolvable, match="no policies"):
        role_policies(r, "workspace", "Default")


def test_studio_ids_look_like_sagemakers():
    studio = {
        "Resources": {
            "Domain": {"Type": "AWS::SageMaker::Domain", "Properties": {"DomainName": "mlops-dev"}},
            "Bob": {
                "Type": "AWS::SageMaker::UserProfile",
                "Properties": {"DomainId": {"Fn::GetAtt": ["Domain", "DomainId"]}, "UserProfileName": "churn-bob"},
            },
        }
    }
    r = TemplateResolver({"studio": studio}, {"studio": DEV})
    domain = r.resolve("studio", {"Fn::GetAtt": ["Domain", "DomainId"]})
    assert re.fullmatch(r"d-[a-z0-9]{12}", domain)
    assert r.resolve("studio", {"Fn::GetAtt": ["Domain", "DomainArn"]}) == (
        f"arn:aws:sagemaker:eu-west-1:222222222222:domain/{domain}"
    )
    assert r.resolve("studio", {"Fn::GetAtt": ["Bob", "UserProfileArn"]}) == (
        f"arn:aws:sagemaker:eu-west-1:222222222222:user-profile/{domain}/churn-bob"
    )
    with pytest.raises(Unresolvable, match="Ref of Domain"):
        r.resolve("studio", {"Ref": "Domain"})
