"""Template assertions for every stack of the example platform, synthesized once per session."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from tests.synth import Synthesized

EXPECTED_STACKS = {
    "mlops-governance-baseline": "Governance",
    "mlops-governance-deploy": "Governance",
    "mlops-governance-churn-registry": "Governance",
    "mlops-governance-churn-approval": "Governance",
    "mlops-dev-baseline": "Dev",
    "mlops-dev-studio": "Dev",
    "mlops-dev-churn-workspace": "Dev",
    "mlops-dev-churn-build": "Dev",
    "mlops-dev-churn-features": "Dev",
    "mlops-staging-baseline": "Staging",
    "mlops-staging-churn-serving": "Staging",
    "mlops-prod-baseline": "Prod",
    "mlops-prod-churn-serving": "Prod",
}

# Stateful resources must keep their logical ids: a change would replace them.
PINNED_LOGICAL_IDS = {
    "mlops-governance-baseline": {
        "ReleasesE6BA3EBF": "AWS::DynamoDB::GlobalTable",
        "KeyE447D366": "AWS::KMS::Key",
        "Artifacts80C0BB10": "AWS::S3::Bucket",
        "ArtifactsAccessLogs4D97777C": "AWS::S3::Bucket",
    },
    "mlops-dev-baseline": {
        "KeyE447D366": "AWS::KMS::Key",
        "Artifacts80C0BB10": "AWS::S3::Bucket",
        "ArtifactsAccessLogs4D97777C": "AWS::S3::Bucket",
        "NetworkFlowLogs2BEC3212": "AWS::Logs::LogGroup",
    },
    "mlops-staging-baseline": {"KeyE447D366": "AWS::KMS::Key", "Artifacts80C0BB10": "AWS::S3::Bucket"},
    "mlops-prod-baseline": {"KeyE447D366": "AWS::KMS::Key", "Artifacts80C0BB10": "AWS::S3::Bucket"},
    "mlops-dev-studio": {"Domain": "AWS::SageMaker::Domain"},
    "mlops-dev-churn-workspace": {"UserAlice": "AWS::SageMaker::UserProfile", "UserBob": "AWS::SageMaker::UserProfile"},
    "mlops-governance-churn-registry": {"ModelPackageGroup": "AWS::SageMaker::ModelPackageGroup"},
    "mlops-dev-churn-features": {"FeatureGroupCustomers": "AWS::SageMaker::FeatureGroup"},
}


def t(example: Synthesized, name: str) -> Template:
    return Template.from_json(example.template(name))


def test_every_role_and_project_stack_exists(example):
    assert example.error is None, example.error
    assert example.stage_of == EXPECTED_STACKS


@pytest.mark.parametrize("stack", sorted(PINNED_LOGICAL_IDS))
def test_stateful_logical_ids_are_pinned_and_retained(example, stack):
    resources = example.template(stack)["Resources"]
    for logical_id, type_ in PINNED_LOGICAL_IDS[stack].items():
        assert resources[logical_id]["Type"] == type_
        assert resources[logical_id].get("DeletionPolicy") == "Retain", logical_id


# ------------------------------------------------------------------ baseline


@pytest.mark.parametrize("role", ["governance", "dev", "staging", "prod"])
def test_baseline_key_and_bucket(example, role):
    template = t(example, f"mlops-{role}-baseline")
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties("AWS::KMS::Alias", {"AliasName": f"alias/mlops/{role}"})
    account = {"governance": "111111111111", "dev": "222222222222", "staging": "333333333333", "prod": "444444444444"}[
        role
    ]
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketName": f"mlops-{role}-artifacts-{account}-eu-west-1",
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {
                        "ServerSideEncryptionByDefault": {
                            "SSEAlgorithm": "aws:kms",
                            "KMSMasterKeyID": Match.any_value(),
                        },
                        "BucketKeyEnabled": True,
                    }
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {"DestinationBucketName": Match.any_value(), "LogFilePrefix": "artifacts/"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "s3:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        )
                    ]
                )
            }
        },
    )
    assert example.template(f"mlops-{role}-baseline").get("Resources")  # stateful stack is not empty


def test_network_logical_id_is_pinned(example):
    # Not retained (nothing stateful lives in it), but a new id would rebuild every subnet and endpoint.
    assert example.template("mlops-dev-baseline")["Resources"]["Network6E62CE96"]["Type"] == "AWS::EC2::VPC"


def test_release_table_is_encrypted_recoverable_and_protected(example):
    t(example, "mlops-governance-baseline").has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "TableName": "mlops-releases",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS"},
            "Replicas": [
                Match.object_like(
                    {
                        "DeletionProtectionEnabled": True,
                        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                        "SSESpecification": {"KMSMasterKeyId": Match.any_value()},
                    }
                )
            ],
        },
    )
    for role in ("staging", "prod"):
        t(example, f"mlops-{role}-baseline").resource_count_is("AWS::DynamoDB::GlobalTable", 0)
    # Dev holds one table: the retraining cool-downs (monitoring retrains the example's model).
    t(example, "mlops-dev-baseline").resource_count_is("AWS::DynamoDB::GlobalTable", 1)


def test_governance_has_no_network(example):
    template = t(example, "mlops-governance-baseline")
    template.resource_count_is("AWS::EC2::VPC", 0)


@pytest.mark.parametrize("role,cidr", [("dev", "10.10.0.0/16"), ("staging", "10.20.0.0/16"), ("prod", "10.30.0.0/16")])
def test_network_is_private_with_endpoints_and_flow_logs(example, role, cidr):
    template = t(example, f"mlops-{role}-baseline")
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": cidr})
    template.resource_count_is("AWS::EC2::Subnet", 2)
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::InternetGateway", 0)
    template.has_resource_properties("AWS::EC2::Subnet", {"MapPublicIpOnLaunch": False})
    services = {
        json.dumps(r["Properties"]["ServiceName"])
        for r in example.resources(f"mlops-{role}-baseline", "AWS::EC2::VPCEndpoint").values()
    }
    for service in (
        "sagemaker.api",
        "sagemaker.runtime",
        "sagemaker.featurestore-runtime",
        "sts",
        "logs",
        "monitoring",
        "ecr.api",
        "ecr.dkr",
        "kms",
        ".s3",
    ):
        assert any(service in s for s in services), (service, services)
    template.has_resource_properties(
        "AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Interface", "PrivateDnsEnabled": True}
    )
    template.has_resource_properties(
        "AWS::EC2::FlowLog", {"TrafficType": "ALL", "LogDestinationType": "cloud-watch-logs"}
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"KmsKeyId": Match.any_value(), "RetentionInDays": 365})


def test_dev_bucket_and_key_trust_only_named_cross_account_roles(example):
    template = example.template("mlops-dev-baseline")
    policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"]
    external = [
        s
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if str(s.get("Sid", "")).startswith("ExternalRead")
    ]
    assert sorted(s["Condition"]["ArnEquals"]["aws:PrincipalArn"] for s in external) == [
        "arn:aws:iam::111111111111:role/mlops-churn-governance-approver",
        "arn:aws:iam::111111111111:role/mlops-churn-governance-guard",
        "arn:aws:iam::111111111111:role/mlops-churn-governance-notify",
        "arn:aws:iam::333333333333:role/mlops-churn-staging-model",
        "arn:aws:iam::333333333333:role/mlops-churn-staging-monitor",
        "arn:aws:iam::444444444444:role/mlops-churn-prod-model",
        "arn:aws:iam::444444444444:role/mlops-churn-prod-monitor",
    ]
    for statement in external:
        assert statement["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]
        assert statement["Resource"]["Fn::Join"][1][-1] == "/projects/churn/*"
    key = next(r for r in template["Resources"].values() if r["Type"] == "AWS::KMS::Key")
    decrypt = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if str(s.get("Sid", "")).startswith("Decrypt")]
    assert {s["Sid"] for s in decrypt} == {"DecryptFor111111111111", "DecryptFor333333333333", "DecryptFor444444444444"}
    for statement in decrypt:
        assert statement["Action"] == ["kms:Decrypt", "kms:DescribeKey"]
        assert "ArnLike" in statement["Condition"]


# ------------------------------------------------------------------ studio


def test_studio_domain_is_vpc_only_and_encrypted(example):
    template = t(example, "mlops-dev-studio")
    template.has_resource_properties(
        "AWS::SageMaker::Domain",
        {
            "DomainName": "mlops-dev",
            "AuthMode": "IAM",
            "AppNetworkAccessType": "VpcOnly",
            "KmsKeyId": Match.any_value(),
            "SubnetIds": Match.any_value(),
            "DefaultUserSettings": Match.object_like(
                {"SecurityGroups": Match.any_value(), "ExecutionRole": Match.any_value()}
            ),
        },
    )
    # Studio is only where config lists it (default: dev).
    assert not any("studio" in name for name in example.templates if not name.startswith("mlops-dev"))


def test_user_profile_per_member_with_persona_role(example):
    template = t(example, "mlops-dev-churn-workspace")
    template.resource_count_is("AWS::SageMaker::UserProfile", 2)
    profiles = example.resources("mlops-dev-churn-workspace", "AWS::SageMaker::UserProfile")
    roles = example.resources("mlops-dev-churn-workspace", "AWS::IAM::Role")
    role_name = {logical: r["Properties"]["RoleName"] for logical, r in roles.items()}
    by_user = {
        p["Properties"]["UserProfileName"]: role_name[p["Properties"]["UserSettings"]["ExecutionRole"]["Fn::GetAtt"][0]]
        for p in profiles.values()
    }
    assert by_user == {"churn-alice": "mlops-churn-dev-lead", "churn-bob": "mlops-churn-dev-scientist"}


def _all_policy_documents(example: Synthesized):
    for stack, template in example.templates.items():
        for logical, resource in template["Resources"].items():
            props = resource.get("Properties", {})
            for key in ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument", "ModelPackageGroupPolicy"):
                if key in props:
                    yield stack, logical, props[key]


def test_no_full_access_managed_policies_anywhere(example):
    text = json.dumps(example.templates)
    assert "FullAccess" not in text


def test_no_wildcard_principals(example):
    for stack, logical, document in _all_policy_documents(example):
        for statement in document["Statement"]:
            principal = statement.get("Principal")
            if statement["Effect"] == "Allow" and principal is not None:
                assert principal != "*" and principal != {"AWS": "*"}, (stack, logical, statement)


def test_lead_can_approve_only_its_project_group(example):
    policies = example.resources("mlops-dev-churn-workspace", "AWS::IAM::ManagedPolicy")
    statements = [
        s
        for p in policies.values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if s.get("Sid") == "ReviewAndApproveInRegistry"
    ]
    assert len(statements) == 1  # the lead has it, the data scientist does not
    assert statements[0]["Resource"] == [
        "arn:aws:sagemaker:eu-west-1:111111111111:model-package-group/mlops-churn",
        "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-churn/*",
    ]


# ------------------------------------------------------------------ governance, build, serving


def test_registry_policy_names_the_cross_account_roles(example):
    template = t(example, "mlops-governance-churn-registry")
    template.has_resource_properties("AWS::SageMaker::ModelPackageGroup", {"ModelPackageGroupName": "mlops-churn"})
    group = next(
        iter(example.resources("mlops-governance-churn-registry", "AWS::SageMaker::ModelPackageGroup").values())
    )
    statements = {s["Sid"]: s for s in group["Properties"]["ModelPackageGroupPolicy"]["Statement"]}
    assert statements["RegisterFromDevPipeline"]["Condition"]["ArnEquals"]["aws:PrincipalArn"] == [
        "arn:aws:iam::222222222222:role/mlops-churn-dev-pipeline"
    ]
    assert statements["RegisterFromDevPipeline"]["Principal"] == {"AWS": ["arn:aws:iam::222222222222:root"]}
    assert "sagemaker:CreateModelPackage" in statements["RegisterFromDevPipeline"]["Action"]
    readers = statements["DeployToServingStages"]["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    assert "arn:aws:iam::333333333333:role/mlops-churn-staging-model" in readers
    assert "arn:aws:iam::444444444444:role/mlops-churn-prod-model" in readers
    assert "sagemaker:UpdateModelPackage" not in statements["DeployToServingStages"]["Action"]


def test_approval_topic_is_encrypted(example):
    template = t(example, "mlops-governance-churn-approval")
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ml-churn-team@example.com"}
    )


def test_pipeline_role_registers_into_governance(example):
    template = t(example, "mlops-dev-churn-build")
    template.has_resource_properties("AWS::IAM::Role", {"RoleName": "mlops-churn-dev-pipeline"})
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "RegisterInGovernance",
                                "Action": ["sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackageGroup"],
                            }
                        )
                    ]
                )
            }
        },
    )


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_model_role_reads_dev_artifacts(example, stage):
    template = t(example, f"mlops-{stage}-churn-serving")
    template.has_resource_properties("AWS::IAM::Role", {"RoleName": f"mlops-churn-{stage}-model"})
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "ReadModelArtifactsFromDev",
                                "Resource": "arn:aws:s3:::mlops-dev-artifacts-222222222222-eu-west-1/projects/churn/*",
                            }
                        ),
                    ]
                )
            }
        },
    )
    template.has_resource_properties(
        "AWS::IAM::ManagedPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Sid": "DecryptWithDevKey",
                                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/mlops/dev"}},
                            }
                        ),
                    ]
                )
            }
        },
    )


def test_no_inline_policies(example):
    for stack, template in example.templates.items():
        for logical, resource in template["Resources"].items():
            assert resource["Type"] != "AWS::IAM::Policy", (stack, logical)
            # CDK's own provider for closing the default security group is the one exception.
            if resource["Type"] == "AWS::IAM::Role" and not logical.startswith("CustomVpcRestrictDefaultSG"):
                assert "Policies" not in resource["Properties"], (stack, logical)


# ------------------------------------------------------------------ feature store


def test_feature_group_has_online_and_iceberg_offline_store(example):
    template = t(example, "mlops-dev-churn-features")
    template.has_resource_properties(
        "AWS::SageMaker::FeatureGroup",
        {
            "FeatureGroupName": "mlops-churn-customers",
            "RecordIdentifierFeatureName": "customer_id",
            "EventTimeFeatureName": "event_time",
            "FeatureDefinitions": Match.array_with(
                [
                    {"FeatureName": "customer_id", "FeatureType": "String"},
                    {"FeatureName": "event_time", "FeatureType": "Fractional"},
                ]
            ),
            "OnlineStoreConfig": {
                "EnableOnlineStore": True,
                "SecurityConfig": {"KmsKeyId": Match.any_value()},
                "TtlDuration": {"Unit": "Days", "Value": 365},
            },
            "OfflineStoreConfig": {
                "S3StorageConfig": {
                    "S3Uri": "s3://mlops-dev-artifacts-222222222222-eu-west-1/projects/churn/feature-store",
                    "KmsKeyId": Match.any_value(),
                },
                "DisableGlueTableCreation": False,
                "TableFormat": "Iceberg",
            },
            "ThroughputConfig": {"ThroughputMode": "OnDemand"},
            "RoleArn": Match.any_value(),
        },
    )


def test_offline_store_role_is_scoped_to_the_project(example):
    policy = next(iter(example.resources("mlops-dev-churn-features", "AWS::IAM::ManagedPolicy").values()))
    statements = {s.get("Sid"): s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    bucket = "arn:aws:s3:::mlops-dev-artifacts-222222222222-eu-west-1"
    assert statements["OfflineStoreObjects"]["Resource"] == f"{bucket}/projects/churn/feature-store/*"
    assert statements["OfflineStoreBucket"]["Resource"] == bucket
    # The group's own tables (its name, then ten characters of creation time), never "mlops-churn-*" (churn-eu).
    assert [r.rsplit(":table/", 1)[-1] for r in statements["OfflineStoreTables"]["Resource"][-2:]] == [
        "sagemaker_featurestore/mlops-churn-customers_??????????",
        "sagemaker_featurestore/mlops_churn_customers_??????????",
    ]


def test_no_feature_store_stack_without_feature_groups(single_account):
    # the fraud project of the single-account variant has the example's groups; churn too
    assert "mlops-dev-fraud-features" in single_account.templates


# ------------------------------------------------------------------ approval workflow

APPROVAL = "mlops-governance-churn-approval"


STATE_CHANGE = {"source": ["aws.sagemaker"], "detail-type": ["SageMaker Model Package State Change"]}
APPROVAL_CALL = {"source": ["aws.sagemaker"], "detail-type": ["AWS API Call via CloudTrail"]}


@pytest.mark.parametrize(
    "kind,pattern",
    [
        ("notify", {**STATE_CHANGE, "detail": {"ModelPackageGroupName": ["mlops-churn"],
                                               "ModelApprovalStatus": ["PendingManualApproval"]}}),
        # The guard's pattern in full: tests/approval/test_workflow_stack.py.
        ("guard", Match.object_like(APPROVAL_CALL)),
        ("rejected", {**STATE_CHANGE, "detail": {"ModelPackageGroupName": ["mlops-churn"],
                                                 "ModelApprovalStatus": ["Rejected", "PendingManualApproval"]}}),
    ],
)  # fmt: skip
def test_each_handler_has_its_rule(example, kind, pattern):
    template = t(example, APPROVAL)
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": pattern,
            "Targets": [
                Match.object_like(
                    {"DeadLetterConfig": {"Arn": Match.any_value()}, "RetryPolicy": {"MaximumRetryAttempts": 4}}
                )
            ],
        },
    )
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "FunctionName": f"mlops-churn-approval-{kind}",
            "Handler": f"{kind}.handler",
            "Runtime": "python3.14",
            "ReservedConcurrentExecutions": Match.absent(),  # a new account's quota of 10 refuses any
            "KmsKeyArn": {"Fn::ImportValue": Match.string_like_regexp("^mlops-governance-baseline:")},
            "DeadLetterConfig": Match.absent(),  # failures go to the on-failure destination, as records
            "Environment": {
                "Variables": {
                    "RELEASES_TABLE": "mlops-releases",
                    "DEPLOY_PIPELINE_NAME": "mlops-deploy",
                    "TOPIC_ARN": Match.any_value(),
                    "APPROVAL_POLICY": Match.serialized_json(
                        Match.object_like(
                            {
                                "project": "churn",
                                "model_package_group": "mlops-churn",
                                "approvers": ["alice"],
                                "metric_thresholds": {"accuracy": 0.7, "auc": 0.75},
                            }
                        )
                    ),
                }
            },
        },
    )
    template.has_resource_properties("AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 2})
    template.has_resource_properties("AWS::IAM::Role", {"RoleName": f"mlops-churn-governance-{kind}"})


def test_reserved_concurrency_only_where_config_asks(single_account):
    """The single-account variant sets approval_workflow.reserved_concurrency: 2, and the guardrail accepts it."""
    functions = single_account.resources("mlops-governance-churn-approval", "AWS::Lambda::Function").values()
    assert sorted(f["Properties"].get("ReservedConcurrentExecutions") for f in functions) == [2, 2, 2]
    assert single_account.error is None


def test_only_the_guard_the_revocation_handler_and_the_approver_role_may_change_a_version(example):
    """The guard reverts, the rejected handler restores a rejection a revert overwrote, approvers decide."""
    policies = example.resources(APPROVAL, "AWS::IAM::ManagedPolicy").values()
    updaters = {
        s["Sid"]: s["Resource"]
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "sagemaker:UpdateModelPackage" in json.dumps(s["Action"])
    }
    versions = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-churn/*"
    assert updaters == {"RevertApproval": versions, "RestoreRejection": versions, "ApproveOrReject": versions}


def test_dead_letter_queue_is_encrypted(example):
    t(example, APPROVAL).has_resource_properties("AWS::SQS::Queue", {"KmsMasterKeyId": Match.any_value()})
    t(example, APPROVAL).has_resource_properties(
        "AWS::Logs::LogGroup", {"LogGroupName": "/aws/lambda/mlops-churn-approval-guard", "KmsKeyId": Match.any_value()}
    )


def test_dev_bucket_lets_the_approval_handlers_read_reports(example):
    policies = example.resources("mlops-dev-baseline", "AWS::S3::BucketPolicy").values()
    readers = {
        s["Condition"]["ArnEquals"]["aws:PrincipalArn"]
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if str(s.get("Sid", "")).startswith("ExternalRead")
    }
    assert {
        "arn:aws:iam::111111111111:role/mlops-churn-governance-notify",
        "arn:aws:iam::111111111111:role/mlops-churn-governance-guard",
    } <= readers
